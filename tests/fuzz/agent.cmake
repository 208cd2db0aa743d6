# tests/fuzz/agent.cmake — fuzz target of the agent's configuration file
# reader, replayed over its corpus in the suite.
tg_add_fuzz(fuzz_agent_config
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_agent_config.c
  LIBS tgagent)
