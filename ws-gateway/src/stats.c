#include "stats.h"

#include <stdio.h>

static const char *const refuse_names[REFUSE__COUNT] = {
    "shutting_down", "total_cap",   "bad_origin", "unauthorized",
    "wrong_user",    "bad_request", "user_cap",   "ticket_reused"};
static const char *const close_names[CLOSE__COUNT] = {
    "slow_client",       "write_failed", "heartbeat", "rate_limited",
    "message_too_large", "shutdown",     "user_cap",  "protocol_error",
    "token_expired",     "send_budget",  "slow_drain"};
static const char *const reject_names[REJECT__COUNT] = {"too_large",   "not_json", "bad_event_type",
                                                        "bad_user_id", "invalid",  "key_mismatch"};

const char *close_reason_name(close_reason r)
{
	return close_names[r];
}

void gw_stats_init(gw_stats *s, metrics *m)
{
	char lbl[64];
	s->reg = m;
	s->connects =
	    metrics_counter(m, "ws_connects_total", "WebSocket connections opened.", NULL);
	for (int i = 0; i < REFUSE__COUNT; i++) {
		snprintf(lbl, sizeof(lbl), "reason=\"%s\"", refuse_names[i]);
		s->refusals[i] = metrics_counter(m, "ws_refusals_total",
		                                 "Connection attempts refused, by reason.", lbl);
	}
	for (int i = 0; i < CLOSE__COUNT; i++) {
		snprintf(lbl, sizeof(lbl), "reason=\"%s\"", close_names[i]);
		s->closes[i] = metrics_counter(m, "ws_server_closes_total",
		                               "Connections closed by the server, by reason.", lbl);
	}
	s->frames_delivered = metrics_counter(m, "ws_frames_delivered_total",
	                                      "Frames completely written to sockets.", NULL);
	s->event_frames = metrics_counter(m, "ws_event_frames_queued_total",
	                                  "Event frames queued, one per recipient socket.", NULL);
	s->events_consumed =
	    metrics_counter(m, "kafka_events_consumed_total", "Kafka messages consumed.", NULL);
	s->events_delivered =
	    metrics_counter(m, "kafka_events_valid_total", "Valid events fanned out.", NULL);
	s->events_skipped = metrics_counter(
	    m, "kafka_events_skipped_total",
	    "Keyed events for users with no socket on this replica, skipped unparsed.", NULL);
	for (int i = 0; i < REJECT__COUNT; i++) {
		snprintf(lbl, sizeof(lbl), "reason=\"%s\"", reject_names[i]);
		s->events_rejected[i] = metrics_counter(m, "kafka_events_rejected_total",
		                                        "Kafka messages rejected, by reason.", lbl);
	}
	s->client_messages =
	    metrics_counter(m, "ws_client_messages_total", "Frames received from clients.", NULL);
	s->client_errors =
	    metrics_counter(m, "ws_client_errors_total", "Error messages sent to clients.", NULL);
	s->client_bytes =
	    metrics_counter(m, "ws_client_bytes_read_total",
	                    "Bytes read from client sockets (requests and frames).", NULL);
	s->accept_emfile = metrics_counter(
	    m, "ws_accept_no_fd_total",
	    "Connections accepted on the reserve descriptor and closed at once (EMFILE/ENFILE).",
	    NULL);
	s->latency = metrics_histogram(m, "ws_event_delivery_seconds",
	                               "Event timestamp to socket write, seconds.", NULL,
	                               METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
	s->gw_latency = metrics_histogram(
	    m, "ws_consumed_to_write_seconds",
	    "Event consumed from Kafka to socket write (the gateway's own share), seconds.", NULL,
	    METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
	s->kafka_age = metrics_histogram(
	    m, "kafka_event_age_seconds",
	    "Kafka record timestamp (the producer's CreateTime, or the broker's LogAppendTime) "
	    "to consumed here, for events delivered to a socket of this replica, seconds "
	    "(millisecond resolution: up to 1 ms too high).",
	    NULL, METRICS_LATENCY_BUCKETS, METRICS_LATENCY_NBUCKETS);
	const char *resets[2] = {"reason=\"retention\"", "reason=\"truncated\""};
	for (int i = 0; i < 2; i++)
		s->offset_resets[i] = metrics_counter(
		    m, "kafka_offset_resets_total",
		    "Partitions resumed after an offset out of range, by cause.", resets[i]);
	s->reject_logs_suppressed =
	    metrics_counter(m, "kafka_reject_logs_suppressed_total",
	                    "\"event rejected\" log lines left out by the rate limit.", NULL);
	s->status_refusals = metrics_counter(m, "http_status_refusals_total",
	                                     "/status requests refused (no or wrong token).", NULL);
}
