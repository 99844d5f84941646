# tests/presence: test-presence, unit tests of ws-gateway/src/presence.c (the merged
# presence view of shared lists, issue 13); links that one module, no service.
$(BIN)/test-presence: $(call objs,tests/presence/test_presence.c ws-gateway/src/presence.c $(TEST_SUPPORT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-presence

# test-presence-bus: presence end to end (ws-gateway/src/presence_bus.c): real
# ws-gateway processes, two or three at once, on Apache Kafka (integration).
TEST_PRESENCE_BUS_SRCS := tests/presence/test_presence_bus.c tests/ws-gateway/harness.c \
                          tests/ws-gateway/ws_client.c
$(BIN)/test-presence-bus: $(call objs,$(TEST_PRESENCE_BUS_SRCS) $(TEST_SUPPORT_SRCS) $(TEST_KIT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-presence-bus
