//! RFC 6455 conformance of every WebSocket endpoint: one table of cases
//! modelled on the Autobahn test suite (sections 1–7 and 9, numbered as
//! there; `x.*` are rules the issue adds), run with a byte-level client
//! against each endpoint in [`ENDPOINTS`]. Autobahn's cases are written for
//! an echo server; here a message is "echoed" by the endpoint's answer to
//! its probe op (padded with JSON whitespace to any length), and text that
//! is not JSON by the endpoint's `bad_json` error. Our endpoints take text
//! only and messages up to 64 KiB (SPEC §7.3), so Autobahn's binary echoes
//! become 1003 and its messages over 64 KiB become 1009.
//!
//! Each case ends either with the server's close (its code, then the TCP
//! connection closed by the server) or, when the connection must stay
//! open, with a probe that is still answered and a clean close (1000
//! echoed, then the end of the stream).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_http::ws::{Frame, OpCode, Parser};
use eventsub_bridge::config::Settings;
use serde_json::Value;

use crate::helpers::raw_ws::{RAW_WAIT, RawWs, client_frame};
use crate::helpers::{TestApp, spawn_app};

/// What opening an endpoint needs: the request target and extra header lines.
struct Target {
    path: String,
    headers: String,
}

type Open = for<'a> fn(&'a TestApp) -> Pin<Box<dyn Future<Output = Target> + 'a>>;

/// One socket endpoint: how to open it and how it answers.
struct Endpoint {
    name: &'static str,
    /// Changes the test settings for this endpoint's app.
    settings: fn(&mut Settings),
    /// Prepares the app (sign-in, keys) and says how to open a connection.
    open: Open,
    /// How many text frames the server sends on connect (a welcome).
    greeting: usize,
    /// A JSON op the endpoint answers with exactly one text frame.
    probe: &'static str,
    /// Whether a text frame is the answer to the probe.
    is_answer: fn(&Value) -> bool,
    /// Whether a text frame is the error for text that is not JSON.
    is_refusal: fn(&Value) -> bool,
}

/// Every socket endpoint on the shared transport.
const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: "/ws",
        settings: |_| {},
        open: |app| {
            Box::pin(async move {
                app.login_as("viewer").await;
                let cookie = app.cookie_header().unwrap_or_default();
                Target {
                    path: "/ws".into(),
                    headers: format!("Cookie: {cookie}\r\n"),
                }
            })
        },
        greeting: 1,
        probe: r#"{"op":"ping"}"#,
        is_answer: |v| v["op"] == "pong",
        is_refusal: |v| v["op"] == "error" && v["code"] == "bad_json",
    },
    Endpoint {
        name: "/websocket?room=",
        settings: |_| {},
        open: |app| {
            Box::pin(async move {
                app.login_as("viewer").await;
                let cookie = app.cookie_header().unwrap_or_default();
                Target {
                    path: "/websocket?room=teststreamer".into(),
                    headers: format!("Cookie: {cookie}\r\n"),
                }
            })
        },
        // `config`, then `profile`.
        greeting: 2,
        probe: r#"{"type":"ping"}"#,
        is_answer: |v| v["type"] == "pong",
        is_refusal: |v| v["type"] == "error" && v["data"]["code"] == "bad_json",
    },
    Endpoint {
        name: "/overlay/{channel}/ws",
        settings: |_| {},
        open: |app| {
            Box::pin(async move {
                // The streamer signs in to read the overlay key; the overlay
                // itself needs only the key (SPEC §8).
                app.login_as("teststreamer").await;
                let key = app.overlay_key("teststreamer").await;
                Target {
                    path: format!("/overlay/teststreamer/ws?key={key}"),
                    headers: String::new(),
                }
            })
        },
        // `welcome` (no alert is in flight).
        greeting: 1,
        probe: r#"{"op":"ping"}"#,
        is_answer: |v| v["op"] == "pong",
        is_refusal: |v| v["op"] == "error" && v["code"] == "bad_json",
    },
];

/// How a case's frames go onto the wire.
#[derive(Clone, Copy)]
enum Chop {
    /// One write.
    Whole,
    /// A write per frame.
    Frames,
    /// Writes of this many bytes.
    Every(usize),
}

