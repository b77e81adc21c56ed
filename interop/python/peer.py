#!/usr/bin/env python3
"""Python `websockets` as an interop peer.

client mode: runs the echo checklist against examples/echo (each message comes back,
then ten dots), pings it, idles through its heartbeat, closes with 1000.
tutorial mode: the other tutorial programs (--url is a base ws://HOST:PORT for each
of --echo-blocking, --stream-echo, --control): echo then dots, streamed echo then
dots, and control_blocking's `close` command (code 1000, reason "bye").
--cafile PEM trusts a certificate for wss:// URLs; --certfile/--keyfile make the
server speak wss://.
server mode: an echo server speaking subprotocol chat.v1; /close closes at once
with 4001 "custom reason"; /ping pings the client and reports "pong-ok" or
"pong-missing".

Prints one JSON line per check: {"peer", "check", "ok", "detail"}.
"""

import argparse
import asyncio
import json
import ssl
import sys

import websockets

PEER = "python-websockets " + websockets.__version__
SIZES = [0, 5, 64 * 1024, 16 << 20]
failures = 0


def report(check, ok, detail=""):
    global failures
    if not ok:
        failures += 1
    print(json.dumps({"peer": PEER, "check": check, "ok": bool(ok), "detail": str(detail)[:300]}), flush=True)


def payload(kind, n):
    if kind == "text":
        unit = "κόσμε-abc "
        s = (unit * (n // len(unit.encode()) + 1)).encode()[:n]
        # Cut back to a code point boundary.
        return s.decode("utf-8", errors="ignore")
    return bytes((i * 31 + 7) & 0xFF for i in range(n)) if n < 1 << 20 else bytes(n)


async def client(url, cafile=None, expect_extension=None):
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("wss:") else None
    async with websockets.connect(url, max_size=None, max_queue=None, ping_interval=None, ssl=ctx) as ws:
        if expect_extension is not None:
            got = ws.response.headers.get("Sec-WebSocket-Extensions")
            report(f"negotiated {expect_extension}", got is not None and got.startswith(expect_extension),
                   f"Sec-WebSocket-Extensions: {got}")
        for kind in ("text", "binary"):
            for n in SIZES:
                data = payload(kind, n)
                try:
                    await ws.send(data)
                    echo = await asyncio.wait_for(ws.recv(), 30)
                    dots = await asyncio.wait_for(ws.recv(), 30)
                    report(f"echo {kind} {n}B", echo == data and dots in ("..........", b".........."),
                           f"echo ok={echo == data} dots={dots!r}")
                except Exception as e:
                    report(f"echo {kind} {n}B", False, repr(e))
        for kind in ("text", "binary"):
            parts = [payload(kind, 1000), payload(kind, 1), payload(kind, 70000)]
            whole = "".join(parts) if kind == "text" else b"".join(parts)
            try:
                await ws.send(parts)  # an iterable is sent as a fragmented message
                echo = await asyncio.wait_for(ws.recv(), 30)
                dots = await asyncio.wait_for(ws.recv(), 30)
                report(f"echo fragmented {kind}", echo == whole, f"{len(echo)} bytes back, dots={dots!r}")
            except Exception as e:
                report(f"echo fragmented {kind}", False, repr(e))
        try:
            latency = await asyncio.wait_for(await ws.ping(b"py-ping"), 5)
            report("our ping answered by the server", True, f"{latency * 1e3:.2f} ms")
        except Exception as e:
            report("our ping answered by the server", False, repr(e))
        # Idle through several of the server's heartbeat intervals: only our automatic
        # pongs keep the connection alive.
        await asyncio.sleep(1.5)
        try:
            await ws.send("still here")
            echo = await asyncio.wait_for(ws.recv(), 5)
            await asyncio.wait_for(ws.recv(), 5)
            report("server heartbeat pings answered (idle 1.5 s)", echo == "still here", echo)
        except Exception as e:
            report("server heartbeat pings answered (idle 1.5 s)", False, repr(e))
        await ws.close(1000, "bye")
        rcvd = ws.protocol.close_rcvd
        report("clean close 1000, server replied", rcvd is not None and rcvd.code == 1000,
               f"sent={ws.protocol.close_sent} rcvd={rcvd}")


async def tutorial(echo_url, stream_url, control_url):
    for label, url, data in (("echo_blocking", echo_url, "hello from python"),
                             ("stream_echo_blocking", stream_url, payload("binary", 256 * 1024))):
        try:
            async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
                await ws.send(data)
                echo = await asyncio.wait_for(ws.recv(), 10)
                dots = await asyncio.wait_for(ws.recv(), 10)
                report(f"{label}: echo then dots", echo == data and dots in ("..........", b".........."),
                       f"echo ok={echo == data} dots={dots!r}")
        except Exception as e:
            report(f"{label}: echo then dots", False, repr(e))
    try:
        async with websockets.connect(control_url, ping_interval=None) as ws:
            await ws.send("hi")
            echo = await asyncio.wait_for(ws.recv(), 10)
            await ws.send("ping")
            await ws.send("close")
            try:
                extra = await asyncio.wait_for(ws.recv(), 10)
                report("control_blocking: close command", False, f"got a message {extra!r}")
            except websockets.ConnectionClosed:
                rcvd = ws.protocol.close_rcvd
                report("control_blocking: echo, then close 1000 'bye' via write_control",
                       echo == "hi" and rcvd is not None and rcvd.code == 1000 and rcvd.reason == "bye",
                       f"echo={echo!r} rcvd={rcvd}")
    except Exception as e:
        report("control_blocking: close command", False, repr(e))


async def handler(ws):
    path = ws.request.path
    if path.startswith("/close"):
        await ws.close(4001, "custom reason")
        return
    if path.startswith("/ping"):
        try:
            await asyncio.wait_for(await ws.ping(b"hello-ping"), 3)
            await ws.send("pong-ok")
        except Exception:
            await ws.send("pong-missing")
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def server(port, certfile=None, keyfile=None):
    ctx = None
    if certfile:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
    async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["chat.v1"], max_size=None,
                                max_queue=None, ping_interval=None, ssl=ctx):
        print(json.dumps({"peer": PEER, "listening": port}), flush=True)
        await asyncio.Future()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["client", "server", "tutorial"])
    ap.add_argument("--url")
    ap.add_argument("--echo-blocking")
    ap.add_argument("--stream-echo")
    ap.add_argument("--control")
    ap.add_argument("--port", type=int)
    ap.add_argument("--cafile", help="client: trust this PEM for wss://")
    ap.add_argument("--expect-extension", help="client: check the server's extensions answer starts with this")
    ap.add_argument("--certfile", help="server: serve wss:// with this certificate (PEM)")
    ap.add_argument("--keyfile", help="server: its key (PEM)")
    a = ap.parse_args()
    if a.mode == "client":
        asyncio.run(client(a.url, a.cafile, a.expect_extension))
        sys.exit(1 if failures else 0)
    if a.mode == "tutorial":
        asyncio.run(tutorial(a.echo_blocking, a.stream_echo, a.control))
        sys.exit(1 if failures else 0)
    asyncio.run(server(a.port, a.certfile, a.keyfile))


if __name__ == "__main__":
    main()
