# tests/: one Check binary per area (tests/<area>/run.c lists its suites). Each area
# adds itself in tests/<area>/module.mk; `make tests` builds them all.
TEST_SUPPORT_SRCS := tests/support/runner.c
# The integration kit the service tests share: child processes, an HTTP client,
# Kafka reader/producer, the harness's Kafka cluster (topics, crashes, restarts), throw-away databases, tokens and names.
TEST_KIT_SRCS := tests/support/proc.c tests/support/http_client.c tests/support/kafka_io.c \
                 tests/support/broker.c \
                 tests/support/pgtest.c tests/support/fixtures.c
CFLAGS += $(CHECK_CFLAGS)

TEST_COMMON_SRCS := $(wildcard tests/common/*.c)
$(BIN)/test-common: $(call objs,$(TEST_COMMON_SRCS) $(TEST_SUPPORT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-common

-include tests/backend-api/module.mk
-include tests/ws-gateway/module.mk
-include tests/system/module.mk
-include tests/fuzz/module.mk
-include tests/chaos/module.mk
-include tests/presence/module.mk

.PHONY: tests
tests: $(TEST_BINS)
