#!/usr/bin/env bash
# Runs the Postman collection against a freshly started eventsub-bridge, with newman.
#
#   tests/postman/run.sh [path-to-server-binary] [extra newman arguments...]
#
# The binary defaults to target/release/eventsub-bridge (under CARGO_TARGET_DIR when set),
# built with `cargo build --release` when missing. The server runs in local mode on a free
# port of 127.0.0.1 with the secret and publish token of local.postman_environment.json.
# Extra arguments go to `newman run`, e.g. `--env-var eventsub_secret=wrong-secret-123` or
# `--reporters cli,junit --reporter-junit-export out.xml`. Exits with newman's status.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
collection="$here/eventsub-bridge.postman_collection.json"
environment="$here/local.postman_environment.json"

default_bin="${CARGO_TARGET_DIR:-$root/target}/release/eventsub-bridge"
if [[ $# -gt 0 && "$1" != -* ]]; then
    bin="$1"
    shift
    [[ -x "$bin" ]] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
else
    bin="$default_bin"
    if [[ ! -x "$bin" ]]; then
        echo "run.sh: building $bin" >&2
        (cd "$root" && cargo build --release)
    fi
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

if [[ ! -d "$here/node_modules/newman" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi

# The server gets the same secret and token as the environment file, so the two never drift.
env_value() {
    node -e 'const e = require(process.argv[1]).values.find(v => v.key === process.argv[2]);
             if (!e) process.exit(1); process.stdout.write(e.value);' "$environment" "$1"
}
secret="$(env_value eventsub_secret)"
token="$(env_value publish_token)"

port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
                   process.stdout.write(String(s.address().port)); s.close(); });')"
base_url="http://127.0.0.1:$port"

workdir="$(mktemp -d)"
log="$workdir/server.log"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

print_log() {
    echo "----- server log ($bin) -----" >&2
    cat "$log" >&2 || true
    echo "----- end of server log -----" >&2
}

# Local mode, in-memory broker: no Twitch credentials, no Redis, no admin API.
env -u TWITCH_CLIENT_ID -u TWITCH_CLIENT_SECRET -u REDIS_URL -u ADMIN_TOKEN -u SESSION_KEY \
    BIND="127.0.0.1:$port" PUBLIC_URL="$base_url" \
    EVENTSUB_SECRET="$secret" PUBLISH_TOKEN="$token" \
    RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
    "$bin" >"$log" 2>&1 &
server_pid=$!

ready=""
deadline=$((SECONDS + 30))
while [[ $SECONDS -lt $deadline ]]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "run.sh: the server exited before answering /healthz" >&2
        print_log
        exit 1
    fi
    if curl -fsS -o /dev/null --max-time 1 "$base_url/healthz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [[ -z "$ready" ]]; then
    echo "run.sh: $base_url/healthz did not answer 200 within 30 s" >&2
    print_log
    exit 1
fi

status=0
(cd "$here" && npx --no-install newman run "$collection" \
    -e "$environment" --env-var "base_url=$base_url" "$@") || status=$?

if [[ $status -ne 0 ]]; then
    print_log
fi
exit "$status"
