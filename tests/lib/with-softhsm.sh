#!/usr/bin/env bash
# with-softhsm.sh CMD [ARGS...]
#
# Runs CMD with a throw-away SoftHSM2 set up in the default layout
# (tg_softhsm_default: token "tg-test", user PIN 1234, SO PIN 5678, keys
# p256/01, p384/02, rsa2048/03 non-exportable and exportable/04), with
# SOFTHSM2_CONF, TG_SOFTHSM_* and TG_TMP exported, then removes it all.
# Exits with CMD's exit status (77 = skipped); exits 77 itself when
# SoftHSM2 is not installed. Meant as the WRAPPER of tg_add_unit_test.
set -euo pipefail

if (($# == 0)); then
	echo "with-softhsm.sh: no command given (see --help)" >&2
	exit 2
fi
if [[ $1 == --help || $1 == -h ]]; then
	sed -n '2,9s/^# \{0,1\}//p' "$0"
	exit 0
fi

# shellcheck source=fixtures.sh
source "$(dirname "${BASH_SOURCE[0]}")/fixtures.sh"

tg_softhsm_default

rc=0
"$@" || rc=$?
exit "$rc"
