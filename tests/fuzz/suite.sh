#!/usr/bin/env bash
# The fuzz regressions in `make test`: every harness runs for FUZZ_SUITE_SECONDS
# (default 5) over its committed corpus (tests/fuzz/corpus/HARNESS) and the
# inputs that once crashed it (tests/fuzz/regress/HARNESS), each input executed
# first, then fuzzing on from there. One test per harness; any crash, leak,
# sanitizer report or timeout fails it. Builds the harnesses first (installing
# clang when missing); writes nothing into the source tree.
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! tests/fuzz/build.sh >/tmp/fuzz-build.$$.log 2>&1; then
	tail -n 30 /tmp/fuzz-build.$$.log
	rm -f /tmp/fuzz-build.$$.log
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi
rm -f /tmp/fuzz-build.$$.log

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1:quarantine_size_mb=64
export LSAN_OPTIONS=suppressions=$PWD/tests/support/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
secs=${FUZZ_SUITE_SECONDS:-5}
work=$(mktemp -d /tmp/tasksync-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
for bin in build/fuzz/bin/fuzz_*; do
	h=$(basename "$bin")
	dirs=("$work/$h")
	mkdir -p "$work/$h" "$work/$h.art"
	[ -d "tests/fuzz/corpus/$h" ] && dirs+=("tests/fuzz/corpus/$h")
	[ -d "tests/fuzz/regress/$h" ] && dirs+=("tests/fuzz/regress/$h")
	opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$work/$h.art/")
	[ -f "tests/fuzz/$h.dict" ] && opts+=("-dict=tests/fuzz/$h.dict")
	inputs=$(find "${dirs[@]:1}" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
	if "$bin" "${opts[@]}" "${dirs[@]}" >"$work/$h.log" 2>&1; then
		execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$work/$h.log")
		cov=$(grep -oE ' cov: [0-9]+' "$work/$h.log" | tail -n 1 | awk '{print $2}')
		echo "ok   $h: ${execs:-?} execs in $secs s, cov ${cov:-?}, corpus $(find "${dirs[@]:1}" -type f | wc -l) inputs ($inputs bytes)"
		pass=$((pass + 1))
	else
		echo "FAIL $h: crashed (input kept as $(ls "$work/$h.art" | head -n 1))"
		grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$work/$h.log" | head -n 20
		fail=$((fail + 1))
	fi
done
[ $((pass + fail)) -gt 0 ] || fail=1
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
