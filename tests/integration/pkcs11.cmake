# tests/integration/pkcs11.cmake — libtgp11 and `tokengate token` against
# SoftHSM2 (and, when the simulator is there, OpenSC's module).
# White-box (p11-int.h): adds libtgp11's folder and the headers p11-int.h uses.
tg_add_unit_test(test_p11_softhsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_softhsm.c
  LIBS tgp11 PkgConfig::LIBP11 PkgConfig::P11KIT ${CMAKE_DL_LIBS}
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  TIMEOUT 600)
target_include_directories(test_p11_softhsm PRIVATE ${CMAKE_SOURCE_DIR}/pkcs11)

# A PKCS#11 module forwarding to SoftHSM2 that can hide the token or alter
# its serial and attributes (p11_watch_wrap.c), for the watcher's tests.
add_library(p11_watch_wrap MODULE ${CMAKE_CURRENT_LIST_DIR}/p11_watch_wrap.c)
target_include_directories(p11_watch_wrap PRIVATE
  $<TARGET_PROPERTY:PkgConfig::P11KIT,INTERFACE_INCLUDE_DIRECTORIES>)
target_link_libraries(p11_watch_wrap PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(p11_watch_wrap PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

# tg_add_wrap_test(<name> SOURCES <src>... LIBS <lib>... TIMEOUT <s>): a
# cmocka test on SoftHSM2 (with-softhsm.sh, label integration) that steers
# p11_watch_wrap, whose path it gets as TG_P11_WATCH_WRAP_PATH.
function(tg_add_wrap_test name)
  cmake_parse_arguments(W "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  tg_add_unit_test(${name} SOURCES ${W_SOURCES} LIBS ${W_LIBS} LABELS integration
    WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh TIMEOUT ${W_TIMEOUT})
  target_compile_definitions(${name} PRIVATE
    TG_P11_WATCH_WRAP_PATH="$<TARGET_FILE:p11_watch_wrap>")
  add_dependencies(${name} p11_watch_wrap)
endfunction()

tg_add_wrap_test(test_p11_watch_softhsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_watch_softhsm.c
  LIBS tgp11
  TIMEOUT 600)

# The presence watcher against simulated cards passing for the watched one
# (uses p11_watch_probe, below).
tg_add_script_test(test_p11_watch_sim
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_p11_watch_sim.sh
  TIMEOUT 600)

# A TLS client/server whose key is on the token, driven by test_p11_cli.sh.
add_executable(p11_tls_probe ${CMAKE_CURRENT_LIST_DIR}/p11_tls_probe.c)
target_link_libraries(p11_tls_probe PRIVATE tgp11)
set_target_properties(p11_tls_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

tg_add_script_test(test_p11_cli
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_p11_cli.sh
  TIMEOUT 600)

# Presence events for test_p11_sim.sh.
add_executable(p11_watch_probe ${CMAKE_CURRENT_LIST_DIR}/p11_watch_probe.c)
target_link_libraries(p11_watch_probe PRIVATE tgp11)
set_target_properties(p11_watch_probe PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)

tg_add_script_test(test_p11_sim
  SCRIPT ${CMAKE_CURRENT_LIST_DIR}/test_p11_sim.sh
  TIMEOUT 600)

# A PKCS#11 module that forwards to SoftHSM2 and hides or alters trust
# attributes and the token model (issue 9), and its test.
add_library(p11_wrap_module MODULE ${CMAKE_CURRENT_LIST_DIR}/p11_wrap_module.c)
target_link_libraries(p11_wrap_module PRIVATE PkgConfig::P11KIT ${CMAKE_DL_LIBS})
set_target_properties(p11_wrap_module PROPERTIES PREFIX "" LIBRARY_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/tests)
tg_add_unit_test(test_p11_wrap
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_wrap.c
  LIBS tgp11 PkgConfig::LIBP11 PkgConfig::P11KIT
  LABELS integration
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  ENV TG_WRAP_MODULE=$<TARGET_FILE:p11_wrap_module>)
target_include_directories(test_p11_wrap PRIVATE ${CMAKE_SOURCE_DIR}/pkcs11)
add_dependencies(test_p11_wrap p11_wrap_module)
