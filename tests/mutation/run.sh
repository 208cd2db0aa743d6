#!/usr/bin/env bash
# tests/mutation/run.sh — mutation testing of tokengate's security checks:
# applies each single-line mutant of tests/mutation/mutants.tsv to a
# scratch copy of the tree, rebuilds, runs the tests that should catch it
# and says whether they did.
#
#   tests/mutation/run.sh [--only REGEX] [--build-dir DIR] [--jobs N] [--list]
#
# The working tree is never written: its tracked files (and untracked ones
# git does not ignore, uncommitted edits included) are copied to DIR/src,
# built once in DIR/src/build, then each mutant is applied there, built
# incrementally, tested with `ctest -R <its regex> --timeout 300` and undone.
# Results: killed (it builds, a test failed), survived (every test passed),
# no-build (the mutant does not compile), baseline-fails (its tests fail
# without it too). Exit status: 0 when every mutant was killed, 1 when one
# was not, 2 on bad use or a setup error.
set -u

usage() {
  sed -n '2,16s/^# \{0,1\}//p' "$0"
  cat <<'USAGE'

Options:
  --only REGEX     run only the mutants whose id matches REGEX (grep -E)
  --build-dir DIR  scratch directory (default: ${TMPDIR:-/tmp}/tokengate-mutation);
                   the copy is DIR/src, its build DIR/src/build, logs DIR/logs,
                   the results DIR/results.tsv; a later run reuses them
  --jobs N         parallel build and baseline test jobs (default 2)
  --list           check the mutants against the working tree and list them;
                   builds nothing
  -h, --help       this text

The tests read the real-world vectors from TG_TESTDATA_DIR: the environment
variable when set, else what the repository's build/ was configured with,
else ../shared/testdata next to the repository.
USAGE
}

die() {
  echo "mutation: $*" >&2
  exit 2
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd) || die "cannot find the repository root"
mutants_file=$repo/tests/mutation/mutants.tsv
only=
dir=${TMPDIR:-/tmp}/tokengate-mutation
jobs=2
list=0

while [ $# -gt 0 ]; do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --only)
      [ $# -ge 2 ] || die "--only needs a regex on mutant ids, e.g. --only '^att-'"
      only=$2
      shift 2
      ;;
    --only=*)
      only=${1#--only=}
      shift
      ;;
    --build-dir)
      [ $# -ge 2 ] || die "--build-dir needs a directory, e.g. --build-dir /tmp/tg-mut"
      dir=$2
      shift 2
      ;;
    --build-dir=*)
      dir=${1#--build-dir=}
      shift
      ;;
    --jobs)
      [ $# -ge 2 ] || die "--jobs needs a number, e.g. --jobs 2"
      jobs=$2
      shift 2
      ;;
    --jobs=*)
      jobs=${1#--jobs=}
      shift
      ;;
    --list)
      list=1
      shift
      ;;
    *)
      die "unknown argument '$1'; see tests/mutation/run.sh --help"
      ;;
  esac
done

case $jobs in
  '' | *[!0-9]* | 0) die "--jobs '$jobs' is not a positive number" ;;
esac
if [ -n "$only" ]; then
  echo | grep -Eq -- "$only" 2>/dev/null
  [ $? -le 1 ] || die "--only '$only' is not a valid extended regex"
fi
for tool in git awk cmp; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; install it (Debian: apt-get install $tool)"
done
[ -f "$mutants_file" ] || die "no mutants file '$mutants_file'"

# ---- the mutants ----

ids=() files=() origs=() reps=() regexes=() whats=()
problems=0

problem() {
  echo "mutation: $*" >&2
  problems=$((problems + 1))
}

load_mutants() {
  local n=0 line id file orig rep regex what extra
  local -A seen=()
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in '' | '#'*) continue ;; esac
    IFS=$'\t' read -r id file orig rep regex what extra <<<"$line"
    if [ -z "${what:-}" ] || [ -n "${extra:-}" ]; then
      problem "$mutants_file:$n: want 6 tab-separated columns (id, file, original text," \
        "replacement, ctest regex, what it breaks)"
      continue
    fi
    if [[ ! $id =~ ^[A-Za-z0-9_.-]+$ ]]; then
      problem "$mutants_file:$n: id '$id' may hold only letters, digits, '.', '-' and '_'"
      continue
    fi
    if [ -n "${seen[$id]:-}" ]; then
      problem "$mutants_file:$n: id '$id' is also on line ${seen[$id]}; give each mutant its own id"
      continue
    fi
    seen[$id]=$n
    if [ "$orig" = "$rep" ]; then
      problem "mutant $id: the replacement equals the original text; change something"
      continue
    fi
    if [ -n "$only" ] && ! grep -Eq -- "$only" <<<"$id"; then
      continue
    fi
    ids+=("$id") files+=("$file") origs+=("$orig") reps+=("$rep")
    regexes+=("$regex") whats+=("$what")
  done <"$mutants_file"
}

