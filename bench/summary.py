#!/usr/bin/env python3
"""Prints the table of bench/run.sh from its results.jsonl: the median of each
figure over the runs of a scenario (and every run's value in brackets)."""
import json
import statistics
import sys
from collections import OrderedDict


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) < 100:
        return f"{v:.2f}{unit}"
    return f"{int(round(v)):,}{unit}"


def hist_q(h, q):
    """Upper bound (us) of the bucket holding quantile q of a cumulative Prometheus
    histogram {le: count}; None when empty."""
    if not h:
        return None
    b = sorted(((float("inf") if k == "+Inf" else float(k)), v) for k, v in h.items())
    total = b[-1][1]
    if total <= 0:
        return None
    for le, n in b:
        if n >= q * total:
            return le * 1e6
    return None


def row(name, runs, f, unit=""):
    vals = []
    for r in runs:
        try:
            vals.append(f(r))
        except (KeyError, TypeError, ZeroDivisionError):
            vals.append(None)
    each = ", ".join(fmt(v) for v in vals)
    print(f"  {name:<44} {fmt(med(vals), unit):>14}   [{each}]")
    return med(vals)


def ack_buckets(r):
    """The service's outbox_commit_to_ack_seconds buckets: [(le_seconds, cumulative)]."""
    return sorted((float(le), float(n)) for le, n in r.get("relay", {}).get("ack_buckets", []))


def ack_quantile(r, q):
    """Upper bound (us) of the bucket holding quantile q, or 0 without data."""
    b = ack_buckets(r)
    if not b or b[-1][1] <= 0:
        return 0
    for le, n in b:
        if n >= q * b[-1][1]:
            return int(le * 1e6) if le < 1e8 else float("inf")
    return 0


def ack_share(r, le_s):
    """Percentage of events acknowledged within le_s seconds (a bucket bound)."""
    b = ack_buckets(r)
    if not b or b[-1][1] <= 0:
        return 0
    within = max((n for le, n in b if le <= le_s + 1e-12), default=0)
    return round(100.0 * within / b[-1][1], 2)


