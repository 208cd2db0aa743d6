# tests/unit/token.cmake — unit tests of the PIV token core (token/).
# One executable per module, sharing test_tok_util.c.
foreach(t apdu select_objects mgmt_app pin mgmt keys sign attest state noleak)
  tg_add_unit_test(test_tok_${t}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_${t}.c
            ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_util.c
    LIBS tgtoken)
  # white-box: tok-int.h (the token's internals)
  target_include_directories(test_tok_${t} PRIVATE ${CMAKE_SOURCE_DIR}/token)
endforeach()
