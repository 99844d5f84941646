/* chaos: the whole stack under a schedule of faults, and what its clients saw
 * (docs/chaos.md). Shared between the program's two files: the client model
 * (model.c: devices that apply events the way web/tasksync.js does) and the run
 * (chaos.c: services, writers, faults, the verdict). */
#ifndef CHAOS_CHAOS_H
#define CHAOS_CHAOS_H

#include "common/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Fault kinds; K_CALM tags what happened while no fault ran. */
enum {
	K_CALM,
	K_GW_KILL,
	K_BE_KILL,
	K_RELAY_FREEZE,
	K_KAFKA_KILL,
	K_PG_RESTART,
	K_STALL,
	K_GARBAGE,
	K_HOSTILE,
	K_N
};
extern const char *const chaos_kind_name[K_N];

#define CHAOS_GATEWAYS 2
#define CHAOS_BACKENDS 2

typedef struct mtask {
	char id[UUID_STR_LEN];
	char title[64];
	char position[256];
	long version;
	int completed;
	uint64_t desc_hash; /* FNV-1a of the description (0: none) */
	int deleted;        /* a tombstone: task.deleted was applied */
} mtask;

/* One applied seq: the event and when (CLOCK_REALTIME ms). */
typedef struct applied {
	char eid[UUID_STR_LEN]; /* "" never applied; "reload" covered by a list reload */
	int64_t at_ms;
} applied;

/* A device: one WebSocket as the web client keeps it. @locality its reader thread
 * while readers run, the main thread after; fields marked atomic are read by the
 * main thread meanwhile. */
typedef struct device {
	int user;   /* index into chaos.users */
	int gw;     /* the gateway it sticks to */
	int rcvbuf; /* SO_RCVBUF asked at connect (0: the default) */
	void *ws;   /* ws_client *, NULL while disconnected */
	int64_t reconnect_at;
	int backoff_ms;
	int need_sync; /* a catch-up failed: retry at sync_at */
	int64_t sync_at;
	int sync_backoff_ms;
	atomic_llong last; /* seq applied last */
	applied *seqs;     /* seqs[s] for s in 1..cap-1 */
	size_t cap;
	mtask *tasks; /* the list the device shows, tombstones included */
	size_t ntasks, task_cap;
	atomic_int stalled;      /* 1: its reader does not read it (client_stall) */
	atomic_long closes;      /* sockets that ended (gateway kill, 1013, ...) */
	atomic_long slow_closes; /* of them, closed 1013 (too slow) */
	atomic_int last_close;   /* the close code of the last one (-1: no close frame) */
	long connects;
	long pushed;   /* events applied from a push */
	long caught;   /* events applied from a catch-up */
	long dups;     /* pushes dropped as already applied */
	long reloads;  /* 410 reloads */
	long catchups; /* catch-up calls */
} device;

typedef struct user {
	char id[64];
	char auth[1200]; /* "Authorization: Bearer <token>\r\n" */
	char token[1024];
} user;

/* Per kind: what the clients saw (index K_N: the total). */
typedef struct tally {
	long written;      /* events in the database */
	long expected;     /* written x the user's devices */
	long applied;      /* applied by devices */
	long lost;         /* written and never applied by a device */
	long twice;        /* an event applied at two positions */
	long disorder;     /* an event applied at another seq than the database's */
	long wrong;        /* delivered to a device of another user */
	long garbage;      /* something not an event of ours delivered as one */
	int64_t behind_ms; /* longest time from the event's timestamp to its application */
} tally;

typedef struct chaos {
	/* settings */
	long seconds, max_faults, min_faults, users_n, spu, rate, writers_n, readers_n, seed,
	    settle_s;
	long freeze_s, stall_s, gap_s, down_ms;
	/* services: ports read by every thread; the processes only by the main thread */
	atomic_int be_port[CHAOS_BACKENDS];
	atomic_int gw_port[CHAOS_GATEWAYS];
	user *users;
	device *devs;
	int ndevs;
	atomic_int kind; /* the fault running now (K_CALM between faults) */
	atomic_int stop_writes;
	atomic_int stop_readers;
	atomic_long ops; /* writes started (bounds the seqs a device stores) */
	atomic_long writes_ok, writes_retried, writes_gone, writes_bad, writes_abandoned;
	atomic_long wrong[K_N + 1];   /* deliveries to a wrong user, by the kind running */
	atomic_long garbage[K_N + 1]; /* non-events delivered, by the kind running */
	atomic_long api_gaps;         /* /events skipping a seq */
	atomic_long conflicts;        /* one seq delivered as two events */
	atomic_long frames_error;     /* "error" frames from a gateway */
	pthread_mutex_t log_mu;
	long logged;
} chaos;

extern chaos g_chaos;

/* Prints one line of evidence (at most 40 such lines per run; all are counted
 * where they happen). @locality any thread. */
void chaos_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wall-clock milliseconds (event timestamps are wall-clock). */
int64_t chaos_now_ms(void);
/* An RFC 3339 UTC time as milliseconds since the epoch; -1 when not one. */
int64_t chaos_parse_time(const char *s);
uint64_t chaos_hash(const char *s);

/* @locality a reader thread (arg: its index): connects, reads, applies and catches
 * up the devices i with i % readers_n == index until stop_readers. */
void *model_reader(void *arg);
/* One catch-up of d now (the main thread's final look; readers stopped). 0 or -1. */
int model_catch_up(device *d);
/* Finds a task of d by id (NULL when it never had it). */
mtask *model_task(device *d, const char *id);
void model_free(device *d);

#endif
