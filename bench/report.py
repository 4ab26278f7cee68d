#!/usr/bin/env python3
"""Writes bench/RESULTS.md (and the growth plots) from the RESULT lines bench/run.sh collected.

Each line of the results file is {"case", "target", "run", "result": <loadgen RESULT json>};
the target is `bridge`, `bun` (the peer) or `redis` (two bridge instances on one Redis).
Speeds and latencies are the median over runs; loss, duplicates, early closes and errors
are summed over runs (any of them is a failure). Where a case ran against the bridge and
Bun, a "bridge ÷ Bun" row gives the ratio of the medians for every figure.

Modes this script does not know (a new loadgen subcommand) get a generic table from the
conventional RESULT keys: "throughput": {"value", "unit"}, "latency_ms": {"p50", "p90",
"p99", "max"}, "lost", "duplicated", "server_cpu_util", "server_cpu_us_per_op".
"""

import argparse
import json
import math
import os
import statistics
from collections import OrderedDict

PEER = "bun"
ORDER = ["bridge", "bun", "redis"]
NAMES = {"bridge": "bridge", "bun": "Bun", "redis": "bridge (Redis, 2 instances)"}

# "A slow viewer never raises others' latency" (issue 6): each *-slowK case against the
# case of the same shape without the slow viewers, for the same target. Met when the slow
# case's median p99 is within SLOW_P99_RATIO of the baseline's or at most
# SLOW_P99_SLACK_MS above it.
SLOW_BASELINES = {
    "fanout-1000x200-50ps-slow10": "fanout-1000x200-50ps-4k",
    "fanout-100x100-50ps-slow5": "fanout-100x100-50ps-4k",
}
SLOW_P99_RATIO = 1.2
SLOW_P99_SLACK_MS = 5.0


def lat(r, q):
    return (r.get("latency_ms") or {}).get(q)


def div(v, d):
    ok = isinstance(v, (int, float)) and isinstance(d, (int, float)) and v and d
    return v / d if ok else None


def med(values):
    vals = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(vals) if vals else None


def total(values):
    return sum(v for v in values if isinstance(v, (int, float)))


def fmt(v, digits=0):
    if v is None:
        return "–"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{round(v):,}"


def pct(v):
    return "–" if v is None else f"{v * 100:.0f}"


def fmt_ms(v):
    return "–" if v is None else f"{v:.2f}"


def ratio(a, b):
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}×"


# Targets (issue 14): (case, label, how to get the figure, comparison, goal). A goal is a
# number, or ("peer", factor): factor × the peer's median in the same run.
def fig_p99(r):
    return lat(r, "p99")


def fig_dps(r):
    return r.get("deliveries_per_sec")


def fig_cpu(r):
    return r.get("server_cpu_us_per_delivery")


TARGETS = [
    ("fanout-1000x200-50ps", "p99 ms", fig_p99, "le", ("peer", 0.9)),
    ("fanout-5000x50-10ps", "p99 ms", fig_p99, "le", ("peer", 0.9)),
    ("fanout-1000x1000-flat", "p99 ms", fig_p99, "le", ("peer", 1.0)),
    ("fanout-1000x1000-flat", "deliveries/s", fig_dps, "ge", ("peer", 1.0)),
    ("fanout-1000x1000-flat", "server CPU µs/delivery", fig_cpu, "le", ("peer", 1.0)),
    ("ingest-20000-c64", "requests/s", lambda r: r.get("requests_per_sec"), "ge", 60_000),
    ("ingest-20000-c64", "p99 ms", fig_p99, "le", 3.0),
    ("idle-10000", "bytes per connection", lambda r: r.get("bytes_per_connection"), "le", 2000),
]


class Report:
    def __init__(self, cases):
        self.cases = cases  # case -> target -> [result]
        self.lines = []

    def w(self, s=""):
        self.lines.append(s)

    def targets(self, case):
        got = self.cases[case]
        return [t for t in ORDER if t in got] + [t for t in got if t not in ORDER]

    def rows(self, case, target):
        return self.cases.get(case, {}).get(target, [])

    def has_peer(self, case):
        return "bridge" in self.cases[case] and PEER in self.cases[case]


def shape(r0):
    rate = r0.get("rate")
    rate_s = "flat out" if not rate else f"{rate:g}/s"
    s = f"{r0.get('viewers', '?')} × {r0.get('messages', '?')} @ {rate_s}"
    if (r0.get("channels") or 1) > 1:
        s += f", {r0['channels']} channels"
    if r0.get("bytes"):
        s += f", {r0['bytes']} B"
    if r0.get("slow_viewers"):
        s += f", + {r0['slow_viewers']} slow"
    return s


