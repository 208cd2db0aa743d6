# shellcheck shell=bash
# tests/lib/gate_cases.sh — the shared outcome table of tokengate's decision
# (tests/integration/gate_cases.tsv, its columns described at its top),
# driven through one front end at a time. Source after gate_lib.sh:
#
#	gate_cases_load [FILE]         the table into GCT_* arrays (GCT_N rows)
#	gate_cases_select REGEX        only the rows whose case matches
#	gate_case_send ADDR CERT METHOD TARGET
#	                               one request, Connection: close, as leaf
#	                               CERT (none: no certificate): the response's
#	                               JSON line, or gate_client's error line;
#	                               gate_client's exit status
#	gate_case_check FRONT I        row I through FRONT (gate: the gate on
#	                               $GATE_PORT, audit $GATE_AUDIT; nginx:
#	                               nginx on $NGINX_PORT in front of the
#	                               endpoint whose audit log is $AUTHZ_AUDIT):
#	                               asserts the outcome, the reason, the audit
#	                               record and what reached the upstream
#	                               (its request log $GATE_CASES_UPLOG);
#	                               fails the test on any difference
#	gate_cases_run FRONT           every selected row through FRONT
#	gate_cases_report              the outcomes seen, case by case
#
# The expectation of a row for FRONT: the gate column, or for nginx the
# nginx column when it is not "=".

GATE_CASES_TSV=${GATE_CASES_TSV:-$TG_FIXTURES/../integration/gate_cases.tsv}

