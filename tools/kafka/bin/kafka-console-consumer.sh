#!/usr/bin/env bash
# kafka-console-consumer.sh --bootstrap-server HOST:PORT --topic T [--from-beginning ...]
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512M}
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