FANOUT_COLS = [
    ("deliveries/s", lambda rs: med([r.get("deliveries_per_sec") for r in rs]), fmt),
    ("p50 ms", lambda rs: med([lat(r, "p50") for r in rs]), fmt_ms),
    ("p90 ms", lambda rs: med([lat(r, "p90") for r in rs]), fmt_ms),
    ("p99 ms", lambda rs: med([lat(r, "p99") for r in rs]), fmt_ms),
    ("max ms", lambda rs: med([lat(r, "max") for r in rs]), fmt_ms),
    ("lost", lambda rs: total([r.get("lost") for r in rs]), fmt),
    ("dup", lambda rs: total([r.get("duplicated") for r in rs]), fmt),
    ("closed early", lambda rs: total([r.get("closed_early") for r in rs]), fmt),
    ("server CPU µs/delivery", lambda rs: med([r.get("server_cpu_us_per_delivery") for r in rs]), fmt_ms),
    ("deliveries per write", lambda rs: med([div(r.get("received_unique"), r.get("server_write_syscalls"))
                                             for r in rs]), lambda v: fmt(v, 1)),
    ("server CPU %", lambda rs: med([r.get("server_cpu_util") for r in rs]), pct),
    ("loadgen CPU %", lambda rs: med([r.get("loadgen_cpu_util") for r in rs]), pct),
    ("server peak RSS MiB", lambda rs: med([div(r.get("server_peak_rss_kb"), 1024) for r in rs]),
     lambda v: fmt(v, 1)),
]
# Ratios are shown for speeds, latencies, CPU and memory, not for counts.
NO_RATIO = {"lost", "dup", "closed early", "loadgen CPU %"}


# Rooms (issue 11): `loadgen room`. "settled ms" is from the first send until every member
# holds the final tally or value (chat: until every delivery arrived); "after last send"
# is the part of it after the last frame was sent.
ROOM_COLS = [
    ("settled ms", lambda rs: med([r.get("settle_ms") for r in rs]), fmt),
    ("after last send ms", lambda rs: med([r.get("settle_after_last_send_ms") for r in rs]), fmt),
    ("frames/member", lambda rs: med([(r.get("frames_per_member") or {}).get("mean") for r in rs]),
     lambda v: fmt(v, 1)),
    ("p50 ms", lambda rs: med([lat(r, "p50") for r in rs]), fmt_ms),
    ("p99 ms", lambda rs: med([lat(r, "p99") for r in rs]), fmt_ms),
    ("lost", lambda rs: total([r.get("lost") for r in rs]), fmt),
    ("dup", lambda rs: total([r.get("duplicated") for r in rs]), fmt),
    ("server CPU µs/op", lambda rs: med([r.get("server_cpu_us_per_op") for r in rs]), fmt_ms),
    ("server CPU %", lambda rs: med([r.get("server_cpu_util") for r in rs]), pct),
]


def room_what(rs):
    if not rs:
        return "–"
    r = rs[0]
    op = "delivery" if r.get("scenario") == "chat" else "send"
    return f"{r.get('scenario', '?')}: {fmt(r.get('members'))} members, {fmt(r.get('sends'))} sends; µs per {op}"


# Alert overlays (issue 10): `loadgen alerts`. Latency is from the start of the
# `POST /api/alerts/{channel}` call to the overlay's receipt of the alert frame; lost, shown
# twice and out of order are summed over runs and overlays; CPU per alert is per accepted
# alert. Burst: "last shown" is from the first POST until every overlay had the last
# accepted alert; 429s are the queue's cap (ALERT_QUEUE_LEN), not failures.
ALERT_COMMON_TAIL = [
    ("lost", lambda rs: total([r.get("lost") for r in rs]), fmt),
    ("shown twice", lambda rs: total([r.get("duplicated") for r in rs]), fmt),
    ("out of order", lambda rs: total([r.get("out_of_order") for r in rs]), fmt),
    ("server CPU µs/alert", lambda rs: med([r.get("server_cpu_us_per_op") for r in rs]), fmt_ms),
    ("server CPU %", lambda rs: med([r.get("server_cpu_util") for r in rs]), pct),
    ("Redis CPU %", lambda rs: med([r.get("redis_cpu_util") for r in rs]), pct),
    ("loadgen CPU %", lambda rs: med([r.get("loadgen_cpu_util") for r in rs]), pct),
]
ALERT_THROUGHPUT_COLS = [
    ("alerts shown/s", lambda rs: med([(r.get("throughput") or {}).get("value") for r in rs]), fmt),
    ("p50 ms", lambda rs: med([lat(r, "p50") for r in rs]), fmt_ms),
    ("p90 ms", lambda rs: med([lat(r, "p90") for r in rs]), fmt_ms),
    ("p99 ms", lambda rs: med([lat(r, "p99") for r in rs]), fmt_ms),
    ("max ms", lambda rs: med([lat(r, "max") for r in rs]), fmt_ms),
    ("publish p99 ms", lambda rs: med([(r.get("publish_call_ms") or {}).get("p99") for r in rs]), fmt_ms),
    ("send lag p99 ms", lambda rs: med([(r.get("schedule_lag_ms") or {}).get("p99") for r in rs]), fmt_ms),
] + ALERT_COMMON_TAIL
ALERT_BURST_COLS = [
    ("accepted", lambda rs: med([r.get("accepted") for r in rs]), fmt),
    ("429", lambda rs: med([r.get("rejected_429") for r in rs]), fmt),
    ("POSTs done ms", lambda rs: med([r.get("publish_span_ms") for r in rs]), fmt),
    ("last shown ms", lambda rs: med([r.get("last_shown_ms") for r in rs]), fmt),
    ("shown/s", lambda rs: med([r.get("shown_per_sec") for r in rs]), lambda v: fmt(v, 1)),
    ("p50 ms", lambda rs: med([lat(r, "p50") for r in rs]), fmt),
    ("p99 ms", lambda rs: med([lat(r, "p99") for r in rs]), fmt),
] + ALERT_COMMON_TAIL


