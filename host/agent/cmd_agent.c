/* cmd_agent.c — `tokengate agent`: arguments, --check, run. */
#include "agent-int.h"
#include "tg_cmd.h"

#include <stdio.h>

int
tg_cmd_agent(int argc, char **argv)
{
	struct tg_agent_config cfg;
	struct tg_error err;
	int check = 0, help = 0, r, code;

	tg_error_clear(&err);
	r = tg_agent_config_from_args(argc, argv, &cfg, &check, &help, &err);
	if (r == TG_ERR_USAGE) {
		code = TG_EXIT_USAGE; /* already printed */
		goto out;
	}
	if (r != 0) {
		code = tg_cmd_fail("agent", r, &err);
		goto out;
	}
	if (help) {
		code = TG_EXIT_OK;
		goto out;
	}
	r = check ? tg_agent_check(&cfg, stdout, &err) : tg_agent_run(&cfg, &err);
	code = r == 0 ? TG_EXIT_OK : tg_cmd_fail("agent", r, &err);
out:
	tg_agent_config_clear(&cfg);
	return code;
}