# Prints "COUNT LINE": how many times text occurs in file (fixed string, all
# lines) and the line of the first occurrence (0 when none).
locate() {
  MUT_TEXT=$2 awk '
    BEGIN { t = ENVIRON["MUT_TEXT"]; c = 0; first = 0 }
    {
      s = $0
      while ((i = index(s, t)) > 0) {
        c++
        if (first == 0) first = NR
        s = substr(s, i + length(t))
      }
    }
    END { print c, first }' "$1"
}

# Checks every loaded mutant against the tree at root: the file exists and
# the original text occurs exactly once. Sets lines[i].
lines=()
check_mutants() {
  local root=$1 i count line
  for i in "${!ids[@]}"; do
    lines[i]=0
    case ${files[i]} in
      /* | *..*) problem "mutant ${ids[i]}: file '${files[i]}' must be repo-relative"; continue ;;
    esac
    if [ ! -f "$root/${files[i]}" ]; then
      problem "mutant ${ids[i]}: file '${files[i]}' does not exist; fix column 2 of $mutants_file"
      continue
    fi
    read -r count line < <(locate "$root/${files[i]}" "${origs[i]}")
    if [ "$count" -eq 0 ]; then
      problem "mutant ${ids[i]}: its original text is not in ${files[i]} (was the code changed?);" \
        "update column 3 of $mutants_file: '${origs[i]}'"
    elif [ "$count" -gt 1 ]; then
      problem "mutant ${ids[i]}: its original text occurs $count times in ${files[i]};" \
        "make column 3 of $mutants_file longer so it names one line: '${origs[i]}'"
    else
      lines[i]=$line
    fi
  done
}

load_mutants
[ ${#ids[@]} -gt 0 ] || [ $problems -gt 0 ] ||
  die "no mutant${only:+ matches --only '$only'} in $mutants_file"

if [ $list -eq 1 ]; then
  check_mutants "$repo"
  for i in "${!ids[@]}"; do
    printf '%-22s %-34s %s\n' "${ids[i]}" "${files[i]}:${lines[i]}" "${whats[i]}"
    printf '%-22s %s\n' "" "tests: ${regexes[i]}"
  done
  echo "${#ids[@]} mutants"
  [ $problems -eq 0 ] || die "$problems problem(s) in $mutants_file (above)"
  exit 0
fi
[ $problems -eq 0 ] || die "$problems problem(s) in $mutants_file (above); nothing was run"

for tool in cmake ctest; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run scripts/install-deps"
done

# ---- the scratch copy ----

dir=$(mkdir -p "$dir" && cd "$dir" && pwd) || die "cannot create the scratch directory '$dir'"
case $dir/ in
  "$repo"/*) die "--build-dir '$dir' is inside the repository; give a directory outside it" ;;
esac
src=$dir/src
logs=$dir/logs
mkdir -p "$src" "$logs" || die "cannot write to '$dir'"
rm -f "$logs"/*.log

testdata=${TG_TESTDATA_DIR:-}
if [ -z "$testdata" ] && [ -f "$repo/build/CMakeCache.txt" ]; then
  testdata=$(sed -n 's/^TG_TESTDATA_DIR:[A-Z]*=//p' "$repo/build/CMakeCache.txt")
fi
[ -n "$testdata" ] || testdata=$repo/../shared/testdata

# Copies the working tree's files that differ (so a rerun rebuilds only
# what changed) and removes files the tree no longer has.
sync_copy() {
  local f want=$dir/files.want have=$dir/files.have
  git -C "$repo" ls-files --cached --others --exclude-standard >"$want.all" ||
    die "git ls-files failed in '$repo'"
  : >"$want"
  while IFS= read -r f; do
    [ -f "$repo/$f" ] || continue # deleted in the working tree
    echo "$f" >>"$want"
    if ! cmp -s "$repo/$f" "$src/$f"; then
      mkdir -p "$src/$(dirname "$f")" && cp "$repo/$f" "$src/$f" ||
        die "cannot copy '$f' to '$src'"
    fi
  done <"$want.all"
  (cd "$src" && find . -path ./build -prune -o -type f -print | sed 's|^\./||') | sort >"$have"
  sort -o "$want" "$want"
  comm -13 "$want" "$have" | while IFS= read -r f; do rm -f "$src/$f"; done
  rm -f "$want" "$want.all" "$have"
}

echo "mutation: copying $repo to $src"
sync_copy
check_mutants "$src"
[ $problems -eq 0 ] || die "$problems problem(s) in $mutants_file (above); nothing was run"

echo "mutation: configuring and building $src/build (TG_TESTDATA_DIR=$testdata)"
if ! cmake -S "$src" -B "$src/build" -DTG_TESTDATA_DIR="$testdata" >"$logs/configure.log" 2>&1; then
  die "configuring the copy failed; see $logs/configure.log"
fi
if ! cmake --build "$src/build" -j "$jobs" >"$logs/baseline-build.log" 2>&1; then
  die "the unmutated copy does not build; see $logs/baseline-build.log (fix the tree first)"
fi

# Prints the names of the tests a ctest log names as failed.
failed_tests() {
  sed -n '/The following tests FAILED:/,$p' "$1" |
    sed -n 's/^[[:space:]]*[0-9][0-9]* - \([^ ]*\) (.*)$/\1/p' | tr '\n' ' ' | sed 's/ $//'
}

# Prints the tests regex selects, one per line.
tests_of() {
  (cd "$src/build" && ctest -N -R "$1") | sed -n 's/^ *Test *#[0-9]*: *//p'
}

