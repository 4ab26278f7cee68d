#!/usr/bin/env bash
# Benchmark harness for eventsub-bridge (issue 6).
#
#   bench/run.sh          the standard set, 3 runs per case, writes bench/RESULTS.md
#   bench/run.sh quick    a small smoke set (100-500 viewers), 1 run per case,
#                         writes bench/out/<stamp>-quick/RESULTS.md
#
# Each run starts a fresh server pinned to CPU 0, waits for /healthz, runs the load
# generator (bench/loadgen) pinned to CPU 1, then stops the server. Cases named redis-*
# run in Redis mode instead: two fresh instances sharing one Redis (REDIS_URL) and the
# same SESSION_KEY, both pinned to CPU 0, viewers split round-robin across them and every
# message published through the first; each run uses its own channel name, so nothing is
# flushed and earlier history does not matter. Redis must answer on 127.0.0.1:6379 (the
# script starts a throw-away `redis-server` there if none does). Logs and raw
# results go to bench/out/<stamp>-<set>/ (git-ignored). The report is always written;
# the exit status is non-zero when a run failed or saw loss, duplicates, errors or early
# closes (missed performance targets alone do not fail it).
#
# Environment knobs:
#   REPEATS=N            runs per case (default 3; quick: 1)
#   CASES="a b"          only these case names (see the tables below)
#   SKIP_BUILD=1         do not run cargo build
#   CARGO_TARGET_DIR     where the server is built (default ./target)
#   SERVER_BIN=path      server binary (default $CARGO_TARGET_DIR/release/eventsub-bridge)
#   LOADGEN_TARGET_DIR   where loadgen is built (default bench/loadgen/target)
#   SERVER_CPU / LOADGEN_CPU   CPUs to pin to (default 0 / 1; both Redis-mode instances
#                        share SERVER_CPU)
#   BASE_PORT            first port to use; each run takes the next one, Redis-mode runs
#                        the next two (default 18080)
#   RESULTS=path         where to write the report
set -euo pipefail

SET=${1:-full}
case "$SET" in
full | quick) ;;
*)
  echo "usage: bench/run.sh [full|quick]" >&2
  exit 2
  ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ $SET == quick ]]; then
  REPEATS=${REPEATS:-1}
else
  REPEATS=${REPEATS:-3}
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=${SERVER_BIN:-$TARGET_DIR/release/eventsub-bridge}
LOADGEN_TARGET_DIR=${LOADGEN_TARGET_DIR:-$ROOT/bench/loadgen/target}
LOADGEN=$LOADGEN_TARGET_DIR/release/loadgen
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
PORT=${BASE_PORT:-18080}
STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT=$ROOT/bench/out/$STAMP-$SET
if [[ $SET == full ]]; then
  RESULTS=${RESULTS:-$ROOT/bench/RESULTS.md}
else
  RESULTS=${RESULTS:-$OUT/RESULTS.md}
fi

# Fixed, benchmark-only credentials: the server runs in local mode on loopback.
PUBLISH_TOKEN=bench-publish-token
EVENTSUB_SECRET=bench-eventsub-secret-0123456789
CHANNEL=benchchannel
# Redis mode: the Redis every instance shares, and one SESSION_KEY for all instances (the
# load generator signs in on each instance anyway).
REDIS_PORT=6379
BENCH_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
SESSION_KEY=$(printf 'be0c%.0s' $(seq 1 32)) # 128 hex characters
REDIS_INSTANCES=2

# name|loadgen arguments (without --url, --pid); redis-* names run in Redis mode.
# *-slowK cases add K viewers that never read (issue 6: "a slow viewer never raises
# others' latency"); report.py compares them with the *-4k case of the same shape.
if [[ $SET == full ]]; then
  CASE_LIST=(
    "fanout-1000x200-50ps|fanout --viewers 1000 --messages 200 --bytes 256 --rate 50"
    "fanout-1000x200-50ps-4k|fanout --viewers 1000 --messages 200 --bytes 4096 --rate 50"
    "fanout-1000x200-50ps-slow10|fanout --viewers 1000 --messages 200 --bytes 4096 --rate 50 --slow-viewers 10"
    "fanout-5000x50-10ps|fanout --viewers 5000 --messages 50 --bytes 256 --rate 10"
    "fanout-1000x1000-flat|fanout --viewers 1000 --messages 1000 --bytes 256 --rate 0"
    "redis-fanout-1000x200-50ps|fanout --viewers 1000 --messages 200 --bytes 256 --rate 50"
    "redis-fanout-1000x1000-flat|fanout --viewers 1000 --messages 1000 --bytes 256 --rate 0"
    "ingest-20000-c64|ingest --count 20000 --concurrency 64"
    "idle-10000|idle --viewers 10000 --seconds 10"
  )
