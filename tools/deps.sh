#!/usr/bin/env bash
# Installs the Debian packages of packages/*.txt that are missing (idempotent: does
# nothing when everything is present), the npm packages of the test suites, and
# Apache Kafka (tools/kafka/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/lib.sh

# packages/runtime.txt is what the images (Debian 12) install beside the binaries: their
# shared libraries at Debian 12's sonames (libjwt0, ...). Here the -dev packages of
# build.txt bring this release's own (libjwt2 on Debian 13, where libjwt0 does not
# exist), so only runtime.txt's entries that are not libraries are wanted.
want=$(cat packages/build.txt packages/dev.txt | sed 's/#.*//' | awk 'NF')
want+=" $(sed 's/#.*//' packages/runtime.txt | awk 'NF && !/^lib/')"
missing=()
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] || apt_install deps "${missing[@]}"

# Node.js runs the browser and deployment checks. These machines ship Node.js 20
# (playwright-core 1.65 needs 20 or newer); where node is missing, Debian's is
# installed (bookworm's is 18: the browser tests then say so and fail clearly).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	apt_install deps nodejs npm
fi

# npm packages of the test suites that have a package.json (playwright-core for the
# browser tests drives Debian's chromium and downloads no browser).
for pj in tests/*/package.json; do
	[ -f "$pj" ] || continue
	d=$(dirname "$pj")
	if [ ! -d "$d/node_modules" ] || [ "$pj" -nt "$d/node_modules" ]; then
		echo "deps: npm install in $d"
		(cd "$d" && npm install --no-audit --no-fund --loglevel=error) && touch "$d/node_modules"
	fi
done
# Apache Kafka (a JRE and Maven from Debian, the broker and its tools from Maven
# Central: tools/kafka/install.sh), unless KAFKA=devbroker asks for none.
if [ "${KAFKA:-kafka}" != devbroker ]; then
	tools/kafka/install.sh
fi
exit 0
