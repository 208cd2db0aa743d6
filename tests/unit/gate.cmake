# tests/unit/gate.cmake — unit tests of host/gate/ (tggate): the request
# path's normal form, the policy parser and the decision.
foreach(t test_gate_path test_gate_policy test_gate_decide)
  tg_add_unit_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c LIBS tggate)
endforeach()
