#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/NAME from the RFC 6455 examples and
typical frames and handshakes. Re-run after changing a target's input format."""

import hashlib
import os
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = b"\x37\xfa\x21\x3d"


def frame(b0, payload, mask=None):
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n <= 125:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if mask:
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + body
    return head + payload


RFC = {
    "unmasked_hello": bytes.fromhex("810548656c6c6f"),
    "masked_hello": bytes.fromhex("818537fa213d7f9f4d5158"),
    "fragmented_hel_lo": bytes.fromhex("010348656c") + bytes.fromhex("80026c6f"),
    "ping_hello": bytes.fromhex("890548656c6c6f"),
    "masked_pong": bytes.fromhex("8a8537fa213d7f9f4d5158"),
    "binary_256": bytes.fromhex("827e0100") + bytes(range(256)),
    "binary_64k": bytes.fromhex("827f0000000000010000") + bytes(65536),
}

SERVER_STREAMS = {  # what a client sends (masked)
    "text": frame(0x81, b"Hello, world", KEY),
    "utf8_split": frame(0x01, "κόσ".encode()[:5], KEY) + frame(0x80, "κόσ".encode()[5:], KEY),
    "ping_mid_message": frame(0x01, b"Hel", KEY) + frame(0x89, b"p", KEY) + frame(0x80, b"lo", KEY),
    "close_1000": frame(0x88, b"\x03\xe8bye", KEY),
    "close_empty": frame(0x88, b"", KEY),
    "bad_utf8": frame(0x81, b"\xce\xba\xf4\x90\x80\x80", KEY),
    "bad_close_code": frame(0x88, b"\x03\xed", KEY),
    "rsv": frame(0xC1, b"x", KEY),
    "len16": frame(0x82, bytes(300), KEY),
    "masked_hello": RFC["masked_hello"],
    "masked_pong": RFC["masked_pong"],
}
CLIENT_STREAMS = {  # what a server sends (unmasked)
    "unmasked_hello": RFC["unmasked_hello"],
    "fragmented": RFC["fragmented_hel_lo"],
    "ping": RFC["ping_hello"],
    "binary_256": RFC["binary_256"],
    "close_going_away": frame(0x88, b"\x03\xe9"),
    "continuation_stray": frame(0x80, b"x"),
}

REQUEST = (
    b"GET /chat?userId=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
)


def write(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}-{hashlib.sha1(data).hexdigest()[:8]}").write_bytes(data)


def main():
    for name, b in RFC.items():
        write("frame_header", name, b[:14])
    for name, b in SERVER_STREAMS.items():
        for seed in (0, 3, 17):
            write("decoder", f"server-{name}-{seed}", bytes([1, 0x10, 0x00, 0x00, 0x40, seed]) + b)
    for name, b in CLIENT_STREAMS.items():
        for seed in (0, 5):
            write("decoder", f"client-{name}-{seed}", bytes([0, 0x00, 0x00, 0x01, 0x00, seed]) + b)
    for seed in (0, 7, 40):
        write("handshake_server", f"rfc-request-{seed}", struct.pack("!H", 4096) + bytes([32, seed]) + REQUEST)
        write("handshake_client", f"rfc-response-{seed}", bytes([2, seed]) + RESPONSE)
    write("handshake_server", "plain-http", struct.pack("!H", 4096) + bytes([32, 0]) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    write("handshake_client", "403", bytes([0, 0]) + b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    for name, s in {"ascii": "hello", "greek": "κόσμε", "clef": "𝄞 and €", "mixed": "añb€𝄞" * 20}.items():
        for seed in (0, 1, 3):
            write("utf8", f"{name}-{seed}", bytes([seed]) + s.encode())
    write("utf8", "surrogate", bytes([2]) + b"\xed\xa0\x80")
    write("utf8", "overlong", bytes([1]) + b"\xc0\xaf")
    write("mask", "rfc-hello", KEY + bytes([0, 0, 2]) + b"Hello")
    write("mask", "long-unaligned", KEY + bytes([3, 5, 100]) + bytes(range(256)) * 4)
    # Structured (arbitrary) targets: frames as raw material for the mutator.
    for name, b in list(RFC.items())[:5]:
        write("roundtrip", name, b)
        write("blocking_conn", name, b)
        write("connection", name, b)
    write("connection", "ping-mid-message", SERVER_STREAMS["ping_mid_message"])
    write("blocking_conn", "request-and-frames", REQUEST + SERVER_STREAMS["ping_mid_message"])
    # RFC 7692 §7.2.3 examples for the inflate target (raw material for arbitrary).
    for name, b in {
        "hello": bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
        "hello-again": bytes([0xf2, 0x00, 0x11, 0x00, 0x00]),
        "empty": bytes([0x00]),
        "stored": bytes([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]),
    }.items():
        write("inflate", f"rfc7692-{name}", b)
    # The handover's records: first byte 0 = connection, 1 = listener, 2 = end, 3 = hello.
    write("handover_state", "plain", bytes([0]) + handover_conn(None, topics=(b"all", b"news")))
    write("handover_state", "deflate", bytes([0]) + handover_conn(
        (b"hello hello hello" * 10, b"received " * 30), output=frame(0x81, b"queued"),
        timers=((7, 10_000_000_000, 250_000_000), (8, None, 5)), data=b"user-42", subprotocol=b"chat", v6=True))
    write("handover_state", "listener-tcp", bytes([1]) + struct.pack("<H", 0) + bytes([0]))
    write("handover_state", "listener-unix", bytes([1]) + struct.pack("<HBI", 1, 1, 8) + b"/tmp/x.s")
    write("handover_state", "end", bytes([2]) + struct.pack("<II", 1, 1000))
    write("handover_state", "hello", bytes([3]) + b"SBHO" + struct.pack("<H", 1))
    two = [handover_conn(None), handover_conn(None, topics=(b"all",))]
    write("handover_state", "batch", bytes([4]) + struct.pack("<I", 2) + b"".join(struct.pack("<I", len(c)) + c for c in two))


def handover_conn(deflate, output=b"", topics=(), timers=(), data=b"", subprotocol=None, v6=False):
    """A connection record in the handover format (src/handover/format.rs)."""
    b = bytearray()
    if v6:
        b += bytes([6]) + bytes(15) + bytes([1])
    else:
        b += bytes([4, 127, 0, 0, 1])
    b += struct.pack("<H", 40000) + bytes([0, 1])  # port, tcp, server
    if subprotocol is None:
        b += bytes([0])
    else:
        b += bytes([1]) + struct.pack("<I", len(subprotocol)) + subprotocol
    b += bytes([1]) + bytes([1]) + struct.pack("<Q", 1 << 20)  # auto_pong, read limit
    b += struct.pack("<QQ", 1_500_000_000, 3_000_000_000) + bytes([1])
    if deflate:
        sent, received = deflate
        b += bytes([1, 0, 0, 15, 15, 1])
        b += struct.pack("<I", len(sent)) + sent + struct.pack("<I", len(received)) + received
    else:
        b += bytes([0])
    b += struct.pack("<I", len(output)) + output
    b += struct.pack("<I", len(topics))
    for t in topics:
        b += struct.pack("<I", len(t)) + t
    b += struct.pack("<I", len(timers))
    for token, period, remaining in timers:
        b += struct.pack("<Q", token)
        b += bytes([0]) if period is None else bytes([1]) + struct.pack("<Q", period)
        b += struct.pack("<Q", remaining)
    b += struct.pack("<I", 1) + bytes([0x81])  # a partial frame header received
    b += struct.pack("<I", len(data)) + data
    return bytes(b)


if __name__ == "__main__":
    main()