/// What the server must send next.
#[derive(Debug)]
enum Reply {
    /// The probe's answer.
    Answer,
    /// The `bad_json` error.
    Refusal,
    /// A pong with this payload.
    Pong(Vec<u8>),
}

enum Step {
    /// Writes bytes in writes of at most the given size (`None`: one write).
    Send(Vec<u8>, Option<usize>),
    /// The next frame is this reply (server pings are skipped).
    Expect(Reply),
    /// The server closes with this code, sends nothing after it, and ends
    /// the TCP connection. Always the last step.
    Closed(u16),
}

/// One case: what to send, what must come back.
struct Case {
    id: String,
    what: &'static str,
    steps: Vec<Step>,
}

impl Case {
    fn new(id: impl Into<String>, what: &'static str) -> Self {
        Self {
            id: id.into(),
            what,
            steps: Vec::new(),
        }
    }

    /// Sends frames in one write.
    fn send(self, frames: impl IntoIterator<Item = Vec<u8>>) -> Self {
        self.send_as(Chop::Whole, frames)
    }

    /// Sends frames as `chop` says.
    fn send_as(mut self, chop: Chop, frames: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let frames: Vec<Vec<u8>> = frames.into_iter().collect();
        match chop {
            Chop::Whole => self.steps.push(Step::Send(frames.concat(), None)),
            Chop::Frames => self
                .steps
                .extend(frames.into_iter().map(|f| Step::Send(f, None))),
            Chop::Every(n) => self.steps.push(Step::Send(frames.concat(), Some(n))),
        }
        self
    }

    fn expect(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.steps.extend(replies.into_iter().map(Step::Expect));
        self
    }

    fn closed(mut self, code: u16) -> Self {
        self.steps.push(Step::Closed(code));
        self
    }
}

fn frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    client_frame(payload, op, fin).to_vec()
}

fn text(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Text, true, payload)
}

/// The first fragment of a text message.
fn frag(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Text, false, payload)
}

fn cont(payload: &[u8], fin: bool) -> Vec<u8> {
    frame(OpCode::Continue, fin, payload)
}

fn binary(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Binary, true, payload)
}

fn ping(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Ping, true, payload)
}

fn pong(payload: &[u8]) -> Vec<u8> {
    frame(OpCode::Pong, true, payload)
}

/// A frame whose first byte carries these opcode bits and RSV bits.
fn raw_frame(op_bits: u8, rsv: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = text(payload);
    f[0] = 0x80 | (rsv << 4) | op_bits;
    f
}

fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(OpCode::Close, true, &payload)
}

/// The probe padded with spaces to `len` bytes (still one JSON value).
fn padded(probe: &[u8], len: usize) -> Vec<u8> {
    assert!(len >= probe.len());
    let mut p = probe.to_vec();
    p.resize(len, b' ');
    p
}

/// `bytes` as a text message in fragments of `size` bytes.
fn fragments(bytes: &[u8], size: usize) -> Vec<Vec<u8>> {
    let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
    let last = pieces.len() - 1;
    let fin = |i| i == last;
    let mut frames = vec![frame(OpCode::Text, fin(0), pieces[0])];
    frames.extend((1..=last).map(|i| cont(pieces[i], fin(i))));
    frames
}

