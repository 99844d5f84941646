# tests/presence: test-presence, unit tests of ws-gateway/src/presence.c (the merged
# presence view of shared lists, issue 13); links that one module, no service.
$(BIN)/test-presence: $(call objs,tests/presence/test_presence.c ws-gateway/src/presence.c $(TEST_SUPPORT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-presence
