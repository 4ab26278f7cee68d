#!/usr/bin/env python3
"""Builds the seed corpora of the cargo fuzz targets (fuzz/corpus/<target>/)
from the test fixtures: the sample notifications in samples/, and the JSON
text literals (r#"{...}"#) of the unit and integration tests. Nothing here
is committed; scripts/fuzz.sh runs this first.

Usage: scripts/fuzz_corpus.py [OUT_DIR]   (default fuzz/corpus)
"""

import glob
import hashlib
import hmac
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def samples():
    """(type, whole notification body) of every sample."""
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "samples", "*.json"))):
        with open(path) as f:
            text = f.read()
        out.append((json.loads(text)["subscription"]["type"], text))
    return out


def json_literals():
    """The raw JSON text literals of the Rust sources and tests."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, "src", "**", "*.rs"), recursive=True) + glob.glob(
        os.path.join(ROOT, "tests", "**", "*.rs"), recursive=True
    ):
        with open(path) as f:
            src = f.read()
        for m in re.finditer(r'r#"(\{.*?)"#', src, re.S):
            found.add(m.group(1))
    return sorted(found)


def known_types():
    """KNOWN_TYPES of eventsub::translate, in order (the translate target's first byte)."""
    with open(os.path.join(ROOT, "src", "eventsub", "translate.rs")) as f:
        src = f.read()
    consts = dict(re.findall(r'const ([A-Z_]+): &str = "([^"]+)";', src))
    body = re.search(r"pub const KNOWN_TYPES: &\[&str\] = &\[(.*?)\];", src, re.S).group(1)
    return [consts[n] for n in re.findall(r"[A-Z_]+", body)]


def ws_frame(op, payload, fin=True, mask=b"\x01\x02\x03\x04"):
    """A masked client frame, as RFC 6455 §5.2 lays it out."""
    head = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def main():
    sams = samples()
    literals = json_literals()
    types = known_types()

    # Text protocols: every JSON literal of the tests, plus the samples.
    for target in ["viewer_ops", "overlay_ops", "room_frames", "eventsub_ws_frames", "eventsub_envelope"]:
        for lit in literals:
            write(target, lit)
    for _, body in sams:
        write("eventsub_envelope", body)
        sub = json.loads(body)["subscription"]
        write("eventsub_envelope", json.dumps({"subscription": sub, "challenge": "pogchamp-kappa-360noscope"}))
        write("eventsub_envelope", json.dumps({"subscription": dict(sub, status="authorization_revoked")}))

    # The EventSub WebSocket wraps the same bodies (TWITCH.md §12).
    meta = lambda t: {"message_id": "befa7b53-d79d-478f-86b9-120f112b044e", "message_type": t,
                      "message_timestamp": "2023-07-19T10:11:12.634234626Z"}
    session = {"id": "AQoQexAWVYKSTIu4ec_2VAxyuhAB", "status": "connected", "keepalive_timeout_seconds": 10,
               "reconnect_url": None, "connected_at": "2023-07-19T14:56:51.616329898Z"}
    write("eventsub_ws_frames", json.dumps({"metadata": meta("session_welcome"), "payload": {"session": session}}))
    write("eventsub_ws_frames", json.dumps({"metadata": meta("session_keepalive"), "payload": {}}))
    write("eventsub_ws_frames", json.dumps({"metadata": meta("session_reconnect"), "payload": {"session": dict(
        session, status="reconnecting", keepalive_timeout_seconds=None,
        reconnect_url="wss://eventsub.wss.twitch.tv/ws?id=x")}}))
    for _, body in sams[:4]:
        payload = json.loads(body)
        write("eventsub_ws_frames", json.dumps({"metadata": meta("notification"), "payload": payload}))
        write("eventsub_ws_frames", json.dumps({"metadata": meta("revocation"),
                                                "payload": {"subscription": payload["subscription"]}}))

    # translate: the type's index in KNOWN_TYPES, then the event.
    for ty, body in sams:
        event = json.dumps(json.loads(body)["event"]).encode()
        if ty in types:
            write("eventsub_translate", bytes([types.index(ty)]) + event)
        write("eventsub_translate", bytes([255]) + event)

    # WebSub: Get Streams items (TWITCH.md §6) and the offline body.
    write("websub_body", '{"data":[]}')
    item = {"id": "0123456789", "user_id": "5678", "user_login": "wjdtkdqhs", "user_name": "wjdtkdqhs",
            "game_id": "21779", "game_name": "League of Legends", "type": "live", "title": "Best Stream Ever",
            "viewer_count": 417, "started_at": "2017-12-01T10:09:45Z", "language": "en",
            "thumbnail_url": "https://link/to/thumbnail.jpg"}
    write("websub_body", json.dumps({"data": [item]}))
    write("websub_body", json.dumps({"data": [item, {"title": None}, {}]}))

    # Signatures: secret \n id \n timestamp \n header \n body.
    vectors = [(b"secretabcd", "ae2ff348-e102-16be-a3eb-6830c1bf38d2", "2021-02-19T23:47:00.8091512Z")]
    vectors += [(b"s3cre7-of-the-bridge", f"id-{i}", ts) for i, ts in enumerate(
        ["2023-11-14T22:13:20Z", "2023-11-14T22:05:00.123Z", "2023-11-14T22:14:20.999999999+00:00",
         "2023-11-14T23:13:20+01:00"])]
    for (secret, mid, ts), (_, body) in zip(vectors, sams):
        mac = hmac.new(secret, (mid + ts).encode() + body.encode(), hashlib.sha256).hexdigest()
        write("signature_headers", b"\n".join([secret, mid.encode(), ts.encode(), b"sha256=" + mac.encode(),
                                                body.encode()]))
    body = b'{"data":[]}'
    mac = hmac.new(b"wR8FRvoKebeV", body, hashlib.sha256).hexdigest()
    write("signature_headers", b"\n".join([b"wR8FRvoKebeV", b"", b"", b"sha256=" + mac.encode(), body]))

    # Frames: first byte = piece size and early bytes, then masked frames.
    msgs = [b'{"op":"ping"}', b'{"op":"subscribe","channel":"teststreamer","since":"5-1"}',
            b'{"type":"chat","data":"hi"}', "κόσμε".encode()]
    for i, m in enumerate(msgs):
        half = len(m) // 2
        streams = [
            ws_frame(1, m),
            ws_frame(1, m[:half], fin=False) + ws_frame(9, b"ping") + ws_frame(0, m[half:]),
            ws_frame(9, b"") + ws_frame(10, b"x") + ws_frame(1, m) + ws_frame(8, struct.pack(">H", 1000) + b"bye"),
            ws_frame(1, m.ljust(300, b" ")),
            ws_frame(2, m),
            ws_frame(8, b"\x03"),
        ]
        for j, s in enumerate(streams):
            write("ws_frames", bytes([(i * 37 + j * 11) % 256]) + s)
    write("ws_frames", b"\x07" + ws_frame(1, b" " * 2000))

    for target in sorted(os.listdir(OUT)):
        print(f"{target}: {len(os.listdir(os.path.join(OUT, target)))} seeds")


if __name__ == "__main__":
    main()