union=
for i in "${!ids[@]}"; do
  if [ -z "$(tests_of "${regexes[i]}")" ]; then
    problem "mutant ${ids[i]}: ctest regex '${regexes[i]}' selects no test; fix column 5"
  fi
  union=${union:+$union|}${regexes[i]}
done
[ $problems -eq 0 ] || die "$problems problem(s) in $mutants_file (above); nothing was run"

echo "mutation: running the baseline tests of the ${#ids[@]} mutants"
(cd "$src/build" && ctest -R "$union" --timeout 300 -j "$jobs") >"$logs/baseline-test.log" 2>&1
baseline_failed=" $(failed_tests "$logs/baseline-test.log") "
[ "$baseline_failed" = "  " ] ||
  echo "mutation: failing without any mutant:$baseline_failed(see $logs/baseline-test.log)"

# ---- the mutants, one at a time ----

current=
restore() {
  if [ -n "$current" ]; then
    cp "$current.orig" "$current" && rm -f "$current.orig"
    touch "$current"
    current=
  fi
}
trap 'restore; echo "mutation: interrupted; $src restored" >&2; exit 2' INT TERM HUP

apply() {
  local f=$1 orig=$2 rep=$3
  cp "$f" "$f.orig" || return 1
  current=$f
  MUT_TEXT=$orig MUT_REP=$rep awk '
    BEGIN { t = ENVIRON["MUT_TEXT"]; r = ENVIRON["MUT_REP"] }
    {
      i = index($0, t)
      if (i > 0) $0 = substr($0, 1, i - 1) r substr($0, i + length(t))
      print
    }' "$f.orig" >"$f" || return 1
  cmp -s "$f" "$f.orig" && return 1
  return 0
}

results=$dir/results.tsv
printf 'id\tfile\tline\tresult\tseconds\tkillers\twhat\n' >"$results"
nk=0 ns=0 nb=0 nf=0
survivors=()
printf '\n%-22s %-34s %-14s %5s  %s\n' "mutant" "file:line" "result" "secs" "failing tests"
for i in "${!ids[@]}"; do
  id=${ids[i]}
  start=$SECONDS
  killers=
  res=
  for t in $(tests_of "${regexes[i]}"); do
    case $baseline_failed in *" $t "*) res=baseline-fails killers="$killers $t" ;; esac
  done
  if [ -z "$res" ]; then
    if ! apply "$src/${files[i]}" "${origs[i]}" "${reps[i]}"; then
      restore
      die "mutant $id: cannot apply it to $src/${files[i]}"
    fi
    if ! cmake --build "$src/build" -j "$jobs" >"$logs/$id.build.log" 2>&1; then
      res=no-build
    else
      (cd "$src/build" && ctest -R "${regexes[i]}" --timeout 300 --output-on-failure) \
        >"$logs/$id.test.log" 2>&1
      rc=$?
      killers=$(failed_tests "$logs/$id.test.log")
      if [ $rc -eq 0 ]; then
        res=survived
      else
        res=killed
        [ -n "$killers" ] || killers="(ctest exit $rc)"
      fi
    fi
    restore
  fi
  case $res in
    killed) nk=$((nk + 1)) ;;
    survived) ns=$((ns + 1)) survivors+=("$id: ${whats[i]} (${files[i]}:${lines[i]})") ;;
    no-build) nb=$((nb + 1)) ;;
    baseline-fails) nf=$((nf + 1)) ;;
  esac
  killers=${killers# }
  secs=$((SECONDS - start))
  printf '%-22s %-34s %-14s %5s  %s\n' "$id" "${files[i]}:${lines[i]}" "$res" "$secs" "$killers"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "${files[i]}" "${lines[i]}" "$res" "$secs" \
    "$killers" "${whats[i]}" >>"$results"
done
trap - INT TERM HUP

echo
echo "mutation: rebuilding the unmutated copy"
cmake --build "$src/build" -j "$jobs" >"$logs/final-build.log" 2>&1 ||
  echo "mutation: the final rebuild failed; see $logs/final-build.log" >&2

n=${#ids[@]}
echo
echo "== summary =="
printf '  %-15s %4d\n' killed "$nk" survived "$ns" no-build "$nb" baseline-fails "$nf"
extra=
[ "$nf" -eq 0 ] || extra=", $nf baseline-fails"
echo "$n mutants: $nk killed, $ns survived, $nb no-build$extra"
if [ $ns -gt 0 ]; then
  echo "survivors (add a test that fails with the mutant applied):"
  printf '  %s\n' "${survivors[@]}"
fi
echo "results: $results; logs: $logs"
[ "$nk" -eq "$n" ] && exit 0
exit 1
