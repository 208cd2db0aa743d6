#!/bin/bash
# format-check.sh — fails when a tracked C source or header is not formatted
# as .clang-format says. Fix: clang-format -i <file>.
# Usage: format-check.sh [FILE...]   (default: every git-tracked *.c/*.h of
# $TG_SOURCE_DIR, or every *.c/*.h found there when it is not a git checkout)
# Exit: 0 formatted, 1 unformatted files, 77 clang-format missing (skip).
set -u

src=${TG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cf=${CLANG_FORMAT:-clang-format}

if ! command -v "$cf" >/dev/null 2>&1; then
	echo "skip: $cf not found (Debian package clang-format)"
	exit 77
fi

files=()
if [ $# -gt 0 ]; then
	files=("$@")
elif git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	while IFS= read -r f; do
		[ -f "$src/$f" ] && files+=("$src/$f")
	done < <(git -C "$src" ls-files -- '*.c' '*.h')
else
	while IFS= read -r f; do
		files+=("$f")
	done < <(find "$src" \( -name 'build*' -o -name '.git' \) -prune -o \
		-type f \( -name '*.c' -o -name '*.h' \) -print | sort)
fi

if [ ${#files[@]} -eq 0 ]; then
	echo "format-check: no C files found under $src" >&2
	exit 1
fi

# One clang-format process for every file (one per file costs ~0.4 s of
# start-up each, minutes on a loaded machine); its --Werror diagnostics
# ("FILE:LINE:COL: error: code should be clang-formatted") name the files.
out=$("$cf" --style=file --dry-run --Werror "${files[@]}" 2>&1 >/dev/null)
rc=$?
bad=()
while IFS= read -r f; do
	[ -n "$f" ] && bad+=("${f#"$src"/}")
done < <(printf '%s\n' "$out" | sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u)
if [ $rc -ne 0 ] && [ ${#bad[@]} -eq 0 ]; then
	echo "format-check: $cf failed without naming a file:" >&2
	printf '%s\n' "$out" >&2
	exit 1
fi

if [ ${#bad[@]} -gt 0 ]; then
	echo "format-check: ${#bad[@]} of ${#files[@]} files not formatted; run:"
	echo "  (cd $src && clang-format -i ${bad[*]})"
	exit 1
fi
echo "format-check: ${#files[@]} files formatted"
exit 0
