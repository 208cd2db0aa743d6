# tests/unit/gate.cmake — unit tests of host/gate/ (tggate): the request
# path's normal form, the policy parser and the decision.
foreach(t test_gate_path test_gate_policy test_gate_decide)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tggate)
endforeach()
# the session-ticket key file parser and the ticket callback's work
# (tls-int.h, an internal header of host/gate)
tg_add_unit_test(test_gate_tickets SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_gate_tickets.c
  LIBS tggate)
target_include_directories(test_gate_tickets PRIVATE ${CMAKE_SOURCE_DIR}/host/gate)
