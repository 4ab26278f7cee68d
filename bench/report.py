#!/usr/bin/env python3
"""Writes bench/RESULTS.md from the RESULT lines that bench/run.sh collected.

Each line of the results file is {"case", "run", "result": <loadgen RESULT json>}.
Speeds and latencies are the median over runs; loss, duplicates, early closes and
errors are summed over runs (any of them is a failure).
"""

import argparse
import json
import statistics
from collections import OrderedDict

# Issue 6 targets, by case name of the standard set.
TARGETS = {
    "fanout-1000x200-50ps": [("latency p99 (ms)", "le", 9.6, lambda r: lat(r, "p99"))],
    "fanout-5000x50-10ps": [("latency p99 (ms)", "le", 58.0, lambda r: lat(r, "p99"))],
    "fanout-1000x1000-flat": [
        ("deliveries/s", "ge", 1_500_000, lambda r: r.get("deliveries_per_sec"))
    ],
    "ingest-20000-c64": [
        ("requests/s", "ge", 30_000, lambda r: r.get("requests_per_sec")),
        ("latency p99 (ms)", "lt", 5.0, lambda r: lat(r, "p99")),
    ],
    "idle-10000": [
        ("bytes per connection", "le", 2600, lambda r: r.get("bytes_per_connection"))
    ],
}

# "A slow viewer never raises others' latency": each *-slowK case (K viewers that never
# read) against the case of the same shape without them. Met when the slow case's median
# p99 is within SLOW_P99_RATIO of the baseline's or at most SLOW_P99_SLACK_MS above it.
SLOW_BASELINES = {
    "fanout-1000x200-50ps-slow10": "fanout-1000x200-50ps-4k",
    "fanout-100x100-50ps-slow5": "fanout-100x100-50ps-4k",
}
SLOW_P99_RATIO = 1.2
SLOW_P99_SLACK_MS = 5.0


def lat(r, q):
    v = (r.get("latency_ms") or {}).get(q)
    return v


def div(v, d):
    return v / d if isinstance(v, (int, float)) and v else None


def med(values):
    vals = [v for v in values if isinstance(v, (int, float))]
    if not vals:
        return None
    return statistics.median(vals)


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


def fanout_row(n, rs):
    """One fan-out table row; callers may append further columns."""
    r0 = rs[0]
    rate = r0.get("rate")
    rate_s = "flat out" if not rate else f"{rate:g}/s"
    shape = f"{r0.get('viewers', '?')} × {r0.get('messages', '?')} @ {rate_s}"
    if r0.get("bytes"):
        shape += f", {r0['bytes']} B"
    if r0.get("slow_viewers"):
        shape += f", + {r0['slow_viewers']} slow"
    return (
        f"| {n} | {shape} | {fmt(med([r.get('deliveries_per_sec') for r in rs]))} | "
        f"{fmt_ms(med([lat(r, 'p50') for r in rs]))} | "
        f"{fmt_ms(med([lat(r, 'p90') for r in rs]))} | "
        f"{fmt_ms(med([lat(r, 'p99') for r in rs]))} | "
        f"{fmt_ms(med([lat(r, 'max') for r in rs]))} | "
        f"{fmt(total([r.get('lost') for r in rs]))} | "
        f"{fmt(total([r.get('duplicated') for r in rs]))} | "
        f"{fmt(total([r.get('closed_early') for r in rs]))} | "
        f"{fmt_ms(med([r.get('server_cpu_us_per_delivery') for r in rs]))} | "
        f"{pct(med([r.get('server_cpu_util') for r in rs]))} | "
        f"{pct(med([r.get('loadgen_cpu_util') for r in rs]))} | "
        f"{fmt(med([div(r.get('server_peak_rss_kb'), 1024) for r in rs]), 1)} |"
    )


