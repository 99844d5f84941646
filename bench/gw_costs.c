/* gw-costs: what each step of ws-gateway's event path costs, in CPU microseconds
 * of one thread (CLOCK_THREAD_CPUTIME_ID, so other processes on the machine do not
 * inflate it), on a representative event (the full form kafka-load produces).
 *
 *   parse          event_parse: jansson load + validation (done once per event)
 *   message        event_ws_message: the client message through jansson (the
 *                  gateway's path before issue 16; now the fallback)
 *   splice         wsmsg_frame: the same message spliced from the event's bytes,
 *                  straight into its frame (the gateway's path now)
 *   fast           wsmsg_fast: validation and message in one pass over the event's
 *                  bytes, straight into its frame (the gateway's path since round 2:
 *                  it replaces parse + splice)
 *   frame          frame_new + frame_unref: header + payload in one buffer
 *   key probe      registry_has on a miss: the whole cost of an event for a user
 *                  with no socket here, before librdkafka's own per-message cost
 *   enqueue        conn_enqueue_batch of one frame to one socket (lock, ring, budget)
 *
 * N=200000 (iterations per step). One JSON line on stdout. Figures, not pass/fail. */
#include "common/config.h"
#include "common/event.h"
#include "common/util.h"

#include "../ws-gateway/src/conn.h"
#include "../ws-gateway/src/registry.h"
#include "../ws-gateway/src/wsmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	long n;
} cfg;

static const cfg_entry table[] = {
    {"N", CFG_INT, &cfg.n, "200000", 1000, 100000000, "iterations per step"},
};

static const char EV[] =
    "{\"event_id\":\"0b6f5a0c-1c1d-4e55-9a43-3f2c1d0e9a11\",\"event_type\":\"task.updated\","
    "\"user_id\":\"bench-u42\",\"seq\":17,\"origin\":null,\"timestamp\":\"2026-12-07T00:00:"
    "00.123456Z\",\"task\":{\"id\":\"00000000-0000-4000-8000-00000000002a\",\"title\":"
    "\"bench task of bench-u42\",\"description\":\"bench-ts:1796601766687123\",\"priority\":"
    "\"medium\",\"due_at\":null,\"completed\":false,\"position\":1,\"version\":17,"
    "\"created_at\":\"2026-12-07T00:00:00.123456Z\",\"updated_at\":\"2026-12-07T00:00:00."
    "123456Z\"}}";

static int64_t cpu_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double per_us(int64_t t0, int64_t t1, long n)
{
	return (double)(t1 - t0) / 1e3 / (double)n;
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		config_print_help(stdout, "gw-costs",
		                  "CPU microseconds of each step of ws-gateway's event path.",
		                  table, ARRAY_LEN(table));
		return strcmp(argv[1], "--help") ? 2 : 0;
	}
	char err[2048];
	if (config_load(table, ARRAY_LEN(table), err, sizeof(err))) {
		fprintf(stderr, "%s", err);
		return 2;
	}
	long n = cfg.n;
	size_t len = sizeof(EV) - 1;
	event ev;

	int64_t t0 = cpu_ns();
	for (long i = 0; i < n; i++) {
		if (event_parse(EV, len, &ev, err, sizeof(err))) {
			fprintf(stderr, "gw-costs: %s\n", err);
			return 1;
		}
		event_clear(&ev);
	}
	int64_t t1 = cpu_ns();
	if (event_parse(EV, len, &ev, err, sizeof(err)))
		return 1;
	size_t ml = 0;
	for (long i = 0; i < n; i++)
		free(event_ws_message(&ev, &ml));
	int64_t t2 = cpu_ns();
	char *msg = event_ws_message(&ev, &ml);
	for (long i = 0; i < n; i++)
		frame_unref(frame_new(WS_OP_TEXT, msg, ml, ev.timestamp_us));
	int64_t t3 = cpu_ns();
	for (long i = 0; i < n; i++) {
		frame *sf = wsmsg_frame(EV, len, &ev);
		if (!sf)
			return 1;
		frame_unref(sf);
	}
	int64_t t3b = cpu_ns();
	wsmsg_event we;
	for (long i = 0; i < n; i++) {
		frame *sf = wsmsg_fast(EV, len, &we);
		if (!sf) {
			fprintf(stderr, "gw-costs: wsmsg_fast did not take the event\n");
			return 1;
		}
		frame_unref(sf);
	}
	int64_t t3c = cpu_ns();

	/* 1,000 sockets of 100 users, as in the fan-out scenario; no socket I/O (the
	 * connections have none), no writer (the batch is emptied by hand). */
	registry *r = registry_new(200);
	/* bounds far above n, so the batch never flushes (there is no writer) */
	conn_limits lim = {(size_t)n * 8 + 16, (size_t)1 << 50, NULL};
	enum { USERS = 100, CONNS = 1000 };
	conn *cs[CONNS];
	for (int i = 0; i < CONNS; i++) {
		char id[32];
		snprintf(id, sizeof(id), "bench-u%d", i % USERS);
		cs[i] = conn_new(NULL, -1, id, NULL, &lim, NULL, NULL);
		if (registry_attach(r, cs[i], NULL) != REG_OK)
			return 1;
	}
	long hits = 0;
	char keys[1000][24];
	size_t klen[1000];
	for (int i = 0; i < 1000; i++)
		klen[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "nobody-%d", i);
	int64_t t4 = cpu_ns();
	for (long i = 0; i < n; i++)
		hits += registry_has(r, keys[i % 1000], klen[i % 1000]);
	int64_t t5 = cpu_ns();

	frame *f = frame_new(WS_OP_TEXT, msg, ml, 0);
	conn *one = cs[0];
	conn_batch b = {0};
	/* the first enqueue claims the scheduling token; the rest find it taken, as
	 * every event after the first of a batch does */
	int64_t t6 = cpu_ns();
	for (long i = 0; i < n; i++)
		(void)conn_enqueue_batch(one, f, &b);
	int64_t t7 = cpu_ns();
	for (size_t i = 0; i < b.n; i++)
		conn_unref(b.v[i]); /* the token's reference: nothing will write */
	free(b.v);

	printf("{\"n\":%ld,\"event_bytes\":%zu,\"message_bytes\":%zu,\"parse_us\":%.3f,"
	       "\"message_us\":%.3f,\"splice_us\":%.3f,\"fast_us\":%.3f,\"frame_us\":%.3f,\"key_"
	       "probe_miss_us\":%.3f,"
	       "\"enqueue_us\":%.3f,\"probe_hits\":%ld}\n",
	       n, len, ml, per_us(t0, t1, n), per_us(t1, t2, n), per_us(t3, t3b, n),
	       per_us(t3b, t3c, n), per_us(t2, t3, n), per_us(t4, t5, n), per_us(t6, t7, n), hits);
	frame_unref(f);
	free(msg);
	event_clear(&ev);
	for (int i = 0; i < CONNS; i++)
		conn_unref(cs[i]);
	registry_free(r);
	config_free(table, ARRAY_LEN(table));
	return 0;
}
