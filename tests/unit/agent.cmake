# tests/unit/agent.cmake — unit tests of host/agent/ (tgagent): the
# configuration's flags and YAML file.
tg_add_unit_test(test_agent_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_agent_config.c
  LIBS tgagent)
