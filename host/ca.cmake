# host/ca.cmake — tgca, `tokengate ca`: attestation verification, the
# key-provenance extension, the CA policy, store and issuance, and level
# hsm-operator (a CA key or a checked key on an HSM, through libtgp11).
add_library(tgca STATIC
  ${CMAKE_CURRENT_LIST_DIR}/ca/io.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/attest.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/provenance.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/policy.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/record.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/store.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/issue.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/hsm.c
  ${CMAKE_CURRENT_LIST_DIR}/ca/cmd_ca.c)
# Enrollment issues through the CA, so its whole API is public.
tg_area_headers(tgca ${CMAKE_CURRENT_LIST_DIR}/ca PUBLIC
  tg_att.h tg_ca_hsm.h tg_ca_io.h tg_ca_issue.h tg_ca_policy.h tg_ca_store.h tg_prov.h)
# Public: the headers include tg_err.h, tg_p11.h (tg_ca_hsm.h) and OpenSSL's.
target_link_libraries(tgca
  PUBLIC tgcore tgp11 OpenSSL::Crypto
  PRIVATE tgcmd tglog tgyaml PkgConfig::JANSSON)