def alert_what(rs):
    r = next((r for r in rs if r.get("scenario")), None)
    if r is None:
        return "–"
    if r.get("scenario") == "burst":
        return (f"{fmt(r.get('alerts'))} alerts at once ({r.get('concurrency', '?')} in flight), "
                f"{r.get('overlays', 1)} overlay(s)")
    return f"{fmt(r.get('channels'))} channels × {r.get('rate')}/s × {r.get('seconds')} s"


def side_by_side(rep, names, cols, first_col):
    """One table: a row per (case, target) and a bridge ÷ Bun row where both ran."""
    w = rep.w
    w("| case | target | " + first_col[0] + " | " + " | ".join(c[0] for c in cols) + " |")
    w("|---|---|---|" + "---:|" * len(cols))
    for n in names:
        for t in rep.targets(n):
            rs = rep.rows(n, t)
            cells = [c[2](c[1](rs)) for c in cols]
            w(f"| {n} | {NAMES.get(t, t)} | {first_col[1](rs)} | " + " | ".join(cells) + " |")
        if rep.has_peer(n):
            b, p = rep.rows(n, "bridge"), rep.rows(n, PEER)
            cells = ["" if c[0] in NO_RATIO else ratio(c[1](b), c[1](p)) for c in cols]
            w(f"| {n} | **bridge ÷ Bun** | | " + " | ".join(cells) + " |")
    w()


def fanout_section(rep, names, title, intro):
    w = rep.w
    w(f"## {title}\n")
    w(intro + "\n")
    side_by_side(rep, names, FANOUT_COLS, ("viewers × messages", lambda rs: shape(rs[0]) if rs else "–"))
    slow = [n for n in names if any(r.get("slow_viewers") for t in rep.targets(n) for r in rep.rows(n, t))]
    if slow:
        w(
            "Slow viewers (\"+ K slow\"): K more viewers subscribe and then never read their "
            "socket; they are not in the figures above. Unread = bytes waiting in their "
            "sockets when the drain ended (median over runs, summed over the slow viewers); "
            "endings are totals over all runs, found by reading their sockets after the "
            "measurement (open = still open, nothing more arrived; close_4008 = closed as a "
            "slow consumer).\n"
        )
        w("| case | target | slow viewers per run | subscribed (all runs) | unread at drain end KiB | "
          "closed by server (all runs) | endings (all runs) |")
        w("|---|---|---:|---:|---:|---:|---|")
        for n in slow:
            for t in rep.targets(n):
                rs = rep.rows(n, t)
                endings = {}
                for r in rs:
                    for k, v in (r.get("slow_endings") or {}).items():
                        endings[k] = endings.get(k, 0) + v
                end_s = ", ".join(f"{k} {v}" for k, v in sorted(endings.items())) or "–"
                w(
                    f"| {n} | {NAMES.get(t, t)} | {fmt(med([r.get('slow_viewers') for r in rs]))} | "
                    f"{fmt(total([r.get('slow_viewers_connected') for r in rs]))} of "
                    f"{fmt(total([r.get('slow_viewers') for r in rs]))} | "
                    f"{fmt(med([div(r.get('slow_unread_bytes'), 1024) for r in rs]))} | "
                    f"{fmt(total([r.get('slow_viewers_closed') for r in rs]))} | {end_s} |"
                )
        w()


