#!/usr/bin/env python3
"""A strict RFC 6455 wire validator: a TCP proxy between kosoku and the
implementation under test that checks every byte the implementation sends.

kosoku's own peer is lenient about what it receives (a masked server frame, RSV
bits, a stray continuation, a 1-byte close payload... all pass). This proxy is an
independent second parser: it does not share code with silverback.

    wirecheck.py --listen 127.0.0.1:P --upstream 127.0.0.1:Q --role server --log v.jsonl

--role server: the implementation under test is the upstream server
               (kosoku -> proxy -> server); frames server->client are checked.
--role client: the implementation under test is the connecting client
               (client -> proxy -> kosoku); frames client->server are checked.

Every violation is appended to --log as one JSON object per line.
Checked: the handshake (101, Upgrade/Connection tokens, Sec-WebSocket-Accept, a
16-byte key from a client), masking direction, RSV bits (RSV1 only on the first
frame of a data message and only with permessage-deflate negotiated), opcodes,
control frames (FIN set, <= 125 bytes), continuation order, close payloads (not 1
byte, an allowed code, UTF-8 reason), nothing after a close, UTF-8 of
uncompressed text messages, and (role server) that the server closes TCP first
after the closing handshake.
"""

import argparse
import asyncio
import ssl
import base64
import codecs
import hashlib
import json
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ALLOWED_CODES = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def header_tokens(headers, name):
    out = []
    for k, v in headers:
        if k.lower() == name.lower():
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def header_value(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v.strip()
    return None


def parse_head(raw):
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return first, headers


class Conn:
    """Validation state for one proxied connection."""

    def __init__(self, proxy, cid):
        self.proxy = proxy
        self.cid = cid
        self.role = proxy.role
        self.key = None
        self.deflate = False
        self.opened = False
        self.in_message = False
        self.msg_text = False
        self.msg_compressed = False
        self.utf8 = None
        self.close_sent_by_impl = False
        self.close_sent_by_peer = False
        self.impl_eof = False
        self.peer_eof = False
        self.frames = 0
        self.violated = False
        self.handshake_done_at = None
        self.impl_closed_at = None
        self.peer_closed_at = None

    def violation(self, what, **extra):
        self.violated = True
        rec = {"conn": self.cid, "role": self.role, "violation": what, "frame": self.frames}
        rec.update(extra)
        self.proxy.log(rec)

    # -- handshake --

    def client_request(self, head):
        first, headers = parse_head(head)
        self.key = header_value(headers, "Sec-WebSocket-Key")
        self.offered_deflate = any(
            t.startswith("permessage-deflate") for t in header_tokens(headers, "Sec-WebSocket-Extensions")
        )
        if self.role == "client":
            if not first.startswith("GET ") or not first.endswith("HTTP/1.1"):
                self.violation("request line is not GET ... HTTP/1.1", line=first)
            if "websocket" not in header_tokens(headers, "Upgrade"):
                self.violation("request lacks Upgrade: websocket")
            if "upgrade" not in header_tokens(headers, "Connection"):
                self.violation("request lacks Connection: upgrade")
            if header_value(headers, "Sec-WebSocket-Version") != "13":
                self.violation("request lacks Sec-WebSocket-Version: 13")
            if header_value(headers, "Host") is None:
                self.violation("request lacks Host")
            try:
                if len(base64.b64decode(self.key or "", validate=True)) != 16:
                    raise ValueError
            except Exception:
                self.violation("Sec-WebSocket-Key is not 16 base64-encoded bytes", key=self.key)

    def server_response(self, head):
        first, headers = parse_head(head)
        parts = first.split(" ")
        status = parts[1] if len(parts) > 1 else ""
        if status != "101":
            return
        self.opened = True
        exts = header_tokens(headers, "Sec-WebSocket-Extensions")
        self.deflate = any(t.startswith("permessage-deflate") for t in exts)
        if self.role == "server":
            if "websocket" not in header_tokens(headers, "Upgrade"):
                self.violation("101 lacks Upgrade: websocket")
            if "upgrade" not in header_tokens(headers, "Connection"):
                self.violation("101 lacks Connection: upgrade")
            expect = base64.b64encode(hashlib.sha1((self.key or "").encode() + GUID).digest()).decode()
            got = header_value(headers, "Sec-WebSocket-Accept")
            if got != expect:
                self.violation("wrong Sec-WebSocket-Accept", got=got, expected=expect)
            if self.deflate and not self.offered_deflate:
                self.violation("server negotiated permessage-deflate that was not offered")

    # -- frames sent by the implementation --

    def frame(self, fin, rsv, opcode, masked, payload):
        self.frames += 1
        if self.close_sent_by_impl:
            self.violation("frame after the implementation's close frame", opcode=opcode)
        if self.role == "server" and masked:
            self.violation("server frame is masked")
        if self.role == "client" and not masked:
            self.violation("client frame is not masked")
        if opcode not in (0, 1, 2, 8, 9, 10):
            self.violation("reserved opcode", opcode=opcode)
            return
        control = opcode >= 8
        if control:
            if rsv:
                self.violation("RSV bits on a control frame", rsv=rsv)
            if not fin:
                self.violation("fragmented control frame", opcode=opcode)
            if len(payload) > 125:
                self.violation("control frame longer than 125 bytes", length=len(payload))
            if opcode == 8:
                self.close_sent_by_impl = True
                self.note_handshake()
                if len(payload) == 1:
                    self.violation("close frame with a 1-byte payload")
                elif len(payload) >= 2:
                    (code,) = struct.unpack("!H", payload[:2])
                    if code not in ALLOWED_CODES:
                        self.violation("close code not allowed on the wire", code=code)
                    try:
                        payload[2:].decode("utf-8")
                    except UnicodeDecodeError:
                        self.violation("close reason is not UTF-8")
            return
        first = opcode != 0
        if rsv & 0b011:
            self.violation("RSV2/RSV3 set on a data frame", rsv=rsv)
        if rsv & 0b100 and not (self.deflate and first):
            self.violation("RSV1 set without permessage-deflate or on a continuation", rsv=rsv)
        if first:
            if self.in_message:
                self.violation("new data frame while a fragmented message is open", opcode=opcode)
            self.in_message = True
            self.msg_text = opcode == 1
            self.msg_compressed = bool(rsv & 0b100)
            self.utf8 = codecs.getincrementaldecoder("utf-8")() if self.msg_text and not self.msg_compressed else None
        elif not self.in_message:
            self.violation("continuation frame without a message in progress")
            return
        if self.utf8 is not None:
            try:
                self.utf8.decode(payload, final=fin)
            except UnicodeDecodeError:
                self.violation("text message is not valid UTF-8")
                self.utf8 = None
        if fin:
            self.in_message = False

    def peer_frame(self, opcode):
        if opcode == 8:
            self.close_sent_by_peer = True
            self.note_handshake()

    def note_handshake(self):
        if self.close_sent_by_impl and self.close_sent_by_peer and self.handshake_done_at is None:
            self.handshake_done_at = time.monotonic()
            if self.role == "server":
                asyncio.get_running_loop().call_later(1.0, self.check_server_closed)

    def check_server_closed(self):
        # RFC 6455 §7.1.1: once the closing handshake is done the server closes TCP.
        if self.impl_closed_at is None and self.peer_closed_at is None:
            self.violation("server kept TCP open after the closing handshake", seconds=1.0)


class FrameStream:
    """Incremental frame parser over one direction of the stream."""

    def __init__(self, on_frame, unmask_all):
        self.buf = bytearray()
        self.on_frame = on_frame
        self.unmask_all = unmask_all

    def feed(self, data):
        self.buf += data
        while True:
            b = self.buf
            if len(b) < 2:
                return
            fin = b[0] >> 7
            rsv = (b[0] >> 4) & 7
            opcode = b[0] & 15
            masked = b[1] >> 7
            n = b[1] & 127
            pos = 2
            if n == 126:
                if len(b) < 4:
                    return
                (n,) = struct.unpack("!H", b[2:4])
                pos = 4
            elif n == 127:
                if len(b) < 10:
                    return
                (n,) = struct.unpack("!Q", b[2:10])
                pos = 10
            key = None
            if masked:
                if len(b) < pos + 4:
                    return
                key = bytes(b[pos : pos + 4])
                pos += 4
            if len(b) < pos + n:
                return
            payload = bytes(b[pos : pos + n])
            if key and (opcode == 8 or opcode == 1 or opcode == 0 or self.unmask_all):
                # Unmask where the content is checked (close payloads, text).
                k = (key * (n // 4 + 1))[:n]
                payload = bytes(x ^ y for x, y in zip(payload, k)) if n < 4096 else _xor_big(payload, key)
            del self.buf[: pos + n]
            self.on_frame(bool(fin), rsv, opcode, bool(masked), payload)


def _xor_big(payload, key):
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


class Proxy:
    def __init__(self, args):
        self.role = args.role
        self.upstream = args.upstream
        self.upstream_ssl = None
        if args.upstream_tls:
            self.upstream_ssl = ssl.create_default_context(cafile=args.upstream_tls)
        self.logf = open(args.log, "a", buffering=1)
        self.next_id = 0

    def log(self, rec):
        rec["time"] = round(time.time(), 3)
        self.logf.write(json.dumps(rec) + "\n")

    async def handle(self, down_r, down_w):
        self.next_id += 1
        conn = Conn(self, self.next_id)
        host, port = self.upstream.rsplit(":", 1)
        try:
            if self.upstream_ssl is not None:
                up_r, up_w = await asyncio.open_connection(
                    host, int(port), ssl=self.upstream_ssl, server_hostname="localhost", limit=1 << 20
                )
            else:
                up_r, up_w = await asyncio.open_connection(host, int(port))
        except OSError:
            down_w.close()
            return
        # Direction names: "client side" is whoever connected to the proxy.
        impl_is_upstream = self.role == "server"

        async def pump(reader, writer, from_impl):
            head = bytearray()
            in_head = True
            frames = FrameStream(
                (lambda *f: conn.frame(*f)) if from_impl else (lambda fin, rsv, op, m, p: conn.peer_frame(op)),
                unmask_all=False,
            )
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    # Parse before forwarding, so the state a head sets up (opened,
                    # deflate) exists before the other side can react to it.
                    raw = data
                    if in_head:
                        head += data
                        i = head.find(b"\r\n\r\n")
                        if i < 0:
                            if len(head) > 65536:
                                in_head = False
                            writer.write(raw)
                            await writer.drain()
                            continue
                        in_head = False
                        rest = bytes(head[i + 4 :])
                        is_request = (from_impl and self.role == "client") or (not from_impl and self.role == "server")
                        if is_request:
                            conn.client_request(bytes(head[: i + 4]))
                        else:
                            conn.server_response(bytes(head[: i + 4]))
                        data = rest
                    if conn.opened and data:
                        frames.feed(data)
                    writer.write(raw)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                now = time.monotonic()
                if from_impl and conn.impl_closed_at is None:
                    conn.impl_closed_at = now
                if not from_impl and conn.peer_closed_at is None:
                    conn.peer_closed_at = now
                if (
                    not from_impl
                    and self.role == "server"
                    and conn.close_sent_by_impl
                    and conn.close_sent_by_peer
                    and conn.impl_closed_at is None
                ):
                    # RFC 6455 §7.1.1: after the closing handshake the server closes
                    # TCP first. Hold the client's FIN back: a server that closes now
                    # cannot have been prompted by it.
                    for _ in range(100):
                        if conn.impl_closed_at is not None:
                            break
                        await asyncio.sleep(0.005)
                    if conn.impl_closed_at is None:
                        conn.violation("client closed TCP before the server after the closing handshake")
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                    else:
                        # TLS has no half-close: close_notify and close.
                        writer.close()
                except (OSError, RuntimeError):
                    pass

        down_from_impl = not impl_is_upstream
        t1 = asyncio.create_task(pump(down_r, up_w, from_impl=down_from_impl))
        t2 = asyncio.create_task(pump(up_r, down_w, from_impl=not down_from_impl))
        await asyncio.gather(t1, t2)
        for w in (up_w, down_w):
            try:
                w.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--role", choices=["server", "client"], required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--upstream-tls", metavar="CAFILE", default="",
                    help="connect to the upstream with TLS (as localhost), trusting CAFILE")
    ap.add_argument("--listen-tls", metavar="CERT,KEY", default="",
                    help="accept TLS with this certificate and key (PEM files)")
    args = ap.parse_args()
    proxy = Proxy(args)
    host, port = args.listen.rsplit(":", 1)
    listen_ssl = None
    if args.listen_tls:
        cert, key = args.listen_tls.split(",", 1)
        listen_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        listen_ssl.load_cert_chain(cert, key)
    server = await asyncio.start_server(proxy.handle, host, int(port), limit=1 << 20, ssl=listen_ssl)
    print(f"wirecheck listening on {args.listen} -> {args.upstream} ({args.role})", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
