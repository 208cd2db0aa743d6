# bench/token.cmake — signatures per second through OpenSC -> pcscd ->
# tokengate-sim against SoftHSM2, side by side (issue 3). Run:
#   bench/sim-sign.sh [BUILD_DIR]    (or: cmake --build BUILD --target bench_sim_sign)
add_executable(bench_sim_sign_p11 ${CMAKE_CURRENT_LIST_DIR}/sim_sign.c)
target_link_libraries(bench_sim_sign_p11 PRIVATE PkgConfig::P11KIT OpenSSL::Crypto ${CMAKE_DL_LIBS})
set_target_properties(bench_sim_sign_p11 PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
add_custom_target(bench_sim_sign
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/sim-sign.sh ${CMAKE_BINARY_DIR}
  DEPENDS bench_sim_sign_p11 tokengate-sim
  USES_TERMINAL)
