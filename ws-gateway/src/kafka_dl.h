/* kafka_dl: librdkafka, loaded with dlopen() at start-up instead of linked.
 *
 * Why: librdkafka has about 15 KiB of thread-local storage. A library the
 * executable is linked against gets static TLS, which glibc sets up (and zeroes,
 * touching the pages) in EVERY thread, and civetweb runs one thread per WebSocket:
 * 19,500 threads carried about 15 KiB each of librdkafka TLS they never use (RSS
 * per idle connection 61 KiB instead of the 48 KiB budget). A dlopen()ed library's
 * TLS is allocated per thread on first use, so only librdkafka's own threads and
 * the consumer thread pay for it.
 *
 * Usage: include this header instead of <librdkafka/rdkafka.h>, call kafka_dl_load()
 * once before any rd_kafka_* call; the rd_kafka_* names below then go through the
 * loaded table. Functions not listed must not be used (the link would fail with
 * --as-needed dropping librdkafka, or pull it back in and its TLS with it). */
#ifndef GW_KAFKA_DL_H
#define GW_KAFKA_DL_H

#include "common/util.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#define KAFKA_DL_FUNCS(X)                                                                          \
	X(rd_kafka_conf_new)                                                                       \
	X(rd_kafka_conf_set)                                                                       \
	X(rd_kafka_conf_destroy)                                                                   \
	X(rd_kafka_conf_set_log_cb)                                                                \
	X(rd_kafka_new)                                                                            \
	X(rd_kafka_destroy)                                                                        \
	X(rd_kafka_poll_set_consumer)                                                              \
	X(rd_kafka_consumer_close)                                                                 \
	X(rd_kafka_consumer_poll)                                                                  \
	X(rd_kafka_poll)                                                                           \
	X(rd_kafka_message_destroy)                                                                \
	X(rd_kafka_err2str)                                                                        \
	X(rd_kafka_error_destroy)                                                                  \
	X(rd_kafka_error_string)                                                                   \
	X(rd_kafka_get_watermark_offsets)                                                          \
	X(rd_kafka_query_watermark_offsets)                                                        \
	X(rd_kafka_incremental_assign)                                                             \
	X(rd_kafka_metadata)                                                                       \
	X(rd_kafka_metadata_destroy)                                                               \
	X(rd_kafka_topic_new)                                                                      \
	X(rd_kafka_topic_destroy)                                                                  \
	X(rd_kafka_topic_partition_list_new)                                                       \
	X(rd_kafka_topic_partition_list_add)                                                       \
	X(rd_kafka_topic_partition_list_destroy)                                                   \
	X(rd_kafka_conf_set_stats_cb)                                                              \
	X(rd_kafka_conf_set_error_cb)                                                              \
	X(rd_kafka_conf_set_opaque)                                                                \
	X(rd_kafka_offsets_for_times)                                                              \
	X(rd_kafka_incremental_unassign)                                                           \
	X(rd_kafka_message_timestamp)                                                              \
	X(rd_kafka_produce)                                                                        \
	X(rd_kafka_flush)                                                                          \
	X(rd_kafka_last_error)                                                                     \
	X(rd_kafka_conf_set_dr_msg_cb)

#define KAFKA_DL_MEMBER(f) __typeof__(f) *f;
typedef struct kafka_dl {
	KAFKA_DL_FUNCS(KAFKA_DL_MEMBER)
} kafka_dl;
#undef KAFKA_DL_MEMBER

/* The table; filled by kafka_dl_load(), read-only afterwards. */
extern kafka_dl kafka_api;

/* Loads librdkafka.so.1 and resolves every function (idempotent, thread-safe).
 * 0, or -1 with the reason in err. */
MUST_CHECK int kafka_dl_load(char *err, size_t errlen);

/* Every call of a listed function below this point goes through the table
 * (function-like macros: "struct rd_kafka_metadata" keeps its meaning; a macro is
 * not expanded again inside its own expansion, so kafka_api.f names the member).
 * kafka_dl.c itself defines KAFKA_DL_NO_RENAME. */
