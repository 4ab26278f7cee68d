#!/usr/bin/env bash
# Benchmark harness for eventsub-bridge (issue 6).
#
#   bench/run.sh          the standard set, 3 runs per case, writes bench/RESULTS.md
#   bench/run.sh quick    a small smoke set (100-500 viewers), 1 run per case,
#                         writes bench/out/<stamp>-quick/RESULTS.md
#
# Each run starts a fresh server pinned to CPU 0, waits for /healthz, runs the load
# generator (bench/loadgen) pinned to CPU 1, then stops the server. Logs and raw
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
#   SERVER_CPU / LOADGEN_CPU   CPUs to pin to (default 0 / 1)
#   BASE_PORT            first port to use; each run takes the next one (default 18080)
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

# name|loadgen arguments (without --url, --pid)
if [[ $SET == full ]]; then
  CASE_LIST=(
    "fanout-1000x200-50ps|fanout --viewers 1000 --messages 200 --bytes 256 --rate 50"
    "fanout-5000x50-10ps|fanout --viewers 5000 --messages 50 --bytes 256 --rate 10"
    "fanout-1000x1000-flat|fanout --viewers 1000 --messages 1000 --bytes 256 --rate 0"
    "ingest-20000-c64|ingest --count 20000 --concurrency 64"
    "idle-10000|idle --viewers 10000 --seconds 10"
  )
else
  CASE_LIST=(
    "fanout-100x100-50ps|fanout --viewers 100 --messages 100 --bytes 256 --rate 50"
    "fanout-100x200-flat|fanout --viewers 100 --messages 200 --bytes 256 --rate 0"
    "ingest-2000-c16|ingest --count 2000 --concurrency 16"
    "idle-500|idle --viewers 500 --seconds 2"
  )
fi

mkdir -p "$OUT"
: >"$OUT/results.jsonl"
: >"$OUT/commands.txt"

# Raise our open-files limit so that the server (a child) inherits it.
ulimit -n "$(ulimit -Hn)"

SERVER_PID=
stop_server() {
  if [[ -n ${SERVER_PID:-} ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
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

start_server() {
  local port=$1 logfile=$2
  taskset -c "$SERVER_CPU" env -u TWITCH_CLIENT_ID -u TWITCH_CLIENT_SECRET -u REDIS_URL \
    -u ADMIN_TOKEN -u PUBLIC_URL \
    BIND="127.0.0.1:$port" PUBLISH_TOKEN="$PUBLISH_TOKEN" EVENTSUB_SECRET="$EVENTSUB_SECRET" \
    RUST_LOG=warn "$SERVER_BIN" serve >"$logfile" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server exited at start; log:" >&2
      tail -20 "$logfile" >&2
      SERVER_PID=
      return 1
    fi
    if curl -fs -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; then
      return 0
    fi
    sleep 0.1
  done
  echo "server did not answer /healthz within 30 s" >&2
  return 1
}

server_hwm_kb() {
  awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
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
  echo "$name: taskset -c $LOADGEN_CPU ${LOADGEN#"$ROOT"/} ${argv[*]} --url http://127.0.0.1:PORT ${extra[*]} --pid SERVER_PID" >>"$OUT/commands.txt"

  for run in $(seq 1 "$REPEATS"); do
    PORT=$((PORT + 1))
    log "$name run $run/$REPEATS (port $PORT)"
    if ! start_server "$PORT" "$OUT/server-$name-$run.log"; then
      FAILED=1
      python3 -c 'import json,sys; print(json.dumps({"case":sys.argv[1],"run":int(sys.argv[2]),"result":{"ok":False,"error":"server did not start"}}))' \
        "$name" "$run" >>"$OUT/results.jsonl"
      stop_server
      continue
    fi
    rc=0
    taskset -c "$LOADGEN_CPU" "$LOADGEN" "${argv[@]}" --url "http://127.0.0.1:$PORT" \
      "${extra[@]}" --pid "$SERVER_PID" >"$OUT/$name-$run.log" 2>&1 || rc=$?
    hwm=$(server_hwm_kb "$SERVER_PID")
    alive=1
    kill -0 "$SERVER_PID" 2>/dev/null || alive=0
    stop_server
    { grep -v '^RESULT ' "$OUT/$name-$run.log" || true; } | sed 's/^/    /'
    result=$({ grep '^RESULT ' "$OUT/$name-$run.log" || true; } | tail -1 | cut -c8-)
    [[ -n $result ]] || result='{"ok":false,"error":"no RESULT line"}'
    [[ $rc == 0 && $alive == 1 ]] || FAILED=1
    python3 -c '
import json, sys
name, run, rc, hwm, alive, result = sys.argv[1:7]
try:
    r = json.loads(result)
except ValueError:
    r = {"ok": False, "error": "unparsable RESULT line"}
r["exit_code"] = int(rc)
r["server_peak_rss_kb"] = int(hwm or 0)
r["server_alive_after"] = alive == "1"
print(json.dumps({"case": name, "run": int(run), "result": r}))
' "$name" "$run" "$rc" "$hwm" "$alive" "$result" >>"$OUT/results.jsonl"
    [[ $alive == 1 ]] || log "the server was not running at the end of $name run $run (see $OUT/server-$name-$run.log)"
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
  --loadavg "$LOADAVG_START"
log "wrote ${RESULTS#"$ROOT"/} (raw results and logs in ${OUT#"$ROOT"/})"
cat "$RESULTS"
exit "$FAILED"
