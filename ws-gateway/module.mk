# ws-gateway: the read side (civetweb WebSockets fed by a Kafka consumer).
GW_SRCS := ws-gateway/src/config.c ws-gateway/src/stats.c ws-gateway/src/conn.c \
           ws-gateway/src/writer.c ws-gateway/src/registry.c ws-gateway/src/fanout.c \
           ws-gateway/src/kafka_dl.c ws-gateway/src/consumer.c ws-gateway/src/ws_server.c \
           ws-gateway/src/ws_guard.c ws-gateway/src/tickets.c ws-gateway/src/client_msg.c \
           ws-gateway/src/wsmsg.c ws-gateway/src/presence.c ws-gateway/src/presence_bus.c
GW_LIB := $(BUILD)/lib/libws-gateway.a

$(GW_LIB): $(call objs,$(GW_SRCS))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# --as-needed: librdkafka must not be a DT_NEEDED of the gateway (its TLS would be
# set up in each of civetweb's thousands of threads; see kafka_dl.h). The check
# fails the build if something links it in again.
$(BIN)/ws-gateway: LDFLAGS += -Wl,--as-needed
$(BIN)/ws-gateway: $(call objs,ws-gateway/src/main.c) $(GW_LIB) $(COMMON_LIB)
	$(call link)
	@if readelf -d $@ | grep -q 'NEEDED.*librdkafka'; then \
		echo "$@: links librdkafka (use kafka_dl.h)" >&2; rm -f $@; exit 1; fi
BINS += $(BIN)/ws-gateway