#ifndef KAFKA_DL_NO_RENAME
#define rd_kafka_conf_new(...)              kafka_api.rd_kafka_conf_new(__VA_ARGS__)
#define rd_kafka_conf_set(...)              kafka_api.rd_kafka_conf_set(__VA_ARGS__)
#define rd_kafka_conf_destroy(...)          kafka_api.rd_kafka_conf_destroy(__VA_ARGS__)
#define rd_kafka_conf_set_log_cb(...)       kafka_api.rd_kafka_conf_set_log_cb(__VA_ARGS__)
#define rd_kafka_new(...)                   kafka_api.rd_kafka_new(__VA_ARGS__)
#define rd_kafka_destroy(...)               kafka_api.rd_kafka_destroy(__VA_ARGS__)
#define rd_kafka_poll_set_consumer(...)     kafka_api.rd_kafka_poll_set_consumer(__VA_ARGS__)
#define rd_kafka_consumer_close(...)        kafka_api.rd_kafka_consumer_close(__VA_ARGS__)
#define rd_kafka_consumer_poll(...)         kafka_api.rd_kafka_consumer_poll(__VA_ARGS__)
#define rd_kafka_poll(...)                  kafka_api.rd_kafka_poll(__VA_ARGS__)
#define rd_kafka_message_destroy(...)       kafka_api.rd_kafka_message_destroy(__VA_ARGS__)
#define rd_kafka_err2str(...)               kafka_api.rd_kafka_err2str(__VA_ARGS__)
#define rd_kafka_error_destroy(...)         kafka_api.rd_kafka_error_destroy(__VA_ARGS__)
#define rd_kafka_error_string(...)          kafka_api.rd_kafka_error_string(__VA_ARGS__)
#define rd_kafka_get_watermark_offsets(...) kafka_api.rd_kafka_get_watermark_offsets(__VA_ARGS__)
#define rd_kafka_query_watermark_offsets(...)                                                      \
	kafka_api.rd_kafka_query_watermark_offsets(__VA_ARGS__)
#define rd_kafka_incremental_assign(...) kafka_api.rd_kafka_incremental_assign(__VA_ARGS__)
#define rd_kafka_metadata(...)           kafka_api.rd_kafka_metadata(__VA_ARGS__)
#define rd_kafka_metadata_destroy(...)   kafka_api.rd_kafka_metadata_destroy(__VA_ARGS__)
#define rd_kafka_topic_new(...)          kafka_api.rd_kafka_topic_new(__VA_ARGS__)
#define rd_kafka_topic_destroy(...)      kafka_api.rd_kafka_topic_destroy(__VA_ARGS__)
#define rd_kafka_topic_partition_list_new(...)                                                     \
	kafka_api.rd_kafka_topic_partition_list_new(__VA_ARGS__)
#define rd_kafka_topic_partition_list_add(...)                                                     \
	kafka_api.rd_kafka_topic_partition_list_add(__VA_ARGS__)
#define rd_kafka_topic_partition_list_destroy(...)                                                 \
	kafka_api.rd_kafka_topic_partition_list_destroy(__VA_ARGS__)
#define rd_kafka_conf_set_stats_cb(...)    kafka_api.rd_kafka_conf_set_stats_cb(__VA_ARGS__)
#define rd_kafka_conf_set_error_cb(...)    kafka_api.rd_kafka_conf_set_error_cb(__VA_ARGS__)
#define rd_kafka_conf_set_opaque(...)      kafka_api.rd_kafka_conf_set_opaque(__VA_ARGS__)
#define rd_kafka_offsets_for_times(...)    kafka_api.rd_kafka_offsets_for_times(__VA_ARGS__)
#define rd_kafka_incremental_unassign(...) kafka_api.rd_kafka_incremental_unassign(__VA_ARGS__)
#define rd_kafka_message_timestamp(...)    kafka_api.rd_kafka_message_timestamp(__VA_ARGS__)
#define rd_kafka_produce(...)              kafka_api.rd_kafka_produce(__VA_ARGS__)
#define rd_kafka_flush(...)                kafka_api.rd_kafka_flush(__VA_ARGS__)
#define rd_kafka_last_error(...)           kafka_api.rd_kafka_last_error(__VA_ARGS__)
#define rd_kafka_conf_set_dr_msg_cb(...)   kafka_api.rd_kafka_conf_set_dr_msg_cb(__VA_ARGS__)
#endif

#endif
