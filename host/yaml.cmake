# host/yaml.cmake — tgyaml: what the YAML configuration readers share
# (loading a file or text with a size cap, file-and-line messages, readers
# of text, numbers, booleans and mappings with known keys); used by the CA
# (policy.yaml), the gate (its configuration and policy) and the agent.
add_library(tgyaml STATIC ${CMAKE_CURRENT_LIST_DIR}/yaml/yaml.c)
tg_area_headers(tgyaml ${CMAKE_CURRENT_LIST_DIR}/yaml PUBLIC tg_yaml.h)
# Public: tg_yaml.h includes yaml.h and tg_err.h.
target_link_libraries(tgyaml PUBLIC tgcore PkgConfig::YAML)