def main():
    path = sys.argv[1]
    by = OrderedDict()
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                r = json.loads(line)
                by.setdefault(r["scenario"], []).append(r)
    if not by:
        print("no results")
        return 1
    print("scenario / figure                                      median   [each run]")
    p99 = {}
    for sc, runs in by.items():
        print(f"{sc} ({len(runs)} run{'s' if len(runs) > 1 else ''})")
        if sc.startswith("fanout") or sc.startswith("latency") or sc.startswith("stalled"):
            span = lambda r: r["ws"]["frames"] / r["ws"]["frames_per_s"]
            row("frames delivered", runs, lambda r: r["ws"]["frames"])
            row("frames/s (first to last frame)", runs, lambda r: r["ws"]["frames_per_s"])
            row("frames/s, best 1 s", runs, lambda r: r["ws"]["peak_1s_frames"])
            row("events/s produced (kafka-load)", runs, lambda r: r["kafka"]["produce_rate"])
            row("latency p50 (us)", runs, lambda r: r["ws"]["latency"]["p50_us"])
            p99[sc] = row("latency p99 (us)", runs, lambda r: r["ws"]["latency"]["p99_us"])
            row("latency p99.9 (us)", runs, lambda r: r["ws"]["latency"]["p999_us"])
            row("latency max (us)", runs, lambda r: r["ws"]["latency"]["max_us"])
            gh = lambda r: r["gateway_histograms"]["ws_consumed_to_write_seconds"]
            row("gateway's share p50, consumed->written (us, <=)", runs,
                lambda r: hist_q(gh(r), 0.5))
            row("gateway's share p99, consumed->written (us, <=)", runs,
                lambda r: hist_q(gh(r), 0.99))
            if all("kafka_event_age_seconds" in r["gateway_histograms"] for r in runs):
                ka = lambda r: r["gateway_histograms"]["kafka_event_age_seconds"]
                row("before it, Kafka record time->consumed p50 (us, <=)", runs,
                    lambda r: hist_q(ka(r), 0.5))
                row("before it, Kafka record time->consumed p99 (us, <=)", runs,
                    lambda r: hist_q(ka(r), 0.99))
            row("gateway CPU s per 100,000 frames", runs,
                lambda r: r["gateway_cpu_s"] / r["ws"]["frames"] * 1e5)
            sc_ = lambda r, k: r["gateway_syscalls"][k] / r["ws"]["frames"]
            if any(r.get("gateway_syscalls") for r in runs):
                row("gateway syscalls per frame (all)", runs, lambda r: sc_(r, "all"))
                row("  sendmsg per frame", runs, lambda r: sc_(r, "sendmsg"))
                row("  futex per frame", runs, lambda r: sc_(r, "futex"))
                row("  epoll_wait per frame", runs, lambda r: sc_(r, "epoll_wait"))
                row("gateway context switches per frame", runs,
                    lambda r: sc_(r, "context-switches"))
            row("gateway CPU, cores busy over the frames", runs,
                lambda r: r["gateway_cpu_s"] / max(span(r), 1.0) if span(r) > 1 else
                r["gateway_cpu_s"] / r["wall_s"])
            row("broker CPU (Kafka JVM or devbroker), cores busy", runs,
                lambda r: r["broker_cpu_s"] / max(span(r), r["wall_s"] - 3, 0.1))
            row("whole machine, cores busy (2 = saturated)", runs,
                lambda r: r["machine_busy_cores"])
            names = sorted({n for r in runs for n in r.get("gateway_threads_cpu_s", {})},
                           key=lambda n: -med([r.get("gateway_threads_cpu_s", {}).get(n, 0)
                                               for r in runs]))
            for n in names[:4]:
                row(f"gateway CPU s in threads {n}", runs,
                    lambda r, n=n: r["gateway_threads_cpu_s"].get(n, 0))
            row("other processes, cores busy (not ours: approx.)", runs,
                lambda r: max(0.0, r["machine_busy_cores"] - (
                    r["gateway_cpu_s"] + r["broker_cpu_s"] + r["kafka"]["cpu_s"] +
                    r["ws"]["cpu_s"]) / r["wall_s"]))
            row("ws-load CPU s (whole run)", runs, lambda r: r["ws"]["cpu_s"])
            row("kafka-load CPU s", runs, lambda r: r["kafka"]["cpu_s"])
            row("sockets closed by the gateway", runs,
                lambda r: sum(r["ws"]["close_codes"].values()) + r["ws"]["closed_eof"])
            row("frames for another user (must be 0)", runs, lambda r: r["ws"]["wrong_user"])
            if sc.startswith("stalled"):
                row("stalled sockets closed 1013 (gateway's count)", runs,
                    lambda r: r["gateway_slow_client_closes"])
                row("stalled sockets seen cut by ws-load", runs,
                    lambda r: r["ws"]["stalled_closed"])
        elif sc == "skip":
            row("events produced for users with no socket", runs, lambda r: r["events"])
            row("events skipped by key (gateway's count)", runs, lambda r: r["skipped"])
            row("events parsed anyway (must be 0)", runs, lambda r: r["parsed"])
            row("gateway CPU s", runs, lambda r: r["gateway_cpu_s"])
            row("events consumed per gateway CPU s", runs,
                lambda r: r["events"] / r["gateway_cpu_s"])
            row("events consumed per s (wall, to the last)", runs,
                lambda r: r["events"] / r["wall_s"])
            names = sorted({n for r in runs for n in r.get("gateway_threads_cpu_s", {})},
                           key=lambda n: -med([r.get("gateway_threads_cpu_s", {}).get(n, 0)
                                               for r in runs]))
            for n in names[:3]:
                row(f"gateway CPU s in threads {n}", runs,
                    lambda r, n=n: r["gateway_threads_cpu_s"].get(n, 0))
        elif sc == "capacity":
            row("idle sockets accepted and held", runs, lambda r: r["ws"]["open_at_end"])
            row("sockets asked for", runs, lambda r: r["ws"]["connections"])
            row("refused with HTTP 503", runs,
                lambda r: r["ws"]["refusal_status"].get("503", 0))
            row("other failures", runs,
                lambda r: sum(r["ws"]["failed"].values()) - r["ws"]["failed"]["http_status"])
            row("gateway start-up to /ready (s)", runs, lambda r: r["startup_s"])
            row("gateway threads", runs, lambda r: r["threads_held"])
            row("gateway RSS before sockets (KiB)", runs, lambda r: r["rss_empty_kib"])
            row("gateway RSS holding them (KiB)", runs, lambda r: r["rss_held_kib"])
            row("RSS per idle socket, all (KiB)", runs,
                lambda r: r["rss_held_kib"] / r["ws"]["open_at_end"])
            row("RSS per idle socket, marginal (KiB)", runs,
                lambda r: (r["rss_held_kib"] - r["rss_empty_kib"]) / r["ws"]["open_at_end"])
            row("handshakes/s while filling", runs, lambda r: r["ws"]["handshakes_per_s"])
        elif sc == "handshake":
            row("sockets opened", runs, lambda r: r["ws"]["opened"])
            row("handshakes/s (token check included)", runs,
                lambda r: r["ws"]["handshakes_per_s"])
            row("failures", runs, lambda r: sum(r["ws"]["failed"].values()))
        elif sc in ("presence-on", "presence-off"):
            row("sockets answered (of those asked)", runs, lambda r: r["ws"]["subscribed"])
            row("subscribe errors (presence_off when off)", runs,
                lambda r: r["ws"]["subscribe_errors"])
            row("connects + subscribes/s", runs, lambda r: r["ws"]["sessions_per_s"])
            row("handshakes/s", runs, lambda r: r["ws"]["handshakes_per_s"])
            row("subscribe -> answer p50 (us)", runs,
                lambda r: r["ws"]["subscribe_reply"]["p50_us"])
            row("subscribe -> answer p99 (us)", runs,
                lambda r: r["ws"]["subscribe_reply"]["p99_us"])
            row("gateway CPU per socket (us)", runs,
                lambda r: r["gw_cpu_s"] * 1e6 / r["ws"]["subscribed"])
            row("broker CPU per socket (us)", runs,
                lambda r: r["broker_cpu_s"] * 1e6 / r["ws"]["subscribed"])
        elif sc == "presence-delay":
            row("subscribes seen by the other gateway", runs, lambda r: r["ws"]["watch_seen"])
            row("subscribe -> other gateway p50 (us)", runs,
                lambda r: r["ws"]["presence_delay"]["p50_us"])
            row("subscribe -> other gateway p99 (us)", runs,
                lambda r: r["ws"]["presence_delay"]["p99_us"])
            row("subscribe -> other gateway max (us)", runs,
                lambda r: r["ws"]["presence_delay"]["max_us"])
        elif sc.startswith("lists-"):
            row("members", runs, lambda r: r["members"])
            row("frames delivered to member sockets", runs, lambda r: r["ws"]["frames"])
            row("commit -> member socket p50 (us)", runs,
                lambda r: r["ws"]["latency"]["p50_us"])
            row("commit -> member socket p99 (us)", runs,
                lambda r: r["ws"]["latency"]["p99_us"])
            row("commit -> member socket max (us)", runs,
                lambda r: r["ws"]["latency"]["max_us"])
            row("writes/s into the list at saturation", runs,
                lambda r: r["saturation"]["writes_per_s"])
            row("events/s written at saturation (x members)", runs,
                lambda r: r["saturation"]["writes_per_s"] * r["members"])
            row("POST p99 at saturation (us)", runs,
                lambda r: r["saturation"]["latency"]["p99_us"])
        elif sc.startswith("api"):
            row("writes/s (2xx)", runs, lambda r: r["api"]["writes_per_s"])
            row("non-2xx answers", runs,
                lambda r: r["api"]["answered"] - r["api"]["ok"])
            row("connection errors", runs, lambda r: r["api"]["conn_errors"])
            row("latency p50 (us)", runs, lambda r: r["api"]["latency"]["p50_us"])
            row("latency p99 (us)", runs, lambda r: r["api"]["latency"]["p99_us"])
            row("latency max (us)", runs, lambda r: r["api"]["latency"]["max_us"])
            row("event timestamp -> consumed, p50 (us)", runs,
                lambda r: r["api"]["topic"]["commit_to_topic"]["p50_us"])
            row("event timestamp -> consumed, p99 (us)", runs,
                lambda r: r["api"]["topic"]["commit_to_topic"]["p99_us"])
            row("201 received -> consumed, p50 (us)", runs,
                lambda r: r["api"]["topic"]["response_to_topic"]["p50_us"])
            row("201 received -> consumed, p99 (us)", runs,
                lambda r: r["api"]["topic"]["response_to_topic"]["p99_us"])
            row("events missing from the topic", runs, lambda r: r["api"]["topic"]["missing"])
            row("per-user seq breaks on the topic (must be 0)", runs,
                lambda r: r["api"]["topic"]["seq_breaks"])
            row("service: commit -> Kafka ack p50 (us, <=)", runs,
                lambda r: ack_quantile(r, 0.5))
            row("service: commit -> Kafka ack p99 (us, <=)", runs,
                lambda r: ack_quantile(r, 0.99))
            row("service: acked within 10 ms (%)", runs, lambda r: ack_share(r, 0.01))
            row("relay resets", runs,
                lambda r: r.get("relay", {}).get("outbox_relay_resets_total", 0))
            row("dead letters", runs,
                lambda r: r.get("relay", {}).get("outbox_dead_letters_total", 0))
            row("backend-api CPU s", runs, lambda r: r["api_cpu_s"])
            row("PostgreSQL CPU s", runs, lambda r: r["pg_cpu_s"])
            row("PostgreSQL CPU ms per 1,000 writes", runs,
                lambda r: r["pg_cpu_s"] * 1e6 / max(1, r["api"].get("ok", 1)))
            row("broker CPU s", runs, lambda r: r["broker_cpu_s"])
    for st in ("stalled-1-of-1000", "stalled-300-of-1000"):
        if p99.get("latency-10k") and p99.get(st):
            print(f"{st}/unstalled p99 ratio: {p99[st] / p99['latency-10k']:.2f}"
                  " (target <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
