# tests/chaos: the chaos run (docs/chaos.md), one Check program, `chaos` (not
# test-*: tests/chaos/suite.sh runs it with its own PostgreSQL, short in `make test`,
# long in `make chaos`). Like tests/system it speaks HTTP, WebSocket and Kafka to the
# service binaries only and links no service code.
TEST_CHAOS_SRCS := tests/chaos/chaos.c tests/chaos/model.c tests/system/cluster.c \
                   tests/ws-gateway/ws_client.c
$(BIN)/chaos: $(call objs,$(TEST_CHAOS_SRCS) $(TEST_SUPPORT_SRCS) $(TEST_KIT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/chaos

# make chaos: the long run (at least 30 minutes and at least 100 faults, docs/chaos.md)
# against the sanitizer build, niced: the settings are CHAOS_* variables (see
# tests/chaos/suite.sh); `make chaos CHAOS_SECONDS=600` shortens it.
CHAOS_SECONDS ?= 1800
CHAOS_FAULTS ?= 1000
CHAOS_MIN_FAULTS ?= 100
CHAOS_USERS ?= 20
.PHONY: chaos
chaos:
	$(MAKE) -j2 SAN=1 all tests
	CHAOS_SECONDS=$(CHAOS_SECONDS) CHAOS_FAULTS=$(CHAOS_FAULTS) CHAOS_MIN_FAULTS=$(CHAOS_MIN_FAULTS) \
	  CHAOS_USERS=$(CHAOS_USERS) \
	  nice -n 5 tests/chaos/suite.sh
