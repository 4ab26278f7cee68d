// The streamer's alert dashboard (SPEC §8): the overlay URL (hidden until
// revealed), a new key, per-kind settings with a test button each,
// pause/resume/skip/clear, the queue and the last 50 alerts with replay;
// in Twitch mode the alert sources (each alert kind's EventSub
// subscription, the streamer's grant with "Connect alerts", and with the
// WebSocket transport the EventSub socket). Everything goes through the
// alert API; every string from it is set as text, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) return;
  var channel = root.getAttribute("data-channel");
  var api = "/api/alerts/" + encodeURIComponent(channel);
  var KINDS = ["follow", "subscribe", "resub", "gift", "cheer", "raid", "redemption", "hype_train", "donation"];
  var WITH_AMOUNT = { gift: true, cheer: true, raid: true, donation: true };
  var $ = function (id) { return document.getElementById(id); };
  var statusEl = $("status");
  var urlInput = $("overlay-url");
  var settingsShown = false;

  function status(text, bad) {
    statusEl.textContent = text || "";
    statusEl.className = bad ? "notice error" : "notice";
  }

  function call(method, path, body) {
    var init = { method: method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(api + path, init).then(function (r) {
      if (r.status === 204) return null;
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j && j.message ? j.message : "HTTP " + r.status);
        return j;
      }, function () { if (!r.ok) throw new Error("HTTP " + r.status); return null; });
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function alertItem(a, extra) {
    var li = el("li", "alert-item " + a.kind);
    li.setAttribute("data-id", a.id);
    li.appendChild(el("span", "kind", a.kind + (a.test ? " · test" : "") + (a.replay ? " · replay" : "")));
    li.appendChild(el("span", "text", a.text));
    if (a.message) li.appendChild(el("span", "message", a.message));
    li.appendChild(el("time", "meta", new Date(a.at).toLocaleTimeString()));
    if (extra) li.appendChild(extra);
    return li;
  }

  function fill(list, alerts, extra) {
    list.textContent = "";
    if (!alerts.length) { list.appendChild(el("li", "empty", "none")); return; }
    alerts.forEach(function (a) { list.appendChild(alertItem(a, extra && extra(a))); });
  }

  function settingsRow(kind, s) {
    var tr = el("tr");
    tr.setAttribute("data-kind", kind);
    tr.appendChild(el("th", null, kind));
    function cell(input) { var td = el("td"); td.appendChild(input); tr.appendChild(td); return input; }
    function input(type, name, label) {
      var i = el("input");
      i.type = type; i.name = name;
      i.setAttribute("aria-label", kind + " " + label);
      return i;
    }
    cell(input("checkbox", "enabled", "enabled")).checked = !!s.enabled;
    var secs = cell(input("number", "duration", "seconds"));
    secs.min = "1"; secs.max = "60"; secs.step = "0.5"; secs.value = String(s.duration_ms / 1000);
    var min = cell(input("text", "min_amount", "minimum amount"));
    min.value = s.min_amount || "";
    min.disabled = !WITH_AMOUNT[kind];
    min.inputMode = "decimal";
    var tpl = cell(input("text", "template", "template"));
    tpl.value = s.template;
    cell(input("checkbox", "sound", "sound")).checked = !!s.sound;
    var test = el("button", "secondary", "Test");
    test.type = "button";
    test.setAttribute("data-test", kind);
    test.addEventListener("click", function () {
      call("POST", "/test", { kind: kind }).then(function () { status("Test " + kind + " alert queued."); refresh(); },
        function (e) { status(e.message, true); });
    });
    cell(test);
    return tr;
  }

  function readSettings() {
    var out = {};
    var rows = $("settings-rows").querySelectorAll("tr[data-kind]");
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], kind = r.getAttribute("data-kind");
      var q = function (n) { return r.querySelector("[name=" + n + "]"); };
      var s = {
        enabled: q("enabled").checked,
        duration_ms: Math.round(Number(q("duration").value) * 1000),
        template: q("template").value,
        sound: q("sound").checked
      };
      if (WITH_AMOUNT[kind]) s.min_amount = q("min_amount").value.trim() || null;
      out[kind] = s;
    }
    return out;
  }

  function render(v) {
    urlInput.value = v.overlay_url;
    var paused = $("paused-state");
    paused.textContent = v.paused ? "paused" : "running";
    paused.className = "state " + (v.paused ? "offline" : "live");
    fill($("in-flight"), v.in_flight ? [v.in_flight] : []);
    $("queued-count").textContent = "(" + v.queued.length + ")";
    fill($("queued"), v.queued);
    fill($("recent"), v.recent.map(function (r) { return r; }), function (a) {
      var b = el("button", "secondary", a.outcome === "skipped" ? "Replay (skipped)" : "Replay");
      b.type = "button";
      b.addEventListener("click", function () {
        call("POST", "/replay", { id: a.id }).then(function () { status("Replay queued first."); refresh(); },
          function (e) { status(e.message, true); });
      });
      return b;
    });
    if (!settingsShown) {
      var rows = $("settings-rows");
      rows.textContent = "";
      KINDS.forEach(function (k) { if (v.settings[k]) rows.appendChild(settingsRow(k, v.settings[k])); });
      settingsShown = true;
    }
  }

  function refresh() {
    return call("GET", "").then(render, function (e) { status("Could not load the alerts: " + e.message, true); });
  }

  $("reveal").addEventListener("click", function () {
    var hidden = urlInput.type === "password";
    urlInput.type = hidden ? "text" : "password";
    this.textContent = hidden ? "Hide" : "Reveal";
  });
  $("copy").addEventListener("click", function () {
    var done = function () { status("Overlay URL copied."); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(urlInput.value).then(done, function () { status("Copy failed: reveal and copy it by hand.", true); });
    } else {
      status("Copy is not available here: reveal and copy it by hand.", true);
    }
  });
  $("new-key").addEventListener("click", function () {
    if (!confirm("Make a new overlay key? The current overlay URL stops working at once.")) return;
    call("POST", "/key").then(function (r) { urlInput.value = r.url; status("New key made: update the URL in OBS."); },
      function (e) { status(e.message, true); });
  });
  [["pause", "Paused: the alert on screen finishes, nothing new is shown."], ["resume", "Resumed."],
   ["skip", "Skipped."], ["clear", "Waiting alerts cleared."]].forEach(function (c) {
    $(c[0]).addEventListener("click", function () {
      call("POST", "/" + c[0]).then(function () { status(c[1]); refresh(); }, function (e) { status(e.message, true); });
    });
  });
  $("settings").addEventListener("submit", function (ev) {
    ev.preventDefault();
    call("PUT", "/settings", readSettings()).then(function () { status("Settings saved; open overlays have them."); },
      function (e) { status("Not saved: " + e.message, true); });
  });

  // Alert sources (Twitch mode only: the section is not on the page in
  // local mode). Statuses are grouped into what the streamer acts on;
  // Twitch's own word is kept in the detail column.
  var GRANT = {
    connected: ["connected", "live"],
    not_connected: ["missing", "offline"],
    revoked: ["revoked: needs reconnect", "offline"]
  };
  var SOURCE = {
    enabled: ["enabled", "live"],
    pending: ["pending", "pending"],
    webhook_callback_verification_pending: ["pending", "pending"],
    not_connected: ["not connected", "offline"],
    grant_revoked: ["revoked", "offline"],
    socket_down: ["socket down", "pending"],
    websocket_disconnected: ["socket down", "pending"],
    authorization_revoked: ["revoked", "offline"],
    user_removed: ["revoked", "offline"],
    moderator_removed: ["revoked", "offline"],
    version_removed: ["revoked", "offline"]
  };
  var sourcesEl = $("alert-sources");

  function pill(node, label, cls) {
    node.textContent = label;
    node.className = "state " + cls;
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "none yet";
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function grantDetail(g) {
    if (g.status === "revoked") {
      return "Twitch withdrew the permission" + (g.revoked_reason ? " (" + g.revoked_reason + ")" : "") +
        (g.revoked_at ? " at " + new Date(g.revoked_at).toLocaleString() : "") +
        ". Connect alerts again to get Twitch alerts.";
    }
    if (g.status === "not_connected") return "Connect alerts so that Twitch events reach your overlay.";
    if (g.missing_scopes.length) return "Twitch did not allow: " + g.missing_scopes.join(", ") + ". Connect alerts again to allow them.";
    return g.connected_at ? "Connected " + new Date(g.connected_at).toLocaleString() + "." : "";
  }

  function sourceRow(src) {
    var tr = el("tr");
    tr.setAttribute("data-kind", src.kind);
    tr.appendChild(el("th", null, src.kind));
    tr.appendChild(el("td", "type", src.type + " v" + src.version));
    var known = SOURCE[src.status] || (src.status === "error" || src.status === "missing_scope" ||
      /failed|failures|exceeded|^websocket_/.test(src.status) ? ["failed", "offline"] : [src.status, "pending"]);
    var td = el("td");
    var p = el("span");
    pill(p, known[0], known[1]);
    p.setAttribute("data-status", src.status);
    td.appendChild(p);
    tr.appendChild(td);
    var detail = [];
    if (known[0] !== src.status) detail.push(src.status);
    if (src.status === "missing_scope" && src.scope) detail.push("needs " + src.scope);
    if (src.error) detail.push(src.error);
    tr.appendChild(el("td", "hint", detail.join(": ")));
    return tr;
  }

  function renderSources(v) {
    var g = GRANT[v.grant.status] || [v.grant.status, "pending"];
    pill($("grant-state"), g[0], g[1]);
    $("grant-detail").textContent = grantDetail(v.grant);
    $("connect-alerts").href = v.connect_url;
    $("transport").textContent = v.transport === "websocket"
      ? "Transport: WebSocket (this bridge keeps a socket open to Twitch; no public URL needed)."
      : "Transport: webhook (Twitch posts events to this bridge's public URL).";
    var box = $("eventsub-socket");
    box.hidden = v.transport !== "websocket";
    if (v.transport === "websocket") {
      var sock = v.socket;
      if (sock) {
        pill($("socket-state"), sock.state, sock.connected ? "live" : (sock.state === "stopped" ? "offline" : "pending"));
      } else {
        pill($("socket-state"), "no socket", "offline");
      }
      $("socket-reconnects").textContent = sock ? String(sock.reconnects) : "–";
      $("socket-last-message").textContent = sock ? ago(sock.last_message_age_s) : "–";
      $("socket-error").textContent = sock && sock.last_error ? sock.last_error : "none";
    }
    var rows = $("source-rows");
    rows.textContent = "";
    v.sources.forEach(function (src) { rows.appendChild(sourceRow(src)); });
  }

  function refreshSources() {
    return call("GET", "/sources").then(renderSources, function (e) {
      $("grant-detail").textContent = "Could not load the alert sources: " + e.message;
    });
  }

  refresh();
  setInterval(refresh, 3000);
  if (sourcesEl) {
    refreshSources();
    // Each load asks Twitch for the subscriptions (webhook transport): not
    // as often as the queue.
    setInterval(refreshSources, 5000);
  }
})();
