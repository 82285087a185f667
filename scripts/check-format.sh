#!/usr/bin/env bash
# check-format.sh: every C file follows .clang-format (the tiny guests'
# hand-laid assembly-heavy code is exempt). Prints TAP: a test point per file.
cd "$(dirname "$0")/.." || exit 1
bad=0
n=0
for f in $(git ls-files '*.c' '*.h' | grep -v '^tests/kvm/guests/'); do
	n=$((n + 1))
	if clang-format "$f" | cmp -s - "$f"; then
		echo "ok $n - $f"
	else
		echo "not ok $n - $f # not formatted (run: clang-format -i $f)"
		bad=$((bad + 1))
	fi
done
echo "1..$n"
echo "# format: $((n - bad)) passed, $bad failed"
[ "$bad" = 0 ]
