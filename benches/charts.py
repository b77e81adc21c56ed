#!/usr/bin/env python3
"""SVG charts of the benchmark results (standard library only), written by the
scripts that make the tables, so a rerun redraws them:

    charts.py bench-latest docs/bench-latest.md OUTDIR   (benches/compare.sh)
        cpu-per-message.svg: server CPU per echoed message, per server and size
        idle-memory.svg:     server memory per idle connection, per server
    charts.py fanout RESULTS.jsonl OUTDIR                 (benches/fanout.sh)
        fanout-cpu.svg:      server CPU per delivered message, per server, N and size
        fanout-latency.svg:  p99 latency from the POST to the last subscriber against N
    charts.py tls RESULTS.txt OUTDIR                      (benches/tls_anchor.sh)
        tls-cpu.svg:         server CPU per wss:// message, ours and the anchor

Bars carry their values; every chart names the command that produced it.
"""

import collections
import html
import json
import statistics
import sys

PALETTE = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#00a3c4",
           "#b7791f", "#319795", "#e53e3e", "#4a5568"]
OURS = ["#c53030", "#f56565", "#9b2c2c", "#fc8181"]


ANCHORS = ["#1a202c", "#a0aec0"]


def color_of(name, index, ours, anchors=()):
    """Ours in shades of red (in order), anchors in black and grey, the others
    from the palette."""
    ours, anchors = sorted(ours), sorted(anchors)
    if name in ours:
        return OURS[ours.index(name) % len(OURS)]
    if name in anchors:
        return ANCHORS[anchors.index(name) % len(ANCHORS)]
    return PALETTE[index % len(PALETTE)]


def esc(s):
    return html.escape(str(s), quote=True)


def svg_doc(w, h, body, title, source):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">\n'
            f'<rect width="{w}" height="{h}" fill="white"/>\n'
            f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15" '
            f'font-weight="bold">{esc(title)}</text>\n'
            f'{body}'
            f'<text x="{w - 8}" y="{h - 8}" text-anchor="end" font-size="10" '
            f'fill="#555">{esc(source)}</text>\n</svg>\n')


def nice_max(v):
    if v <= 0:
        return 1.0
    m = 10 ** len(str(int(v)))
    for step in (0.1, 0.2, 0.25, 0.5, 1.0):
        if v <= m * step:
            return m * step
    return m


def bar_chart(path, title, unit, groups, series, source, ours=(), anchors=()):
    """Horizontal grouped bars: one block per group, one bar per series."""
    label_w, right, top = 170, 90, 60
    bar_h, gap = 14, 14
    n_series = len(series)
    h = top + len(groups) * (n_series * bar_h + gap) + 60
    w = 900
    vmax = nice_max(max([v for _, vals in series for v in vals if v is not None] + [0]))
    plot_w = w - label_w - right
    body = []
    # Axis ticks.
    for i in range(6):
        x = label_w + plot_w * i / 5
        body.append(f'<line x1="{x}" y1="{top - 6}" x2="{x}" y2="{h - 50}" stroke="#ddd"/>')
        body.append(f'<text x="{x}" y="{h - 36}" text-anchor="middle" fill="#333">'
                    f'{vmax * i / 5:g}</text>')
    body.append(f'<text x="{label_w + plot_w / 2}" y="{h - 22}" text-anchor="middle">'
                f'{esc(unit)}</text>')
    y = top
    for gi, g in enumerate(groups):
        body.append(f'<text x="{label_w - 8}" y="{y + n_series * bar_h / 2 + 4}" '
                    f'text-anchor="end" font-weight="bold">{esc(g)}</text>')
        for si, (name, vals) in enumerate(series):
            v = vals[gi]
            if v is not None:
                color = color_of(name, si, ours, anchors)
                if n_series == 1 and g in ours:
                    color = OURS[0]
                bw = max(1.0, plot_w * v / vmax)
                body.append(f'<rect x="{label_w}" y="{y}" width="{bw:.1f}" height="{bar_h - 2}" '
                            f'fill="{color}"><title>{esc(name)} {esc(g)}: {v:g}</title></rect>')
                body.append(f'<text x="{label_w + bw + 4:.1f}" y="{y + bar_h - 4}" '
                            f'font-size="10">{v:g}</text>')
            y += bar_h
        y += gap
    # Legend.
    lx, ly = label_w, 38
    for si, (name, _) in enumerate(series):
        color = color_of(name, si, ours, anchors)
        body.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        body.append(f'<text x="{lx + 14}" y="{ly}">{esc(name)}</text>')
        lx += 24 + 7 * len(name)
        if lx > w - 150:
            lx, ly = label_w, ly + 14
    write(path, svg_doc(w, h, "".join(s + "\n" for s in body), title, source))


