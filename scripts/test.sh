#!/usr/bin/env bash
# The project's test command. On a fresh Debian machine it installs and
# starts what the tests need (Redis, Node.js + newman, Chromium), then runs:
#   1. cargo test (unit + integration, memory and Redis brokers)
#   2. the Postman collection with newman against a release build
#   3. the browser end-to-end test (when tests/e2e exists)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
APT_UPDATED=""
apt_install() {
  have apt-get || { echo "apt-get not found: install $* by hand" >&2; exit 1; }
  if [ -z "$APT_UPDATED" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis_answers() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

log "Redis on 127.0.0.1:6379"
if ! redis_answers; then
  have redis-server || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 50); do redis_answers && break; sleep 0.1; done
  redis_answers || { echo "redis-server did not start" >&2; exit 1; }
fi
have redis-server || apt_install redis-server   # the outage tests start their own

log "Node.js and npm"
have node && have npm || apt_install nodejs npm

log "cargo test"
cargo test --all-targets 2>&1

log "release build"
cargo build --release

log "Postman collection (newman)"
bash tests/postman/run.sh target/release/eventsub-bridge

if [ -f tests/e2e/run.sh ]; then
  log "browser end-to-end (headless Chromium)"
  have chromium || apt_install chromium
  bash tests/e2e/run.sh
fi

log "all tests passed"
