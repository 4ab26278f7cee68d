#!/usr/bin/env bash
# Browser test of alert overlays (SPEC §8): the bridge in local mode with a
# publish token, headless Debian Chromium driven by playwright-core showing
# the streamer's dashboard and the OBS overlay page (tests/e2e/alerts.js),
# and the bridge's own `trigger` sending signed EventSub notifications.
#
#   tests/e2e/alerts.sh [path-to-server-binary]
#
# run.sh runs it after its own test; the binary defaults as there.
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
[[ -x "$bin" ]] || { echo "alerts.sh: $bin is not an executable" >&2; exit 2; }
[[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || { echo "alerts.sh: chromium missing (apt-get install -y chromium)" >&2; exit 2; }
if [[ ! -d "$here/node_modules/playwright-core" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi

port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
                   process.stdout.write(String(s.address().port)); s.close(); });')"
base="http://localhost:$port"
log="$(mktemp)"
BIND="127.0.0.1:$port" PUBLIC_URL="$base" EVENTSUB_SECRET="e2e-alerts-secret-0123" \
TWITCH_CLIENT_ID="" TWITCH_CLIENT_SECRET="" REDIS_URL="" ADMIN_TOKEN="" PUBLISH_TOKEN="e2e-publish-token-0123" \
RUST_LOG="${RUST_LOG:-info}" "$bin" serve >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT

if ! node -e 'const u = process.argv[1]; const end = Date.now() + 10000;
              (async function poll() {
                if (await fetch(u).then(r => r.ok, () => false)) process.exit(0);
                if (Date.now() > end) process.exit(1);
                setTimeout(poll, 100);
              })();' "$base/healthz"; then
    echo "alerts.sh: the server did not start" >&2
    cat "$log" >&2
    exit 1
fi

if ! node "$here/alerts.js" "$base" "$bin" "e2e-alerts-secret-0123" "e2e-publish-token-0123"; then
    echo "--- server log ---" >&2; tail -n 50 "$log" >&2
    exit 1
fi
