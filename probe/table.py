#!/usr/bin/env python3
"""Markdown table of wsprobe JSON reports: probe x server (probe/cross.sh)."""
import json
import os
import sys

order = ["silverback", "silverback-blocking", "tungstenite", "tokio-tungstenite",
         "fastwebsockets", "ws-rs", "gorilla", "libwebsockets"]
d = sys.argv[1]
reports = {}
for name in order:
    p = os.path.join(d, name + ".json")
    if os.path.exists(p):
        reports[name] = json.load(open(p))
names = [n for n in order if n in reports]
probes = []
for n in names:
    for p in reports[n].get("probes", []):
        if p["name"] not in [q["name"] for q in probes]:
            probes.append(p)
mark = {"held": "held", "violated": "**violated**", "no-answer": "**no answer**",
        "reset": "reset", "server-gone": "**server gone**"}
print("# wsprobe against the yardstick's echo servers\n")
print("Produced by `probe/cross.sh` (each server started fresh, `wsprobe check "
      "ws://127.0.0.1:PORT/ --pid PID`, one server at a time). Cells: held, "
      "**violated**, **no answer** (nothing within the deadline), reset, "
      "**server gone**; a blank cell: the run ended early (server gone). Which of "
      "these findings are real, and under which rule, is in docs/wsprobe.md.\n")
missing = [n for n in order if n in reports and "missing" in reports[n]]
for n in missing:
    print(f"- {n}: not built ({reports[n]['missing']})")
names = [n for n in names if "missing" not in reports[n]]
print("| probe | § | level | " + " | ".join(names) + " |")
print("|---|---|---|" + "---|" * len(names))
for p in probes:
    cells = []
    for n in names:
        r = next((q for q in reports[n]["probes"] if q["name"] == p["name"]), None)
        cells.append(mark.get(r["verdict"], r["verdict"]) if r else "")
    print(f"| {p['name']} | {p['section']} | {p['level']} | " + " | ".join(cells) + " |")
print("\n| | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
print("| failed | " + " | ".join(str(reports[n]["failed"]) for n in names) + " |")
print("\n## Details of every finding\n")
for n in names:
    for q in reports[n]["probes"]:
        if q["verdict"] not in ("held",):
            rss = q.get("rss") or {}
            extra = f" (RSS {rss.get('before_kib')} → {rss.get('after_kib')} KiB)" if rss else ""
            print(f"- **{n}** `{q['name']}`: {q['verdict']} — {q['detail'] or '(no detail)'}{extra}")

print("\n## Fuzz\n")
print("`wsprobe fuzz --seed 1 --cases 100 --deadline 2 --max-findings 2` after each check "
      "(the run stops at the second finding; each finding shrunk, its reproducer in "
      "probe/results/NAME-repro/):\n")
for n in names:
    p = os.path.join(d, n + ".fuzz.txt")
    if not os.path.exists(p):
        print(f"- **{n}**: not fuzzed")
        continue
    lines = [l.rstrip() for l in open(p)]
    counts = [l.strip() for l in lines if l[:6].strip().isdigit()]
    finds = [l for l in lines if l.startswith("finding:")]
    last = lines[-1] if lines else "(no output)"
    print(f"- **{n}**: {last}; cases by model and verdict: {', '.join(counts)}")
    for f in finds:
        f = f.replace(os.path.dirname(os.path.dirname(os.path.abspath(d))) + "/", "")
        print(f"  - {f}")