/// A text frame header claiming `len` bytes, and a mask.
fn text_header(len: u64) -> Vec<u8> {
    let mut head = vec![0x81, 0xFF];
    head.extend_from_slice(&len.to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    head
}

/// UTF-8 sequences after Markus Kuhn's decoder test, as Autobahn 6.5–6.23
/// uses them: (valid, bytes).
fn utf8_sequences() -> Vec<(bool, Vec<u8>)> {
    let valid: [&[u8]; 17] = [
        b"hello$world",
        "hello¢world".as_bytes(),
        "hello€world".as_bytes(),
        "hello\u{24B62}world".as_bytes(),
        "κόσμε".as_bytes(),
        // First and last sequence of each length, other boundaries.
        b"\x00",
        b"\xc2\x80",
        b"\xe0\xa0\x80",
        b"\xf0\x90\x80\x80",
        b"\x7f",
        b"\xdf\xbf",
        b"\xef\xbf\xbf",
        b"\xf4\x8f\xbf\xbf",
        b"\xed\x9f\xbf",
        b"\xee\x80\x80",
        b"\xef\xbf\xbd",
        // Non-characters are valid UTF-8.
        b"\xef\xbf\xbe",
    ];
    let invalid: [&[u8]; 36] = [
        // Out of range; five and six byte forms.
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xfc\x84\x80\x80\x80\x80",
        // Unexpected continuation bytes.
        b"\x80",
        b"\xbf",
        b"\x80\xbf",
        b"\x80\xbf\x80",
        // Lonely start characters.
        b"\xc0\x20",
        b"\xe0\x20",
        b"\xf0\x20",
        // The last byte missing.
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        // Impossible bytes.
        b"\xfe",
        b"\xff",
        b"\xfe\xfe\xff\xff",
        // Overlong forms.
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xf0\x80\x80\xaf",
        b"\xc1\xbf",
        b"\xe0\x9f\xbf",
        b"\xf0\x8f\xbf\xbf",
        b"\xc0\x80",
        b"\xe0\x80\x80",
        // UTF-16 surrogates, single and paired.
        b"\xed\xa0\x80",
        b"\xed\xad\xbf",
        b"\xed\xae\x80",
        b"\xed\xaf\xbf",
        b"\xed\xb0\x80",
        b"\xed\xbe\x80",
        b"\xed\xbf\xbf",
        b"\xed\xa0\x80\xed\xb0\x80",
        b"\xed\xaf\xbf\xed\xbf\xbf",
    ];
    let mut v: Vec<(bool, Vec<u8>)> = valid.iter().map(|b| (true, b.to_vec())).collect();
    v.extend(invalid.iter().map(|b| (false, b.to_vec())));
    // Every prefix of a string of multi-byte code points.
    let kosme = "κόσμε".as_bytes();
    for end in 1..kosme.len() {
        let prefix = &kosme[..end];
        v.push((std::str::from_utf8(prefix).is_ok(), prefix.to_vec()));
    }
    v
}

/// The case table for an endpoint answering `p`.
#[expect(clippy::too_many_lines, reason = "one table, read top to bottom")]
fn cases(p: &[u8]) -> Vec<Case> {
    use Reply::{Answer, Pong, Refusal};
    let (p1, p2) = p.split_at(p.len() / 2);
    let limit = padded(p, 65_536);
    let bin = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff";
    let kosme = "κόσμε".as_bytes();
    let hello = "Hello-µ@ßöäüàá-UTF-8!!".as_bytes();
    let bad_utf8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited";
    let mut c = Vec::new();

    // 1: text and binary messages of the lengths where the length form changes.
    c.push(
        Case::new("1.1.1", "empty text")
            .send([text(b"")])
            .expect([Refusal]),
    );
    for (i, len) in [125, 126, 127, 128, 65_535, 65_536].into_iter().enumerate() {
        let what = "text of a boundary length";
        c.push(
            Case::new(format!("1.1.{}", i + 2), what)
                .send([text(&padded(p, len))])
                .expect([Answer]),
        );
    }
    let chops = Case::new("1.1.8", "64 KiB text in chops of 997");
    c.push(
        chops
            .send_as(Chop::Every(997), [text(&limit)])
            .expect([Answer]),
    );
    for (i, len) in [0, 125, 126, 127, 128, 65_535, 65_536]
        .into_iter()
        .enumerate()
    {
        let case = Case::new(format!("1.2.{}", i + 1), "binary: 1003");
        c.push(case.send([binary(&vec![0xFE; len])]).closed(1003));
    }
    let chops = Case::new("1.2.8", "binary in chops of 997: 1003");
    c.push(
        chops
            .send_as(Chop::Every(997), [binary(&[0xFE; 65_536])])
            .closed(1003),
    );

    // 2: pings and pongs.
    c.push(
        Case::new("2.1", "ping without payload")
            .send([ping(b"")])
            .expect([Pong(vec![])]),
    );
    let hi = b"Hello, world!";
    c.push(
        Case::new("2.2", "ping with text")
            .send([ping(hi)])
            .expect([Pong(hi.to_vec())]),
    );
    c.push(
        Case::new("2.3", "ping with binary")
            .send([ping(bin)])
            .expect([Pong(bin.to_vec())]),
    );
    let full = [0xFE; 125];
    c.push(
        Case::new("2.4", "ping of 125 bytes")
            .send([ping(&full)])
            .expect([Pong(full.to_vec())]),
    );
    c.push(
        Case::new("2.5", "ping of 126 bytes: 1002")
            .send([ping(&[0xFE; 126])])
            .closed(1002),
    );
    let octets = Case::new("2.6", "ping of 125 bytes, octet-wise");
    c.push(
        octets
            .send_as(Chop::Every(1), [ping(&full)])
            .expect([Pong(full.to_vec())]),
    );
    let quiet = Case::new("2.7", "unsolicited pong: nothing back");
    c.push(quiet.send([pong(b""), text(p)]).expect([Answer]));
    let quiet = Case::new("2.8", "unsolicited pong with payload: nothing back");
    c.push(quiet.send([pong(b"unsolicited"), text(p)]).expect([Answer]));
    let both = Case::new("2.9", "pong, then ping");
    c.push(
        both.send([pong(b"unsolicited"), ping(b"ping payload")])
            .expect([Pong(b"ping payload".to_vec())]),
    );
    for (id, chop) in [("2.10", Chop::Whole), ("2.11", Chop::Every(1))] {
        let payloads: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("payload-{i}").into_bytes())
            .collect();
        let case = Case::new(id, "10 pings, 10 pongs in order");
        let case = case.send_as(chop, payloads.iter().map(|pl| ping(pl)));
        c.push(case.expect(payloads.into_iter().map(Pong)));
    }

    // 3: reserved bits.
    c.push(
        Case::new("3.1", "text with RSV=1: 1002")
            .send([raw_frame(1, 1, p)])
            .closed(1002),
    );
    for (id, rsv, chop) in [
        ("3.2", 2, Chop::Whole),
        ("3.3", 3, Chop::Frames),
        ("3.4", 4, Chop::Every(1)),
    ] {
        let case = Case::new(id, "text, text with RSV, ping: answer, 1002, no pong");
        let case = case.send_as(chop, [text(p), raw_frame(1, rsv, p), ping(b"")]);
        c.push(case.expect([Answer]).closed(1002));
    }
    c.push(
        Case::new("3.5", "binary with RSV=5: 1002")
            .send([raw_frame(2, 5, bin)])
            .closed(1002),
    );
    c.push(
        Case::new("3.6", "ping with RSV=6: 1002")
            .send([raw_frame(9, 6, hi)])
            .closed(1002),
    );
    c.push(
        Case::new("3.7", "close with RSV=7: 1002")
            .send([raw_frame(8, 7, b"")])
            .closed(1002),
    );

    // 4: reserved opcodes, alone or after a good message and before a ping.
    for (section, ops) in [("4.1", [3u8, 4, 5, 6, 7]), ("4.2", [11, 12, 13, 14, 15])] {
        for (i, op) in ops.into_iter().enumerate() {
            let case = Case::new(format!("{section}.{}", i + 1), "reserved opcode: 1002");
            c.push(match i {
                0 => case.send([raw_frame(op, 0, b"")]).closed(1002),
                1 => case
                    .send([raw_frame(op, 0, b"reserved opcode payload")])
                    .closed(1002),
                _ => {
                    let case = case.send([text(p), raw_frame(op, 0, b"payload"), ping(b"")]);
                    case.expect([Answer]).closed(1002)
                }
            });
        }
    }

    // 5: fragmentation.
    let control = [
        frame(OpCode::Ping, false, b"fragment1"),
        cont(b"fragment2", true),
    ];
    c.push(
        Case::new("5.1", "fragmented ping: 1002")
            .send(control)
            .closed(1002),
    );
    let control = [
        frame(OpCode::Pong, false, b"fragment1"),
        cont(b"fragment2", true),
    ];
    c.push(
        Case::new("5.2", "fragmented pong: 1002")
            .send(control)
            .closed(1002),
    );
    for (id, chop) in [
        ("5.3", Chop::Whole),
        ("5.4", Chop::Frames),
        ("5.5", Chop::Every(1)),
    ] {
        let case = Case::new(id, "text in 2 fragments");
        c.push(
            case.send_as(chop, [frag(p1), cont(p2, true)])
                .expect([Answer]),
        );
    }
    for (id, chop) in [
        ("5.6", Chop::Whole),
        ("5.7", Chop::Frames),
        ("5.8", Chop::Every(1)),
    ] {
        let case = Case::new(id, "2 fragments, a ping between: pong, then the answer");
        let case = case.send_as(chop, [frag(p1), ping(b"ping payload"), cont(p2, true)]);
        c.push(case.expect([Pong(b"ping payload".to_vec()), Answer]));
    }
    for (first, fin) in [(9, true), (12, false)] {
        for (i, chop) in [Chop::Whole, Chop::Frames, Chop::Every(1)]
            .into_iter()
            .enumerate()
        {
            let case = Case::new(format!("5.{}", first + i), "continuation of nothing: 1002");
            c.push(
                case.send_as(chop, [cont(b"non-continuation payload", fin), text(p)])
                    .closed(1002),
            );
        }
    }
    let case = Case::new("5.15", "a message, then a continuation of nothing: 1002");
    let case = case.send([
        frag(p1),
        cont(p2, true),
        cont(b"fragment3", false),
        frag(b"fragment4"),
    ]);
    c.push(case.expect([Answer]).closed(1002));
    for (id, fin) in [("5.16", false), ("5.17", true)] {
        let round = [
            cont(b"fragment1", fin),
            frag(b"fragment2"),
            cont(b"fragment3", true),
        ];
        let case = Case::new(id, "continuation first, twice: 1002");
        c.push(case.send([round.clone(), round].concat()).closed(1002));
    }
    let case = Case::new("5.18", "second fragment with the text opcode: 1002");
    c.push(case.send([frag(p1), text(p2)]).closed(1002));
    for (id, chop) in [("5.19", Chop::Whole), ("5.20", Chop::Frames)] {
        let parts: Vec<&[u8]> = p.chunks(p.len().div_ceil(5)).collect();
        assert_eq!(parts.len(), 5, "a probe of at least 5 bytes");
        // The first ping is answered before the message is complete.
        let case = Case::new(id, "pings answered between fragments");
        let case = case.send_as(
            chop,
            [frag(parts[0]), cont(parts[1], false), ping(b"pongme 1!")],
        );
        let case = case.expect([Pong(b"pongme 1!".to_vec())]);
        let rest = [
            cont(parts[2], false),
            cont(parts[3], false),
            ping(b"pongme 2!"),
            cont(parts[4], true),
        ];
        c.push(
            case.send_as(chop, rest)
                .expect([Pong(b"pongme 2!".to_vec()), Answer]),
        );
    }

    // 6: UTF-8 (valid text that is not JSON gets the bad_json error).
    c.push(
        Case::new("6.1.1", "empty text")
            .send([text(b"")])
            .expect([Refusal]),
    );
    let empty = [frag(b""), cont(b"", false), cont(b"", true)];
    c.push(
        Case::new("6.1.2", "3 empty fragments")
            .send(empty)
            .expect([Refusal]),
    );
    let middle = [frag(b""), cont(p, false), cont(b"", true)];
    c.push(
        Case::new("6.1.3", "empty, probe, empty")
            .send(middle)
            .expect([Answer]),
    );
    c.push(
        Case::new("6.2.1", "valid UTF-8 in one frame")
            .send([text(hello)])
            .expect([Refusal]),
    );
    let (h1, h2) = hello.split_at("Hello-µ@ßöäüàá".len());
    let case = Case::new(
        "6.2.2",
        "valid UTF-8 in 2 fragments on a code point boundary",
    );
    c.push(case.send([frag(h1), cont(h2, true)]).expect([Refusal]));
    let case = Case::new("6.2.3", "valid UTF-8 in 1-byte fragments");
    c.push(case.send(fragments(hello, 1)).expect([Refusal]));
    let case = Case::new("6.2.4", "κόσμε in 1-byte fragments");
    c.push(case.send(fragments(kosme, 1)).expect([Refusal]));
    let case = Case::new("6.3.1", "invalid UTF-8 in one frame: 1007");
    c.push(case.send([text(bad_utf8)]).closed(1007));
    let case = Case::new("6.3.2", "invalid UTF-8 in 1-byte fragments: 1007");
    c.push(case.send(fragments(bad_utf8, 1)).closed(1007));
    // Fail fast: the rest of the message is never sent, so only a check
    // of each fragment as it arrives can close the connection.
    let case = Case::new("6.4.1", "the fragment that makes it invalid: 1007 at once");
    let case = case.send_as(
        Chop::Frames,
        [frag(kosme), cont(b"\xf4\x90\x80\x80", false)],
    );
    c.push(case.closed(1007));
    let case = Case::new("6.4.2", "the byte that makes it invalid: 1007 at once");
    c.push(
        case.send_as(Chop::Frames, [frag(kosme), cont(b"\xf4\x90", false)])
            .closed(1007),
    );
    // Within one frame the payload is checked once the frame is whole.
    let one = text(&[kosme, b"\xf4\x90\x80\x80", b"edited"].concat());
    let (c1, rest) = one.split_at(6 + kosme.len());
    let (c2, c3) = rest.split_at(4);
    for id in ["6.4.3", "6.4.4"] {
        let case = Case::new(id, "invalid UTF-8 in chops of one frame: 1007");
        c.push(
            case.send_as(Chop::Frames, [c1.to_vec(), c2.to_vec(), c3.to_vec()])
                .closed(1007),
        );
    }
    for (i, (valid, bytes)) in utf8_sequences().into_iter().enumerate() {
        let case = Case::new(format!("6.5+.{}", i + 1), "UTF-8 decoder test sequence");
        let case = case.send([text(&bytes)]);
        c.push(if valid {
            case.expect([Refusal])
        } else {
            case.closed(1007)
        });
    }

    // 7: closing.
    c.push(
        Case::new("7.1.1", "text, then close")
            .send([text(p), close(1000, b"")])
            .expect([Answer])
            .closed(1000),
    );
    let twice = [close(1000, b""), close(1000, b"")];
    c.push(
        Case::new("7.1.2", "two closes: the second is ignored")
            .send(twice)
            .closed(1000),
    );
    let after = [close(1000, b""), ping(b"")];
    c.push(
        Case::new("7.1.3", "ping after close: no pong")
            .send(after)
            .closed(1000),
    );
    let after = [close(1000, b""), text(p)];
    c.push(
        Case::new("7.1.4", "text after close: ignored")
            .send(after)
            .closed(1000),
    );
    let between = [frag(p1), close(1000, b""), cont(p2, true)];
    c.push(
        Case::new("7.1.5", "fragment, close, fragment")
            .send(between)
            .closed(1000),
    );
    let big = [text(&limit), close(1000, b""), ping(b"")];
    c.push(
        Case::new("7.1.6", "64 KiB text, close, ping")
            .send(big)
            .expect([Answer])
            .closed(1000),
    );
    let empty = frame(OpCode::Close, true, b"");
    c.push(
        Case::new("7.3.1", "close without payload: 1000")
            .send([empty])
            .closed(1000),
    );
    let one = frame(OpCode::Close, true, b"\x03");
    c.push(
        Case::new("7.3.2", "close of 1 byte: 1002")
            .send([one])
            .closed(1002),
    );
    c.push(
        Case::new("7.3.3", "close with a code")
            .send([close(1000, b"")])
            .closed(1000),
    );
    let reason = close(1000, b"Hello World!");
    c.push(
        Case::new("7.3.4", "close with a code and a reason")
            .send([reason])
            .closed(1000),
    );
    let reason = close(1000, &[b'*'; 123]);
    c.push(
        Case::new("7.3.5", "close with a 123-byte reason")
            .send([reason])
            .closed(1000),
    );
    let reason = close(1000, &[b'*'; 124]);
    c.push(
        Case::new("7.3.6", "close with a 124-byte reason: 1002")
            .send([reason])
            .closed(1002),
    );
    let reason = close(1000, bad_utf8);
    c.push(
        Case::new("7.5.1", "close reason not UTF-8: 1007")
            .send([reason])
            .closed(1007),
    );
    let valid = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ];
    for (i, code) in valid.into_iter().enumerate() {
        let case = Case::new(format!("7.7.{}", i + 1), "valid close code: echoed");
        c.push(case.send([close(code, b"")]).closed(code));
    }
    let invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999];
    for (i, code) in invalid.into_iter().enumerate() {
        let case = Case::new(format!("7.9.{}", i + 1), "invalid close code: 1002");
        c.push(case.send([close(code, b"")]).closed(1002));
    }
    for (id, code) in [("7.13.1", 5000), ("7.13.2", 65_535)] {
        c.push(
            Case::new(id, "close code over 4999: 1002")
                .send([close(code, b"")])
                .closed(1002),
        );
    }

    // 9: limits (64 KiB here: SPEC §7.3).
    c.push(
        Case::new("9.1.1", "text of exactly 64 KiB")
            .send([text(&limit)])
            .expect([Answer]),
    );
    let over = text(&padded(p, 256 * 1024));
    c.push(
        Case::new("9.1.2", "text of 256 KiB: 1009")
            .send([over])
            .closed(1009),
    );
    for (i, len) in [1u64 << 20, 4 << 20, 16 << 20].into_iter().enumerate() {
        // The header alone: nothing waits for such a payload.
        let case = Case::new(
            format!("9.1.{}", i + 3),
            "header of a text over the limit: 1009 at once",
        );
        c.push(case.send([text_header(len)]).closed(1009));
    }
    let case = Case::new("9.2.1", "binary of 64 KiB: 1003");
    c.push(case.send([binary(&[0xFE; 65_536])]).closed(1003));
    for (i, size) in [64, 256, 1024, 4096, 16_384, 65_536]
        .into_iter()
        .enumerate()
    {
        let case = Case::new(format!("9.3.{}", i + 1), "64 KiB text in fragments");
        c.push(case.send(fragments(&limit, size)).expect([Answer]));
    }
    let split = [frame(OpCode::Binary, false, &[1; 64]), cont(&[2; 64], true)];
    c.push(
        Case::new("9.4.1", "binary in fragments: 1003")
            .send(split)
            .closed(1003),
    );
    for (i, chop) in [64, 128, 256, 512, 1024, 2048].into_iter().enumerate() {
        let case = Case::new(format!("9.5.{}", i + 1), "64 KiB text in chops");
        c.push(
            case.send_as(Chop::Every(chop), [text(&limit)])
                .expect([Answer]),
        );
    }
    let case = Case::new("9.6.1", "binary in chops: 1003");
    c.push(
        case.send_as(Chop::Every(64), [binary(&[0xFE; 4096])])
            .closed(1003),
    );
    let case = Case::new("9.7.1", "1000 messages in one write");
    c.push(
        case.send((0..1000).map(|_| text(p)))
            .expect((0..1000).map(|_| Answer)),
    );
    let case = Case::new("9.7.2", "100 messages of 4 KiB in one write");
    c.push(
        case.send((0..100).map(|_| text(&padded(p, 4096))))
            .expect((0..100).map(|_| Answer)),
    );

    // x: the rest of RFC 6455's frame rules and SPEC §7.3's limit.
    let mut unmasked = bytes::BytesMut::new();
    Parser::write_message(&mut unmasked, p, OpCode::Text, true, false);
    let case = Case::new("x.1", "unmasked client frame: 1002");
    c.push(case.send([unmasked.to_vec()]).closed(1002));
    let case = Case::new("x.2", "64-bit length with the top bit set: 1002");
    c.push(case.send([text_header(1 << 63 | 5)]).closed(1002));
    let case = Case::new("x.3", "text of 65,537 bytes: 1009");
    c.push(case.send([text(&padded(p, 65_537))]).closed(1009));
    let case = Case::new("x.4", "fragments joining to 65,537 bytes: 1009");
    c.push(
        case.send(fragments(&padded(p, 65_537), 16_384))
            .closed(1009),
    );
    let case = Case::new("x.5", "a message over the limit after a good one: 1009");
    c.push(
        case.send([text(p), frag(&limit), cont(b" ", true)])
            .expect([Answer])
            .closed(1009),
    );
    c
}

