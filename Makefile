# tasksync: one non-recursive Makefile. Each area adds its sources and targets in
# its own module.mk (common/, tools/, backend-api/, ws-gateway/, bench/, tests/).
#
#   make            build everything into build/ (-O2 -g, warnings are errors)
#   make asan       the same with AddressSanitizer + UBSan into build/asan/
#   make test       install what is missing, build with sanitizers, run every suite
#   make run        the whole stack on this machine (PostgreSQL, Apache Kafka, both services; KAFKA=devbroker: the mock)
#   make deps       install the Debian packages (idempotent)
#   make fmt | lint | bench | token USER=alice | clean

SHELL := /bin/bash
.DEFAULT_GOAL := all
.SUFFIXES:

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/asan
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD ?= build
OPT := -O2 -g
endif

CC ?= cc
# civetweb ships no pkg-config file in Debian; it is linked by name.
PKGS := jansson libjwt rdkafka libpq uuid
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcivetweb
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wvla \
          $(OPT) -pthread -MMD -MP -Icommon/include $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(OPT) -pthread $(EXTRA_LDFLAGS)
LDLIBS := $(PKG_LIBS) -lm

OBJ := $(BUILD)/obj
BIN := $(BUILD)/bin
objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

BINS :=
TEST_BINS :=

$(OBJ)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# link: $(call link) as the recipe of a binary whose prerequisites are objects and archives
define link
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS) $(1)
endef

include common/module.mk
include tools/module.mk
-include backend-api/module.mk
-include ws-gateway/module.mk
-include bench/module.mk
-include deploy.mk
include tests/module.mk

.PHONY: all asan deps test test-unit run token fmt lint bench clean deploy-check

all: $(BINS)

asan:
	$(MAKE) SAN=1 all

deps:
	@tools/deps.sh

# The README's test command. Installs what it needs, builds with ASan+UBSan and runs
# every suite against a throw-away PostgreSQL and a one-node Apache Kafka it starts itself.
test: deps
	$(MAKE) -j2 SAN=1 all tests
	$(MAKE) -j2 all
	tests/support/run-tests.sh build/asan build

run: deps
	$(MAKE) -j2 all
	tools/run-stack.sh

# Prints a token for USER, signed with the running stack's secret (.run/stack.env).
token: $(BIN)/tasksync-token
	@set -a; [ -f .run/stack.env ] && . .run/stack.env; set +a; $(BIN)/tasksync-token $(USER)

FMT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
fmt:
	clang-format -i $(FMT_SRCS)

lint:
	clang-format --dry-run --Werror $(FMT_SRCS)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem -Icommon/include $(FMT_SRCS)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
