#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the harnesses whose inputs are not in
proto/examples (run once; the files are committed under tests/fuzz/corpus/).
The JSON seeds come from proto/examples and the tests; these are the binary ones."""
import base64, hashlib, hmac, json, os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
SECRET = b"fuzz-secret-0123456789abcdef"  # fuzz_auth.c's secret


def put(h, name, data):
    d = os.path.join(root, h)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def jwt(header, payload, key=SECRET):
    h, p = b64(json.dumps(header).encode()), b64(json.dumps(payload).encode())
    sig = b64(hmac.new(key, h + b"." + p, hashlib.sha256).digest())
    return h + b"." + p + b"." + sig


HS = {"alg": "HS256", "typ": "JWT"}
FAR = 4102444800  # 2100-01-01
session = {"sub": "alice", "iat": 1700000000, "exp": FAR}
ticket = {"sub": "alice", "use": "ws-ticket", "jti": "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60",
          "iat": 1700000000, "exp": FAR, "sexp": FAR}
# fuzz_auth: byte 0 even = the token as sent, odd = header NUL payload, signed
put("fuzz_auth", "session", b"\0" + jwt(HS, session))
put("fuzz_auth", "ticket", b"\0" + jwt(HS, ticket))
put("fuzz_auth", "expired", b"\0" + jwt(HS, dict(session, exp=1000)))
put("fuzz_auth", "alg-none", b"\0" + b64(b'{"alg":"none"}') + b"." + b64(json.dumps(session).encode()) + b".")
put("fuzz_auth", "wrong-key", b"\0" + jwt(HS, session, b"other"))
put("fuzz_auth", "bearer", b"\0Bearer " + jwt(HS, session))
put("fuzz_auth", "signed-session", b"\1" + json.dumps(session).encode())
put("fuzz_auth", "signed-ticket", b"\1" + json.dumps(ticket).encode())
put("fuzz_auth", "signed-hs512", b"\1" + b'{"alg":"HS512"}\0' + json.dumps(session).encode())
put("fuzz_auth", "signed-bad-sub", b"\1" + json.dumps(dict(session, sub="a b/../")).encode())
put("fuzz_auth", "signed-exp-string", b"\1" + json.dumps(dict(session, exp="9999999999")).encode())


def frame(op, payload, fin=True, mask=b"\x01\x02\x03\x04", masked=True, force_len=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload) if force_len is None else force_len
    mbit = 0x80 if masked else 0
    if n < 126:
        h = bytes([b0, mbit | n])
    elif n < 65536:
        h = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if masked:
        h += mask
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return h + payload


UPGRADE = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
# fuzz_ws_frame: byte 0 = mode (bit 0 http, bits 1-2 limit: 0, 125, 4096, 65536)
ping = frame(0x1, b'{"type":"ping"}')
put("fuzz_ws_frame", "upgrade-ping", b"\x05" + UPGRADE + ping)
put("fuzz_ws_frame", "frames", b"\x04" + ping + frame(0x9, b"hi") + frame(0xA, b"") + frame(0x8, b"\x03\xe8"))
put("fuzz_ws_frame", "fragmented", b"\x04" + frame(0x1, b"ab", fin=False) + frame(0x0, b"cd", fin=False) + frame(0x0, b"e"))
put("fuzz_ws_frame", "len16", b"\x06" + frame(0x2, b"x" * 300))
put("fuzz_ws_frame", "len64-huge", b"\x06" + frame(0x1, b"", force_len=1 << 40))
put("fuzz_ws_frame", "unmasked", b"\x04" + frame(0x1, b"x", masked=False))
put("fuzz_ws_frame", "ping-too-long", b"\x04" + frame(0x9, b"p" * 126))
put("fuzz_ws_frame", "lf-headers", b"\x03GET /ws HTTP/1.1\nHost: x\n\n" + ping)

# fuzz_task_body: byte 0 = 0 create, 1 patch, 2 move, 3 order; bodies from
# tests/backend-api/test_tasks.c and test_mutations.c
TID = "3f1c2a4e-8b7d-4c6e-9a1f-0b2c3d4e5f60"
bodies = {
    0: ['{"title":"buy milk"}', '{"id":"%s","title":"once"}' % TID.upper(),
        '{"id":"t1","title":"x"}', '{"id":7,"title":"x"}', '{"colour":"red"}',
        '{"title":"x","description":"d","priority":"high","due_at":"2026-05-01T12:00:00Z","completed":false}',
        '{"title":"   \\t "}', '{"title":"x","due_at":"2026-02-30T25:61:00+99:00"}',
        '{"title":"\\u00e9\\ud83d\\ude00","priority":"urgent"}'],
    1: ['{"title":"v2"}', '{"description":null,"due_at":null}', '{"completed":true,"title":"done"}',
        '{"title":"x","base_version":3}', '{"base_version":0}', '{"base_version":2}',
        '{"priority":1}', '{"due_at":"tomorrow"}', '{"due_at":"2026-01-01T00:00:00.123456789-23:59"}'],
    2: ['{"before":"%s"}' % TID, '{"after":null}', '{"before":null}', '{"before":1}',
        '{"before":"%s","after":null}' % TID, '{}'],
    3: ['{"order":[]}', '{"order":["%s","%s"]}' % (TID, TID.upper()), '{"order":[1]}',
        '{"order":{}}', '{"order":["x"]}'],
}
for kind, bs in bodies.items():
    for i, b in enumerate(bs):
        put("fuzz_task_body", "%d-%d" % (kind, i), bytes([kind]) + b.encode())

# fuzz_request: byte 0 = 0 query string, 1 If-Match, 2 Idempotency-Key, 3 move path
reqs = [(0, "limit=10"), (0, "since=0&limit=1000"), (0, "cursor=k1.a0&limit=2"),
        (0, "cursor=k1.%7A%7a&x=%ZZ"), (0, "since=999999999999999999&limit=0"),
        (0, "limit=%2B1&since=-1&cursor=k2.a"), (0, "x=abcdefghij&x=1"),
        (1, '"3"'), (1, 'W/"42"'), (1, "*"), (1, " 7 "), (1, '"9'), (1, "99999999999999999999"),
        (2, "abc-123_x:y.z"), (2, "a" * 129), (2, "bad key"),
        (3, TID + "/move"), (3, TID.upper() + "/move"), (3, "x/move")]
for i, (k, v) in enumerate(reqs):
    put("fuzz_request", "%d-%d" % (k, i), bytes([k]) + v.encode())

# fuzz_ws_message: proto/examples/ws and a few of the client's own
for i, m in enumerate(['{"type":"ping"}', '{"type":"pong"}', '{"type":1}', '{}', '[]',
                       '{"type":"subscribe","x":[1,2,{"a":null}]}', '{"type":"ping"']):
    put("fuzz_ws_message", "msg-%d" % i, m.encode())


# fuzz_wal: CopyData messages, each 2-byte length + bytes
def xlog(pg):
    return b"w" + struct.pack(">QQQ", 0x16B3748, 0x16B3790, 0) + pg


def rel(relid, name, cols):
    b = b"R" + struct.pack(">I", relid) + b"public\0" + name + b"\0" + b"d" + struct.pack(">H", len(cols))
    for c in cols:
        b += b"\0" + c + b"\0" + struct.pack(">II", 25, 0xFFFFFFFF)
    return b


def ins(relid, vals):
    b = b"I" + struct.pack(">I", relid) + b"N" + struct.pack(">H", len(vals))
    for v in vals:
        b += b"n" if v is None else b"t" + struct.pack(">I", len(v)) + v
    return b


def seq(*msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


COLS = [b"id", b"user_id", b"seq", b"event_id", b"payload", b"created_at"]
row = [b"17", b"alice", b"3", TID.encode(), b'{"event_type":"task.created"}', b"2026-01-01"]
begin = xlog(b"B" + struct.pack(">QQI", 0x16B3790, 800000000000000, 1234))
commit = xlog(b"C" + b"\0" + struct.pack(">QQQ", 0x16B3790, 0x16B37C0, 800000000000000))
keep = b"k" + struct.pack(">QQB", 0x16B37C0, 0, 1)
put("fuzz_wal", "txn", seq(xlog(rel(16390, b"outbox", COLS)), begin, xlog(ins(16390, row)), commit, keep))
put("fuzz_wal", "other-table", seq(xlog(rel(16391, b"tasks", [b"id"])), xlog(ins(16391, [b"1"]))))
put("fuzz_wal", "no-relation", seq(begin, xlog(ins(16390, row)), commit))
put("fuzz_wal", "null-column", seq(xlog(rel(16390, b"outbox", COLS)), xlog(ins(16390, row[:4] + [None, None]))))
put("fuzz_wal", "missing-column", seq(xlog(rel(16390, b"outbox", COLS[:4]))))
put("fuzz_wal", "keepalive", seq(keep, b"k" + struct.pack(">QQB", 5, 0, 0)))
put("fuzz_wal", "other-messages", seq(xlog(b"O" + struct.pack(">Q", 1) + b"origin\0"), xlog(b"T" + struct.pack(">I", 1)), b"?"))
