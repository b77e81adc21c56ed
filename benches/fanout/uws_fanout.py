"""The uWebSockets anchor for benches/fanout.sh: uWebSockets' own `publish`
(through socketify, which ships uWebSockets and uSockets compiled as
libsocketify; installed from PyPI by the script).

Every WebSocket subscribes to the topic `all` on open; `POST /push` publishes its
body to `all` as one text message (uWebSockets encodes it once and writes the same
frame to every subscriber). Python runs once per POST, not per delivery.

    python uws_fanout.py PORT [--deflate]

`--deflate`: permessage-deflate with uWebSockets' SHARED_COMPRESSOR (no context
takeover, the mode it recommends for pub/sub), and publishes compressed.
"""

import sys

from socketify import App, AppListenOptions, CompressOptions, OpCode

port = int(sys.argv[1])
deflate = "--deflate" in sys.argv[2:]
app = App()


def ws_open(ws):
    ws.subscribe("all")


app.ws(
    "/*",
    {
        "compression": CompressOptions.SHARED_COMPRESSOR if deflate else CompressOptions.DISABLED,
        "max_payload_length": 1 << 20,
        "idle_timeout": 0,
        # Deliveries queue per subscriber up to this before uWebSockets drops
        # them (the loop's own default limit is 1 MiB as well).
        "max_backpressure": 1 << 20,
        "open": ws_open,
    },
)


def push(res, req):
    chunks = []

    def on_data(res, chunk, is_end):
        chunks.append(chunk)
        if is_end:
            app.publish("all", b"".join(chunks), OpCode.TEXT, deflate)
            res.end("ok")

    res.on_data(on_data)


app.post("/push", push)
app.listen(
    AppListenOptions(port=port, host="127.0.0.1"),
    lambda config: print(f"listening on 127.0.0.1:{port}", flush=True),
)
app.run()
