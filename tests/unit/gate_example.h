/*
 * gate_example.h — pieces of the gate issue's example policy that the
 * gate's unit tests (test_gate_policy.c, test_gate_decide.c) both use.
 * TG_GATE_EX_UPSTREAMS is 3 lines, TG_GATE_EX_DATASETS_READ 11.
 */
#ifndef GATE_EXAMPLE_H
#define GATE_EXAMPLE_H

#define TG_GATE_EX_UPSTREAMS                                                                       \
	"upstreams:\n"                                                                             \
	"  datasets: http://127.0.0.1:8081\n"                                                      \
	"  llm: https://llm.internal:443\n"

#define TG_GATE_EX_DATASETS_READ                                                                   \
	"  - name: datasets-read\n"                                                                \
	"    methods: [GET, HEAD]\n"                                                               \
	"    paths: [\"/v1/datasets/**\"]\n"                                                       \
	"    upstream: datasets\n"                                                                 \
	"    allow:\n"                                                                             \
	"      - identity: \"spiffe://example.org/dev/*\"\n"                                       \
	"        key: device-attested\n"                                                           \
	"        pin: once\n"                                                                      \
	"        touch: never\n"                                                                   \
	"      - identity: \"spiffe://example.org/svc/indexer\"\n"                                 \
	"        key: hsm-operator\n"

#endif /* GATE_EXAMPLE_H */
