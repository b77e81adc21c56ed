#!/usr/bin/env python3
"""Proves the Autobahn harness catches what kosoku lets through.

Each mutant is a deliberately broken build of silverback: a one-line change that
kosoku's lenient peer does not notice (see ../shared/autobahn.md: a server that
masks, a client that does not, RSV2 on data, a stray continuation, control frames
with FIN clear, a 1-byte close payload, a close reason that is not UTF-8, a wrong
Sec-WebSocket-Accept, a server that does not close TCP first). For each one this
script copies the tree, applies the change, builds the Autobahn programs, runs a
few case groups through harness.py with the wire validator, and requires the run
to FAIL. A mutant that survives is a hole in the harness: exit status 1.

    autobahn/mutants.py [--only NAME] [--keep]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name: (file, pattern, replacement, target, groups, what the validator should report)
MUTANTS = [
    ("server-masks-frames", "src/proto/encoder.rs",
     r"Role::Server => None,", "Role::Server => Some(rand::random::<[u8; 4]>()),",
     "loop-server", "1,2", "server frame is masked"),
    ("client-does-not-mask", "src/proto/encoder.rs",
     r"Role::Client => Some\(self.rng.mask_key\(\)\),", "Role::Client => None,",
     "loop-client", "1,2", "client frame is not masked"),
    ("rsv2-on-data-frames", "src/proto/encoder.rs",
     r"rsv: if rsv1 \{ RSV1 \} else \{ 0 \},", "rsv: if !opcode.is_control() { 0b010 } else if rsv1 { RSV1 } else { 0 },",
     "loop-server", "1", "RSV2/RSV3 set on a data frame"),
    ("stray-continuation", "src/proto/encoder.rs",
     r"            opcode,\n            mask,\n            payload_len,",
     "            opcode: if fin && matches!(opcode, OpCode::Text | OpCode::Binary) { OpCode::Continuation } else { opcode },\n            mask,\n            payload_len,",
     "loop-server", "1", "continuation frame without a message in progress"),
    ("control-fin-clear", "src/proto/encoder.rs",
     r"        let header = FrameHeader \{\n            fin,",
     "        let header = FrameHeader {\n            fin: fin && !opcode.is_control(),",
     "loop-server", "2", "fragmented control frame"),
    ("close-one-byte-payload", "src/proto/close.rs",
     r"    Ok\(2 \+ reason.len\(\)\)\n\}", "    let _ = reason;\n    Ok(1)\n}",
     "loop-server", "7", "close frame with a 1-byte payload"),
    ("close-reason-not-utf8", "src/proto/close.rs",
     r"    Ok\(2 \+ reason.len\(\)\)\n\}", "    out[2 + reason.len()] = 0xff;\n    Ok(3 + reason.len())\n}",
     "loop-server", "7", "close reason is not UTF-8"),
    ("wrong-accept-key", "src/proto/handshake/mod.rs",
     r"    sha.update\(WEBSOCKET_GUID.as_bytes\(\)\);", "    sha.update(b\"not the GUID\");",
     "loop-server", "1", "wrong Sec-WebSocket-Accept"),
    ("server-does-not-close-tcp", "src/proto/connection/lifecycle.rs",
     r"self.role\(\) == Role::Server && self.tx\(\).is_none_or\(\|tx\| tx.is_empty\(\)\)",
     "false // mutant: wait for the client instead",
     "loop-server", "7", "client closed TCP before the server|server kept TCP open"),
]


def run(cmd, **kw):
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="run one mutant by name")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--kosoku", default=str(HERE / ".venv" / "bin" / "kosoku"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="silverback-mutants-"))
    target_dir = Path(os.environ.get("MUTANTS_TARGET_DIR", str(ROOT / "target" / "mutants")))
    survivors = []
    try:
        for name, path, pattern, repl, target, groups, expect in MUTANTS:
            if args.only and name != args.only:
                continue
            tree = work / name
            shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns("target", ".git", ".venv", "reports"))
            f = tree / path
            src = f.read_text()
            new, n = re.subn(pattern, repl.replace("\\", "\\\\"), src, count=1)
            if n != 1:
                print(f"ERROR {name}: pattern not found in {path} (the code moved; update the mutant)")
                survivors.append(name)
                continue
            f.write_text(new)
            b = run(["cargo", "build", "--release", "--quiet", "--example", "autobahn_server",
                     "--example", "autobahn_client"], cwd=tree, env={**os.environ, "CARGO_TARGET_DIR": str(target_dir)})
            if b.returncode != 0:
                print(f"ERROR {name}: mutant does not build\n{b.stderr[-2000:]}")
                survivors.append(name)
                continue
            h = run([sys.executable, str(HERE / "harness.py"), "--kosoku", args.kosoku, "--targets", target,
                     "--groups", groups, "--bin-dir", str(target_dir / "release" / "examples"),
                     "--out", str(work / "reports")])
            caught = h.returncode == 1
            seen = re.search(expect, h.stdout) is not None
            status = "caught " if caught and seen else "SURVIVED"
            print(f"{status} {name:28} ({target}, groups {groups}): "
                  f"{'validator reported: ' + expect if seen else 'expected report missing: ' + expect}")
            if not (caught and seen):
                survivors.append(name)
                print("\n".join("    " + line for line in (h.stdout + h.stderr).splitlines()[-12:]))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if survivors:
        print(f"FAIL: {len(survivors)} mutant(s) not caught: {', '.join(survivors)}")
        return 1
    print("PASS: every mutant was caught by the harness")
    return 0


if __name__ == "__main__":
    sys.exit(main())
