# tests/unit/pkcs11.cmake — unit tests of libtgp11 (those on SoftHSM2 run under
# tests/lib/with-softhsm.sh).
tg_add_unit_test(test_p11_uri
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_uri.c
  LIBS tgp11)
# White-box (p11-int.h: a key struct without a token, for the refusal's message).
tg_add_unit_test(test_p11_trust
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_trust.c
  LIBS tgp11 PkgConfig::LIBP11 PkgConfig::P11KIT)
target_include_directories(test_p11_trust PRIVATE ${CMAKE_SOURCE_DIR}/pkcs11)
# White-box, on SoftHSM2 (with-softhsm.sh): error paths and less travelled
# calls of libtgp11 (listing, keys without a public key, certificates,
# keygen refusals, CKA_ALWAYS_AUTHENTICATE, module loading, fork).
tg_add_unit_test(test_p11_hsm
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_hsm.c
  LIBS tgp11 PkgConfig::LIBP11 PkgConfig::P11KIT ${CMAKE_DL_LIBS}
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  TIMEOUT 300)
target_include_directories(test_p11_hsm PRIVATE ${CMAKE_SOURCE_DIR}/pkcs11)
# A PKCS#11 module over SoftHSM2 that fails or alters calls as
# $TG_P11_FAULT says (p11_fault_module.c), and libtgp11's refusals through it.
add_library(p11_fault_module MODULE ${CMAKE_CURRENT_LIST_DIR}/p11_fault_module.c)
target_include_directories(p11_fault_module PRIVATE
  $<TARGET_PROPERTY:PkgConfig::P11KIT,INTERFACE_INCLUDE_DIRECTORIES>)
target_link_libraries(p11_fault_module PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(p11_fault_module PROPERTIES PREFIX "" LIBRARY_OUTPUT_DIRECTORY
                      ${CMAKE_BINARY_DIR}/tests)
tg_add_unit_test(test_p11_fault
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_fault.c
  LIBS tgp11 PkgConfig::LIBP11 PkgConfig::P11KIT
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh
  ENV TG_P11_FAULT_MODULE=$<TARGET_FILE:p11_fault_module>
  TIMEOUT 300)
target_include_directories(test_p11_fault PRIVATE ${CMAKE_SOURCE_DIR}/pkcs11)
add_dependencies(test_p11_fault p11_fault_module)
# libtgp11 under allocation failure (tg_test_failalloc.h), on SoftHSM2.
tg_add_failalloc_test(test_p11_failalloc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_p11_failalloc.c
  LIBS tgp11
  WRAPPER ${CMAKE_SOURCE_DIR}/tests/lib/with-softhsm.sh)
