#!/usr/bin/env bash
# Browser end-to-end test: a fake Twitch (node), the bridge in Twitch mode
# pointed at it, and headless Debian Chromium driven by playwright-core:
# e2e.js (sign in, watch, a notification in the feed), then sources.js (the
# dashboard's alert sources, "Connect alerts", a revoked grant).
#
#   tests/e2e/run.sh [path-to-server-binary]
#
# The binary defaults to target/release/eventsub-bridge when it exists, else
# target/debug/eventsub-bridge (built when missing). Needs /usr/bin/chromium
# (`apt-get install -y chromium`) and node. The screenshot goes to tests/e2e/out/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

if [[ $# -gt 0 ]]; then
    bin="$1"
elif [[ -x "$target/release/eventsub-bridge" ]]; then
    bin="$target/release/eventsub-bridge"
else
    bin="$target/debug/eventsub-bridge"
    [[ -x "$bin" ]] || (cd "$root" && cargo build)
fi
[[ -x "$bin" ]] || { echo "run.sh: $bin is not an executable" >&2; exit 2; }
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || { echo "run.sh: chromium missing (apt-get install -y chromium)" >&2; exit 2; }

if [[ ! -d "$here/node_modules/playwright-core" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi

free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
               process.stdout.write(String(s.address().port)); s.close(); });'
}
port="$(free_port)"
fake_port="$(free_port)"
client_id="e2e-client-id"
client_secret="e2e-client-secret-0123"
secret="e2e-eventsub-secret-0123"
base="http://localhost:$port"
fake="http://127.0.0.1:$fake_port"

workdir="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

node "$here/fake-twitch.js" "$fake_port" "$client_id" "$client_secret" >"$workdir/fake.log" 2>&1 &
pids+=($!)

BIND="127.0.0.1:$port" PUBLIC_URL="$base" EVENTSUB_SECRET="$secret" \
TWITCH_CLIENT_ID="$client_id" TWITCH_CLIENT_SECRET="$client_secret" \
TWITCH_AUTH_URL="$fake" TWITCH_API_URL="$fake/helix" ADMIN_TOKEN="" REDIS_URL="" \
EVENTSUB_TRANSPORT=webhook \
RUST_LOG="${RUST_LOG:-info}" "$bin" serve >"$workdir/server.log" 2>&1 &
pids+=($!)

# Waits up to 10 s for every URL given to answer.
up() {
    node -e 'const urls = process.argv.slice(1); const end = Date.now() + 10000;
             (async function poll() {
               const ok = await Promise.all(urls.map(u => fetch(u).then(r => r.ok, () => false)));
               if (ok.every(Boolean)) process.exit(0);
               if (Date.now() > end) process.exit(1);
               setTimeout(poll, 100);
             })();' "$@"
}
if ! up "$base/healthz" "$fake/_fake/subscriptions"; then
    echo "run.sh: the server did not start" >&2
    cat "$workdir/server.log" "$workdir/fake.log" >&2
    exit 1
fi

for script in e2e.js sources.js; do
    if ! node "$here/$script" "$base" "$fake" "$secret"; then
        echo "--- server log ---" >&2; tail -n 50 "$workdir/server.log" >&2
        echo "--- fake Twitch log ---" >&2; tail -n 20 "$workdir/fake.log" >&2
        exit 1
    fi
done

# The same dashboard with a bridge on EventSub's WebSocket transport (SPEC
# §10) against the fake's socket: the socket's state shows too.
ws_port="$(free_port)"
ws_base="http://localhost:$ws_port"
BIND="127.0.0.1:$ws_port" PUBLIC_URL="$ws_base" EVENTSUB_SECRET="$secret" \
TWITCH_CLIENT_ID="$client_id" TWITCH_CLIENT_SECRET="$client_secret" \
TWITCH_AUTH_URL="$fake" TWITCH_API_URL="$fake/helix" ADMIN_TOKEN="" REDIS_URL="" \
EVENTSUB_TRANSPORT=websocket TWITCH_EVENTSUB_WS_URL="ws://127.0.0.1:$fake_port/ws" \
RUST_LOG="${RUST_LOG:-info}" "$bin" serve >"$workdir/server-ws.log" 2>&1 &
pids+=($!)
if ! up "$ws_base/healthz" || ! node "$here/sources.js" "$ws_base" "$fake" "$secret" websocket; then
    echo "--- server log (websocket transport) ---" >&2; tail -n 50 "$workdir/server-ws.log" >&2
    echo "--- fake Twitch log ---" >&2; tail -n 20 "$workdir/fake.log" >&2
    exit 1
fi

# Rooms (SPEC §9) in a server of their own, in local mode.
bash "$here/rooms.sh" "$bin"

# Alert overlays (SPEC §8): dashboard, OBS overlay page, trigger and the API.
bash "$here/alerts.sh" "$bin"