else
  CASE_LIST=(
    "fanout-100x100-50ps|fanout --viewers 100 --messages 100 --bytes 256 --rate 50"
    "fanout-100x100-50ps-4k|fanout --viewers 100 --messages 100 --bytes 4096 --rate 50"
    "fanout-100x100-50ps-slow5|fanout --viewers 100 --messages 100 --bytes 4096 --rate 50 --slow-viewers 5"
    "fanout-100x200-flat|fanout --viewers 100 --messages 200 --bytes 256 --rate 0"
    "redis-fanout-100x100-50ps|fanout --viewers 100 --messages 100 --bytes 256 --rate 50"
    "redis-fanout-100x200-flat|fanout --viewers 100 --messages 200 --bytes 256 --rate 0"
    "ingest-2000-c16|ingest --count 2000 --concurrency 16"
    "idle-500|idle --viewers 500 --seconds 2"
  )
fi

mkdir -p "$OUT"
: >"$OUT/results.jsonl"
: >"$OUT/commands.txt"

# Raise our open-files limit so that the server (a child) inherits it.
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

SERVER_CMD_SHOWN="taskset -c $SERVER_CPU env BIND=127.0.0.1:PORT PUBLISH_TOKEN=$PUBLISH_TOKEN EVENTSUB_SECRET=$EVENTSUB_SECRET RUST_LOG=warn ${SERVER_BIN#"$ROOT"/} serve"
echo "server: $SERVER_CMD_SHOWN  (ulimit -n $(ulimit -n))" >>"$OUT/commands.txt"

is_redis_case() { [[ $1 == redis-* ]]; }

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

