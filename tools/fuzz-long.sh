#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 10m) and
# prints a table of executions and corpus entries. FUZZ_JOBS lanes (default
# 1) run at once, each target with one fuzzing worker per lane (so two
# lanes keep two cores busy); with one lane a target uses every core.
# A crash stops nothing: it is reported, its input stays in the target's
# testdata/fuzz directory (commit it: it becomes a seed `make test` runs),
# and the script exits 1 at the end.
set -uo pipefail
FUZZTIME=${FUZZTIME:-10m}
FUZZ_JOBS=${FUZZ_JOBS:-1}
GO=${GO:-go}
out=${FUZZ_OUT:-fuzz-long.out}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

targets=()
for pkg in $($GO list ./... | grep -v /integration); do
	for target in $($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
		targets+=("$pkg $target")
	done
done

parallel=()
[ "$FUZZ_JOBS" -gt 1 ] && parallel=(-parallel 1)

# lane N runs every FUZZ_JOBS-th target, starting at N.
lane() {
	local n=$1 i
	for ((i = n; i < ${#targets[@]}; i += FUZZ_JOBS)); do
		local pkg=${targets[$i]% *} target=${targets[$i]#* } log="$work/$i.log"
		echo "fuzzing ${pkg#github.com/pgpseudo/pgpseudo/} $target for $FUZZTIME…" >&2
		$GO test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -timeout 0 "${parallel[@]}" >"$log" 2>&1
		local rc=$? last execs newc result=ok
		last=$(grep -E '^fuzz: elapsed' "$log" | tail -1)
		execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
		newc=$(sed -nE 's/.*total: ([0-9]+)\).*/\1/p' <<<"$last")
		if [ $rc -ne 0 ]; then
			result=FAILED
			grep -E 'Failing input written to|--- FAIL|panic' "$log" | head -5 >&2
		fi
		printf '%-32s %-32s %14s %8s %s\n' "${pkg#github.com/pgpseudo/pgpseudo/}" "$target" "${execs:-?}" "${newc:-?}" "$result" >"$work/$i.row"
	done
}
for ((n = 0; n < FUZZ_JOBS; n++)); do lane $n & done
wait

{
	echo "# make fuzz-long: FUZZTIME=$FUZZTIME per target, FUZZ_JOBS=$FUZZ_JOBS, $(date -u +%Y-%m-%d), $(nproc) cores"
	printf '%-32s %-32s %14s %8s %s\n' package target executions corpus result
	for ((i = 0; i < ${#targets[@]}; i++)); do cat "$work/$i.row"; done
} | tee "$out"
! grep -q FAILED "$out"
