#!/usr/bin/env bash
# Benchmark harness for eventsub-bridge (issues 6 and 14).
#
#   bench/run.sh          the standard set, 3 runs per case, writes bench/RESULTS.md
#   bench/run.sh quick    a small smoke set (100-500 viewers), 1 run per case,
#                         writes bench/out/<stamp>-quick/RESULTS.md
#   bench/run.sh growth   only the growth cases (1k/5k/10k/18k viewers on one channel;
#                         1,000 channels x 10), which the standard set also runs (once each);
#                         writes bench/out/<stamp>-growth/RESULTS.md and its plots
#
# Every case runs against one or more *targets*, in the same run of this script, with
# the same load generator (bench/loadgen, pinned to CPU 1):
#   bridge   a fresh release server pinned to CPU 0 (memory broker)
#   bun      the peer: bench/peer/bun-server.js, a bare Bun (uWebSockets) pub/sub server
#            that speaks what the load generator speaks, pinned to CPU 0
#   redis    two fresh bridge instances sharing one Redis and SESSION_KEY, both pinned
#            to CPU 0, viewers split round-robin, every message published through the
#            first; each run uses a channel of its own, so nothing is flushed
# Runs alternate between the targets (bridge run 1, bun run 1, bridge run 2, ...), so
# that whatever else the machine does falls on both. Logs and raw results go to
# bench/out/<stamp>-<set>/ (git-ignored). The report is always written; the exit status
# is non-zero when a run failed or saw loss, duplicates, errors or early closes (missed
# performance targets alone do not fail it).
#
# Adding a case: one line in CASE_LIST below, "name|targets|loadgen subcommand and its
# arguments". The script adds, per run: --url URL and --pid PID (once per instance, in
# the same order), and the environment PUBLISH_TOKEN, EVENTSUB_SECRET, ROOM_SIGNING_KEY,
# ADMIN_TOKEN, BENCH_CHANNEL (the channel to use: a fresh one per run in Redis mode) and
# BENCH_REDIS_PID (Redis mode). A new loadgen subcommand takes those and prints
# `RESULT {json}` with at least "mode" and "ok"; report.py shows any mode it does not
# know in a generic table (see bench/README.md, "Adding a case").
#
# Environment knobs:
#   REPEATS=N            runs per case and target (default 3; quick and growth: 1)
#   GROWTH_REPEATS=N     runs per growth case and target (default 1)
#   CASES="a b"          only these case names (see the tables below)
#   TARGETS="bridge"     only these targets (default: every target a case names)
#   SKIP_BUILD=1         do not run cargo build
#   CARGO_TARGET_DIR     where the server is built (default ./target)
#   SERVER_BIN=path      server binary (default $CARGO_TARGET_DIR/release/eventsub-bridge)
#   BUN=path             the Bun binary (default: bench/peer's npm install of
#                        @oven/bun-linux-x64, installed with npm on first use)
#   LOADGEN_TARGET_DIR   where loadgen is built (default bench/loadgen/target)
#   SERVER_CPU / LOADGEN_CPU   CPUs to pin to (default 0 / 1; both Redis-mode instances
#                        share SERVER_CPU)
#   BASE_PORT            first port to use; each run takes the next one, Redis-mode runs
#                        the next two (default 18080)
#   RESULTS=path         where to write the report
set -euo pipefail

SET=${1:-full}
case "$SET" in
full | quick | growth) ;;
*)
  echo "usage: bench/run.sh [full|quick|growth]" >&2
  exit 2
  ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ $SET == full ]]; then
  REPEATS=${REPEATS:-3}
else
  REPEATS=${REPEATS:-1}
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=${SERVER_BIN:-$TARGET_DIR/release/eventsub-bridge}
LOADGEN_TARGET_DIR=${LOADGEN_TARGET_DIR:-$ROOT/bench/loadgen/target}
LOADGEN=$LOADGEN_TARGET_DIR/release/loadgen
PEER_DIR=$ROOT/bench/peer
BUN=${BUN:-$PEER_DIR/node_modules/@oven/bun-linux-x64/bin/bun}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
PORT=${BASE_PORT:-18080}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/out/$STAMP-$SET
case "$SET" in
full) RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md} ;;
*) RESULTS=${RESULTS:-$OUT/RESULTS.md} ;;
esac

