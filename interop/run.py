#!/usr/bin/env python3
"""Interop suite orchestrator: real, independent peers against silverback.

Peers' clients against our examples:
  python websockets, node ws, go gorilla/websocket, headless chromium -> examples/echo
  chromium -> examples/push (two users, HTTP push, delete), examples/ticker
  python websockets -> examples/echo_blocking, stream_echo_blocking, control_blocking
Our clients (blocking Dialer, event-loop Client) -> python, node and go servers.

Every process is killed on exit. A peer that is missing, crashes, or reports fewer
checks than expected is a failure. Exit status 0 only if every check passed.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EX = ROOT / "target" / "release" / "examples"
BIN = HERE / ".bin"
PY = HERE / ".venv" / "bin" / "python"
PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, name):
    log = open(HERE / ".logs" / f"{name}.log", "wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    PROCS.append(p)
    return p


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


results = []


def run_checks(label, cmd, expected, timeout=300, env=None):
    """Runs a checking program; collects its JSON lines."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        stdout, rc = out.stdout, out.returncode
        err = out.stderr
    except subprocess.TimeoutExpired as e:
        stdout, rc, err = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), -1, "timeout"
    except FileNotFoundError as e:
        stdout, rc, err = "", -1, f"peer not installed: {e}"
    lines = []
    for line in stdout.splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "check" in d:
            lines.append(d)
    peer = lines[0]["peer"] if lines else label
    against = lines[0].get("against", "") if lines else ""
    for d in lines:
        results.append((label, d.get("peer", peer), d["check"], d["ok"], d.get("detail", "")))
    if len(lines) < expected:
        results.append((label, peer, f"reported {len(lines)} of {expected} checks", False,
                        f"exit {rc}; {err.strip()[-300:]}"))
    elif rc != 0 and all(d["ok"] for d in lines):
        results.append((label, peer, "exit status", False, f"exit {rc}; {err.strip()[-300:]}"))
    status = "ok  " if rc == 0 and len(lines) >= expected and all(d["ok"] for d in lines) else "FAIL"
    print(f"{status} {label:42} {peer} {against}".rstrip(), flush=True)
    for d in lines:
        if not d["ok"]:
            print(f"       {d['check']}: {d.get('detail', '')}")
    if len(lines) < expected:
        print(f"       only {len(lines)} of {expected} checks reported (exit {rc}): {err.strip()[-300:]}")


def our_clients_against(peer_servers, base, extra, suffix):
    """Starts each peer's server and runs interop_client against it in both modes."""
    for name, cmd in peer_servers.items():
        port = free_port()
        p = start(cmd + [str(port)], f"{name}-server{'-tls' if suffix else ''}")
        if not wait_port(port, p):
            results.append((f"{name} server{suffix}", name, "server starts", False, "did not listen"))
            print(f"FAIL {name} server{suffix} did not start")
            continue
        for mode in ("blocking", "loop"):
            run_checks(f"silverback {mode} client -> {name} server{suffix}",
                       [str(EX / "interop_client"), "--url", f"{base}:{port}", "--mode", mode,
                        "--against", name] + extra, 14)


def deflate_checks(node):
    """Python websockets and Node ws (both offer permessage-deflate by default, like
    browsers) against examples/echo --deflate in each memory mode."""
    print("== peers' clients against examples/echo --deflate, each memory mode")
    for mode in ("fast", "small", "shared"):
        port = free_port()
        p = start([str(EX / "echo"), "--addr", f"127.0.0.1:{port}", "--quiet", "--ping", "0.3",
                   "--deflate", "--deflate-mode", mode], f"echo-deflate-{mode}")
        if not wait_port(port, p):
            results.append((f"echo --deflate-mode {mode}", "echo", "server starts", False, "did not listen"))
            print(f"FAIL examples/echo --deflate-mode {mode} did not start")
            continue
        url = f"ws://127.0.0.1:{port}/websocket"
        run_checks(f"python client -> echo --deflate-mode {mode}",
                   [str(PY), str(HERE / "python" / "peer.py"), "client", "--url", url,
                    "--expect-extension", "permessage-deflate"], 14)
        run_checks(f"node client -> echo --deflate-mode {mode}",
                   node + ["client", "--url", url, "--expect-extension", "permessage-deflate"], 14)


def make_cert():
    """A self-signed certificate for localhost and 127.0.0.1 (openssl), for wss://."""
    d = HERE / ".logs"
    cert, key = d / "tls-cert.pem", d / "tls-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    # An end-entity certificate (webpki refuses a CA one as a server's).
                    "-addext", "basicConstraints=critical,CA:FALSE"],
                   check=True, capture_output=True)
    return cert, key


