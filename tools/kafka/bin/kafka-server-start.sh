#!/usr/bin/env bash
# kafka-server-start.sh server.properties [--override k=v ...]: a KRaft broker
# and/or controller in the foreground, logging to stdout (config/log4j2.properties).
base=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ $# -lt 1 ]; then
	echo "usage: $0 server.properties [--override property=value]*" >&2
	exit 1
fi
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512M -Xms512M}
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base/config/log4j2.properties}
exec "$base/bin/kafka-run-class.sh" kafka.Kafka "$@"
