// The OBS alert overlay (SPEC §8): one WebSocket to /overlay/{channel}/ws,
// one alert at a time with an entrance and exit animation, a short Web
// Audio tone when the kind's `sound` is on, an ack when the alert's
// duration is over, and reconnects with backoff. User strings are written
// with textContent, never as HTML.
(function () {
  "use strict";
  var channel = document.body.getAttribute("data-channel");
  var key = new URLSearchParams(location.search).get("key") || "";
  var stage = document.getElementById("stage");
  var EXIT_MS = 450;
  var LABELS = { follow: "New follower", subscribe: "New subscriber", resub: "Resub", gift: "Gifted subs",
    cheer: "Cheer", raid: "Raid", redemption: "Redemption", hype_train: "Hype train", donation: "Donation" };
  var settings = {};
  var current = null;
  // Alerts this page finished: a redelivery of one is acked again, not shown again.
  var done = [];
  var ws = null;
  var attempt = 0;
  var audio = null;
  // The last ack sent: sent again when the server could not act on it.
  var lastAck = null;

  function finished(id) { return done.indexOf(id) !== -1; }
  function remember(id) { done.push(id); if (done.length > 200) done.shift(); }
  function send(op) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(op));
  }

  function tone() {
    try {
      var AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      audio = audio || new AC();
      var t = audio.currentTime;
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.setValueAtTime(660, t);
      osc.frequency.linearRampToValueAtTime(990, t + 0.18);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.4);
    } catch (e) { /* no audio: the alert still shows */ }
  }

  function leave(c) {
    clearTimeout(c.exitTimer);
    clearTimeout(c.endTimer);
    c.el.classList.remove("in");
    c.el.classList.add("out");
    setTimeout(function () { if (c.el.parentNode) c.el.parentNode.removeChild(c.el); }, EXIT_MS);
  }

  function end(ack) {
    var c = current;
    if (!c) return;
    current = null;
    remember(c.id);
    leave(c);
    if (ack) { lastAck = c.id; send({ op: "ack", id: c.id }); }
  }

  function show(alert) {
    if (!alert || typeof alert.id !== "string") return;
    if (current && current.id === alert.id) return;
    if (finished(alert.id)) { send({ op: "ack", id: alert.id }); return; }
    // A newer head (another overlay acked, or the streamer skipped) replaces this one.
    if (current) end(false);
    var el = document.createElement("div");
    el.className = "alert " + String(alert.kind).replace(/[^a-z0-9_]/g, "");
    el.setAttribute("data-id", alert.id);
    var kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = LABELS[alert.kind] || alert.kind;
    var text = document.createElement("div");
    text.className = "text";
    text.textContent = alert.text;
    el.appendChild(kind);
    el.appendChild(text);
    if (alert.message) {
      var msg = document.createElement("div");
      msg.className = "message";
      msg.textContent = alert.message;
      el.appendChild(msg);
    }
    stage.appendChild(el);
    // Next frame, so that the entrance transition runs.
    requestAnimationFrame(function () { requestAnimationFrame(function () { el.classList.add("in"); }); });
    var s = settings[alert.kind];
    if (s && s.sound) tone();
    var duration = Math.max(1000, Number(alert.duration_ms) || 8000);
    var c = { id: alert.id, el: el };
    // The exit animation ends as the duration does; then the ack.
    c.exitTimer = setTimeout(function () { el.classList.remove("in"); el.classList.add("out"); }, duration - EXIT_MS);
    c.endTimer = setTimeout(function () { if (current === c) end(true); }, duration);
    current = c;
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/overlay/" + encodeURIComponent(channel) +
      "/ws?key=" + encodeURIComponent(key));
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f.op === "alert" || f.op === "skip") lastAck = null;
      if (f.op === "welcome") {
        attempt = 0;
        settings = f.settings || {};
      } else if (f.op === "alert") {
        show(f.alert);
      } else if (f.op === "skip") {
        if (current && current.id === f.id) end(false);
      } else if (f.op === "settings") {
        settings = f.settings || {};
      } else if (f.op === "error" && (f.code === "rate_limited" || f.code === "unavailable") && lastAck) {
        // An ack the server did not act on would hold the queue: send it again.
        var id = lastAck;
        setTimeout(function () { if (lastAck === id) send({ op: "ack", id: id }); }, 1000);
      }
    };
    ws.onclose = function (ev) {
      ws = null;
      // 4001: the key was replaced; this URL will not work again.
      if (ev.code === 4001) { console.warn("overlay key replaced: copy the new URL from the dashboard"); return; }
      var delay = Math.min(15000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
      attempt++;
      setTimeout(connect, delay);
    };
  }
  connect();
})();
