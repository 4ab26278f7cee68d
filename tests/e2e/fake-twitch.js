// A small fake Twitch for the browser test: OAuth (authorize redirects straight
// back with a code, as if the viewer consented), token (client credentials,
// authorization code, refresh), validate, Helix users and EventSub
// subscriptions, and EventSub's WebSocket transport on /ws (a welcome with
// a 10 s keepalive, a keepalive every 2 s, revocations; subscriptions on a
// session need the user's token and a live session). Tokens carry the
// scopes asked for at authorize. GET
// /_fake/subscriptions shows what the bridge created; POST
// /_fake/login-as?login=L makes the next authorizations L's (viewer42
// until then); POST /_fake/revoke?user_id=ID withdraws that user's grant
// as Twitch does (tokens dead, subscriptions gone: a socket's are revoked
// over it) and answers the removed webhook subscriptions, for the test to
// send their revocation messages.
//
//   node fake-twitch.js PORT CLIENT_ID CLIENT_SECRET
"use strict";
const http = require("http");
const crypto = require("crypto");

const [port, clientId, clientSecret] = process.argv.slice(2);
const users = [
  { id: "1001", login: "teststreamer", display_name: "TestStreamer" },
  { id: "2042", login: "viewer42", display_name: "Viewer42" },
];
const codes = new Map(); // code → { user, scopes }
const userTokens = new Map(); // token → { user, scopes }
let signingIn = "2042";
const appTokens = new Set();
const subs = [];
const sessions = new Map(); // session id → { socket, timer }
let n = 0;
const next = (p) => `${p}-${++n}-${crypto.randomBytes(6).toString("hex")}`;

function send(res, status, body, headers = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(text);
}
const fail = (res, status, message) => send(res, status, { error: http.STATUS_CODES[status], status, message });
const rate = { "Ratelimit-Limit": "800", "Ratelimit-Remaining": "799", "Ratelimit-Reset": String(Math.floor(Date.now() / 1000) + 60) };

function helixAuth(req) {
  if (req.headers["client-id"] !== clientId) return null;
  const token = (req.headers.authorization || "").replace(/^Bearer /, "");
  if (appTokens.has(token)) return { app: true };
  if (userTokens.has(token)) return { user: userTokens.get(token).user };
  return null;
}

