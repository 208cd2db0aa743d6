# tests/unit/enroll.cmake — unit tests of host/enroll/ (tokengate enroll):
# what the PIV client parses next to libykpiv and its reader selection
# (tgpivc), and the CSR signed externally (tgcsr).
foreach(t test_enroll_pivc test_enroll_reader)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tgpivc)
endforeach()
tg_add_unit_test(test_enroll_csr SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_csr.c
  LIBS tgcsr tgcore OpenSSL::Crypto)
# the CSR's refusals, and each allocation of building and signing it failing
tg_add_failalloc_test(test_enroll_csr_fail
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_csr_fail.c LIBS tgcsr tgcore)
# enroll's shared helpers (enroll-int.h), white-box: printed commands,
# --out-dir, --cert-out, --json results and their refusals
tg_add_unit_test(test_enroll_int SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_int.c
  LIBS tgenroll tgca tgcore PkgConfig::JANSSON OpenSSL::Crypto)
target_include_directories(test_enroll_int PRIVATE ${CMAKE_SOURCE_DIR}/host/enroll)
# the PIV client against the simulated token behind a private pcscd
tg_add_unit_test(test_enroll_pivc_sim
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_pivc_sim.c LIBS tgpivc PkgConfig::YKPIV
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-pcscd.sh --sim)
tg_add_unit_test(test_enroll_pivc_sim_aes
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_pivc_sim.c LIBS tgpivc PkgConfig::YKPIV
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-pcscd.sh --sim
  ENV "TG_SIM_INIT_ARGS=--mgm-key 010203040506070801020304050607080102030405060708 --mgm-key-alg aes192")
# enroll's command line: every refused value and combination
tg_add_unit_test(test_enroll_cli SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_cli.c
  LIBS tgenroll tgcmd tgcore)
target_include_directories(test_enroll_cli PRIVATE ${CMAKE_SOURCE_DIR}/host)
# tokengate enroll on the simulated token: the note after a failure that
# followed GENERATE, --install-cert --json, a slot that is not empty
tg_add_unit_test(test_enroll_piv_sim
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_piv_sim.c
  LIBS tgenroll tgpivc tgcmd tgcore PkgConfig::JANSSON OpenSSL::Crypto
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-pcscd.sh --sim)
target_include_directories(test_enroll_piv_sim PRIVATE ${CMAKE_SOURCE_DIR}/host)
# --out-dir and --json output with each allocation failing in turn
tg_add_failalloc_test(test_enroll_failalloc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_enroll_failalloc.c LIBS tgenroll tgca tgcore)
target_include_directories(test_enroll_failalloc PRIVATE ${CMAKE_SOURCE_DIR}/host/enroll)
