// The benchmark peer (issue 14): a bare Bun pub/sub server on uWebSockets that speaks
// what bench/loadgen speaks, so the same load generator drives it and the bridge.
// It does the work a minimal bridge must do per message (bearer check, JSON parse,
// channel check, an id, the same event frame, serialized once, `server.publish`) and
// nothing else: no history, no replay, no outbox bound. Run by bench/run.sh:
//   BIND=127.0.0.1:PORT PUBLISH_TOKEN=T EVENTSUB_SECRET=S bun bench/peer/bun-server.js
const [host, port] = (process.env.BIND || "127.0.0.1:8080").split(":");
const bearer = `Bearer ${process.env.PUBLISH_TOKEN || ""}`;
const secret = process.env.EVENTSUB_SECRET || "";
const CHANNEL = /^[a-z0-9_]{1,25}$/;
const lastId = new Map(); // channel -> [ms, seq]: ids as the bridge makes them
const seen = new Set(); // webhook message ids (the bridge bounds its own; a run is short)
let published = 0;

function publish(server, channel, type, source, text, data) {
  const now = Date.now(), last = lastId.get(channel);
  const id = last && last[0] >= now ? [last[0], last[1] + 1] : [now, 0];
  lastId.set(channel, id);
  const at = new Date(now).toISOString();
  const message = { id: `${id[0]}-${id[1]}`, channel, type, version: "1", source, at, text, data };
  server.publish(channel, JSON.stringify({ op: "event", message }));
  published++;
  return message.id;
}

const hmac = (body) => new Bun.CryptoHasher("sha256", secret).update(body).digest("hex");
const user = (login) => ({ id: login, login, display_name: login });

Bun.serve({
  hostname: host, port: Number(port),
  async fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname === "/healthz") return new Response("ok");
    if (url.pathname === "/metrics")
      return new Response(`eventsub_bridge_messages_published_total ${published}\n`);
    if (url.pathname === "/auth/local" && req.method === "POST") {
      const login = new URLSearchParams(await req.text()).get("login") || "";
      if (!CHANNEL.test(login)) return new Response("bad login", { status: 400 });
      return new Response(null, { status: 303, headers: { Location: "/", "Set-Cookie": `peer=${login}; HttpOnly` } });
    }
    if (url.pathname === "/ws") {
      const login = /(?:^|; )peer=([a-z0-9_]+)/.exec(req.headers.get("cookie") || "")?.[1];
      if (!login) return new Response("sign in first", { status: 401 });
      return server.upgrade(req, { data: login }) ? undefined : new Response("upgrade failed", { status: 400 });
    }
    if (url.pathname === "/api/publish" && req.method === "POST") {
      if (req.headers.get("authorization") !== bearer) return new Response("unauthorized", { status: 401 });
      let b;
      try { b = await req.json(); } catch { return Response.json({ error: "invalid_body" }, { status: 400 }); }
      const channel = String(b.channel || "").toLowerCase();
      if (!CHANNEL.test(channel) || !b.type) return Response.json({ error: "invalid_body" }, { status: 400 });
      return Response.json({ id: publish(server, channel, b.type, "publish", b.text || b.type, b.data) }, { status: 202 });
    }
    if (url.pathname === "/api/callback" && req.method === "POST") {
      const h = (n) => req.headers.get(`twitch-eventsub-message-${n}`);
      const [id, ts, sig] = [h("id"), h("timestamp"), h("signature")];
      const body = await req.text();
      if (!id || !ts || !sig) return new Response("missing headers", { status: 400 });
      if (sig !== `sha256=${hmac(id + ts + body)}`) return new Response("bad signature", { status: 403 });
      const age = Date.now() - Date.parse(ts);
      if (!(age < 600_000 && age > -60_000)) return new Response("stale", { status: 403 });
      if (seen.has(id)) return new Response(null, { status: 204 });
      seen.add(id);
      const { subscription, event } = JSON.parse(body);
      const channel = String(event.broadcaster_user_login).toLowerCase();
      publish(server, channel, subscription.type, "eventsub", `${event.user_name} followed ${event.broadcaster_user_name}`, event);
      return new Response(null, { status: 204 });
    }
    return new Response("not found", { status: 404 });
  },
  websocket: {
    open(ws) { ws.send(JSON.stringify({ op: "welcome", user: user(ws.data) })); },
    message(ws, text) {
      let m;
      try { m = JSON.parse(text); } catch { return ws.send('{"op":"error","code":"bad_json","message":"not JSON"}'); }
      if (m.op === "subscribe" && CHANNEL.test(m.channel)) {
        ws.subscribe(m.channel);
        ws.send(JSON.stringify({ op: "subscribed", channel: m.channel, replayed: 0, gap: false }));
      } else if (m.op === "ping") ws.send('{"op":"pong"}');
      else ws.send('{"op":"error","code":"unknown_op","message":"unknown op"}');
    },
  },
});
