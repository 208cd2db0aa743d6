# host/gate_verify.cmake — tggateverify: the gate's client-certificate
# verifier (certificates in, verdict out, no sockets). To be folded into
# tggate (host/gate.cmake).
add_library(tggateverify STATIC ${CMAKE_CURRENT_LIST_DIR}/gate/verify.c)
tg_area_headers(tggateverify ${CMAKE_CURRENT_LIST_DIR}/gate PUBLIC tg_gate_verify.h)
# Public: the header includes tg_err.h, tg_prov.h (tgca) and OpenSSL's.
target_link_libraries(tggateverify PUBLIC tgcore tgca OpenSSL::Crypto)
