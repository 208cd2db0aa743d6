# bench/pkcs11.cmake — libtgp11 signatures/s vs direct C_Sign (issue 4).
# Run: tests/lib/with-softhsm.sh build/bench/bench_p11 [SECONDS]
# (TG_SOFTHSM2_MODULE must point at libsofthsm2.so).
add_executable(bench_p11 ${CMAKE_CURRENT_LIST_DIR}/bench_p11.c)
target_link_libraries(bench_p11 PRIVATE tgp11 PkgConfig::P11KIT ${CMAKE_DL_LIBS})
set_target_properties(bench_p11 PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