# start_server PORT LOGFILE [redis]: starts one instance (in Redis mode with "redis"),
# adds its PID to SERVER_PIDS and waits until it is ready.
start_server() {
  local port=$1 logfile=$2 redis=${3:-} pid ready=/healthz
  local -a mode_env=(-u REDIS_URL -u SESSION_KEY)
  if [[ $redis == redis ]]; then
    mode_env=(REDIS_URL="$BENCH_REDIS_URL" SESSION_KEY="$SESSION_KEY")
    ready=/readyz # 200 once Redis and the pub/sub connection are up
  fi
  taskset -c "$SERVER_CPU" env -u TWITCH_CLIENT_ID -u TWITCH_CLIENT_SECRET \
    -u ADMIN_TOKEN -u PUBLIC_URL "${mode_env[@]}" \
    BIND="127.0.0.1:$port" PUBLISH_TOKEN="$PUBLISH_TOKEN" EVENTSUB_SECRET="$EVENTSUB_SECRET" \
    RUST_LOG=warn "$SERVER_BIN" serve >"$logfile" 2>&1 &
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

server_hwm_kb() {
  awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

want_redis=0
for entry in "${CASE_LIST[@]}"; do
  name=${entry%%|*}
  if is_redis_case "$name" && [[ -z ${CASES:-} || " $CASES " == *" $name "* ]]; then
    want_redis=1
  fi
done
REDIS_OK=1
if [[ $want_redis == 1 ]]; then
  ensure_redis || REDIS_OK=0
  echo "redis-* cases: $REDIS_INSTANCES instances as above plus REDIS_URL=$BENCH_REDIS_URL SESSION_KEY=<fixed 128 hex>, each taskset -c $SERVER_CPU; ready when /readyz answers 200" >>"$OUT/commands.txt"
fi

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
# This host's kernel speed (hosts of one machine kind differ by several times), on the
# load generator's CPU before anything else runs.
CALIBRATION=$(taskset -c "$LOADGEN_CPU" "$LOADGEN" calibrate | sed -n 's/^RESULT //p' || true)
log "host calibration: $CALIBRATION"
FAILED=0
for entry in "${CASE_LIST[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  if [[ -n ${CASES:-} && " $CASES " != *" $name "* ]]; then
    continue
  fi
  mode=${args%% *}
  read -r -a argv <<<"$args"
  case "$mode" in
  fanout) extra=(--publish-token "$PUBLISH_TOKEN" --channel "$CHANNEL") ;;
  ingest) extra=(--secret "$EVENTSUB_SECRET" --channel "$CHANNEL") ;;
  idle) extra=(--channel "$CHANNEL") ;;
  *) extra=() ;;
  esac
  instances=1
  if is_redis_case "$name"; then
    instances=$REDIS_INSTANCES
  fi
  if [[ $instances == 1 ]]; then
    echo "$name: taskset -c $LOADGEN_CPU ${LOADGEN#"$ROOT"/} ${argv[*]} --url http://127.0.0.1:PORT ${extra[*]} --pid SERVER_PID" >>"$OUT/commands.txt"
  else
    echo "$name: taskset -c $LOADGEN_CPU ${LOADGEN#"$ROOT"/} ${argv[*]} --url http://127.0.0.1:PORT1 --url http://127.0.0.1:PORT2 --publish-url http://127.0.0.1:PORT1 ${extra[*]/#$CHANNEL/CHANNEL} --pid SERVER_PID1 --pid SERVER_PID2 --redis-pid REDIS_PID  (CHANNEL = bench_HHMMSS_PORT1, new per run)" >>"$OUT/commands.txt"
  fi

  for run in $(seq 1 "$REPEATS"); do
    ports=()
    for _ in $(seq 1 "$instances"); do
      PORT=$((PORT + 1))
      ports+=("$PORT")
    done
    log "$name run $run/$REPEATS (port${ports[1]:+s} ${ports[*]})"
    started=1
    if [[ $instances != 1 && $REDIS_OK != 1 ]]; then
      started=0
    elif [[ $instances == 1 ]]; then
      start_server "${ports[0]}" "$OUT/server-$name-$run.log" || started=0
    else
      for k in "${!ports[@]}"; do
        start_server "${ports[$k]}" "$OUT/server-$name-$run-i$k.log" redis || {
          started=0
          break
        }
      done
    fi
    if [[ $started == 0 ]]; then
      FAILED=1
      why="server did not start"
      [[ $instances != 1 && $REDIS_OK != 1 ]] && why="no Redis on port $REDIS_PORT"
      python3 -c 'import json,sys; print(json.dumps({"case":sys.argv[1],"run":int(sys.argv[2]),"result":{"ok":False,"error":sys.argv[3]}}))' \
        "$name" "$run" "$why" >>"$OUT/results.jsonl"
      stop_server
      continue
    fi
    urls=()
    pids=()
    for k in "${!ports[@]}"; do
      urls+=(--url "http://127.0.0.1:${ports[$k]}")
      pids+=(--pid "${SERVER_PIDS[$k]}")
    done
    run_extra=("${extra[@]}")
    channel=
    if [[ $instances != 1 ]]; then
      # A channel of its own per run (1-25 of a-z 0-9 _): no earlier history to meet.
      channel=bench_${STAMP:9:6}_${ports[0]}
      run_extra=()
      for x in "${extra[@]}"; do
        [[ $x == "$CHANNEL" ]] && x=$channel
        run_extra+=("$x")
      done
      run_extra+=(--publish-url "http://127.0.0.1:${ports[0]}")
      [[ -n $REDIS_PID ]] && run_extra+=(--redis-pid "$REDIS_PID")
    fi
    rc=0
    taskset -c "$LOADGEN_CPU" "$LOADGEN" "${argv[@]}" "${urls[@]}" \
      "${run_extra[@]}" "${pids[@]}" >"$OUT/$name-$run.log" 2>&1 || rc=$?
    hwms=()
    alive=1
    for pid in "${SERVER_PIDS[@]}"; do
      hwms+=("$(server_hwm_kb "$pid")")
      kill -0 "$pid" 2>/dev/null || alive=0
    done
    hwm=$(IFS=,; echo "${hwms[*]}")
    stop_server
    if [[ -n $channel ]]; then
      # Drop this run's history stream (default key prefix esb); nothing else is touched.
      redis_cli del "esb:ch:$channel" >/dev/null 2>&1 || true
    fi
    { grep -v '^RESULT ' "$OUT/$name-$run.log" || true; } | sed 's/^/    /'
    result=$({ grep '^RESULT ' "$OUT/$name-$run.log" || true; } | tail -1 | cut -c8-)
    [[ -n $result ]] || result='{"ok":false,"error":"no RESULT line"}'
    [[ $rc == 0 && $alive == 1 ]] || FAILED=1
    python3 -c '
import json, sys
name, run, rc, hwm, alive, result, instances = sys.argv[1:8]
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
print(json.dumps({"case": name, "run": int(run), "result": r}))
' "$name" "$run" "$rc" "$hwm" "$alive" "$result" "$instances" >>"$OUT/results.jsonl"
    [[ $alive == 1 ]] || log "a server was not running at the end of $name run $run (see $OUT/server-$name-$run*.log)"
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
  --loadavg "$LOADAVG_START" --calibration "${CALIBRATION:-}"
log "wrote ${RESULTS#"$ROOT"/} (raw results and logs in ${OUT#"$ROOT"/})"
cat "$RESULTS"
exit "$FAILED"