def redis_instances(rep, names):
    w = rep.w
    w("Per instance (medians over runs; lost and dup are totals):\n")
    w("| case | instance | viewers | p50 ms | p99 ms | lost | dup | server CPU % | peak RSS MiB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        rs = rep.rows(n, "redis")
        count = max([len(r.get("instances") or []) for r in rs] or [0])
        for k in range(count):
            per = [(r.get("instances") or [])[k] for r in rs if k < len(r.get("instances") or [])]
            rss = [div(r["server_peak_rss_kb_each"][k], 1024)
                   for r in rs if k < len(r.get("server_peak_rss_kb_each") or [])]
            w(
                f"| {n} | {k} | {fmt(med([p.get('viewers_connected') for p in per]))} | "
                f"{fmt_ms(med([lat(p, 'p50') for p in per]))} | "
                f"{fmt_ms(med([lat(p, 'p99') for p in per]))} | "
                f"{fmt(total([p.get('lost') for p in per]))} | "
                f"{fmt(total([p.get('duplicated') for p in per]))} | "
                f"{pct(med([p.get('server_cpu_util') for p in per]))} | "
                f"{fmt(med(rss), 1)} |"
            )
    w()


def watch_cell(rs):
    watches = [r.get("watch") or {} for r in rs]
    if all(not wt for wt in watches):
        return "–"
    s = fmt(total([wt.get("missed") for wt in watches]))
    endings = sorted({wt.get("ending") for wt in watches if wt.get("ending") not in (None, "open")})
    return s + (" (" + ", ".join(endings) + ")" if endings else "")


INGEST_COLS = [
    ("requests/s", lambda rs: med([r.get("requests_per_sec") for r in rs]), fmt),
    ("p50 ms", lambda rs: med([lat(r, "p50") for r in rs]), fmt_ms),
    ("p90 ms", lambda rs: med([lat(r, "p90") for r in rs]), fmt_ms),
    ("p99 ms", lambda rs: med([lat(r, "p99") for r in rs]), fmt_ms),
    ("max ms", lambda rs: med([lat(r, "max") for r in rs]), fmt_ms),
    ("non-2xx", lambda rs: total([r.get("non_2xx") for r in rs]), fmt),
    ("errors", lambda rs: total([r.get("error_count") for r in rs]), fmt),
    ("lost", lambda rs: None if all(r.get("lost") is None for r in rs) else total([r.get("lost") for r in rs]),
     lambda v: "not checked" if v is None else fmt(v)),
    ("watcher missed", lambda rs: rs, watch_cell),
    ("server CPU µs/request", lambda rs: med([r.get("server_cpu_us_per_request") for r in rs]), fmt_ms),
    ("server CPU %", lambda rs: med([r.get("server_cpu_util") for r in rs]), pct),
    ("loadgen CPU %", lambda rs: med([r.get("loadgen_cpu_util") for r in rs]), pct),
]

IDLE_COLS = [
    ("held s", lambda rs: rs[0].get("seconds") if rs else None, lambda v: "–" if v is None else f"{v:g}"),
    ("RSS before MiB", lambda rs: med([div(r.get("rss_before"), 1048576) for r in rs]), lambda v: fmt(v, 1)),
    ("RSS after MiB", lambda rs: med([div(r.get("rss_after"), 1048576) for r in rs]), lambda v: fmt(v, 1)),
    ("bytes per connection", lambda rs: med([r.get("bytes_per_connection") for r in rs]), fmt),
    ("failed", lambda rs: total([r.get("viewers_failed") for r in rs]), fmt),
    ("closed early", lambda rs: total([r.get("closed_early") for r in rs]), fmt),
]
NO_RATIO |= {"non-2xx", "errors", "watcher missed", "failed", "held s", "RSS before MiB"}


def generic_cols(rs):
    unit = next(((r.get("throughput") or {}).get("unit") for r in rs if r.get("throughput")), None)
    return [
        (f"{unit or 'operations'}/s" if unit and "/" not in unit else (unit or "throughput"),
         lambda rs: med([(r.get("throughput") or {}).get("value") for r in rs]), fmt),
        ("p50 ms", lambda rs: med([lat(r, "p50") for r in rs]), fmt_ms),
        ("p99 ms", lambda rs: med([lat(r, "p99") for r in rs]), fmt_ms),
        ("max ms", lambda rs: med([lat(r, "max") for r in rs]), fmt_ms),
        ("lost", lambda rs: total([r.get("lost") for r in rs]), fmt),
        ("dup", lambda rs: total([r.get("duplicated") for r in rs]), fmt),
        ("server CPU µs/op", lambda rs: med([r.get("server_cpu_us_per_op") for r in rs]), fmt_ms),
        ("server CPU %", lambda rs: med([r.get("server_cpu_util") for r in rs]), pct),
    ]


def targets_section(rep, a):
    w = rep.w
    rows = []
    for case, label, get, op, goal in TARGETS:
        if case not in rep.cases or "bridge" not in rep.cases[case]:
            continue
        m = med([get(r) for r in rep.rows(case, "bridge")])
        if isinstance(goal, tuple):
            peer = med([get(r) for r in rep.rows(case, PEER)])
            if peer is None:
                rows.append((case, label, f"{goal[1]:g} × Bun", m, "no data (Bun not run)"))
                continue
            limit = peer * goal[1]
            goal_s = f"{'≤' if op == 'le' else '≥'} {goal[1]:g} × Bun = {fmt_ms(limit) if 'ms' in label else fmt(limit, 2 if limit < 100 else 0)}"
        else:
            limit = goal
            goal_s = f"{'≤' if op == 'le' else '≥'} {goal:,}"
        if m is None:
            met = "no data"
        else:
            met = "yes" if (m <= limit if op == "le" else m >= limit) else "**no**"
        rows.append((case, label, goal_s, m, met))
    for n, base in SLOW_BASELINES.items():
        if n not in rep.cases or "bridge" not in rep.cases[n]:
            continue
        m = med([lat(r, "p99") for r in rep.rows(n, "bridge")])
        b = med([lat(r, "p99") for r in rep.rows(base, "bridge")])
        if m is None or b is None:
            rows.append((n, "slow viewers do not raise others' p99 (ms)", f"vs {base}", m, "no data"))
            continue
        limit = max(b * SLOW_P99_RATIO, b + SLOW_P99_SLACK_MS)
        rows.append((n, "slow viewers do not raise others' p99 (ms)",
                     f"≤ {limit:.2f} ({base} {b:.2f} × {SLOW_P99_RATIO:g} or + {SLOW_P99_SLACK_MS:g} ms)",
                     m, "yes" if m <= limit else "**no**"))
    bad_cases = []
    for n in rep.cases:
        for t in ("bridge", "redis"):
            rs = rep.rows(n, t)
            if not rs:
                continue
            watches = [r.get("watch") or {} for r in rs]
            bad = (total([r.get("lost") for r in rs]) + total([r.get("duplicated") for r in rs])
                   + total([wt.get("missed") for wt in watches]) + total([wt.get("duplicated") for wt in watches]))
            bad_cases.append((n, t, bad))
    if not rows and not bad_cases:
        return
    w("## Targets (issue 14)\n")
    w("Medians of the bridge's runs against the goals; a goal in \"× Bun\" is that factor times "
      "Bun's median in this same run.\n")
    w("| case | measure | target | bridge | met |")
    w("|---|---|---|---:|---|")
    for case, label, goal_s, m, met in rows:
        shown = fmt_ms(m) if "ms" in label else (fmt_ms(m) if "µs" in label else fmt(m))
        w(f"| {case} | {label} | {goal_s} | {shown} | {met} |")
    if bad_cases:
        total_bad = sum(b for _, _, b in bad_cases)
        which = ", ".join(f"{n} [{t}] {b}" for n, t, b in bad_cases if b) or "none"
        w(f"| every case, bridge and Redis mode | lost + duplicated | 0 | {fmt(total_bad)} | "
          f"{'yes' if total_bad == 0 else '**no**'} ({which}) |")
    w()


def ops_of(r):
    """What a run's CPU is divided by: deliveries (fan-out), webhooks (ingest)."""
    if r.get("mode") == "fanout":
        return r.get("received") or None
    if r.get("mode") == "ingest":
        return r.get("count") or None
    return None


def cpu_split_section(rep, names):
    """User and kernel CPU of the servers over whole runs, for the cases with targets."""
    w = rep.w
    shown = [n for n in names if any(r.get("server_sys_s") is not None
                                     for t in rep.targets(n) for r in rep.rows(n, t))]
    if not shown:
        return
    w("## Where the server's CPU went\n")
    w("User and kernel CPU time of the server process(es) over the whole run (connecting "
      "included; `/proc/PID/stat`, clock ticks), medians over the runs, per delivery (fan-out) "
      "or per webhook (ingest). The kernel's part (TCP send, and on loopback the receiving "
      "side's TCP processing and wake-ups, which run in the sender's context) is what no "
      "change in user space can remove; compare it between the bridge and Bun.\n")
    w("| case | target | user µs/op | kernel µs/op | kernel share | socket writes/op |")
    w("|---|---|---:|---:|---:|---:|")
    for n in shown:
        for t in rep.targets(n):
            rs = rep.rows(n, t)
            user = med([div(r.get("server_user_s"), ops_of(r)) for r in rs])
            sys_ = med([div(r.get("server_sys_s"), ops_of(r)) for r in rs])
            share = med([div(r.get("server_sys_s"), (r.get("server_user_s") or 0) + (r.get("server_sys_s") or 0))
                         for r in rs if r.get("server_sys_s") is not None])
            writes = med([div(r.get("server_write_syscalls"), ops_of(r)) for r in rs])
            us = lambda v: "–" if v is None else f"{v * 1e6:.2f}"  # noqa: E731
            w(f"| {n} | {NAMES.get(t, t)} | {us(user)} | {us(sys_)} | "
              f"{'–' if share is None else f'{share * 100:.0f} %'} | "
              f"{'–' if writes is None else f'{writes:.3f}'} |")
    w()


# ---- plots (SVG, no dependencies) ----

COLORS = {"bridge": "#1f77b4", "bun": "#d62728", "redis": "#2ca02c"}


def nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=10 * mag)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5:
        ticks.append(v)
        v += step
    return ticks


