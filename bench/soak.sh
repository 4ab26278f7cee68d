#!/usr/bin/env bash
# Soak and leak check (issue 13, item 5): a fresh release server, minutes of churn from
# `loadgen soak` (viewers connecting, subscribing, unsubscribing and vanishing without a
# close, SSE streams, history, the publish API, signed webhooks with duplicates), then
# the check: RSS at idle after the churn within 10 % of its idle level after warm-up,
# open fds and the connection/subscription gauges back to idle. Exit status non-zero on
# a leak (or when it could not run).
#
#   bench/soak.sh                 11 minutes of warm-up, then 30 of churn, memory mode
#   MINUTES=5 bench/soak.sh       shorter
#   MODE=redis bench/soak.sh      Redis mode: a private redis-server on a free port
#
# Knobs: MINUTES (41, warm-up included), WARMUP (11 minutes: longer than the server's
# 10-minute de-duplication and idempotency windows, so its bounded stores are full), VIEWERS (200 slots), SSE (20 slots),
# CHANNELS (50), PUBLISH_RATE (20/s), WEBHOOK_RATE (10/s), PORT (18480),
# SKIP_BUILD=1, SERVER_BIN, LOADGEN_TARGET_DIR, OUT (log directory, default
# bench/out/<stamp>-soak-<mode>). Extra arguments go to `loadgen soak`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODE=${MODE:-memory}
MINUTES=${MINUTES:-41}
WARMUP=${WARMUP:-11}
PORT=${PORT:-18480}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_BIN=${SERVER_BIN:-$TARGET_DIR/release/eventsub-bridge}
LOADGEN_TARGET_DIR=${LOADGEN_TARGET_DIR:-$ROOT/bench/loadgen/target}
LOADGEN=$LOADGEN_TARGET_DIR/release/loadgen
OUT=${OUT:-$ROOT/bench/out/$(date -u +%Y%m%d-%H%M%S)-soak-$MODE}
mkdir -p "$OUT"

if [[ -z ${SKIP_BUILD:-} ]]; then
  cargo build --release --bin eventsub-bridge
  (cd bench/loadgen && CARGO_TARGET_DIR=$LOADGEN_TARGET_DIR cargo build --release)
fi

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

export EVENTSUB_SECRET=soak-eventsub-secret-0123456789
export PUBLISH_TOKEN=soak-publish-token
# Reads the overlay keys: every channel gets an overlay that acks its alerts.
export ADMIN_TOKEN=soak-admin-token
declare -a SERVER_ENV=(
  BIND="127.0.0.1:$PORT"
  EVENTSUB_SECRET="$EVENTSUB_SECRET"
  PUBLISH_TOKEN="$PUBLISH_TOKEN"
  ADMIN_TOKEN="$ADMIN_TOKEN"
  RUST_LOG="${RUST_LOG:-warn}"
  NO_COLOR=1
)
case "$MODE" in
memory) ;;
redis)
  RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do
    redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  SERVER_ENV+=(REDIS_URL="redis://127.0.0.1:$RPORT")
  ;;
*)
  echo "MODE is memory or redis" >&2
  exit 2
  ;;
esac

# The server inherits a raised open-files limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
env -i PATH="$PATH" "${SERVER_ENV[@]}" "$SERVER_BIN" serve >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 200); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null

echo "soak: $MODE mode, server pid $SERVER_PID on :$PORT, $MINUTES min, commit $(git rev-parse --short HEAD), logs in $OUT"
set +e
"$LOADGEN" soak --url "http://127.0.0.1:$PORT" --pid "$SERVER_PID" \
  --minutes "$MINUTES" --warmup-minutes "$WARMUP" \
  --viewers "${VIEWERS:-200}" --sse "${SSE:-20}" --channels "${CHANNELS:-50}" \
  --publish-rate "${PUBLISH_RATE:-20}" --webhook-rate "${WEBHOOK_RATE:-10}" "$@" |
  tee "$OUT/soak.txt"
STATUS=${PIPESTATUS[0]}
set -e
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "the server died during the soak (see $OUT/server.log)" >&2
  exit 1
fi
exit "$STATUS"
