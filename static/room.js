// Rooms (SPEC §9) in the browser. EsbRoom.connect: a room socket on
// /websocket?room= that reconnects with backoff; EsbRoom.Polls: the room's
// polls as tallies with vote buttons. Shared by the watch page (below: the
// viewer count and the polls, with votes) and the streamer's room page
// (room-admin.js). The poll a streamer starts lives in the room's config as
// {"poll": {"id", "question", "answers"}} and is announced with a
// "poll.start" broadcast; any other poll in the room shows with the answers
// it has votes for.
var EsbRoom = (function () {
  "use strict";
  var MAX_SHOWN = 5;

  // Opens the room's socket; `frames[type](data, send)` handles a frame type,
  // `onOpen(send)` and `onClose()` the socket's life.
  function connect(room, frames, onOpen, onClose) {
    var ws = null, attempt = 0;
    function send(type, data) {
      if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: type, data: data }));
    }
    function open() {
      var proto = location.protocol === "https:" ? "wss://" : "ws://";
      ws = new WebSocket(proto + location.host + "/websocket?room=" + encodeURIComponent(room));
      ws.onopen = function () { attempt = 0; onOpen(send); };
      ws.onmessage = function (ev) {
        var f;
        try { f = JSON.parse(ev.data); } catch (e) { return; }
        if (f && typeof f.type === "string" && Object.prototype.hasOwnProperty.call(frames, f.type)) {
          frames[f.type](f.data, send);
        }
      };
      ws.onclose = function () {
        onClose();
        var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
        attempt++;
        setTimeout(open, delay);
      };
    }
    open();
    return send;
  }

  // The announced poll in a config string, or null.
  function announced(config) {
    try {
      var c = JSON.parse(config);
      var p = c && c.poll;
      return p && p.id && Array.isArray(p.answers) ? p : null;
    } catch (e) { return null; }
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Polls shown in `container`; `vote(id, answer)` makes the answers buttons.
  function Polls(container, vote) {
    this.container = container;
    this.vote = vote;
    this.polls = {};     // id -> {stats, updated}
    this.current = null; // the announced poll
    this.mine = {};      // id -> the answer this page voted
    this.tick = 0;
  }
  Polls.prototype.stats = function (data) {
    this.polls[data.id] = { stats: data.stats || {}, updated: ++this.tick };
    this.render();
  };
  Polls.prototype.announce = function (poll) {
    this.current = poll;
    this.render();
  };
  Polls.prototype.render = function () {
    var self = this, c = this.container;
    while (c.firstChild) c.removeChild(c.firstChild);
    var ids = Object.keys(this.polls).filter(function (id) { return !self.current || id !== self.current.id; });
    ids.sort(function (a, b) { return self.polls[b].updated - self.polls[a].updated; });
    if (this.current) ids.unshift(this.current.id);
    ids.slice(0, MAX_SHOWN).forEach(function (id) { c.appendChild(self.renderPoll(id)); });
    if (!ids.length) c.appendChild(el("p", "hint", "No poll right now."));
  };
  Polls.prototype.renderPoll = function (id) {
    var self = this;
    var stats = (this.polls[id] && this.polls[id].stats) || {};
    var isCurrent = this.current && this.current.id === id;
    var answers = isCurrent ? this.current.answers.slice() : [];
    Object.keys(stats).forEach(function (a) { if (answers.indexOf(a) < 0) answers.push(a); });
    var total = answers.reduce(function (n, a) { return n + (stats[a] || 0); }, 0);
    var box = el("div", "room-poll");
    box.setAttribute("data-poll", id);
    box.appendChild(el("h3", null, isCurrent ? this.current.question : "Poll " + id));
    var list = el("ul", "answers");
    answers.forEach(function (a) {
      var n = stats[a] || 0;
      var li = el("li", "answer");
      li.setAttribute("data-answer", a);
      var label;
      if (self.vote) {
        label = el("button", null, a);
        label.type = "button";
        label.setAttribute("aria-pressed", self.mine[id] === a ? "true" : "false");
        label.addEventListener("click", function () {
          self.mine[id] = a;
          self.vote(id, a);
          self.render();
        });
      } else {
        label = el("span", null, a);
      }
      var bar = el("progress");
      bar.max = Math.max(total, 1);
      bar.value = n;
      bar.setAttribute("aria-label", a + ": " + n + " of " + total);
      li.appendChild(label);
      li.appendChild(bar);
      li.appendChild(el("span", "votes", String(n)));
      list.appendChild(li);
    });
    box.appendChild(list);
    return box;
  };

  return { connect: connect, Polls: Polls, announced: announced };
})();

// The watch page's room panel.
(function () {
  "use strict";
  var root = document.querySelector(".room[data-room]");
  if (!root) return;
  var count = document.getElementById("room-count");
  var notice = document.getElementById("room-notice");
  var send = null;
  var polls = new EsbRoom.Polls(document.getElementById("room-polls"), function (id, answer) {
    if (send) send("poll", { id: id, answer: answer });
  });
  polls.render();
  EsbRoom.connect(root.getAttribute("data-room"), {
    config: function (data) { polls.announce(EsbRoom.announced(data)); },
    "poll.start": function (data) { polls.announce(data); },
    "poll.end": function () { polls.announce(null); },
    presence: function (data) { count.textContent = String(data.count); },
    poll: function (data) { polls.stats(data); },
    error: function (data) { notice.textContent = data.message; notice.hidden = false; }
  }, function (s) {
    send = s;
    s("subscribe", "presence");
    s("subscribe", "poll");
  }, function () { send = null; count.textContent = "…"; });
})();