# Fixed, benchmark-only credentials: the servers run in local mode on loopback.
export PUBLISH_TOKEN=bench-publish-token
export EVENTSUB_SECRET=bench-eventsub-secret-0123456789
export ROOM_SIGNING_KEY=bench-room-signing-key
export ADMIN_TOKEN=bench-admin-token # the alert API: overlay keys (alerts-* cases)
CHANNEL=benchchannel
# Redis mode: the Redis every instance shares, and one SESSION_KEY for all instances (the
# load generator signs in on each instance anyway).
REDIS_PORT=6379
BENCH_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
SESSION_KEY=$(printf 'be0c%.0s' $(seq 1 32)) # 128 hex characters
REDIS_INSTANCES=2

# name|targets|loadgen arguments (without --url, --pid).
# *-slowK cases add K viewers that never read (issue 6: "a slow viewer never raises
# others' latency"); report.py compares them with the *-4k case of the same shape.
# Flat-out cases keep 32 publishes in flight (issue 14's measurement).
# The growth run (issue 14): flat out, 32 publishes in flight, about a million deliveries
# per case; the channels-* pair has the same 10,000 viewers and deliveries either way
# (growth-10000 is also 1 channel x 10,000). One run each (GROWTH_REPEATS).
GROWTH_CASES=(
  "growth-1000|bridge bun|fanout --viewers 1000 --messages 1000 --bytes 256 --rate 0 --publishers 32"
  "growth-5000|bridge bun|fanout --viewers 5000 --messages 200 --bytes 256 --rate 0 --publishers 32"
  "growth-10000|bridge bun|fanout --viewers 10000 --messages 100 --bytes 256 --rate 0 --publishers 32"
  "growth-18000|bridge bun|fanout --viewers 18000 --messages 60 --bytes 256 --rate 0 --publishers 32"
  "channels-1000x10|bridge bun|fanout --viewers 10000 --channels 1000 --messages 100000 --bytes 256 --rate 0 --publishers 32"
)
GROWTH_REPEATS=${GROWTH_REPEATS:-1}
is_growth() { [[ $1 == growth-* || $1 == channels-* ]]; }

case "$SET" in
full)
  CASE_LIST=(
    "fanout-1000x200-50ps|bridge bun|fanout --viewers 1000 --messages 200 --bytes 256 --rate 50"
    "fanout-1000x200-50ps-4k|bridge bun|fanout --viewers 1000 --messages 200 --bytes 4096 --rate 50"
    "fanout-1000x200-50ps-slow10|bridge bun|fanout --viewers 1000 --messages 200 --bytes 4096 --rate 50 --slow-viewers 10"
    "fanout-5000x50-10ps|bridge bun|fanout --viewers 5000 --messages 50 --bytes 256 --rate 10"
    "fanout-1000x1000-flat|bridge bun|fanout --viewers 1000 --messages 1000 --bytes 256 --rate 0 --publishers 32"
    "redis-fanout-1000x200-50ps|redis|fanout --viewers 1000 --messages 200 --bytes 256 --rate 50"
    "redis-fanout-1000x1000-flat|redis|fanout --viewers 1000 --messages 1000 --bytes 256 --rate 0 --publishers 32"
    "ingest-20000-c64|bridge bun|ingest --count 20000 --concurrency 64"
    "idle-10000|bridge bun|idle --viewers 10000 --seconds 10"
    "room-chat-5000x50-10ps|bridge redis|room --scenario chat --members 5000 --messages 50 --rate 10"
    "room-votes-5000|bridge redis|room --scenario votes --members 5000 --window 1"
    "room-counter-1000x100|bridge redis|room --scenario counter --members 1000 --messages 100 --rate 10"
    "alerts-10000ch-1ps|bridge redis|alerts --scenario throughput --channels 10000 --seconds 10 --rate 1 --publishers 256"
    "alerts-burst-1000|bridge redis|alerts --scenario burst --alerts 1000 --concurrency 64"
    "alerts-burst-1000-o32|bridge redis|alerts --scenario burst --alerts 1000 --concurrency 64 --overlays 32"
    "${GROWTH_CASES[@]}"
  )
  ;;