def tick_label(v):
    if abs(v) >= 1e6:
        return f"{v / 1e6:g} M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g} k"
    return f"{v:g}"


def svg_chart(path, title, xlabel, ylabel, series):
    """A line chart: series is {target: [(x, y), ...]}; y from 0."""
    W, H, L, R, T, B = 640, 380, 80, 150, 40, 50
    pts = [p for s in series.values() for p in s if p[1] is not None]
    if not pts:
        return False
    xs = sorted({p[0] for p in pts})
    xt = nice_ticks(0, max(xs))
    yt = nice_ticks(0, max(p[1] for p in pts) * 1.05)
    x0, x1, y1 = 0, xt[-1], yt[-1]

    def sx(x):
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def sy(y):
        return H - B - y / y1 * (H - T - B)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
         'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for v in yt:
        o.append(f'<line x1="{L}" x2="{W - R}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{tick_label(v)}</text>')
    for v in xt:
        o.append(f'<line x1="{sx(v):.1f}" x2="{sx(v):.1f}" y1="{H - B}" y2="{H - B + 4}" stroke="#333"/>')
        o.append(f'<text x="{sx(v):.1f}" y="{H - B + 18}" text-anchor="middle">{tick_label(v)}</text>')
    o.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="#333"/>')
    o.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="#333"/>')
    o.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">{xlabel}</text>')
    o.append(f'<text transform="translate(18 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for i, (name, s) in enumerate(series.items()):
        s = sorted(p for p in s if p[1] is not None)
        if not s:
            continue
        c = COLORS.get(name, "#555")
        o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (
            c, " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)))
        for x, y in s:
            o.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{c}"/>')
        ly = T + 10 + i * 20
        o.append(f'<line x1="{W - R + 15}" x2="{W - R + 40}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        o.append(f'<text x="{W - R + 46}" y="{ly + 4}">{NAMES.get(name, name)}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")
    return True


def growth_section(rep, out_path):
    growth = [n for n in rep.cases if n.startswith("growth-")]
    chans = [n for n in rep.cases if n.startswith("channels-")]
    if not growth and not chans:
        return
    w = rep.w
    w("## Growth\n")
    w("Flat out (32 publishes in flight, 256-byte messages) at more and more viewers on one "
      "channel, then the same 10,000 viewers as 1 channel × 10,000 and as 1,000 channels × "
      "10 (each message then reaches 10 viewers, so 1,000 times as many messages carry the "
      "same deliveries). Bytes per connection = the server's RSS growth while the viewers "
      "connected and subscribed ÷ viewers (their sign-in excluded).\n")
    cols = [
        FANOUT_COLS[0], FANOUT_COLS[1], FANOUT_COLS[3], FANOUT_COLS[4],
        ("bytes per connection", lambda rs: med([r.get("bytes_per_connection") for r in rs]), fmt),
        FANOUT_COLS[5], FANOUT_COLS[6], FANOUT_COLS[7], FANOUT_COLS[8], FANOUT_COLS[9], FANOUT_COLS[10],
        FANOUT_COLS[11],
    ]
    names = sorted(growth, key=lambda n: rep.rows(n, rep.targets(n)[0])[0].get("viewers", 0)) + chans
    side_by_side(rep, names, cols, ("viewers × messages", lambda rs: shape(rs[0]) if rs else "–"))
    out_dir = os.path.dirname(os.path.abspath(out_path))
    plots = [
        ("growth-deliveries.svg", "Flat-out deliveries per second", "deliveries/s", cols[0][1]),
        ("growth-p99.svg", "p99 publish → delivery, flat out", "ms", cols[2][1]),
        ("growth-bytes.svg", "Server memory per subscribed viewer", "bytes", cols[4][1]),
    ]
    links = []
    for fname, title, ylabel, get in plots:
        series = {}
        for t in ORDER:
            pts = []
            for n in growth:
                rs = rep.rows(n, t)
                if rs:
                    pts.append((rs[0].get("viewers", 0), get(rs)))
            if pts:
                series[t] = pts
        if svg_chart(os.path.join(out_dir, fname), title, "viewers on one channel", ylabel, series):
            links.append(f"[{title.lower()}]({fname})")
    if links:
        w("Plots (written by `bench/report.py` beside this file): " + ", ".join(links) + ".\n")
        for fname, title, _, _ in plots:
            if os.path.exists(os.path.join(out_dir, fname)):
                w(f"![{title}]({fname})")
        w()


def main():
    ap = argparse.ArgumentParser()
    for flag in ["results", "commands", "out", "set", "commit", "date", "cpu", "kernel",
                 "server-cpu", "loadgen-cpu", "loadavg"]:
        ap.add_argument("--" + flag, required=True)
    ap.add_argument("--loadavg-end", default="")
    ap.add_argument("--calibration", default="{}")
    ap.add_argument("--bun-version", default="")
    ap.add_argument("--repeats", type=int, required=True)
    ap.add_argument("--nproc", type=int, required=True)
    ap.add_argument("--mem-kb", type=int, required=True)
    a = ap.parse_args()

    cases = OrderedDict()
    with open(a.results) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            cases.setdefault(row["case"], OrderedDict()).setdefault(
                row.get("target", "bridge"), []).append(row["result"])
    rep = Report(cases)
    w = rep.w

    title = {"full": "Benchmark results", "quick": "Benchmark results (quick smoke set)",
             "growth": "Benchmark results (growth run)"}.get(a.set, "Benchmark results")
    w(f"# {title}\n")
    w("Written by `bench/run.sh" + ("" if a.set == "full" else f" {a.set}") + "`; do not edit by hand.\n")
    w(f"- **Date**: {a.date}")
    w(f"- **Commit**: `{a.commit}`")
    w(f"- **Machine**: {a.nproc} CPUs ({a.cpu}), {a.mem_kb / 1048576:.1f} GiB memory, Linux {a.kernel}")
    cal = json.loads(a.calibration or "{}")
    if "tcp_send_recv_us" in cal:
        w(
            f"- **Host speed** (`loadgen calibrate`): one system call {cal['syscall_ns']:.0f} ns; "
            f"one 256-byte loopback TCP write + read {cal['tcp_send_recv_us']:.2f} µs. Hosts of "
            "the same machine kind differ by several times here; compare tables only between "
            "runs with similar figures"
        )
    end = f", at the end {a.loadavg_end}" if a.loadavg_end else ""
    w(
        f"- **Load average**: {a.loadavg} when the run started{end} (anything well above 0 "
        "means other work shared the cores: the figures are pessimistic, for both the bridge "
        "and the peer)"
    )
    if a.bun_version:
        w(
            f"- **Peer**: Bun {a.bun_version} running `bench/peer/bun-server.js`, a bare "
            "`server.publish` pub/sub on uWebSockets that speaks the load generator's protocol; "
            "it keeps no history and bounds nothing"
        )
    w(
        f"- **Method**: a fresh server per run pinned to CPU {a.server_cpu}, the load generator "
        f"(`bench/loadgen`) pinned to CPU {a.loadgen_cpu}; Redis-mode cases run two bridge "
        f"instances, both on CPU {a.server_cpu}. {a.repeats} run(s) per case and target "
        "(growth cases: 1), alternating between the targets. Speeds and latencies are medians "
        "over the runs; lost, duplicated, closed-early and error counts are totals over all runs. "
        "**bridge ÷ Bun** rows divide the bridge's median by Bun's: below 1 is better for "
        "latency, CPU and memory, above 1 for deliveries/s and requests/s.\n"
    )

    def mode_of(n):
        for t in rep.targets(n):
            for r in rep.rows(n, t):
                if r.get("mode"):
                    return r["mode"]
        return None

    growth_like = lambda n: n.startswith("growth-") or n.startswith("channels-")  # noqa: E731
    fan = [n for n in cases if mode_of(n) == "fanout" and not growth_like(n) and "redis" not in cases[n]]
    red = [n for n in cases if mode_of(n) == "fanout" and "redis" in cases[n]]
    ing = [n for n in cases if mode_of(n) == "ingest"]
    idl = [n for n in cases if mode_of(n) == "idle"]
    rooms = [n for n in cases if mode_of(n) == "room"]
    alerts = [n for n in cases if mode_of(n) == "alerts"]
    known = (set(fan) | set(red) | set(ing) | set(idl) | set(rooms) | set(alerts)
             | {n for n in cases if growth_like(n)})
    other = [n for n in cases if n not in known]

    targets_section(rep, a)
    cpu_split_section(rep, [c for c in cases if mode_of(c) in ("fanout", "ingest")])

    if fan:
        fanout_section(
            rep, fan, "Fan-out",
            "Latency is from the start of the `POST /api/publish` call to the viewer's receipt "
            "of the frame; deliveries/s counts distinct deliveries from the first publish to the "
            "last delivery. CPU % is CPU time over the publish-and-drain interval as a share of "
            "one core (100 = the core was saturated); a load generator near 100 % means the "
            "figure is the load generator's limit, not the server's.",
        )
    if red:
        fanout_section(
            rep, red, "Fan-out through Redis (two instances)",
            "Redis mode (issue 4): two bridge instances sharing one Redis (`REDIS_URL`), both "
            "pinned to the same core, viewers split round-robin across them, every message "
            "published through the first instance, so every message goes through Redis and back "
            "over each instance's pub/sub subscription. Server CPU and RSS are the two instances "
            "summed. There is no Bun peer for this mode.",
        )
        redis_instances(rep, red)
    if ing:
        w("## Ingest (signed EventSub notifications to `/api/callback`)\n")
        w(
            "Lost = notifications answered 2xx minus the server's own "
            "`eventsub_bridge_messages_published_total`; watcher missed = what one viewer "
            "subscribed to the channel did not receive. Bun's peer checks the same HMAC and "
            "timestamp window and de-duplicates ids in a set, without the bridge's bounds.\n"
        )
        side_by_side(rep, ing, INGEST_COLS, ("count @ concurrency", lambda rs: (
            f"{rs[0].get('count', '?')} @ {rs[0].get('concurrency', '?')}" if rs else "–")))
    if idl:
        w("## Idle subscribed connections\n")
        w("Bytes per connection = (server RSS after holding − RSS before connecting) ÷ viewers.\n")
        side_by_side(rep, idl, IDLE_COLS, ("viewers", lambda rs: fmt(rs[0].get("viewers")) if rs else "–"))
    if rooms:
        w("## Rooms (`/websocket?room=`, issue 11)\n")
        w(
            "chat: one member sends chat messages at the given rate, every member (the sender too) "
            "receives them; compare with the `/ws` fan-out of the same size above. votes: every "
            "member, each its own viewer, votes once in one poll within the window; stats are "
            "coalesced to 10 a second. counter: every member adds 0.01 at 18/s (under the rate "
            "limit); the final value must be exact. Redis rows: two instances on one core, members "
            "split round-robin.\n"
        )
        side_by_side(rep, rooms, ROOM_COLS, ("what", room_what))
    if alerts:
        scen = lambda n: next((r.get("scenario") for t in rep.targets(n) for r in rep.rows(n, t)  # noqa: E731
                               if r.get("scenario")), None)
        w("## Alert overlays (`/overlay/{channel}/ws`, issue 10)\n")
        w(
            "Every alert is a donation through `POST /api/alerts/{channel}` (`PUBLISH_TOKEN`); each "
            "overlay acks an alert as soon as its frame arrives (the ack, not the duration, moves "
            "the queue: SPEC §8), within the 20 client frames a second of SPEC §5. Latency is from "
            "the start of the POST to the overlay's receipt of the alert frame. Redis rows: two "
            "instances on one core, every alert published through the first, overlays on both "
            "(throughput: round-robin; burst: starting with the second instance). There is no Bun "
            "peer for alerts (a pub/sub server has no queue, acks or exactly-once to compare).\n"
        )
        thr = [n for n in alerts if scen(n) != "burst"]
        bur = [n for n in alerts if scen(n) == "burst"]
        if thr:
            w("**Throughput**: one overlay per channel, every channel at a paced rate; a channel's "
              "alerts all go through one publishing connection, one after the other, so each must "
              "be shown in the order sent. CPU per accepted alert covers the POST, the queue, the "
              "frame and the ack. \"publish p99\" is the POST's own round trip; \"send lag p99\" "
              "is how late the load generator sent against its schedule (large: the offered rate "
              "was not reached).\n")
            side_by_side(rep, thr, ALERT_THROUGHPUT_COLS, ("what", alert_what))
        if bur:
            w("**Burst**: alerts into one channel at once. The queue holds `ALERT_QUEUE_LEN` (500) "
              "waiting alerts plus the one in flight; beyond that the API answers 429 (counted, not "
              "a failure). Every accepted alert must reach every overlay exactly once and in order "
              "(an alert whose 202 came back before another's POST started is shown first). With "
              "one overlay, its 20 acks a second set the pace; with K overlays the acks rotate "
              "among them (K × 20 a second), which shows the queue's own speed. Latencies here "
              "are mostly time spent waiting in the queue.\n")
            side_by_side(rep, bur, ALERT_BURST_COLS, ("what", alert_what))
    growth_section(rep, a.out)
    for n in other:
        rs_all = [r for t in rep.targets(n) for r in rep.rows(n, t)]
        w(f"## {n} ({mode_of(n) or 'failed'})\n")
        side_by_side(rep, [n], generic_cols(rs_all), ("runs", lambda rs: str(len(rs))))

    failed = []
    for n in cases:
        for t in rep.targets(n):
            for i, r in enumerate(rep.rows(n, t), 1):
                if not r.get("ok") or r.get("exit_code", 0) != 0 or not r.get("server_alive_after", True):
                    failed.append((n, t, i, r))
    if failed:
        w("## Runs with problems\n")
        for n, t, i, r in failed:
            bits = []
            for k in ["error", "viewers_failed", "lost", "duplicated", "out_of_order",
                      "shown_not_accepted", "unmarked", "closed_early", "non_2xx",
                      "error_count", "connect_errors", "publish_errors", "errors", "endings", "watch",
                      "slow_viewers_failed"]:
                v = r.get(k)
                if v not in (None, 0, {}, [], ""):
                    bits.append(f"{k}={json.dumps(v)}")
            if r.get("exit_code"):
                bits.append(f"exit_code={r['exit_code']}")
            if r.get("server_alive_after") is False:
                bits.append("server was not running at the end")
            w(f"- {n} [{NAMES.get(t, t)}] run {i}: " + ("; ".join(bits) or "not ok"))
        w()

    w("## Every run\n")
    w("| case | target | run | main figure | p50 ms | p99 ms | notes |")
    w("|---|---|---:|---|---:|---:|---|")
    for n in cases:
        for t in rep.targets(n):
            for i, r in enumerate(rep.rows(n, t), 1):
                mode = r.get("mode")
                if mode == "fanout":
                    main_fig = f"{fmt(r.get('deliveries_per_sec'))} deliveries/s"
                    notes = f"received {fmt(r.get('received'))}/{fmt(r.get('expected'))}"
                    if r.get("slow_viewers"):
                        ends = ", ".join(f"{k} {v}" for k, v in sorted((r.get("slow_endings") or {}).items()))
                        notes += f"; {r['slow_viewers']} slow viewers: {ends or '–'}"
                elif mode == "ingest":
                    main_fig = f"{fmt(r.get('requests_per_sec'))} requests/s"
                    notes = f"statuses {json.dumps(r.get('statuses'))}"
                elif mode == "idle":
                    main_fig = f"{fmt(r.get('bytes_per_connection'))} B/connection"
                    notes = f"{fmt(r.get('viewers_connected'))} connected"
                elif mode == "alerts":
                    tp = r.get("throughput") or {}
                    main_fig = f"{fmt(tp.get('value'))} {tp.get('unit', '')}"
                    notes = (f"accepted {fmt(r.get('accepted'))}, 429 {fmt(r.get('rejected_429'))}, "
                             f"shown {fmt(r.get('shown'))}")
                    if r.get("last_shown_ms") is not None:
                        notes += f", last shown at {fmt(r.get('last_shown_ms'))} ms"
                elif mode and r.get("throughput"):
                    tp = r["throughput"]
                    main_fig = f"{fmt(tp.get('value'))} {tp.get('unit', '')}"
                    notes = "ok" if r.get("ok") else "not ok"
                else:
                    main_fig = "failed" if not r.get("ok") else (mode or "–")
                    notes = r.get("error", "")
                w(f"| {n} | {NAMES.get(t, t)} | {i} | {main_fig} | {fmt_ms(lat(r, 'p50'))} | "
                  f"{fmt_ms(lat(r, 'p99'))} | {notes} |")
    w()

    w("## Commands\n")
    w("```")
    with open(a.commands) as f:
        w(f.read().rstrip())
    w("```")
    w()
    w(
        "PORT is a fresh port per run and SERVER_PID the server's process id (the load "
        "generator reads its CPU time and RSS from /proc). Reproduce with `bench/run.sh` "
        "(`bench/run.sh quick` for the smoke set, `bench/run.sh growth` for the growth cases alone)."
    )

    with open(a.out, "w") as f:
        f.write("\n".join(rep.lines) + "\n")


if __name__ == "__main__":
    main()
