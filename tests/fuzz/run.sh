#!/usr/bin/env bash
# Runs libFuzzer harnesses (make fuzz) and prints per harness: seconds, execs,
# execs/s, coverage (cov = edges, ft = features, from libFuzzer's final status
# line) and crashes found.
#
#   tests/fuzz/run.sh HARNESS...            FUZZ_SECONDS each (default 60),
#                                           FUZZ_JOBS at once (default 1)
#   tests/fuzz/run.sh --merge HARNESS...    add what the grown corpus covers anew to
#                                           tests/fuzz/corpus/HARNESS (-merge=1)
#   tests/fuzz/run.sh --totals              every run so far, added up per harness
#
# Each run grows build/fuzz/corpus/HARNESS (seeded from tests/fuzz/corpus/HARNESS);
# a crash, leak, timeout or out-of-memory input lands in build/fuzz/artifacts/HARNESS/
# (minimise it with `build/fuzz/bin/HARNESS -minimize_crash=1 -runs=100000 FILE`,
# then commit it to tests/fuzz/regress/HARNESS/). Every run appends a line to
# build/fuzz/runs.tsv, whose totals are the "across runs" figures.
set -uo pipefail
cd "$(dirname "$0")/../.."

FZ=build/fuzz
export ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1:quarantine_size_mb=64}
export LSAN_OPTIONS=suppressions=$PWD/tests/support/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# flags HARNESS: the libFuzzer options every run of HARNESS takes.
flags() {
	local h=$1
	local f=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
	[ -f "tests/fuzz/$h.dict" ] && f+=("-dict=tests/fuzz/$h.dict")
	echo "${f[@]}"
}

# one HARNESS: one timed run; writes $FZ/logs/HARNESS.log and a result line.
one() {
	local h=$1 secs=${FUZZ_SECONDS:-60}
	local bin=$FZ/bin/$h work=$FZ/corpus/$h art=$FZ/artifacts/$h log=$FZ/logs/$h.log
	mkdir -p "$work" "$art" "$FZ/logs"
	local before
	before=$(find "$art" -type f | wc -l)
	local dirs=("$work" "tests/fuzz/corpus/$h")
	[ -d "tests/fuzz/regress/$h" ] && dirs+=("tests/fuzz/regress/$h")
	# shellcheck disable=SC2046
	"$bin" $(flags "$h") -max_total_time="$secs" -artifact_prefix="$art/" "${dirs[@]}" >"$log" 2>&1
	local rc=$?
	local execs eps cov ft crashes
	execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
	eps=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$log" | tail -n 1)
	cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
	ft=$(grep -oE ' ft: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
	crashes=$(($(find "$art" -type f | wc -l) - before))
	[ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$h" "$secs" \
		"${execs:-0}" "${eps:-0}" "${cov:-0}" "${ft:-0}" "$crashes" "$rc" >>"$FZ/runs.tsv"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$h" "$secs" "${execs:-0}" "${eps:-0}" "${cov:-0}" \
		"${ft:-0}" "$crashes" >"$FZ/logs/$h.result"
	return 0
}

# merge HARNESS: adds to tests/fuzz/corpus/HARNESS the grown corpus's inputs that
# reach coverage the committed ones do not (-merge=1 keeps every file already in the
# first directory: the hand-made seeds stay).
merge() {
	local h=$1 before
	[ -d "$FZ/corpus/$h" ] || { echo "$h: nothing grown (run make fuzz first)"; return 0; }
	before=$(find "tests/fuzz/corpus/$h" -type f | wc -l)
	# shellcheck disable=SC2046
	if "$FZ/bin/$h" $(flags "$h") -merge=1 "tests/fuzz/corpus/$h" "$FZ/corpus/$h" \
		>"$FZ/logs/$h.merge.log" 2>&1; then
		echo "$h: $before + $(($(find "tests/fuzz/corpus/$h" -type f | wc -l) - before)) files," \
			"$(find "tests/fuzz/corpus/$h" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}') bytes"
	else
		echo "$h: merge failed (see $FZ/logs/$h.merge.log)"
	fi
}

# totals: the runs of build/fuzz/runs.tsv added up per harness (the figures across runs).
totals() {
	[ -f "$FZ/runs.tsv" ] || { echo "fuzz: no runs yet ($FZ/runs.tsv)"; return 0; }
	printf '%-16s %5s %8s %12s %9s %6s %7s %8s\n' harness runs seconds execs execs/s cov ft crashes
	awk -F'\t' '{ n[$2]++; s[$2] += $3; e[$2] += $4; c[$2] += $8;
		if ($6 > cov[$2]) cov[$2] = $6; if ($7 > ft[$2]) ft[$2] = $7 }
		END { for (h in n) printf "%-16s %5d %8d %12d %9d %6d %7d %8d\n", h, n[h], s[h], e[h],
				s[h] ? e[h] / s[h] : 0, cov[h], ft[h], c[h] }' "$FZ/runs.tsv" | sort
}

case "${1:-}" in
--totals)
	totals
	exit 0
	;;
--one)
	one "$2"
	exit 0
	;;
--merge)
	shift
	mkdir -p "$FZ/logs"
	for h in "$@"; do merge "$h"; done
	exit 0
	;;
esac

[ $# -gt 0 ] || { echo "usage: $0 [--merge] HARNESS..." >&2; exit 2; }
for h in "$@"; do
	[ -x "$FZ/bin/$h" ] || { echo "fuzz: no $FZ/bin/$h (make fuzz-build)" >&2; exit 2; }
	rm -f "$FZ/logs/$h.result"
done
echo "fuzz: $# harnesses, ${FUZZ_SECONDS:-60} s each, ${FUZZ_JOBS:-1} at a time; logs in $FZ/logs/"
printf '%s\n' "$@" | xargs -P "${FUZZ_JOBS:-1}" -I{} "$0" --one {}
printf '%-16s %7s %12s %9s %6s %7s %8s\n' harness seconds execs execs/s cov ft crashes
bad=0
for h in "$@"; do
	if [ -f "$FZ/logs/$h.result" ]; then
		IFS=$'\t' read -r _ secs execs eps cov ft crashes <"$FZ/logs/$h.result"
	else
		secs=0 execs=0 eps=0 cov=0 ft=0 crashes=1
	fi
	printf '%-16s %7s %12s %9s %6s %7s %8s\n' "$h" "$secs" "$execs" "$eps" "$cov" "$ft" "$crashes"
	[ "$crashes" -eq 0 ] || bad=1
done
[ "$bad" -eq 0 ] || echo "fuzz: crashes found: see $FZ/artifacts/ and $FZ/logs/"
exit "$bad"