def line_chart(path, title, xlabel, ylabel, series, source, ours=(), limit=None, anchors=()):
    """Lines over a log2 x axis (subscribers); `limit` draws a dashed goal line."""
    import math
    w, h, left, right, top, bottom = 760, 420, 70, 200, 50, 60
    xs = sorted({x for _, pts in series for x, _ in pts})
    ys = [y for _, pts in series for _, y in pts] + ([limit] if limit else [])
    ymax = nice_max(max(ys + [0]))
    lo, hi = math.log2(min(xs)), math.log2(max(xs))
    span = hi - lo or 1.0
    px = lambda x: left + (w - left - right) * (math.log2(x) - lo) / span
    py = lambda y: top + (h - top - bottom) * (1 - y / ymax)
    body = []
    for i in range(6):
        y = ymax * i / 5
        body.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{w - right}" y2="{py(y):.1f}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in xs:
        body.append(f'<text x="{px(x):.1f}" y="{h - bottom + 16}" text-anchor="middle">{x:,}</text>')
    body.append(f'<text x="{(left + w - right) / 2}" y="{h - bottom + 34}" text-anchor="middle">{esc(xlabel)}</text>')
    body.append(f'<text x="16" y="{(top + h - bottom) / 2}" transform="rotate(-90 16 {(top + h - bottom) / 2})" '
                f'text-anchor="middle">{esc(ylabel)}</text>')
    if limit:
        body.append(f'<line x1="{left}" y1="{py(limit):.1f}" x2="{w - right}" y2="{py(limit):.1f}" '
                    f'stroke="#e53e3e" stroke-dasharray="6 4"/>')
        body.append(f'<text x="{w - right - 4}" y="{py(limit) - 4:.1f}" text-anchor="end" fill="#e53e3e">goal {limit:g}</text>')
    for si, (name, pts) in enumerate(series):
        color = color_of(name, si, ours, anchors)
        pts = sorted(pts)
        d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            body.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
                        f'<title>{esc(name)} N={x}: {y:g}</title></circle>')
        body.append(f'<rect x="{w - right + 12}" y="{top + 16 * si}" width="10" height="10" fill="{color}"/>')
        body.append(f'<text x="{w - right + 26}" y="{top + 16 * si + 9}">{esc(name)}</text>')
    write(path, svg_doc(w, h, "".join(s + "\n" for s in body), title, source))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    print(f"charts.py: wrote {path}")


def md_table(lines, heading):
    """The rows of the first table under `heading` as lists of cells."""
    rows, inside = [], False
    for line in lines:
        if line.startswith("## "):
            inside = line[3:].strip().startswith(heading)
            continue
        if inside and line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif inside and rows:
            break
    return rows[0], rows[2:]


def num(cell):
    try:
        return float(cell.split()[0].rstrip("k").replace("†", "").replace("*", "").replace("¹", ""))
    except (ValueError, IndexError):
        return None


