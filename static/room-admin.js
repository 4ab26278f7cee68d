// The streamer's room page (/rooms/{channel}): the viewer count, starting
// and ending a poll (kept in the config, announced by broadcast; see
// room.js), live tallies and counters, broadcasts and the config string.
(function () {
  "use strict";
  var root = document.querySelector(".room-admin[data-room]");
  if (!root) return;
  var $ = function (id) { return document.getElementById(id); };
  var send = null, config = "";
  var polls = new EsbRoom.Polls($("room-polls"), null);
  var counters = {};
  polls.render();

  function notify(text) { $("room-notice").textContent = text; $("room-notice").hidden = !text; }
  function state(cls, text) { $("room-state").className = "state " + cls; $("room-state").textContent = text; }

  function configObject() {
    if (!config) return {};
    try {
      var c = JSON.parse(config);
      return c && typeof c === "object" && !Array.isArray(c) ? c : null;
    } catch (e) { return null; }
  }

  function renderCounters() {
    var list = $("room-counters");
    while (list.firstChild) list.removeChild(list.firstChild);
    var ids = Object.keys(counters).sort();
    if (!ids.length) {
      var none = document.createElement("li");
      none.className = "hint";
      none.textContent = "No counter yet.";
      list.appendChild(none);
    }
    ids.forEach(function (id) {
      var li = document.createElement("li");
      li.setAttribute("data-counter", id);
      var name = document.createElement("span");
      name.textContent = id;
      var value = document.createElement("span");
      value.className = "value";
      value.textContent = counters[id];
      li.appendChild(name);
      li.appendChild(value);
      list.appendChild(li);
    });
  }

  // Keeps (or drops, with null) the poll in the config, then announces it.
  function setPoll(poll) {
    var c = configObject();
    if (c) {
      if (poll) c.poll = poll; else delete c.poll;
      send("config", JSON.stringify(c));
      notify("");
    } else {
      notify("The config is not a JSON object, so the poll is only broadcast: viewers who join later will not see it.");
    }
    if (poll) send("broadcast", { type: "poll.start", data: poll });
    else send("broadcast", { type: "poll.end", data: null });
  }

  $("poll-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!send) return;
    var answers = $("poll-answers").value.split("\n")
      .map(function (a) { return a.trim(); })
      .filter(function (a, i, all) { return a && all.indexOf(a) === i; });
    if (answers.length < 2) { notify("A poll needs at least two answers."); return; }
    setPoll({ id: "p" + Date.now().toString(36), question: $("poll-question").value.trim(), answers: answers });
  });
  $("poll-end").addEventListener("click", function () { if (send) setPoll(null); });

  $("broadcast-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!send) return;
    var raw = $("broadcast-data").value, data = raw;
    try { data = JSON.parse(raw); } catch (e) { data = raw; }
    var b = { type: $("broadcast-type").value.trim(), data: data };
    var to = $("broadcast-to").value.trim();
    if (to) b.to = to;
    send("broadcast", b);
  });

  $("config-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (send) send("config", $("config-text").value);
  });

  EsbRoom.connect(root.getAttribute("data-room"), {
    profile: function (data) {
      if (data.role !== "admin") notify("You are not an admin of this room: changes will be refused.");
    },
    config: function (data) {
      config = data;
      if (document.activeElement !== $("config-text")) $("config-text").value = data;
      polls.announce(EsbRoom.announced(data));
    },
    presence: function (data) { $("room-count").textContent = String(data.count); },
    poll: function (data) { polls.stats(data); },
    counter: function (data) { counters[data.id] = data.value; renderCounters(); },
    error: function (data) { notify(data.code + ": " + data.message); }
  }, function (s) {
    send = s;
    state("live", "live");
    ["presence", "poll", "counter"].forEach(function (what) { s("subscribe", what); });
  }, function () { send = null; state("offline", "offline — retrying"); });
})();
