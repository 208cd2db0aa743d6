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
# The token core's edges across modules (create parameters, host without
# callbacks, 6581 of every persisting command, APDU refusals).
tg_add_unit_test(test_tok_edges
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_edges.c
          ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_util.c
  LIBS tgtoken)
target_include_directories(test_tok_edges PRIVATE ${CMAKE_SOURCE_DIR}/token)
# The shared layer's argument and file-kind refusals (token/core buf.c,
# file.c) beside test_buf and test_file.
tg_add_unit_test(test_tok_core_args
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_core_args.c
  LIBS tgcore)
# The token core under allocation failure (tests/lib/tg_test_failalloc.h).
tg_add_failalloc_test(test_tok_failalloc
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_failalloc.c
          ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tok_util.c
  LIBS tgtoken)