gate_cases_load()
{
	local f=${1:-$GATE_CASES_TSV} c cert m t g n r p why
	[[ -r $f ]] || tg_fail "gate_cases_load: cannot read $f"
	GCT_CASE=() GCT_CERT=() GCT_METHOD=() GCT_TARGET=() GCT_GATE=() GCT_NGINX=()
	GCT_ROUTE=() GCT_PATH=() GCT_REASON=()
	declare -gA GCT_SEEN=()
	while IFS=$'\t' read -r c cert m t g n r p why; do
		[[ -n $c && $c != '#'* ]] || continue
		[[ -n $why ]] || tg_fail "gate_cases_load: $f: row '$c' has fewer than 9 tab-separated columns"
		[[ $g =~ ^(200|403|400|refused)$ ]] || tg_fail "gate_cases_load: $f: row '$c': gate outcome '$g'"
		[[ $n =~ ^(=|200|403|400|400-nginx)$ ]] || tg_fail "gate_cases_load: $f: row '$c': nginx outcome '$n'"
		[[ -z ${GCT_SEEN[$c]:-} ]] || tg_fail "gate_cases_load: $f: case '$c' twice"
		GCT_SEEN[$c]=1
		GCT_CASE+=("$c") GCT_CERT+=("$cert") GCT_METHOD+=("$m") GCT_TARGET+=("$t")
		GCT_GATE+=("$g") GCT_NGINX+=("$n") GCT_ROUTE+=("$r") GCT_PATH+=("$p") GCT_REASON+=("$why")
	done <"$f"
	GCT_N=${#GCT_CASE[@]}
	((GCT_N > 0)) || tg_fail "gate_cases_load: $f has no rows"
	GCT_SEL=()
	local i
	for ((i = 0; i < GCT_N; i++)); do GCT_SEL+=("$i"); done
	declare -gA GCT_GOT=()
}

# gate_cases_select REGEX: keep only the selected rows whose case matches.
gate_cases_select()
{
	local i
	local -a keep=()
	for i in "${GCT_SEL[@]}"; do
		[[ ${GCT_CASE[i]} =~ $1 ]] && keep+=("$i")
	done
	GCT_SEL=("${keep[@]}")
	((${#GCT_SEL[@]} > 0)) || tg_fail "gate_cases_select: no case matches '$1'"
}

gate_case_send()
{
	local addr=$1 cert=$2 m=$3 t=$4 req
	local -a id=()
	[[ $cert == none ]] || id=(--cert "$PKI/$cert.pem" --key "$(gate_key_of "$cert")")
	req="$m $t HTTP/1.1\r\nHost: gate\r\nConnection: close\r\n"
	[[ $m != POST ]] || req+="Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	[[ $m == POST ]] || req+="\r\n"
	gate_client --addr "$addr" --ca "$PKI/srvca.pem" "${id[@]}" raw "$req"
}

gate__uplines()
{
	if [[ -f $GATE_CASES_UPLOG ]]; then wc -l <"$GATE_CASES_UPLOG"; else echo 0; fi
}

# gate__hdr JSON NAME: the values of response header NAME, joined by |
gate__hdr()
{
	jq -r --arg n "${2,,}" '[.headers[] | select(.[0] | ascii_downcase == $n) | .[1]] | join("|")' <<<"$1"
}

gate_case_check()
{
	local front=$1 i=$2 c want addr audit out rc=0 first st n0 got what reason route path
	c=${GCT_CASE[i]} want=${GCT_GATE[i]} route=${GCT_ROUTE[i]} path=${GCT_PATH[i]} reason=${GCT_REASON[i]}
	[[ $route != - ]] || route=null
	case $front in
	gate) addr=127.0.0.1:$GATE_PORT audit=$GATE_AUDIT ;;
	nginx)
		addr=127.0.0.1:$NGINX_PORT audit=$AUTHZ_AUDIT
		[[ ${GCT_NGINX[i]} == = ]] || want=${GCT_NGINX[i]}
		;;
	*) tg_fail "gate_case_check: front end '$front' (gate or nginx)" ;;
	esac
	local saved_audit=$GATE_AUDIT
	GATE_AUDIT=$audit
	n0=$(gate__uplines)
	gate_audit_mark
	out=$(gate_case_send "$addr" "${GCT_CERT[i]}" "${GCT_METHOD[i]}" "${GCT_TARGET[i]}") || rc=$?
	first=$(head -n1 <<<"$out")
	what="$front $c (${GCT_CERT[i]} ${GCT_METHOD[i]} ${GCT_TARGET[i]})"
	if [[ $rc == 3 ]] && [[ $first != *'"status"'* ]]; then
		got=refused
	elif [[ $rc == 0 ]] && st=$(jq -er '.status' <<<"$first" 2>/dev/null); then
		got=$st
	else
		tg_fail "$what: neither a response nor a refused handshake (exit $rc): $out"
	fi
	[[ $want == 400-nginx ]] && [[ $got == 400 ]] && got=400-nginx
	GCT_GOT[$front,$c]=$got
	[[ $got == "$want" ]] || tg_fail "$what: got $got, want $want: $out"
	local body rhdr
	body=$(jq -r '.body // empty' <<<"$first")
	case $want in
	200)
		local -a allow=(event="$GATE_EV_REQ" decision=allow route="$route" method="${GCT_METHOD[i]}" path="$path"
			identity="$(openssl x509 -in "$PKI/${GCT_CERT[i]}.pem" -noout -ext subjectAltName | sed -n 's/.*URI://p')")
		[[ $front == gate ]] || allow+=(front=authz)
		gate_audit_expect "${allow[@]}"
		[[ $(gate__uplines) == $((n0 + 1)) ]] || tg_fail "$what: allowed, but the upstream got $(($(gate__uplines) - n0)) requests"
		;;
	403)
		if [[ $front == gate ]]; then
			rhdr=$(jq -r .reason <<<"$body" 2>/dev/null) || tg_fail "$what: the 403 body is not JSON: $body"
			[[ $(jq -r .route <<<"$body") == "$route" ]] || tg_fail "$what: the 403 body names route $(jq -r .route <<<"$body"), want $route"
		else
			rhdr=$(gate__hdr "$first" X-Tokengate-Reason)
			[[ $route == null ]] || [[ $(gate__hdr "$first" X-Tokengate-Route) == "$route" ]] ||
				tg_fail "$what: X-Tokengate-Route '$(gate__hdr "$first" X-Tokengate-Route)', want $route"
		fi
		[[ -n $rhdr ]] || tg_fail "$what: a 403 without a reason: $out"
		[[ $reason == - || $rhdr == *"$reason"* ]] || tg_fail "$what: reason '$rhdr' does not say '$reason'"
		if [[ ${GCT_GATE[i]} == refused ]]; then
			# the endpoint refused the certificate: its record, with the reason
			gate_audit_expect front=authz "reason~$reason"
			gate_audit_none decision=allow
		else
			local -a conds=(event="$GATE_EV_REQ" decision=deny status=403 "reason~${reason#-}")
			[[ ${GCT_GATE[i]} == 400 ]] || conds+=(route="$route")
			[[ $path == - ]] || conds+=(path="$path")
			[[ $front == gate ]] || conds+=(front=authz)
			gate_audit_expect "${conds[@]}"
		fi
		[[ $(gate__uplines) == "$n0" ]] || tg_fail "$what: denied but forwarded upstream"
		;;
	400)
		gate_audit_expect event="$GATE_EV_REQ" decision=deny status=400 reason!=null "reason~${reason#-}"
		[[ $(gate__uplines) == "$n0" ]] || tg_fail "$what: refused but forwarded upstream"
		;;
	400-nginx)
		# nginx answered before asking the endpoint: no record at all
		sleep 0.2
		[[ $(gate_audit_count) == 0 ]] || tg_fail "$what: nginx's own 400, but the endpoint wrote: $(gate__audit_new)"
		[[ $(gate__uplines) == "$n0" ]] || tg_fail "$what: refused but forwarded upstream"
		;;
	refused)
		gate_audit_expect event="$GATE_EV_TLS" "reason~$reason"
		gate_audit_none event="$GATE_EV_REQ"
		;;
	esac
	GATE_AUDIT=$saved_audit
	echo "ok: $what -> $want${reason:+ ($reason)}"
}

gate_cases_run()
{
	local i
	for i in "${GCT_SEL[@]}"; do
		gate_case_check "$1" "$i"
	done
}

# gate_cases_report: case, expected and seen outcome per front end run
gate_cases_report()
{
	local i c
	printf '%-26s %-10s %-10s %-12s %s\n' case cert gate nginx+authz reason
	for i in "${GCT_SEL[@]}"; do
		c=${GCT_CASE[i]}
		printf '%-26s %-10s %-10s %-12s %s\n' "$c" "${GCT_CERT[i]}" "${GCT_GOT[gate,$c]:--}" \
			"${GCT_GOT[nginx,$c]:--}" "${GCT_REASON[i]}"
	done
}
