# tests/fuzz: libFuzzer harnesses, one per input parser (docs/fuzzing.md).
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_JOBS=1] [FUZZERS="fuzz_event ..."]
#       runs each harness for FUZZ_SECONDS over a working copy of its corpus and
#       prints execs, execs/s, coverage and crashes per harness
#   make fuzz-build        builds the harnesses (clang, ASan+UBSan+libFuzzer)
#   make fuzz-merge        adds the grown corpora's new coverage to tests/fuzz/corpus/
#
# The harnesses are built with clang (libFuzzer is clang's), whatever CC is: the
# sources they need are compiled again into build/fuzz/ with -fsanitize=fuzzer-no-link
# so the parsers are coverage-instrumented. clang is `clang` or the newest `clang-NN`;
# packages/dev.txt lists clang and libclang-rt-dev (libFuzzer's runtime), and
# tests/fuzz/build.sh installs them when they are missing.

FUZZ_CC ?= $(shell command -v clang 2>/dev/null || ls /usr/bin/clang-[0-9]* 2>/dev/null | sort -t- -k2 -n | tail -n 1)
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wvla \
               -g -O1 -fno-omit-frame-pointer -pthread -MMD -MP $(FUZZ_SAN) \
               -Icommon/include -Ibackend-api/src -Iws-gateway/src $(PKG_CFLAGS)
FUZZ_LIBS := $(PKG_LIBS) -lcrypto -lm

# harness -> the project sources it links (besides common/)
FUZZERS_ALL := fuzz_event fuzz_task_body fuzz_request fuzz_auth fuzz_ws_message \
               fuzz_ws_frame fuzz_wal fuzz_wsmsg
FUZZ_SRCS_fuzz_event :=
FUZZ_SRCS_fuzz_task_body := backend-api/src/reqparse.c
FUZZ_SRCS_fuzz_request := backend-api/src/reqparse.c
FUZZ_SRCS_fuzz_auth :=
FUZZ_SRCS_fuzz_ws_message := ws-gateway/src/client_msg.c
FUZZ_SRCS_fuzz_ws_frame := ws-gateway/src/ws_guard.c
FUZZ_SRCS_fuzz_wal := backend-api/src/wal.c
FUZZ_SRCS_fuzz_wsmsg := ws-gateway/src/wsmsg.c ws-gateway/src/conn.c ws-gateway/src/writer.c ws-gateway/src/stats.c

fuzz_objs = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(1))
FUZZ_COMMON_LIB := $(FUZZ_DIR)/lib/libtasksync-common.a
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/bin/,$(FUZZERS_ALL))

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_COMMON_LIB): $(call fuzz_objs,$(COMMON_SRCS))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

.PRECIOUS: $(FUZZ_DIR)/obj/%.o
.SECONDEXPANSION:
$(FUZZ_DIR)/bin/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $$(call fuzz_objs,$$(FUZZ_SRCS_$$*)) $(FUZZ_COMMON_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -pthread $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

.PHONY: fuzz fuzz-build fuzz-bins fuzz-merge
# fuzz-bins: the binaries (clang present); fuzz-build: clang first, then them.
fuzz-bins: $(FUZZ_BINS)
fuzz-build:
	@tests/fuzz/build.sh

FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZERS ?= $(FUZZERS_ALL)
fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) tests/fuzz/run.sh $(FUZZERS)

fuzz-merge: fuzz-build
	@tests/fuzz/run.sh --merge $(FUZZERS)

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