quick)
  CASE_LIST=(
    "fanout-100x100-50ps|bridge bun|fanout --viewers 100 --messages 100 --bytes 256 --rate 50"
    "fanout-100x100-50ps-4k|bridge bun|fanout --viewers 100 --messages 100 --bytes 4096 --rate 50"
    "fanout-100x100-50ps-slow5|bridge bun|fanout --viewers 100 --messages 100 --bytes 4096 --rate 50 --slow-viewers 5"
    "fanout-100x200-flat|bridge bun|fanout --viewers 100 --messages 200 --bytes 256 --rate 0 --publishers 32"
    "redis-fanout-100x100-50ps|redis|fanout --viewers 100 --messages 100 --bytes 256 --rate 50"
    "redis-fanout-100x200-flat|redis|fanout --viewers 100 --messages 200 --bytes 256 --rate 0 --publishers 32"
    "ingest-2000-c16|bridge bun|ingest --count 2000 --concurrency 16"
    "idle-500|bridge bun|idle --viewers 500 --seconds 2"
    "room-chat-200x20-10ps|bridge redis|room --scenario chat --members 200 --messages 20 --rate 10"
    "room-votes-300|bridge redis|room --scenario votes --members 300 --window 1"
    "room-counter-100x20|bridge redis|room --scenario counter --members 100 --messages 20 --rate 10"
    "alerts-200ch-1ps|bridge redis|alerts --scenario throughput --channels 200 --seconds 5 --rate 1"
    "alerts-burst-200|bridge redis|alerts --scenario burst --alerts 200 --concurrency 16"
    "alerts-burst-200-o8|bridge redis|alerts --scenario burst --alerts 200 --concurrency 16 --overlays 8"
  )
  ;;
growth) CASE_LIST=("${GROWTH_CASES[@]}") ;;
esac

mkdir -p "$OUT"
: >"$OUT/results.jsonl"
: >"$OUT/commands.txt"

# Raise our open-files limit so that the servers (children) inherit it.
ulimit -n "$(ulimit -Hn)"

# The servers of the current run (one, or REDIS_INSTANCES in Redis mode).
SERVER_PIDS=()
stop_server() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

