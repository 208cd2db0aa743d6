# One way to register tests. Every test gets a CTest label:
#   unit, integration, interop, e2e, fuzz, fault, load (and bench)
# Tests that cannot run (missing test data, missing optional tool) exit 77
# and are reported as skipped by CTest, with their reason in the output.

set(TG_TEST_ENV
  "TG_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "TG_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "TG_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
  "TG_TESTDATA_DIR=${TG_TESTDATA_DIR}"
  "TG_SOFTHSM2_MODULE=${TG_SOFTHSM2_MODULE}"
  "TG_OPENSC_MODULE=${TG_OPENSC_MODULE}"
  "TG_PCSCD=${TG_PCSCD}"
  "TG_VPCD_DRIVER=${TG_VPCD_DRIVER}"
  "TG_FIXTURES=${CMAKE_SOURCE_DIR}/tests/lib"
  # Sanitizer settings take effect only in TG_SANITIZE builds.
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lib/lsan.supp:print_suppressions=0"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

# tg_add_unit_test(<name> SOURCES <src>... [LIBS <lib>...] [LABELS <label>...]
#                  [WRAPPER <cmd>...] [ENV <VAR=value>...] [TIMEOUT <s>])
# Builds a cmocka executable <name> and registers it. LABELS defaults to
# "unit". WRAPPER runs the executable under a fixture script, e.g.
# WRAPPER ${TG_FIXTURES}/with-softhsm.sh.
function(tg_add_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;WRAPPER;ENV" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE PkgConfig::CMOCKA ${T_LIBS})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/lib)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${T_WRAPPER} $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77 ENVIRONMENT "${TG_TEST_ENV};${T_ENV}")
endfunction()

# tg_add_failalloc_test(<name> SOURCES <src>... [LIBS <lib>...] [WRAPPER ...]
#                       [ENV ...] [TIMEOUT <s>])
# A tg_add_unit_test with tests/lib/tg_test_failalloc.c linked in and
# malloc, calloc, realloc, strdup and strndup wrapped at link time, so the
# test can make any allocation of the product code fail
# (tg_test_failalloc.h). Labels: unit, failalloc.
function(tg_add_failalloc_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;WRAPPER;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  tg_add_unit_test(${name}
    SOURCES ${T_SOURCES} ${CMAKE_SOURCE_DIR}/tests/lib/tg_test_failalloc.c
    LIBS ${T_LIBS} PkgConfig::JANSSON OpenSSL::Crypto
    LABELS unit failalloc WRAPPER ${T_WRAPPER} ENV ${T_ENV} TIMEOUT ${T_TIMEOUT})
  target_link_options(${name} PRIVATE
    "LINKER:--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup")
endfunction()

# tg_add_script_test(<name> SCRIPT <file> [ARGS <arg>...] [LABELS <label>...]
#                    [TIMEOUT <s>] [ENV <VAR=value>...] [DEPENDS_TARGETS <t>...])
# Registers a bash script as a test. The script sources
# tests/lib/fixtures.sh for SoftHSM2 / pcscd fixtures; exit 77 = skipped.
function(tg_add_script_test name)
  cmake_parse_arguments(T "" "SCRIPT;TIMEOUT" "ARGS;LABELS;ENV" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS integration)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND bash ${T_SCRIPT} ${T_ARGS})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77 ENVIRONMENT "${TG_TEST_ENV};${T_ENV}")
endfunction()

# tg_add_fuzz(<name> SOURCES <src>... [LIBS <lib>...])
# <name>.c defines LLVMFuzzerTestOneInput. With TG_FUZZ it is a libFuzzer
# binary (run: bin/<name> tests/fuzz/corpus/<name>); otherwise it links the
# replay driver and a CTest test (label "fuzz") replays every file of
# tests/fuzz/corpus/<name>/ through it.
function(tg_add_fuzz name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  if(TG_FUZZ)
    add_executable(${name} ${T_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${T_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
  endif()
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  if(TG_FUZZ)
    # libFuzzer replays a corpus directory when given -runs=0.
    add_test(NAME ${name}_replay COMMAND $<TARGET_FILE:${name}> -runs=0 ${corpus})
  else()
    add_test(NAME ${name}_replay COMMAND $<TARGET_FILE:${name}> ${corpus})
  endif()
  set_tests_properties(${name}_replay PROPERTIES LABELS fuzz TIMEOUT 300
    ENVIRONMENT "${TG_TEST_ENV}")
endfunction()
