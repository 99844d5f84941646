# common/: the one small library both services link (config, logging, auth, JSON
# events, HTTP replies, metrics, helpers).
COMMON_SRCS := common/src/util.c common/src/log.c common/src/config.c common/src/auth.c \
               common/src/event.c common/src/http.c common/src/metrics.c \
               common/src/json.c common/src/rfc3339.c \
               common/src/poskey.c common/src/ratelimit.c
COMMON_LIB := $(BUILD)/lib/libtasksync-common.a

$(COMMON_LIB): $(call objs,$(COMMON_SRCS))
	@mkdir -p $(@D)
	$(AR) rcs $@ $^
