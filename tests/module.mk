# tests/: one Check binary per area (tests/<area>/run.c lists its suites). Each area
# adds itself in tests/<area>/module.mk; `make tests` builds them all.
TEST_SUPPORT_SRCS := tests/support/runner.c
CFLAGS += $(CHECK_CFLAGS)

TEST_COMMON_SRCS := $(wildcard tests/common/*.c)
$(BIN)/test-common: $(call objs,$(TEST_COMMON_SRCS) $(TEST_SUPPORT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-common

-include tests/backend-api/module.mk
-include tests/ws-gateway/module.mk

.PHONY: tests
tests: $(TEST_BINS)
