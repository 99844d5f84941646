#include "fanout.h"

#include "common/event.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "wsmsg.h"

#include <stdatomic.h>

#include <stdlib.h>
#include <string.h>

struct fanout {
	registry *reg;
	const gw_stats *st;
	size_t max_event_bytes;
	ratelimit
	    *log_rl; /* "event rejected" lines: REJECT_LOG_RATE/s, bursts of REJECT_LOG_BURST */
	atomic_long log_skipped; /* lines left out since the last one written */
	conn_batch wake;         /* sockets to hand to the writer at fanout_flush */
	/* consumed and skipped since the last fanout_flush: added to their counters
	 * once a batch (two atomic read-modify-writes a message were a tenth of what a
	 * skipped event costs the consumer thread) */
	long consumed, skipped;
	void (*left)(void *arg, const char *user, const char *list); /* fanout_on_leave */
	void *left_arg;
};

/* A topic full of bad records must not flood stderr (and stall the consumer on a
 * slow log pipe): every rejection is counted in kafka_events_rejected_total, and at
 * most this many lines a second are written, each saying how many were left out. */
#define REJECT_LOG_RATE  1.0
#define REJECT_LOG_BURST 10.0

fanout *fanout_new(registry *reg, const gw_stats *st, size_t max_event_bytes)
{
	fanout *f = xcalloc(1, sizeof(*f));
	f->reg = reg;
	f->st = st;
	f->max_event_bytes = max_event_bytes;
	f->log_rl = ratelimit_new(REJECT_LOG_RATE, REJECT_LOG_BURST);
	return f;
}

void fanout_on_leave(fanout *f, void (*left)(void *arg, const char *user, const char *list),
                     void *arg)
{
	f->left = left;
	f->left_arg = arg;
}

void fanout_free(fanout *f)
{
	if (f) {
		ratelimit_free(f->log_rl);
		conn_batch_free(&f->wake);
	}
	free(f);
}

static reject_reason classify(const char *err)
{
	if (!strncmp(err, "not valid JSON", 14))
		return REJECT_NOT_JSON;
	if (!strncmp(err, "event_type", 10))
		return REJECT_BAD_TYPE;
	if (!strncmp(err, "user_id", 7))
		return REJECT_BAD_USER;
	return REJECT_INVALID;
}

static int reject(fanout *f, reject_reason why, const char *detail, const char *topic,
                  int32_t partition, int64_t offset)
{
	metric_inc(f->st->events_rejected[why]);
	if (ratelimit_take(f->log_rl, "reject", mono_us()) != 0) {
		atomic_fetch_add(&f->log_skipped, 1);
		metric_inc(f->st->reject_logs_suppressed);
		return -1;
	}
	long skipped = atomic_exchange(&f->log_skipped, 0);
	log_warn("event rejected", "{s:s, s:i, s:I, s:s, s:i}", "topic", topic, "partition",
	         (int)partition, "offset", (json_int_t)offset, "reason", detail,
	         "rejections_not_logged_before", (int)skipped);
	return -1;
}

int fanout_message(fanout *f, const void *key, size_t keylen, const void *payload, size_t len,
                   const char *topic, int32_t partition, int64_t offset)
{
	f->consumed++;
	if (len > f->max_event_bytes)
		return reject(f, REJECT_TOO_LARGE, "event larger than MAX_EVENT_BYTES", topic,
		              partition, offset);
	if (!payload || len == 0)
		return reject(f, REJECT_NOT_JSON, "empty message", topic, partition, offset);
	/* The key is the user id (the producer's contract, checked below for what is
	 * delivered): nobody here to deliver to, nothing to parse. An unkeyed or
	 * oversized key goes the long way and is judged by its value. */
	if (key && keylen > 0 && keylen <= USER_ID_MAX && !registry_has(f->reg, key, keylen)) {
		f->skipped++;
		return 0;
	}
	int64_t recv_us = mono_us();
	/* One pass over the bytes validates and builds the frame (wsmsg_fast); what it
	 * cannot tell, event_parse judges, and its frame is spliced (jansson builds it
	 * for the rare event whose keys are written with escapes). */
	wsmsg_event we;
	event ev = {.seq = -1};
	frame *fr = wsmsg_fast(payload, len, &we);
	const char *user = we.user_id;
	event_type type = we.type;
	if (!fr) {
		char err[256];
		if (event_parse(payload, len, &ev, err, sizeof(err)))
			return reject(f, classify(err), err, topic, partition, offset);
		user = ev.user_id;
		type = ev.type;
	}
	if (key && (keylen != strlen(user) || memcmp(key, user, keylen))) {
		frame_unref(fr);
		event_clear(&ev);
		return reject(f, REJECT_KEY_MISMATCH, "Kafka key differs from user_id", topic,
		              partition, offset);
	}
	if (!fr)
		fr = wsmsg_frame(payload, len, &ev);
	if (!fr) {
		size_t mlen;
		char *msg = event_ws_message(&ev, &mlen);
		fr = frame_new(WS_OP_TEXT, msg, mlen, ev.timestamp_us);
		free(msg);
	}
	fr->recv_us = recv_us;
	size_t n = registry_deliver_batch(f->reg, user, fr, &f->wake);
	frame_unref(fr);
	metric_inc(f->st->events_delivered);
	if (n)
		metric_add(f->st->event_frames, (double)n);
	log_debug("event fanned out", "{s:s, s:s, s:I, s:i}", "user", user, "type",
	          event_type_name(type), "offset", (json_int_t)offset, "sockets", (int)n);
	/* (list events are never on wsmsg_fast's path: ev is parsed) */
	if (f->left && n && ev.list_id && (type == EV_LIST_UNSHARED || type == EV_LIST_DELETED))
		f->left(f->left_arg, user, ev.list_id);
	event_clear(&ev);
	return (int)n;
}

void fanout_flush(fanout *f)
{
	if (f->consumed)
		metric_add(f->st->events_consumed, (double)f->consumed);
	if (f->skipped)
		metric_add(f->st->events_skipped, (double)f->skipped);
	f->consumed = f->skipped = 0;
	conn_batch_flush(&f->wake);
}
