#!/usr/bin/env bash
# with-pcscd.sh [--sim] [--] CMD [ARGS...]
#
# Runs CMD with a private pcscd (own mount namespace and socket, vpcd
# reader on a free port pair) and PCSCLITE_CSOCK_NAME, TG_VPCD_PORT,
# TG_READER and TG_TMP exported; stops it and removes everything after.
# --sim also creates a simulated token (tokengate-sim init, state in
# $TG_SIM_STATE) and runs tokengate-sim connected to that pcscd until a
# card shows in "$TG_READER" (TG_SIM_PID, TG_SIM_LOG exported). Extra
# words for the simulator: TG_SIM_INIT_ARGS and TG_SIM_RUN_ARGS.
# Exits with CMD's exit status (77 = skipped); exits 77 itself when
# pcscd or the vpcd driver is not installed. Meant as the WRAPPER of
# tg_add_unit_test.
set -euo pipefail

usage()
{
	sed -n '2,14s/^# \{0,1\}//p' "$0"
}

sim=
while (($# > 0)); do
	case $1 in
	--sim) sim=1; shift ;;
	--) shift; break ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "with-pcscd.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) break ;;
	esac
done
if (($# == 0)); then
	echo "with-pcscd.sh: no command given (see --help)" >&2
	exit 2
fi

# shellcheck source=fixtures.sh
source "$(dirname "${BASH_SOURCE[0]}")/fixtures.sh"

tg_pcscd_start
if [[ -n $sim ]]; then
	# shellcheck disable=SC2086 # word splitting of the extra arguments
	tg_sim_init "$TG_TMP/sim.state" ${TG_SIM_INIT_ARGS:-}
	# shellcheck disable=SC2086
	tg_sim_start "$TG_TMP/sim.state" ${TG_SIM_RUN_ARGS:-}
fi

rc=0
"$@" || rc=$?
exit "$rc"
