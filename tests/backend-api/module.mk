# tests/backend-api: test-backend, integration tests that run the real
# $(TASKSYNC_BIN)/backend-api (the sanitizer build) against the harness's
# PostgreSQL and Apache Kafka. It speaks HTTP, SQL and Kafka to the binary only, so it
# links no backend-api code and builds before backend-api/ exists.
TEST_BA_SRCS := tests/backend-api/run.c tests/backend-api/harness.c \
                tests/backend-api/test_tasks.c tests/backend-api/test_outbox.c \
                tests/backend-api/test_server.c tests/backend-api/test_migrate.c \
                tests/backend-api/test_config.c tests/backend-api/test_mutations.c
$(BIN)/test-backend: $(call objs,$(TEST_BA_SRCS) $(TEST_SUPPORT_SRCS) $(TEST_KIT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-backend

# test-backend-units: unit tests of backend-api's modules (no database or broker):
# the events the store builds parse with common/event.h, the task JSON contract,
# the embedded migrations.
$(BIN)/test-backend-units: $(call objs,tests/backend-api/test_units.c $(TEST_SUPPORT_SRCS)) \
                           $(BA_LIB) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-backend-units

# test-lists: shared lists (issue 13) against the real backend-api, PostgreSQL and
# Apache Kafka: roles, one event per member, revocation under concurrent writes.
TEST_LISTS_SRCS := tests/backend-api/test_lists.c tests/backend-api/harness.c
$(BIN)/test-lists: $(call objs,$(TEST_LISTS_SRCS) $(TEST_SUPPORT_SRCS) $(TEST_KIT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-lists
