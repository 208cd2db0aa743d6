# tests/unit/host.cmake — unit tests of host/ modules. Each area keeps its own
# clearly separated block; append yours below the last one. A test links the
# library of the area it tests; a white-box test adds the area's folder.

# --- doctor ---
foreach(t test_doctor_known test_doctor_report test_doctor_piv)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tgdoctor tgcore)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/host/doctor)
endforeach()
# the renderers, the PC/SC probe against stand-in pcscd sockets, USB without a bus
foreach(t test_doctor_render test_doctor_pcsc test_doctor_usb)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c
    LIBS tgdoctor tgcore PkgConfig::JANSSON PkgConfig::PCSC PkgConfig::P11KIT)
  target_include_directories(${t} PRIVATE ${CMAKE_SOURCE_DIR}/host/doctor)
endforeach()
# the PKCS#11 probe on a throw-away SoftHSM2
tg_add_unit_test(test_doctor_p11 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_doctor_p11.c
  LIBS tgdoctor tgcore PkgConfig::P11KIT WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh)
target_include_directories(test_doctor_p11 PRIVATE ${CMAKE_SOURCE_DIR}/host/doctor)
# the PC/SC and PIV probes on a private pcscd with the simulated token
tg_add_unit_test(test_doctor_pcscd SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_doctor_pcscd.c
  LIBS tgdoctor tgcore PkgConfig::PCSC
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-pcscd.sh --sim)
target_include_directories(test_doctor_pcscd PRIVATE ${CMAKE_SOURCE_DIR}/host/doctor)
# the report and the JSON renderer with each allocation failing in turn
# (and the whole command, on a throw-away SoftHSM2 without pcscd)
tg_add_failalloc_test(test_doctor_failalloc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_doctor_failalloc.c
  LIBS tgdoctor tgcmd tgcore PkgConfig::PCSC PkgConfig::P11KIT
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh)
target_include_directories(test_doctor_failalloc PRIVATE ${CMAKE_SOURCE_DIR}/host/doctor
  ${CMAKE_SOURCE_DIR}/host)
# --- end doctor ---

# --- ca ---
foreach(t test_att test_att_chain test_prov test_ca_policy test_ca_issue)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tgca)
endforeach()
# the revoked.txt parser (its own line, so the list above merges cleanly)
tg_add_unit_test(test_ca_revoked
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_revoked.c LIBS tgca)
# the CA directory (store.c), `tokengate ca` (cmd_ca.c, called as main does)
# and the CA's file readers (io.c)
tg_add_unit_test(test_ca_store
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_store.c LIBS tgca)
tg_add_unit_test(test_ca_cmd
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_cmd.c LIBS tgca tgcmd)
tg_add_unit_test(test_ca_io
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_io.c LIBS tgca)
# a CA key and level hsm-operator on SoftHSM2
tg_add_unit_test(test_ca_hsm_p11
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_hsm_p11.c LIBS tgca
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh TIMEOUT 300)
# --- end ca ---

# --- ca hsm (level hsm-operator) ---
tg_add_unit_test(test_ca_hsm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_hsm.c LIBS tgca)
# --- end ca hsm ---

