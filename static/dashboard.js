// The streamer's alert dashboard (SPEC §8): the overlay URL (hidden until
// revealed), a new key, per-kind settings with a test button each,
// pause/resume/skip/clear, the queue and the last 50 alerts with replay.
// Everything goes through the alert API; user strings are set as text.
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

  refresh();
  setInterval(refresh, 3000);
})();
