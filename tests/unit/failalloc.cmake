# tests/unit/failalloc.cmake — the product under allocation failure
# (tg_add_failalloc_test, tests/lib/tg_test_failalloc.h): every allocation
# of an operation made to fail in turn. Label failalloc.

# --- ca ---
tg_add_failalloc_test(test_failalloc_ca
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_failalloc_ca.c LIBS tgca)
# white-box: tg_ca_record.h (the issue record) is internal to the CA
target_include_directories(test_failalloc_ca PRIVATE ${CMAKE_SOURCE_DIR}/host/ca)
# --- end ca ---

# --- gate and audit ---
tg_add_failalloc_test(test_failalloc_gate
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_failalloc_gate.c LIBS tggate tgaudit)
# white-box: the authz decision (gate-int.h) is internal to the gate
target_include_directories(test_failalloc_gate PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
# --- end gate and audit ---