def tls_checks(node, browser):
    """The same checklists over wss://: peers' clients against examples/echo with
    TLS, silverback's clients against peers' TLS servers. Every client verifies the
    certificate (trusted through its own mechanism) except Chromium, which is told
    to accept this run's self-signed one."""
    print("== over TLS (wss://)")
    cert, key = make_cert()
    port = free_port()
    p = start([str(EX / "echo"), "--addr", f"127.0.0.1:{port}", "--quiet", "--ping", "0.3",
               "--tls-cert", str(cert), "--tls-key", str(key)], "echo-tls")
    if not wait_port(port, p):
        results.append(("echo tls", "silverback", "examples/echo --tls-cert starts", False, "did not listen"))
        print("FAIL examples/echo --tls-cert did not start")
        return
    wss_echo = f"wss://localhost:{port}/websocket"
    run_checks("python client -> examples/echo (wss)",
               [str(PY), str(HERE / "python" / "peer.py"), "client", "--url", wss_echo, "--cafile", str(cert)], 13)
    env_node = dict(os.environ, NODE_EXTRA_CA_CERTS=str(cert))
    run_checks("node client -> examples/echo (wss)", node + ["client", "--url", wss_echo], 13, env=env_node)
    env_go = dict(os.environ, SSL_CERT_FILE=str(cert))
    run_checks("go client -> examples/echo (wss)", [str(BIN / "peer-go"), "client", "-url", wss_echo], 13,
               env=env_go)
    run_checks("chromium -> examples/echo (https page, wss)", browser + ["echo", "--base", f"https://127.0.0.1:{port}"],
               11)
    peer_servers = {
        "python": [str(PY), str(HERE / "python" / "peer.py"), "server", "--certfile", str(cert), "--keyfile",
                   str(key), "--port"],
        "node": node + ["server", "--cert", str(cert), "--key", str(key), "--port"],
    }
    our_clients_against(peer_servers, "wss://localhost", ["--cafile", str(cert)], " (wss)")


def main():
    (HERE / ".logs").mkdir(exist_ok=True)
    for need in [PY, BIN / "peer-go", HERE / "node" / "node_modules" / "ws", Path("/usr/bin/chromium"), EX / "echo"]:
        if not need.exists():
            print(f"FAIL: {need} is missing; run interop/run.sh, which installs every peer", file=sys.stderr)
            return 2
    # Our servers.
    ports = {name: free_port() for name in ("echo", "push", "ticker", "echo_blocking", "stream_echo_blocking",
                                                 "control_blocking")}
    servers = {
        "echo": start([str(EX / "echo"), "--addr", f"127.0.0.1:{ports['echo']}", "--quiet", "--ping", "0.3"], "echo"),
        "push": start([str(EX / "push"), "--addr", f"127.0.0.1:{ports['push']}"], "push"),
        "ticker": start([str(EX / "ticker"), "--addr", f"127.0.0.1:{ports['ticker']}"], "ticker"),
    }
    for name in ("echo_blocking", "stream_echo_blocking", "control_blocking"):
        servers[name] = start([str(EX / name), "--addr", f"127.0.0.1:{ports[name]}"], name)
    for name, p in servers.items():
        if not wait_port(ports[name], p):
            print(f"FAIL: examples/{name} did not start", file=sys.stderr)
            return 2
    ws_echo = f"ws://127.0.0.1:{ports['echo']}/websocket"
    node = ["node", str(HERE / "node" / "peer.js")]
    browser = ["node", str(HERE / "node" / "browser.js")]
    print("== peers' clients against silverback's examples")
    run_checks("python client -> examples/echo", [str(PY), str(HERE / "python" / "peer.py"), "client", "--url", ws_echo], 13)
    run_checks("node client -> examples/echo", node + ["client", "--url", ws_echo], 13)
    run_checks("go client -> examples/echo", [str(BIN / "peer-go"), "client", "-url", ws_echo], 13)
    run_checks("chromium -> examples/echo", browser + ["echo", "--base", f"http://127.0.0.1:{ports['echo']}"], 11)
    run_checks("chromium -> examples/push", browser + ["push", "--base", f"http://127.0.0.1:{ports['push']}"], 7)
    run_checks("python client -> examples/{echo_blocking,stream_echo_blocking,control_blocking}",
               [str(PY), str(HERE / "python" / "peer.py"), "tutorial",
                "--echo-blocking", f"ws://127.0.0.1:{ports['echo_blocking']}/websocket",
                "--stream-echo", f"ws://127.0.0.1:{ports['stream_echo_blocking']}/websocket",
                "--control", f"ws://127.0.0.1:{ports['control_blocking']}/websocket"], 3)
    run_checks("chromium -> examples/ticker", browser + ["ticker", "--base", f"http://127.0.0.1:{ports['ticker']}"], 2)
    deflate_checks(node)
    print("== silverback's clients against peers' servers")
    peer_servers = {
        "python": [str(PY), str(HERE / "python" / "peer.py"), "server", "--port"],
        "node": node + ["server", "--port"],
        "go": [str(BIN / "peer-go"), "server", "-port"],
    }
    our_clients_against(peer_servers, "ws://127.0.0.1", [], "")
    tls_checks(node, browser)
    failed = [r for r in results if not r[3]]
    total = len(results)
    print(f"\n{'PASS' if not failed else 'FAIL'}: {total - len(failed)}/{total} interop checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        kill_all()
