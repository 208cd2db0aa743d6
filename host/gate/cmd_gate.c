/* cmd_gate.c — `tokengate gate`: the verifier and per-route access control
 * in front of an API. Arguments: tg_gate_config_from_args; the process:
 * server.c. */
#include <stdio.h>

#include "gate-int.h"
#include "tg_cmd.h"

int
tg_cmd_gate(int argc, char **argv)
{
	struct tg_gate_config c;
	struct tg_error err;
	int check = 0, help = 0, r, rc = TG_EXIT_FAIL;

	tg_gate_config_init(&c);
	tg_error_clear(&err);
	r = tg_gate_config_from_args(argc, argv, &c, &check, &help, &err);
	if (r == TG_ERR_USAGE) {
		/* already printed, with the hint to --help */
		rc = TG_EXIT_USAGE;
		goto out;
	}
	if (r != 0) {
		rc = tg_cmd_fail("gate", r, &err);
		goto out;
	}
	if (help) {
		rc = TG_EXIT_OK;
		goto out;
	}
	if (check) {
		r = tg_gate_server_check(&c, stdout, &err);
		rc = r == 0 ? TG_EXIT_OK : tg_cmd_fail("gate --check", r, &err);
		goto out;
	}
	r = tg_gate_server_run(&c, argc, argv, &err);
	rc = r == 0 ? TG_EXIT_OK : tg_cmd_fail("gate", r, &err);
out:
	tg_gate_config_clear(&c);
	return rc;
}
