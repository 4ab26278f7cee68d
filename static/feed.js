// Live event feed for /watch/{streamer}: one WebSocket, resumes with `since`
// after every reconnect (exponential backoff with jitter), newest first.
(function () {
  "use strict";
  var root = document.querySelector("[data-channel]");
  if (!root) return;
  var channel = root.getAttribute("data-channel");
  var feed = document.getElementById("feed");
  var stateEl = document.getElementById("state");
  var notice = document.getElementById("notice");
  var storeKey = "esb:last:" + channel;
  var lastId = null;
  try { lastId = sessionStorage.getItem(storeKey); } catch (e) { lastId = null; }
  var seen = new Set();
  var attempt = 0;
  var MAX_ITEMS = 200;
  var ICONS = {
    "stream.online": "🔴", "stream.offline": "⚫", "channel.update": "✏️", "channel.follow": "💜",
    "channel.subscribe": "⭐", "channel.subscription.gift": "🎁", "channel.subscription.message": "🔁",
    "channel.cheer": "💎", "channel.raid": "🚀", "channel.channel_points_custom_reward_redemption.add": "🏆",
    "channel.poll.begin": "📊", "channel.poll.end": "📊", "channel.prediction.begin": "🔮",
    "channel.hype_train.begin": "🚂", "channel.ban": "🔨", "channel.chat.message": "💬",
    "subscription.revoked": "⚠️", "subscription.error": "⚠️", "stream.changed": "📺"
  };

  function setState(cls, text) { stateEl.className = "state " + cls; stateEl.textContent = text; }
  function showNotice(text) { notice.textContent = text; notice.hidden = !text; }

  function relative(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return "";
    var s = Math.round((Date.now() - t) / 1000);
    if (s < 5) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return new Date(t).toLocaleString();
  }

  function add(msg) {
    if (!msg || !msg.id || seen.has(msg.id)) return;
    seen.add(msg.id);
    lastId = msg.id;
    try { sessionStorage.setItem(storeKey, lastId); } catch (e) { /* private mode */ }
    var li = document.createElement("li");
    // Bridge notices (a revoked or failed subscription) stand out from events.
    li.className = msg.source === "system" ? "event system" : "event";
    li.setAttribute("data-type", msg.type);
    var icon = document.createElement("span");
    icon.className = "icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = ICONS[msg.type] || "✨";
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = msg.text || msg.type;
    var meta = document.createElement("time");
    meta.className = "meta";
    meta.setAttribute("datetime", msg.at);
    meta.textContent = relative(msg.at) + " · " + msg.type;
    li.appendChild(icon); li.appendChild(text); li.appendChild(meta);
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > MAX_ITEMS) feed.removeChild(feed.lastChild);
  }

  setInterval(function () {
    var times = feed.querySelectorAll("time.meta");
    for (var i = 0; i < times.length; i++) {
      var li = times[i].parentNode;
      times[i].textContent = relative(times[i].getAttribute("datetime")) + " · " + li.getAttribute("data-type");
    }
  }, 15000);

  function connect() {
    setState("connecting", attempt ? "reconnecting…" : "connecting…");
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/ws");
    ws.onopen = function () {
      var op = { op: "subscribe", channel: channel };
      if (lastId) op.since = lastId;
      ws.send(JSON.stringify(op));
    };
    ws.onmessage = function (ev) {
      var frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (frame.op === "subscribed") {
        attempt = 0;
        setState("live", "live");
        showNotice(frame.gap ? "Some earlier events may be missing." : "");
      } else if (frame.op === "event") {
        add(frame.message);
      } else if (frame.op === "error") {
        showNotice("Server: " + frame.message);
      }
    };
    ws.onclose = function (ev) {
      if (ev.code === 1008 && attempt > 3) { setState("offline", "signed out?"); }
      else setState("offline", "offline — retrying");
      var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
      attempt++;
      setTimeout(connect, delay);
    };
  }
  connect();
})();
