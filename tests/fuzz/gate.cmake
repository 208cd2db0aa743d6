# tests/fuzz/gate.cmake — fuzz target of the gate's pure core: a request
# line through path normalization and the decision under a fixed policy;
# replayed over its corpus in the suite.
tg_add_fuzz(fuzz_gate_decide
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_gate_decide.c
  LIBS tggate)
