#!/usr/bin/env bash
# kafka-console-producer.sh --bootstrap-server HOST:PORT --topic T [--property parse.key=true ...]
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512M}
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
