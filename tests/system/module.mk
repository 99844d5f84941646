# tests/system: test-system, the whole system under faults: its own 3-node Kafka
# cluster (tools/kafka/cluster.sh), the real backend-api and two ws-gateways
# ($(TASKSYNC_BIN)), WebSocket clients and the client's catch-up. It speaks HTTP,
# WebSocket and Kafka to the binaries only and links no service code.
TEST_SYS_SRCS := tests/system/run.c tests/system/cluster.c tests/system/test_failover.c \
                 tests/ws-gateway/ws_client.c
$(BIN)/test-system: $(call objs,$(TEST_SYS_SRCS) $(TEST_SUPPORT_SRCS) $(TEST_KIT_SRCS)) $(COMMON_LIB)
	$(call link,$(CHECK_LIBS))
TEST_BINS += $(BIN)/test-system

# make failover-long: the failover test at ten times the default size (50,000
# writes), alone, against the sanitizer build (it was `make chaos` before the chaos
# run of tests/chaos took that name).
.PHONY: failover-long
failover-long:
	$(MAKE) -j2 SAN=1 all tests
	$(MAKE) -j2 all
	SYSTEM_WRITES=50000 ONLY=test-system tests/support/run-tests.sh build/asan build
