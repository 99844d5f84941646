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
