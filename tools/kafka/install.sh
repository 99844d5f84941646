#!/usr/bin/env bash
# Lays out KAFKA_HOME (this folder): bin/ and config/ are in the repository, libs/
# (ignored) is the runtime classpath of pom.xml, copied from Maven Central once by
# `mvn dependency:copy-dependencies` and reused until pom.xml changes. Installs a
# JRE and Maven from Debian where missing. Prints nothing when all is in place.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
libs=$here/libs
stamp=$libs/.pom.sha256
want=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi
need=()
command -v java >/dev/null || need+=(default-jre-headless)
command -v mvn >/dev/null || need+=(maven)
[ ${#need[@]} -eq 0 ] || apt_install kafka "${need[@]}"
jv=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
if [ "${jv%%.*}" -lt 17 ] 2>/dev/null; then
	echo "kafka: Java $jv found; Apache Kafka 4 needs 17 or newer" >&2
	exit 1
fi
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
echo "kafka: fetching Apache Kafka $version (broker and tools) into $libs"
rm -rf "$libs.tmp"
mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
	-DoutputDirectory="$libs.tmp" || { echo "kafka: mvn failed" >&2; exit 1; }
rm -rf "$libs"
mv "$libs.tmp" "$libs"
echo "$want" >"$stamp"
