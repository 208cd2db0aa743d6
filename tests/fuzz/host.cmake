# tests/fuzz/host.cmake — fuzz targets of host/ parsers.

# --- ca ---
tg_add_fuzz(fuzz_provenance
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_provenance.c
  LIBS tgca)
tg_add_fuzz(fuzz_attest_ext
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_attest_ext.c
  LIBS tgca)
tg_add_fuzz(fuzz_ca_policy
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_ca_policy.c
  LIBS tgca)
tg_add_fuzz(fuzz_ca_revoked
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_ca_revoked.c
  LIBS tgca)
# --- end ca ---
