# bench/: load generators and the benchmark driver (bench/run.sh, `make bench`).
# They are programs that print figures, never timed tests; `make` builds them so
# they stay warning-free.
BENCH_HIST_SRCS := bench/bench_hist.c

$(BIN)/ws-load: $(call objs,bench/ws_load.c $(BENCH_HIST_SRCS)) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/ws-load
$(BIN)/kafka-load: $(call objs,bench/kafka_load.c) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/kafka-load
$(BIN)/api-load: $(call objs,bench/api_load.c $(BENCH_HIST_SRCS)) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/api-load
# CPU cost of each step of the gateway's event path (links the gateway's library).
$(BIN)/gw-costs: $(call objs,bench/gw_costs.c) $(GW_LIB) $(COMMON_LIB)
	$(call link)
BINS += $(BIN)/gw-costs

# The top Makefile declares `bench` without a recipe; this is it.
bench: all
	bench/run.sh $(BIN)
