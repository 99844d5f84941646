# ws-gateway: the read side (civetweb WebSockets fed by a Kafka consumer).
GW_SRCS := ws-gateway/src/config.c ws-gateway/src/stats.c ws-gateway/src/conn.c \
           ws-gateway/src/writer.c ws-gateway/src/registry.c ws-gateway/src/fanout.c \
           ws-gateway/src/consumer.c ws-gateway/src/ws_server.c
GW_LIB := $(BUILD)/lib/libws-gateway.a

$(GW_LIB): $(call objs,$(GW_SRCS))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BIN)/ws-gateway: $(call objs,ws-gateway/src/main.c) $(GW_LIB) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/ws-gateway
