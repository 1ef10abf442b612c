#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 10m), one
# after another, and prints a table of executions and new corpus entries.
# A crash stops nothing: it is reported, its input stays in the target's
# testdata/fuzz directory (commit it: it becomes a seed that `make test`
# runs), and the script exits 1 at the end.
set -uo pipefail
FUZZTIME=${FUZZTIME:-10m}
GO=${GO:-go}
out=${FUZZ_OUT:-fuzz-long.out}
: > "$out"
status=0
printf '%-40s %-28s %14s %10s %s\n' package target executions new result | tee -a "$out"
for pkg in $($GO list ./... | grep -v /integration); do
	for target in $($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
		log=$(mktemp)
		echo "fuzzing $pkg $target for $FUZZTIME…" >&2
		$GO test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" >"$log" 2>&1
		rc=$?
		last=$(grep -E '^fuzz: elapsed' "$log" | tail -1)
		execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
		newc=$(sed -nE 's/.*total: ([0-9]+)\).*/\1/p' <<<"$last")
		result=ok
		if [ $rc -ne 0 ]; then
			result=FAILED
			status=1
			grep -E 'Failing input written to|--- FAIL|panic' "$log" | head -5 >&2
		fi
		printf '%-40s %-28s %14s %10s %s\n' "${pkg#github.com/pgpseudo/pgpseudo/}" "$target" "${execs:-?}" "${newc:-?}" "$result" | tee -a "$out"
		rm -f "$log"
	done
done
exit $status