function handle(req, res, body) {
  const url = new URL(req.url, "http://fake");
  const q = url.searchParams;
  const route = `${req.method} ${url.pathname}`;
  if (route === "GET /oauth2/authorize") {
    for (const p of ["response_type", "client_id", "redirect_uri", "scope", "state"]) {
      if (!q.has(p)) return fail(res, 400, `missing ${p}`);
    }
    if (q.get("response_type") !== "code" || q.get("client_id") !== clientId) return fail(res, 400, "bad request");
    const code = next("code");
    codes.set(code, { user: signingIn, scopes: q.get("scope").split(" ").filter(Boolean) });
    const back = new URL(q.get("redirect_uri"));
    back.searchParams.set("code", code);
    back.searchParams.set("scope", q.get("scope"));
    back.searchParams.set("state", q.get("state"));
    res.writeHead(302, { Location: back.toString() });
    return res.end();
  }
  if (route === "POST /oauth2/token") {
    const f = new URLSearchParams(body);
    if (f.get("client_id") !== clientId || f.get("client_secret") !== clientSecret) return fail(res, 403, "invalid client secret");
    if (f.get("grant_type") === "client_credentials") {
      const t = next("app");
      appTokens.add(t);
      return send(res, 200, { access_token: t, expires_in: 5000000, token_type: "bearer" });
    }
    if (f.get("grant_type") === "authorization_code") {
      const grant = codes.get(f.get("code"));
      if (!grant) return fail(res, 400, "Invalid authorization code");
      codes.delete(f.get("code"));
      const t = next("user");
      userTokens.set(t, grant);
      return send(res, 200, { access_token: t, expires_in: 14000, refresh_token: next("refresh"), scope: grant.scopes, token_type: "bearer" });
    }
    return fail(res, 400, "unsupported grant type");
  }
  if (route === "GET /oauth2/validate") {
    const t = (req.headers.authorization || "").replace(/^OAuth /, "");
    if (userTokens.has(t)) {
      const grant = userTokens.get(t);
      const u = users.find((x) => x.id === grant.user);
      return send(res, 200, { client_id: clientId, login: u.login, scopes: grant.scopes, user_id: u.id, expires_in: 5000 });
    }
    if (appTokens.has(t)) return send(res, 200, { client_id: clientId, scopes: [], expires_in: 5000000 });
    return fail(res, 401, "invalid access token");
  }
  if (url.pathname.startsWith("/helix/")) {
    const auth = helixAuth(req);
    if (!auth) return fail(res, 401, "Invalid OAuth token");
    if (route === "GET /helix/users") {
      const logins = q.getAll("login"), ids = q.getAll("id");
      let data;
      if (!logins.length && !ids.length) {
        if (!auth.user) return fail(res, 400, "Missing User OAUTH Token");
        data = users.filter((u) => u.id === auth.user);
      } else {
        data = users.filter((u) => logins.includes(u.login) || ids.includes(u.id));
      }
      return send(res, 200, { data }, rate);
    }
    if (url.pathname === "/helix/eventsub/subscriptions") {
      const cost = () => subs.reduce((a, s) => a + s.cost, 0);
      if (req.method === "POST") {
        const b = JSON.parse(body || "{}");
        const onSocket = b.transport && b.transport.method === "websocket";
        if (onSocket && !auth.user) return fail(res, 400, "websocket transport needs a user access token");
        if (!onSocket && !auth.app) return fail(res, 401, "app access token required");
        if (onSocket && !sessions.has(b.transport.session_id)) return fail(res, 400, "session does not exist or has disconnected");
        const dup = subs.find((s) => s.type === b.type && JSON.stringify(s.condition) === JSON.stringify(b.condition) &&
          s.transport.method === b.transport.method && s.transport.session_id === b.transport.session_id);
        if (dup) return fail(res, 409, "subscription already exists");
        const sub = {
          id: crypto.randomUUID(), status: onSocket ? "enabled" : "webhook_callback_verification_pending", type: b.type,
          version: b.version, condition: b.condition, created_at: new Date().toISOString(),
          transport: onSocket
            ? { method: "websocket", session_id: b.transport.session_id, connected_at: new Date().toISOString() }
            : { method: "webhook", callback: b.transport.callback },
          cost: onSocket ? 0 : ["stream.online", "stream.offline", "channel.update", "channel.raid"].includes(b.type) ? 1 : 0,
        };
        subs.push({ ...sub, status: "enabled" });
        return send(res, 202, { data: [sub], total: subs.length, total_cost: cost(), max_total_cost: 10000 }, rate);
      }
      if (req.method === "GET") {
        const data = q.has("user_id") ? subs.filter((s) => Object.values(s.condition).includes(q.get("user_id"))) : subs;
        return send(res, 200, { total: data.length, data, total_cost: cost(), max_total_cost: 10000, pagination: {} }, rate);
      }
      if (req.method === "DELETE") {
        const i = subs.findIndex((s) => s.id === q.get("id"));
        if (i < 0) return fail(res, 404, "subscription not found");
        subs.splice(i, 1);
        res.writeHead(204, rate);
        return res.end();
      }
    }
  }
  if (route === "GET /_fake/subscriptions") return send(res, 200, subs);
  if (route === "POST /_fake/login-as") {
    const u = users.find((x) => x.login === q.get("login"));
    if (!u) return fail(res, 404, "no such user");
    signingIn = u.id;
    return send(res, 200, u);
  }
  if (route === "POST /_fake/revoke") {
    const id = q.get("user_id");
    for (const [t, grant] of userTokens) if (grant.user === id) userTokens.delete(t);
    const removed = [];
    for (let i = subs.length - 1; i >= 0; i--) {
      if (Object.values(subs[i].condition).includes(id)) removed.push(...subs.splice(i, 1));
    }
    const revoked = removed.map((s) => ({ ...s, status: "authorization_revoked" }));
    for (const sub of revoked) {
      const session = sub.transport.method === "websocket" && sessions.get(sub.transport.session_id);
      if (session) wsSend(session.socket, "revocation", { subscription_type: sub.type, subscription_version: sub.version }, { subscription: sub });
    }
    return send(res, 200, revoked.filter((s) => s.transport.method === "webhook"));
  }
  return fail(res, 404, `no route ${route}`);
}

// EventSub's WebSocket transport, just enough of RFC 6455 for it: the
// handshake, unmasked text frames to the client; what the client sends
// (pongs, its close) is read and dropped, and a closed socket's
// subscriptions are disabled as Twitch does.
function wsFrame(text) {
  const data = Buffer.from(text);
  let head;
  if (data.length < 126) head = Buffer.from([0x81, data.length]);
  else if (data.length < 65536) { head = Buffer.alloc(4); head[0] = 0x81; head[1] = 126; head.writeUInt16BE(data.length, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x81; head[1] = 127; head.writeBigUInt64BE(BigInt(data.length), 2); }
  return Buffer.concat([head, data]);
}

function wsSend(socket, type, extraMeta, payload) {
  const metadata = { message_id: crypto.randomUUID(), message_type: type, message_timestamp: new Date().toISOString(), ...extraMeta };
  if (!socket.destroyed) socket.write(wsFrame(JSON.stringify({ metadata, payload })));
}

function onUpgrade(req, socket) {
  if (new URL(req.url, "http://fake").pathname !== "/ws" || !req.headers["sec-websocket-key"]) return socket.destroy();
  const accept = crypto.createHash("sha1").update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const id = next("session");
  const timer = setInterval(() => wsSend(socket, "session_keepalive", {}, {}), 2000);
  sessions.set(id, { socket, timer });
  socket.on("data", () => {});
  socket.on("error", () => {});
  socket.on("close", () => {
    clearInterval(timer);
    sessions.delete(id);
    for (const s of subs) if (s.transport.session_id === id && s.status === "enabled") s.status = "websocket_disconnected";
  });
  wsSend(socket, "session_welcome", {}, {
    session: { id, status: "connected", connected_at: new Date().toISOString(), keepalive_timeout_seconds: 10, reconnect_url: null, recovery_url: null },
  });
}

http
  .createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      try { handle(req, res, body); } catch (e) { fail(res, 500, String(e)); }
    });
  })
  .on("upgrade", onUpgrade)
  .listen(Number(port), "127.0.0.1", () => console.log(`fake twitch on ${port}`));
