# host/ca.cmake — `tokengate ca`: attestation verification, the
# key-provenance extension, the CA policy, store and issuance (issue 5).
target_sources(tghost PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/io.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/attest.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/provenance.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/policy.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/record.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/store.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/issue.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/hsm.c
  ${CMAKE_CURRENT_SOURCE_DIR}/ca/cmd_ca.c)
target_include_directories(tghost PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/ca)
target_link_libraries(tghost PUBLIC OpenSSL::Crypto PkgConfig::YAML PkgConfig::JANSSON)

# The CA key on an HSM (ca init --key) and level hsm-operator (ca issue
# --hsm-key) need the PKCS#11 layer; without it those options say so.
if(TARGET tgp11)
  target_link_libraries(tghost PUBLIC tgp11)
  set_source_files_properties(
    ${CMAKE_CURRENT_SOURCE_DIR}/ca/store.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ca/issue.c
    ${CMAKE_CURRENT_SOURCE_DIR}/ca/hsm.c
    PROPERTIES COMPILE_DEFINITIONS TG_CA_HAVE_P11)
endif()