def bench_latest(md, out):
    lines = open(md).read().splitlines()
    head, rows = md_table(lines, "Server CPU per message")
    cols = [i for i, c in enumerate(head) if c.startswith("C=")]
    groups = [head[i] for i in cols]
    series = [(r[0], [num(r[i]) for i in cols]) for r in rows]
    ours = {r[0] for r in rows if r[0].startswith("silverback")}
    src = "benches/compare.sh (table: docs/bench-latest.md)"
    bar_chart(f"{out}/cpu-per-message.svg",
              "Echo: server CPU per message (µs, lower is better)",
              "µs of server CPU per echoed message (C = connections)", groups, series, src, ours)
    head, rows = md_table(lines, "Absolute")
    idle = head.index("idle KiB/conn")
    rows = sorted(rows, key=lambda r: num(r[idle]) or 0)
    bar_chart(f"{out}/idle-memory.svg",
              "Server memory per idle connection (KiB, lower is better)",
              "KiB of server RSS per idle connection (10,000 held)",
              [r[0] for r in rows], [("KiB per connection", [num(r[idle]) for r in rows])],
              src, ours)


def fanout(jsonl, out):
    cells = collections.defaultdict(list)
    for line in open(jsonl):
        d = json.loads(line)
        cells[(d["label"], d["conns"], d["size"])].append(d)
    labels = list(dict.fromkeys(k[0] for k in cells))
    keys = sorted({(k[1], k[2]) for k in cells})
    groups = [f"N={n:,} {s} B" for n, s in keys]
    med = lambda rows, f: statistics.median(r[f] for r in rows) if rows else None
    series = [(lab, [(lambda r: round(med(r, "server_cpu_us_per_delivery"), 2) if r else None)
                     (cells.get((lab, n, s))) for n, s in keys]) for lab in labels]
    # Ours in distinct colours (five cells), uWebSockets in black and grey.
    anchors = {lab for lab in labels if lab.startswith("uws")}
    src = "benches/fanout.sh (table: docs/fanout-latest.md)"
    bar_chart(f"{out}/fanout-cpu.svg",
              "Fan-out: server CPU per delivered message (µs, lower is better)",
              "µs of server CPU per message delivered to one subscriber",
              groups, series, src, anchors=anchors)
    sizes = sorted({s for _, s in keys})
    size = 1024 if 1024 in sizes else sizes[-1]
    lines = []
    for lab in labels:
        pts = [(n, med(cells[(lab, n, size)], "latency_last_ms_p99"))
               for n, s in keys if s == size and (lab, n, size) in cells]
        if pts:
            lines.append((lab, pts))
    line_chart(f"{out}/fanout-latency.svg",
               f"Fan-out latency p99, POST to last subscriber ({size} B)",
               "subscribers", "ms", lines, src, limit=50, anchors=anchors)


def tls(txt, out):
    cells = collections.defaultdict(list)
    for line in open(txt):
        label, size, js = line.split(" ", 2)
        d = json.loads(js)
        if d.get("server_cpu_us_per_msg") is not None:
            cells[(label, int(size))].append(d["server_cpu_us_per_msg"])
    labels = list(dict.fromkeys(k[0] for k in cells))
    sizes = sorted({k[1] for k in cells})
    series = [(lab, [round(statistics.median(cells[(lab, s)]), 2) if (lab, s) in cells else None
                     for s in sizes]) for lab in labels]
    bar_chart(f"{out}/tls-cpu.svg",
              "wss:// echo: server CPU per message (µs, lower is better)",
              "µs of server CPU per echoed message, 100 connections",
              [f"{s} B" for s in sizes], series,
              "benches/tls_anchor.sh (table: docs/tls-latest.md)",
              ours={lab for lab in labels if lab.startswith("silverback")})


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("bench-latest", "fanout", "tls"):
        sys.exit(__doc__)
    {"bench-latest": bench_latest, "fanout": fanout, "tls": tls}[sys.argv[1]](sys.argv[2], sys.argv[3])
