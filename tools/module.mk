# tools/: the development broker and the token tool.
$(BIN)/devbroker: $(call objs,tools/devbroker.c) $(COMMON_LIB)
	$(call link)
$(BIN)/tasksync-token: $(call objs,tools/token.c) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/devbroker $(BIN)/tasksync-token