selected() { [[ -z ${CASES:-} || " $CASES " == *" $1 "* ]]; }
# The targets of a case entry, less those TARGETS leaves out.
targets_of() {
  local t out=()
  for t in $1; do
    [[ -z ${TARGETS:-} || " $TARGETS " == *" $t "* ]] && out+=("$t")
  done
  echo "${out[*]}"
}
want_target() {
  local entry rest name
  for entry in "${CASE_LIST[@]}"; do
    name=${entry%%|*}
    rest=${entry#*|}
    selected "$name" && [[ " $(targets_of "${rest%%|*}") " == *" $1 "* ]] && return 0
  done
  return 1
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building the server (cargo build --release)"
  cargo build --release --quiet
  log "building the load generator"
  CARGO_TARGET_DIR=$LOADGEN_TARGET_DIR cargo build --release --quiet \
    --manifest-path "$ROOT/bench/loadgen/Cargo.toml"
fi
for bin in "$SERVER_BIN" "$LOADGEN"; do
  [[ -x $bin ]] || {
    echo "missing binary $bin" >&2
    exit 1
  }
done
if want_target bun && [[ ! -x $BUN ]]; then
  command -v npm >/dev/null || {
    echo "the Bun peer needs npm (to install @oven/bun-linux-x64), or BUN=path" >&2
    exit 1
  }
  log "installing the Bun peer (npm ci in bench/peer)"
  npm ci --prefix "$PEER_DIR" --no-audit --no-fund --silent
  [[ -x $BUN ]] || {
    echo "no Bun binary at $BUN after npm ci" >&2
    exit 1
  }
fi
BUN_VERSION=
want_target bun && BUN_VERSION=$("$BUN" --version)

{
  echo "bridge: taskset -c $SERVER_CPU env BIND=127.0.0.1:PORT PUBLISH_TOKEN=$PUBLISH_TOKEN EVENTSUB_SECRET=$EVENTSUB_SECRET ROOM_SIGNING_KEY=$ROOM_SIGNING_KEY ADMIN_TOKEN=$ADMIN_TOKEN RUST_LOG=warn ${SERVER_BIN#"$ROOT"/} serve  (ulimit -n $(ulimit -n))"
  [[ -n $BUN_VERSION ]] && echo "bun: taskset -c $SERVER_CPU env BIND=127.0.0.1:PORT PUBLISH_TOKEN=$PUBLISH_TOKEN EVENTSUB_SECRET=$EVENTSUB_SECRET ${BUN#"$ROOT"/} bench/peer/bun-server.js  (Bun $BUN_VERSION)"
} >>"$OUT/commands.txt"

redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# Redis mode needs a Redis on 127.0.0.1:$REDIS_PORT; start a throw-away one (no
# persistence) when none answers. Whatever runs there is used as is and never flushed.
REDIS_PID=
ensure_redis() {
  command -v redis-cli >/dev/null || {
    echo "Redis-mode cases need redis-cli (and redis-server) on PATH" >&2
    return 1
  }
  if [[ $(redis_cli ping 2>/dev/null) != PONG ]]; then
    command -v redis-server >/dev/null || {
      echo "no Redis answers on port $REDIS_PORT and redis-server is not installed" >&2
      return 1
    }
    log "starting redis-server on port $REDIS_PORT (no persistence; left running)"
    redis-server --daemonize yes --port "$REDIS_PORT" --save '' --appendonly no >/dev/null
    for _ in $(seq 1 50); do
      [[ $(redis_cli ping 2>/dev/null) == PONG ]] && break
      sleep 0.1
    done
    [[ $(redis_cli ping 2>/dev/null) == PONG ]] || {
      echo "redis-server did not answer on port $REDIS_PORT" >&2
      return 1
    }
  fi
  REDIS_PID=$(redis_cli info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "process_id" {print $2}')
  log "Redis $(redis_cli info server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "redis_version" {print $2}') on port $REDIS_PORT (pid ${REDIS_PID:-unknown})"
}

# start_server TARGET PORT LOGFILE: starts one instance of TARGET (bridge, bun, or a
# Redis-mode bridge for redis), adds its PID to SERVER_PIDS and waits until it is ready.
start_server() {
  local target=$1 port=$2 logfile=$3 pid ready=/healthz
  local -a mode_env=(-u REDIS_URL -u SESSION_KEY)
  local -a cmd=("$SERVER_BIN" serve)
  case "$target" in
  redis)
    mode_env=(REDIS_URL="$BENCH_REDIS_URL" SESSION_KEY="$SESSION_KEY")
    ready=/readyz # 200 once Redis and the pub/sub connection are up
    ;;
  bun) cmd=("$BUN" "$PEER_DIR/bun-server.js") ;;
  esac
  taskset -c "$SERVER_CPU" env -u TWITCH_CLIENT_ID -u TWITCH_CLIENT_SECRET \
    -u PUBLIC_URL "${mode_env[@]}" ADMIN_TOKEN="$ADMIN_TOKEN" BIND="127.0.0.1:$port" RUST_LOG=warn \
    "${cmd[@]}" >"$logfile" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server exited at start; log:" >&2
      tail -20 "$logfile" >&2
      return 1
    fi
    if curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port$ready"; then
      return 0
    fi
    sleep 0.1
  done
  echo "server did not answer $ready within 30 s" >&2
  return 1
}

# User and kernel CPU of the servers (clock ticks, summed over the instances), read
# before and after each run: the kernel's share is what no user-space change can remove.
server_cpu_ticks() {
  local u=0 s=0 pid f
  for pid in "$@"; do
    # Fields after the ")" of /proc/PID/stat: utime is the 12th, stime the 13th.
    read -r -a f <<<"$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null || echo)"
    u=$((u + ${f[11]:-0}))
    s=$((s + ${f[12]:-0}))
  done
  echo "$u,$s"
}

server_hwm_kb() {
  awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# System calls that write to sockets, counted per run with perf's syscall tracepoints
# (cheap, unlike strace) when this kernel allows it: writes per delivery is how well a
# server batches frames.
PERF_WRITES=0
if command -v perf >/dev/null &&
  perf stat -x, -e syscalls:sys_enter_sendto -o /dev/null true >/dev/null 2>&1; then
  PERF_WRITES=1
fi
WRITE_EVENTS=syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev

REDIS_OK=1
if want_target redis; then
  ensure_redis || REDIS_OK=0
  echo "redis: $REDIS_INSTANCES bridge instances as above plus REDIS_URL=$BENCH_REDIS_URL SESSION_KEY=<fixed 128 hex>, each taskset -c $SERVER_CPU; ready when /readyz answers 200" >>"$OUT/commands.txt"
fi

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
# This host's kernel speed (hosts of one machine kind differ by several times), on the
# load generator's CPU before anything else runs.
CALIBRATION=$(taskset -c "$LOADGEN_CPU" "$LOADGEN" calibrate | sed -n 's/^RESULT //p' || true)
log "host calibration: $CALIBRATION"
FAILED=0
for entry in "${CASE_LIST[@]}"; do
  name=${entry%%|*}
  rest=${entry#*|}
  args=${rest#*|}
  selected "$name" || continue
  read -r -a targets <<<"$(targets_of "${rest%%|*}")"
  [[ ${#targets[@]} -gt 0 ]] || continue
  read -r -a argv <<<"$args"
  for target in "${targets[@]}"; do
    if [[ $target == redis ]]; then
      echo "$name [redis]: taskset -c $LOADGEN_CPU ${LOADGEN#"$ROOT"/} ${argv[*]} --url http://127.0.0.1:PORT1 --url http://127.0.0.1:PORT2 --pid SERVER_PID1 --pid SERVER_PID2  (BENCH_CHANNEL=bench_HHMMSS_PORT1, new per run; BENCH_REDIS_PID=REDIS_PID)" >>"$OUT/commands.txt"
    else
      echo "$name [$target]: taskset -c $LOADGEN_CPU ${LOADGEN#"$ROOT"/} ${argv[*]} --url http://127.0.0.1:PORT --pid SERVER_PID  (BENCH_CHANNEL=$CHANNEL)" >>"$OUT/commands.txt"
    fi
  done

  runs=$REPEATS
  is_growth "$name" && runs=$GROWTH_REPEATS
  for run in $(seq 1 "$runs"); do
    for target in "${targets[@]}"; do
      instances=1
      [[ $target == redis ]] && instances=$REDIS_INSTANCES
      ports=()
      for _ in $(seq 1 "$instances"); do
        PORT=$((PORT + 1))
        ports+=("$PORT")
      done
      log "$name [$target] run $run/$runs (port${ports[1]:+s} ${ports[*]})"
      started=1
      if [[ $target == redis && $REDIS_OK != 1 ]]; then
        started=0
      else
        for k in "${!ports[@]}"; do
          start_server "$target" "${ports[$k]}" "$OUT/server-$name-$target-$run-i$k.log" || {
            started=0
            break
          }
        done
      fi
      if [[ $started == 0 ]]; then
        FAILED=1
        why="server did not start"
        [[ $target == redis && $REDIS_OK != 1 ]] && why="no Redis on port $REDIS_PORT"
        python3 -c 'import json,sys; print(json.dumps({"case":sys.argv[1],"target":sys.argv[2],"run":int(sys.argv[3]),"result":{"ok":False,"error":sys.argv[4]}}))' \
          "$name" "$target" "$run" "$why" >>"$OUT/results.jsonl"
        stop_server
        continue
      fi
      urls=()
      pids=()
      for k in "${!ports[@]}"; do
        urls+=(--url "http://127.0.0.1:${ports[$k]}")
        pids+=(--pid "${SERVER_PIDS[$k]}")
      done
      channel=$CHANNEL
      # Redis mode: a channel of its own per run (1-25 of a-z 0-9 _), no earlier history.
      [[ $target == redis ]] && channel=bench_${STAMP:9:6}_${ports[0]}
      log_file=$OUT/$name-$target-$run.log
      run_env=(BENCH_CHANNEL="$channel")
      [[ $target == redis && -n $REDIS_PID ]] && run_env+=(BENCH_REDIS_PID="$REDIS_PID")
      perf_pid=
      if [[ $PERF_WRITES == 1 ]]; then
        perf stat -x, -e "$WRITE_EVENTS" -o "$OUT/perf-$name-$target-$run.csv" \
          -p "$(IFS=,; echo "${SERVER_PIDS[*]}")" >/dev/null 2>&1 &
        perf_pid=$!
      fi
      cpu_before=$(server_cpu_ticks "${SERVER_PIDS[@]}")
      rc=0
      env "${run_env[@]}" taskset -c "$LOADGEN_CPU" "$LOADGEN" "${argv[@]}" "${urls[@]}" "${pids[@]}" \
        >"$log_file" 2>&1 || rc=$?
      writes=
      if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        writes=$(awk -F, '$3 ~ /sys_enter_(sendto|write|writev)$/ {s += $1} END {print s + 0}' \
          "$OUT/perf-$name-$target-$run.csv" 2>/dev/null || true)
      fi
      cpu_after=$(server_cpu_ticks "${SERVER_PIDS[@]}")
      hwms=()
      alive=1
      for pid in "${SERVER_PIDS[@]}"; do
        hwms+=("$(server_hwm_kb "$pid")")
        kill -0 "$pid" 2>/dev/null || alive=0
      done
      hwm=$(IFS=,; echo "${hwms[*]}")
      stop_server
      if [[ $target == redis ]]; then
        # Drop this run's history stream (default key prefix esb); nothing else is touched.
        redis_cli del "esb:ch:$channel" >/dev/null 2>&1 || true
        # Alert cases: the channel's (or channels' "${channel}_N") queue, recent list, key.
        if [[ $name == alerts-* ]]; then
          redis_cli --scan --pattern "esb:al:${channel}*" 2>/dev/null |
            xargs -r -n 500 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" del >/dev/null 2>&1 || true
        fi
      fi
      { grep -v '^RESULT ' "$log_file" || true; } | sed 's/^/    /'
      result=$({ grep '^RESULT ' "$log_file" || true; } | tail -1 | cut -c8-)
      [[ -n $result ]] || result='{"ok":false,"error":"no RESULT line"}'
      [[ $rc == 0 && $alive == 1 ]] || FAILED=1
      python3 -c '
import json, sys
name, target, run, rc, hwm, alive, result, instances, writes, cpu0, cpu1, tck = sys.argv[1:13]
try:
    r = json.loads(result)
except ValueError:
    r = {"ok": False, "error": "unparsable RESULT line"}
each = [int(x or 0) for x in hwm.split(",")]
r["exit_code"] = int(rc)
r["server_instances"] = int(instances)
r["server_peak_rss_kb"] = sum(each)  # summed over the instances
if len(each) > 1:
    r["server_peak_rss_kb_each"] = each
r["server_alive_after"] = alive == "1"
try:
    (u0, s0), (u1, s1) = [map(int, c.split(",")) for c in (cpu0, cpu1)]
    # User and kernel CPU seconds over the whole run (connecting included).
    r["server_user_s"] = (u1 - u0) / int(tck)
    r["server_sys_s"] = (s1 - s0) / int(tck)
except ValueError:
    pass
if writes:
    # Socket writes over the whole run (connects and replies included).
    r["server_write_syscalls"] = int(writes)
print(json.dumps({"case": name, "target": target, "run": int(run), "result": r}))
' "$name" "$target" "$run" "$rc" "$hwm" "$alive" "$result" "$instances" "$writes" \
  "$cpu_before" "$cpu_after" "$(getconf CLK_TCK)" >>"$OUT/results.jsonl"
      [[ $alive == 1 ]] || log "a server was not running at the end of $name [$target] run $run (see $OUT/server-$name-$target-$run-*.log)"
    done
  done
done

# The report.
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
  COMMIT="$COMMIT (with uncommitted changes in src/)"
fi
python3 "$ROOT/bench/report.py" \
  --results "$OUT/results.jsonl" --commands "$OUT/commands.txt" --out "$RESULTS" \
  --set "$SET" --repeats "$REPEATS" --commit "$COMMIT" \
  --date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --nproc "$(nproc)" --cpu "$CPU_MODEL" \
  --mem-kb "$MEM_KB" --kernel "$(uname -r)" --server-cpu "$SERVER_CPU" --loadgen-cpu "$LOADGEN_CPU" \
  --loadavg "$LOADAVG_START" --loadavg-end "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --calibration "${CALIBRATION:-}" --bun-version "${BUN_VERSION:-}"
log "wrote ${RESULTS#"$ROOT"/} (raw results and logs in ${OUT#"$ROOT"/})"
cat "$RESULTS"
exit "$FAILED"