def main():
    ap = argparse.ArgumentParser()
    for flag in [
        "results", "commands", "out", "set", "commit", "date", "cpu", "kernel",
        "server-cpu", "loadgen-cpu", "loadavg",
    ]:
        ap.add_argument("--" + flag, required=True)
    ap.add_argument("--calibration", default="{}")
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
            cases.setdefault(row["case"], []).append(row["result"])

    out = []
    w = out.append
    title = "Benchmark results" if a.set == "full" else "Benchmark results (quick smoke set)"
    w(f"# {title}\n")
    w("Written by `bench/run.sh" + (" quick" if a.set == "quick" else "") + "`; do not edit by hand.\n")
    w(f"- **Date**: {a.date}")
    w(f"- **Commit**: `{a.commit}`")
    w(
        f"- **Machine**: {a.nproc} CPUs ({a.cpu}), {a.mem_kb / 1048576:.1f} GiB memory, "
        f"Linux {a.kernel}"
    )
    cal = json.loads(a.calibration or "{}")
    if "tcp_send_recv_us" in cal:
        w(
            f"- **Host speed** (`loadgen calibrate`): one system call {cal['syscall_ns']:.0f} ns; "
            f"one 256-byte loopback TCP write + read {cal['tcp_send_recv_us']:.2f} µs. Hosts of "
            "the same machine kind differ by several times here; compare tables only between "
            "runs with similar figures"
        )
    w(
        f"- **Load average when the run started**: {a.loadavg} (anything well above 0 means "
        "other work shared the cores and the figures are pessimistic)"
    )
    w(
        f"- **Method**: a fresh server per run pinned to CPU {a.server_cpu}, the load generator "
        f"(`bench/loadgen`) pinned to CPU {a.loadgen_cpu} (Redis-mode cases: two instances, "
        f"both on CPU {a.server_cpu}); {a.repeats} run(s) per case. Speeds "
        "and latencies are medians over the runs; lost, duplicated, closed-early and error "
        "counts are totals over all runs.\n"
    )

    fan = [(n, rs) for n, rs in cases.items() if n.startswith("fanout")]
    red = [(n, rs) for n, rs in cases.items() if n.startswith("redis-fanout")]
    ing = [(n, rs) for n, rs in cases.items() if n.startswith("ingest")]
    idl = [(n, rs) for n, rs in cases.items() if n.startswith("idle")]
    failed_runs = []
    for n, rs in cases.items():
        for i, r in enumerate(rs, 1):
            if not r.get("ok") or r.get("exit_code", 0) != 0 or not r.get("server_alive_after", True):
                failed_runs.append((n, i, r))

    if fan:
        w("## Fan-out\n")
        w(
            "Latency is from the start of the `POST /api/publish` call to the viewer's "
            "receipt of the frame; deliveries/s counts distinct deliveries from the first "
            "publish to the last delivery. CPU % is CPU time over the publish-and-drain "
            "interval as a share of one core (100 = the core was saturated); a load "
            "generator near 100 % means the figure is the load generator's limit, not the "
            "server's.\n"
        )
        w(
            "| case | viewers × messages @ rate | deliveries/s | p50 ms | p90 ms | p99 ms | "
            "max ms | lost | dup | closed early | server CPU µs/delivery | server CPU % | "
            "loadgen CPU % | server peak RSS MiB |"
        )
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, rs in fan:
            w(fanout_row(n, rs))
        w("")
        slow = [(n, rs) for n, rs in fan if any(r.get("slow_viewers") for r in rs)]
        if slow:
            w(
                "Slow viewers (\"+ K slow\"): K more viewers subscribe and then never read "
                "their socket; they are not in the figures above. Unread = bytes waiting in "
                "their sockets when the drain ended (median over runs, summed over the slow "
                "viewers); endings are totals over all runs, found by reading their sockets "
                "after the measurement (open = still open, nothing more arrived; "
                "close_4008 = closed as a slow consumer).\n"
            )
            w(
                "| case | slow viewers per run | subscribed (all runs) | unread at drain end KiB | "
                "closed by server (all runs) | endings (all runs) |"
            )
            w("|---|---:|---:|---:|---:|---|")
            for n, rs in slow:
                endings = {}
                for r in rs:
                    for k, v in (r.get("slow_endings") or {}).items():
                        endings[k] = endings.get(k, 0) + v
                end_s = ", ".join(f"{k} {v}" for k, v in sorted(endings.items())) or "–"
                w(
                    f"| {n} | {fmt(med([r.get('slow_viewers') for r in rs]))} | "
                    f"{fmt(total([r.get('slow_viewers_connected') for r in rs]))} of "
                    f"{fmt(total([r.get('slow_viewers') for r in rs]))} | "
                    f"{fmt(med([div(r.get('slow_unread_bytes'), 1024) for r in rs]))} | "
                    f"{fmt(total([r.get('slow_viewers_closed') for r in rs]))} | {end_s} |"
                )
            w("")

    if red:
        w("## Fan-out through Redis (two instances)\n")
        w(
            "Redis mode (issue 4): two server instances sharing one Redis (`REDIS_URL`), both "
            "pinned to the same core, viewers split round-robin across them, every message "
            "published through the first instance. So half of the viewers get each message "
            "from the instance it was published on and half from the other one; both halves "
            "go through Redis (the publishing instance hears its own message back over "
            "pub/sub). Server CPU and RSS are the two instances summed; Redis CPU % is the "
            "(unpinned) Redis server's CPU time over the same interval.\n"
        )
        w(
            "| case | viewers × messages @ rate | deliveries/s | p50 ms | p90 ms | p99 ms | "
            "max ms | lost | dup | closed early | server CPU µs/delivery | server CPU % | "
            "loadgen CPU % | server peak RSS MiB | Redis CPU % |"
        )
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, rs in red:
            w(fanout_row(n, rs) + f" {pct(med([r.get('redis_cpu_util') for r in rs]))} |")
        w("")
        w("Per instance (medians over runs; lost and dup are totals):\n")
        w("| case | instance | viewers | p50 ms | p99 ms | lost | dup | server CPU % | peak RSS MiB |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, rs in red:
            count = max(len(r.get("instances") or []) for r in rs)
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
        w("")

    if ing:
        w("## Ingest (signed EventSub notifications to `/api/callback`)\n")
        w(
            "Lost = notifications answered 2xx minus the server's own "
            "`eventsub_bridge_messages_published_total`; watcher missed = what one viewer "
            "subscribed to the channel did not receive (with how its connection ended, "
            "e.g. close_4008 = closed as a slow consumer).\n"
        )
        w(
            "| case | count @ concurrency | requests/s | p50 ms | p90 ms | p99 ms | max ms | "
            "non-2xx | errors | lost | watcher missed | server CPU µs/request | server CPU % | "
            "loadgen CPU % |"
        )
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n, rs in ing:
            r0 = rs[0]
            lost = [r.get("lost") for r in rs]
            lost_s = "not checked" if all(x is None for x in lost) else fmt(total(lost))
            watches = [r.get("watch") or {} for r in rs]
            if all(not wt for wt in watches):
                watch_s = "–"
            else:
                watch_s = fmt(total([wt.get("missed") for wt in watches]))
                endings = sorted({wt.get("ending") for wt in watches if wt.get("ending") not in (None, "open")})
                if endings:
                    watch_s += " (" + ", ".join(endings) + ")"
            w(
                f"| {n} | {r0.get('count', '?')} @ {r0.get('concurrency', '?')} | "
                f"{fmt(med([r.get('requests_per_sec') for r in rs]))} | "
                f"{fmt_ms(med([lat(r, 'p50') for r in rs]))} | "
                f"{fmt_ms(med([lat(r, 'p90') for r in rs]))} | "
                f"{fmt_ms(med([lat(r, 'p99') for r in rs]))} | "
                f"{fmt_ms(med([lat(r, 'max') for r in rs]))} | "
                f"{fmt(total([r.get('non_2xx') for r in rs]))} | "
                f"{fmt(total([r.get('error_count') for r in rs]))} | {lost_s} | {watch_s} | "
                f"{fmt_ms(med([r.get('server_cpu_us_per_request') for r in rs]))} | "
                f"{pct(med([r.get('server_cpu_util') for r in rs]))} | "
                f"{pct(med([r.get('loadgen_cpu_util') for r in rs]))} |"
            )
        w("")

    if idl:
        w("## Idle subscribed connections\n")
        w(
            "| case | viewers | held s | RSS before MiB | RSS after MiB | bytes per connection | "
            "failed | closed early |"
        )
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for n, rs in idl:
            r0 = rs[0]
            w(
                f"| {n} | {r0.get('viewers', '?')} | {r0.get('seconds', '?')} | "
                f"{fmt(med([div(r.get('rss_before'), 1048576) for r in rs]), 1)} | "
                f"{fmt(med([div(r.get('rss_after'), 1048576) for r in rs]), 1)} | "
                f"{fmt(med([r.get('bytes_per_connection') for r in rs]))} | "
                f"{fmt(total([r.get('viewers_failed') for r in rs]))} | "
                f"{fmt(total([r.get('closed_early') for r in rs]))} |"
            )
        w("")

    checks = [(n, t) for n, t in TARGETS.items() if n in cases]
    slow_checks = [(n, b) for n, b in SLOW_BASELINES.items() if n in cases]
    if checks or slow_checks:
        w("## Targets (issue 6)\n")
        w("| case | measure | target | median | met |")
        w("|---|---|---:|---:|---|")
        for n, ts in checks:
            rs = cases[n]
            for label, op, goal, get in ts:
                m = med([get(r) for r in rs])
                if m is None:
                    met = "no data"
                elif op == "ge":
                    met = "yes" if m >= goal else "**no**"
                elif op == "le":
                    met = "yes" if m <= goal else "**no**"
                else:
                    met = "yes" if m < goal else "**no**"
                sym = {"ge": "≥", "le": "≤", "lt": "<"}[op]
                shown = fmt_ms(m) if "ms" in label else fmt(m)
                w(f"| {n} | {label} | {sym} {goal:,} | {shown} | {met} |")
            watches = [r.get("watch") or {} for r in rs]
            bad = (
                total([r.get("lost") for r in rs])
                + total([r.get("duplicated") for r in rs])
                + total([wt.get("missed") for wt in watches])
                + total([wt.get("duplicated") for wt in watches])
            )
            w(f"| {n} | lost + duplicated | 0 | {fmt(bad)} (total) | {'yes' if bad == 0 else '**no**'} |")
        for n, base in slow_checks:
            rs = cases[n]
            m = med([lat(r, "p99") for r in rs])
            b = med([lat(r, "p99") for r in cases.get(base, [])])
            if m is None or b is None:
                goal_s = f"≤ {base} p99 × {SLOW_P99_RATIO:g} or + {SLOW_P99_SLACK_MS:g} ms"
                met = "no data" if m is None else f"no data ({base} not run)"
            else:
                limit = max(b * SLOW_P99_RATIO, b + SLOW_P99_SLACK_MS)
                goal_s = f"≤ {limit:.2f} ({base} {b:.2f} × {SLOW_P99_RATIO:g} or + {SLOW_P99_SLACK_MS:g} ms)"
                met = "yes" if m <= limit else "**no**"
            w(f"| {n} | slow viewers do not raise others' p99 (ms) | {goal_s} | {fmt_ms(m)} | {met} |")
            bad = total([r.get("lost") for r in rs]) + total([r.get("duplicated") for r in rs])
            w(f"| {n} | lost + duplicated (other viewers) | 0 | {fmt(bad)} (total) | {'yes' if bad == 0 else '**no**'} |")
        w("")

    if failed_runs:
        w("## Runs with problems\n")
        for n, i, r in failed_runs:
            bits = []
            for k in ["error", "viewers_failed", "lost", "duplicated", "closed_early", "non_2xx",
                      "error_count", "connect_errors", "publish_errors", "errors", "endings", "watch",
                      "slow_viewers_failed"]:
                v = r.get(k)
                if v not in (None, 0, {}, [], ""):
                    bits.append(f"{k}={json.dumps(v)}")
            if r.get("exit_code"):
                bits.append(f"exit_code={r['exit_code']}")
            if r.get("server_alive_after") is False:
                bits.append("server was not running at the end")
            w(f"- {n} run {i}: " + ("; ".join(bits) or "not ok"))
        w("")

    w("## Every run\n")
    w("| case | run | main figure | p50 ms | p99 ms | notes |")
    w("|---|---:|---|---:|---:|---|")
    for n, rs in cases.items():
        for i, r in enumerate(rs, 1):
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
            else:
                main_fig = "failed"
                notes = r.get("error", "")
            w(
                f"| {n} | {i} | {main_fig} | {fmt_ms(lat(r, 'p50'))} | {fmt_ms(lat(r, 'p99'))} | "
                f"{notes} |"
            )
    w("")

    w("## Commands\n")
    w("```")
    with open(a.commands) as f:
        w(f.read().rstrip())
    w("```")
    w("")
    w(
        "PORT is a fresh port per run and SERVER_PID the server's process id (the load "
        "generator reads its CPU time and RSS from /proc). Reproduce with `bench/run.sh` "
        "(or `bench/run.sh quick` for the smoke set)."
    )

    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
