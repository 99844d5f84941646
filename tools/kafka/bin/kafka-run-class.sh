#!/usr/bin/env bash
# Runs a Java main class on the classpath of KAFKA_HOME/libs, as Kafka's own
# bin/kafka-run-class.sh does (the part of it a KRaft broker and the command-line
# tools need). KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS, KAFKA_LOG4J_OPTS and
# KAFKA_OPTS are honoured as there.
set -eu
base=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! compgen -G "$base/libs/kafka_2.13-*.jar" >/dev/null; then
	echo "kafka-run-class.sh: no Kafka in $base/libs (run: make deps)" >&2
	exit 1
fi
java=java
[ -n "${JAVA_HOME:-}" ] && java=$JAVA_HOME/bin/java
: "${KAFKA_HEAP_OPTS:=-Xmx256M}"
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
: "${KAFKA_LOG4J_OPTS:=-Dlog4j2.configurationFile=$base/config/tools-log4j2.properties}"
# shellcheck disable=SC2086 # the option variables are word lists, as in Kafka's script
exec "$java" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_LOG4J_OPTS ${KAFKA_OPTS:-} \
	-cp "$base/libs/*" "$@"