/// The next frame that is not a server ping, within the wait.
async fn next(ws: &mut RawWs) -> Result<Option<Frame>, String> {
    loop {
        match ws.next_frame_within(RAW_WAIT).await {
            None => return Err("nothing within the wait".into()),
            Some(Some(Frame::Ping(p))) if p.is_empty() => {}
            Some(other) => return Ok(other),
        }
    }
}

fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Text(t) => format!("text {}", String::from_utf8_lossy(t)),
        other => format!("{other:?}"),
    }
}

async fn expect_reply(ws: &mut RawWs, e: &Endpoint, reply: &Reply) -> Result<(), String> {
    let frame = next(ws)
        .await?
        .ok_or_else(|| format!("the end instead of {reply:?}"))?;
    let ok = match (&frame, reply) {
        (Frame::Text(t), Reply::Answer | Reply::Refusal) => {
            let v: Value = serde_json::from_slice(t).map_err(|err| format!("not JSON: {err}"))?;
            match reply {
                Reply::Answer => (e.is_answer)(&v),
                _ => (e.is_refusal)(&v),
            }
        }
        (Frame::Pong(got), Reply::Pong(want)) => got.as_ref() == want.as_slice(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {reply:?}, got {}", describe(&frame)))
    }
}

/// The server's close with `code`, then the end of the TCP stream.
async fn expect_closed(ws: &mut RawWs, code: u16) -> Result<(), String> {
    match next(ws).await? {
        Some(Frame::Close(Some(reason))) if u16::from(reason.code) == code => {}
        Some(other) => return Err(format!("expected close {code}, got {}", describe(&other))),
        None => return Err(format!("the end without a close frame (expected {code})")),
    }
    // A clean client answers the close; the server ends the connection.
    ws.send(&frame(OpCode::Close, true, &code.to_be_bytes()))
        .await;
    match next(ws).await? {
        None => Ok(()),
        Some(other) => Err(format!("{} after the close", describe(&other))),
    }
}

async fn run_case(app: &TestApp, e: &Endpoint, case: &Case) -> Result<(), String> {
    let target = (e.open)(app).await;
    let (mut ws, head) = RawWs::open_path(app, &target.path, &target.headers, b"").await;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("upgrade refused: {head}"));
    }
    for _ in 0..e.greeting {
        match next(&mut ws).await? {
            Some(Frame::Text(_)) => {}
            other => return Err(format!("expected the greeting, got {other:?}")),
        }
    }
    for step in &case.steps {
        match step {
            Step::Send(bytes, None) => ws.send(bytes).await,
            Step::Send(bytes, Some(chop)) => ws.send_chopped(bytes, *chop).await,
            Step::Expect(reply) => expect_reply(&mut ws, e, reply).await?,
            Step::Closed(code) => return expect_closed(&mut ws, *code).await,
        }
    }
    // Still open and still answering, then a clean close.
    ws.send(&text(e.probe.as_bytes())).await;
    expect_reply(&mut ws, e, &Reply::Answer)
        .await
        .map_err(|err| format!("after the case: {err}"))?;
    ws.send(&close(1000, b"")).await;
    expect_closed(&mut ws, 1000)
        .await
        .map_err(|err| format!("clean close: {err}"))
}

#[actix_web::test]
async fn every_endpoint_follows_rfc_6455() {
    let mut failures = Vec::new();
    let mut count = 0;
    for e in ENDPOINTS {
        let app = spawn_app(|s| {
            // Some cases send a thousand messages at once.
            s.limits.rate_limit_frames = 100_000;
            (e.settings)(s);
        })
        .await;
        for case in cases(e.probe.as_bytes()) {
            count += 1;
            if let Err(err) = run_case(&app, e, &case).await {
                failures.push(format!("{} {} ({}): {err}", e.name, case.id, case.what));
            }
        }
        // Nothing is left behind by any case.
        let deadline = tokio::time::Instant::now() + RAW_WAIT;
        while app.metric("eventsub_bridge_connections", "").await != 0.0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: connections left open",
                e.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
