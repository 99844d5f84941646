# tests/ws-gateway: test-gateway, unit tests of the gateway's modules and integration
# tests that run the real $(TASKSYNC_BIN)/ws-gateway against Apache Kafka.
TEST_GW_SRCS := tests/ws-gateway/run.c tests/ws-gateway/test_conn.c \
                tests/ws-gateway/test_registry.c tests/ws-gateway/test_gateway.c \
                tests/ws-gateway/ws_client.c tests/ws-gateway/harness.c \
                tests/ws-gateway/test_inbound.c tests/ws-gateway/test_ready.c \
                tests/ws-gateway/test_budget.c tests/ws-gateway/test_tickets.c \
                tests/ws-gateway/test_wsmsg.c tests/ws-gateway/test_writer.c
$(BIN)/test-gateway: $(call objs,$(TEST_GW_SRCS) $(TEST_SUPPORT_SRCS) $(TEST_KIT_SRCS)) $(GW_LIB) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-gateway
