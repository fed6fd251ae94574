#!/usr/bin/env python3
"""Pictures of the bench results: each measured ratio (ours / the reference measured in the same run) as a bar that
starts at the reference (1) and goes left or right on a log scale, so 0.5x and 2x are bars of the same length.
Green: we do better than the reference (faster throughput, or shorter time/latency); orange: worse.

    bench/charts.py bench/results/<date>.json [...]     writes <date>.png next to each JSON
    bench/charts.py --drill EVENTS.jsonl PHASES.json    writes EVENTS.png: a failover drill's ack waits
bench/bench.py calls render_bench() after writing its JSON.

The drill chart: every acks=all send of a drill's traffic (tools/kafka_load.py --events) as a point at its send
time, height = how long it waited for its ack (log scale), green under the stall threshold, orange above, red for
a send that failed; the phases ({name, begin, end}, epoch seconds, e.g. broker stopped -> restarted) are shaded
in turn and named, so the stall is seen where the broker went down.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

BETTER, WORSE = "#2e7d32", "#ef6c00"  # exact colours: tests/unit/test_bench_charts.py finds the bars by them
FAILED, PHASE_LINE = "#c62828", "#1565c0"
LOWER_IS_BETTER_UNITS = {"s", "ms", "us", "seconds"}


def chart_rows(document):
    """(label, ratio, better) of the rows that have a positive ratio, in the document's order."""
    rows = []
    for row in document.get("rows") or []:
        ratio = row.get("ratio")
        if row.get("status") != "measured" or not isinstance(ratio, (int, float)) or ratio <= 0:
            continue
        lower_is_better = str(row.get("unit", "")).strip() in LOWER_IS_BETTER_UNITS
        better = ratio <= 1 if lower_is_better else ratio >= 1
        rows.append((row.get("measure") or row.get("key") or "?", float(ratio), better))
    return rows


# Ratios the x axis may label (a log axis narrower than a decade otherwise labels its minor ticks, which overlap).
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50, 100)


def ratio_ticks(span, most=12):
    """Labelled ratios within 10^-span .. 10^span: RATIO_TICKS, thinned to at most ``most``, 1 always kept."""
    ticks = [t for t in RATIO_TICKS if abs(math.log10(t)) <= span]
    step = 1
    while len(ticks[::step]) > most:
        step += 1
    one = ticks.index(1)
    return sorted(set(ticks[one::step] + ticks[one::-step]))


def render_bench(document, png_path, title=None):
    """Write the chart of a bench results document; returns the rows drawn."""
    import matplotlib

    matplotlib.use("Agg")  # no display on the controller
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    rows = chart_rows(document)
    if not rows:
        raise ValueError("no measured row with a positive ratio to draw")
    span = max(max(abs(math.log10(r)) for _, r, _ in rows), 0.3) * 1.25
    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 1.6), dpi=100)
    for i, (_, ratio, better) in enumerate(rows):
        ax.barh(i, ratio - 1, left=1, height=0.6, color=BETTER if better else WORSE, linewidth=0, antialiased=False)
        ax.text(ratio * (1.06 if ratio >= 1 else 1 / 1.06), i, f"{ratio:.3g}x", va="center",
                ha="left" if ratio >= 1 else "right", fontsize=9)
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(10 ** -span, 10 ** span)
    ax.xaxis.set_major_locator(FixedLocator(ratio_ticks(span)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=9)
    ax.invert_yaxis()  # first row on top, as in the results table
    ax.set_xlabel("ratio ours / reference (log scale; 1 = as fast as the reference)")
    meta = document.get("meta") or {}
    ax.set_title(title or f"Isobar bench {meta.get('started', '')} (commit {str(meta.get('commit', '?'))[:10]})")
    fig.tight_layout()
    fig.savefig(png_path, format="png")
    plt.close(fig)
    return rows


def drill_points(events, stall_threshold=1.0):
    """(send time, wait, kind) of each message with an outcome; kind is ok, stalled or failed."""
    points = []
    for event in events:
        if event.get("e") == "ack":
            wait = max(float(event["t"]) - float(event["sent"]), 1e-4)
            points.append((float(event["sent"]), wait, "stalled" if wait > stall_threshold else "ok"))
        elif event.get("e") == "err":
            points.append((float(event["sent"]), max(float(event["t"]) - float(event["sent"]), 1e-4), "failed"))
    return sorted(points)


def render_drill(events, phases, png_path, stall_threshold=1.0, title="Failover drill: ack wait of each send"):
    """Write the ack-wait chart of a drill's events; returns the points drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = drill_points(events, stall_threshold)
    if not points:
        raise ValueError("no acknowledged or failed send in the events")
    t0 = points[0][0]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    for i, phase in enumerate(phases):
        begin, end = float(phase["begin"]) - t0, float(phase["end"]) - t0
        if i % 2:
            ax.axvspan(begin, end, color="#eeeeee", linewidth=0)
        ax.axvline(begin, color=PHASE_LINE, linewidth=1, antialiased=False)
        ax.text(begin, 1.02, f" {phase['name']}", transform=ax.get_xaxis_transform(), fontsize=8, color=PHASE_LINE)
    counts = []
    for kind, colour, name in (("ok", BETTER, "green"), ("stalled", WORSE, "orange"), ("failed", FAILED, "red")):
        xs = [t - t0 for t, _, k in points if k == kind]
        ys = [w for _, w, k in points if k == kind]
        counts.append(f"{kind} {len(xs)} ({name})")
        if xs:
            ax.plot(xs, ys, linestyle="none", marker="s", markersize=3, color=colour, antialiased=False)
    ax.axhline(stall_threshold, color="black", linewidth=0.5, linestyle="--")
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the first send")
    ax.set_ylabel("wait for the acks=all acknowledgement (s)")
    # the counts in the title rather than a legend: no marker of a legend mixes with the points
    ax.set_title(f"{title}\n{', '.join(counts)}; stall threshold {stall_threshold:g} s (dashed)", pad=18, fontsize=10)
    fig.tight_layout()
    fig.savefig(png_path, format="png")
    plt.close(fig)
    return points


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "--drill":
        if len(argv) != 3:
            print(__doc__, file=sys.stderr)
            return 2
        events_path = Path(argv[1])
        events = [json.loads(line) for line in events_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        png = events_path.with_suffix(".png")
        points = render_drill(events, json.loads(Path(argv[2]).read_text(encoding="utf-8")), png)
        print(f"{png}: {len(points)} sends")
        return 0
    for name in argv:
        path = Path(name)
        png = path.with_suffix(".png")
        rows = render_bench(json.loads(path.read_text(encoding="utf-8")), png)
        print(f"{png}: {len(rows)} ratios")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
