# tests/unit/host.cmake — unit tests of host/ modules. Each area keeps its own
# clearly separated block; append yours below the last one.

# --- doctor ---
tg_add_unit_test(test_doctor_known
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_doctor_known.c
  LIBS tghost)
tg_add_unit_test(test_doctor_report
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_doctor_report.c
  LIBS tghost)
# --- end doctor ---

# --- ca ---
foreach(t test_att test_att_chain test_prov test_ca_policy test_ca_issue)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tghost)
endforeach()
# the revoked.txt parser (its own line, so the list above merges cleanly)
tg_add_unit_test(test_ca_revoked
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_revoked.c LIBS tghost)
# --- end ca ---

# --- ca hsm (level hsm-operator; needs the PKCS#11 layer) ---
if(TARGET tgp11)
  tg_add_unit_test(test_ca_hsm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ca_hsm.c LIBS tghost)
  target_compile_definitions(test_ca_hsm PRIVATE TG_CA_HAVE_P11)
endif()
# --- end ca hsm ---

