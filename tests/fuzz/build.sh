#!/usr/bin/env bash
# Builds the libFuzzer harnesses into build/fuzz/bin, installing clang and its
# runtime libraries first when they are missing (a fresh machine: the same
# packages `make deps` installs from packages/dev.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tools/lib.sh

find_clang() {
	command -v clang 2>/dev/null || ls /usr/bin/clang-[0-9]* 2>/dev/null | sort -t- -k2 -n | tail -n 1
}
# libFuzzer ships in libclang-rt-NN-dev: a clang without it cannot link -fsanitize=fuzzer.
have_fuzzer() {
	local cc=$1
	[ -n "$cc" ] || return 1
	echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' |
		"$cc" -x c -fsanitize=fuzzer -o /dev/null - >/dev/null 2>&1
}
cc=$(find_clang)
if ! have_fuzzer "$cc"; then
	apt_install fuzz clang libclang-rt-dev
	cc=$(find_clang)
	have_fuzzer "$cc" || { echo "fuzz: $cc cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi
exec make --no-print-directory -j"${FUZZ_MAKE_JOBS:-2}" fuzz-bins FUZZ_CC="$cc"
