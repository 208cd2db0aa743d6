#!/usr/bin/env bash
# tests/fuzz/campaign.sh — run every libFuzzer target of a TG_FUZZ build for
# a given time, each on a scratch copy of its committed seed corpus, and
# print one line per target: executions, coverage, crashes.
#
#   tests/fuzz/campaign.sh [--seconds N] [--jobs J] [--out DIR]
#                          [--only REGEX] BUILD_FUZZ_DIR
#
# `make fuzz FUZZ_SECONDS=N` builds build-fuzz/ and runs this. The
# committed corpus is never written: new inputs land in DIR/<target>/corpus,
# crashes in DIR/<target>/crash-*, libFuzzer's log in DIR/<target>/log.
# Exit status: 0 when no target crashed, 1 when one did, 2 on bad use.
set -u

usage() {
  sed -n '2,12s/^# \{0,1\}//p' "$0"
  cat <<'USAGE'
Options:
  --seconds N   how long each target runs (default 60)
  --jobs J      how many targets run at once (default 1)
  --out DIR     where corpora, crashes and logs go
                (default BUILD_FUZZ_DIR/campaign)
  --only REGEX  run only the targets whose name matches (grep -E)
  -h, --help    this text
USAGE
}

seconds=60
jobs=1
out=""
only=""
build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:-}"; shift 2 ;;
    --jobs) jobs="${2:-}"; shift 2 ;;
    --out) out="${2:-}"; shift 2 ;;
    --only) only="${2:-}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "campaign.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) build="$1"; shift ;;
  esac
done
case "$seconds$jobs" in
  *[!0-9]* | "") echo "campaign.sh: --seconds and --jobs take whole numbers" >&2; exit 2 ;;
esac
if [ -z "$build" ] || [ ! -d "$build/fuzz" ]; then
  echo "campaign.sh: give the TG_FUZZ build directory (no '$build/fuzz' found;" \
    "build it with: make fuzz)" >&2
  exit 2
fi
src="$(cd "$(dirname "$0")" && pwd)"
out="${out:-$build/campaign}"
mkdir -p "$out" || exit 2

targets=()
for corpus in "$src"/corpus/fuzz_*; do
  name="$(basename "$corpus")"
  if [ -n "$only" ] && ! printf '%s\n' "$name" | grep -Eq -- "$only"; then
    continue
  fi
  if [ ! -x "$build/fuzz/$name" ]; then
    echo "campaign.sh: $build/fuzz/$name is missing: was $build configured" \
      "with -DTG_FUZZ=ON and built?" >&2
    exit 2
  fi
  targets+=("$name")
done
if [ "${#targets[@]}" -eq 0 ]; then
  echo "campaign.sh: no target matches '$only'" >&2
  exit 2
fi

# run_one NAME: one target for $seconds, its results in $out/NAME/.
run_one() {
  local name="$1" dir="$out/$1"
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp "$src/corpus/$name"/* "$dir/corpus/"
  # -rss_limit_mb: the ASan build of a target stays far below it; a leak
  # that grows without bound is reported as a crash.
  "$build/fuzz/$name" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" \
    > "$dir/log" 2>&1
  echo $? > "$dir/rc"
}

running=0
for name in "${targets[@]}"; do
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

status=0
printf '%-20s %8s %12s %9s %6s %7s %s\n' target seconds executions exec/s edges corpus crashes
for name in "${targets[@]}"; do
  dir="$out/$name"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)"
  secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$dir/log" | tail -1)"
  edges="$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)"
  units="$(find "$dir/corpus" -type f | wc -l)"
  crashes="$(find "$dir" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
    -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)"
  rc="$(cat "$dir/rc" 2>/dev/null || echo '?')"
  rate="-"
  if [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ]; then
    rate=$((execs / secs))
  fi
  if [ "$rc" != 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    crashes="$crashes (exit $rc, see $dir/log)"
  fi
  printf '%-20s %8s %12s %9s %6s %7s %s\n' "$name" "${secs:--}" "${execs:--}" "$rate" \
    "${edges:--}" "$units" "$crashes"
done
exit "$status"
