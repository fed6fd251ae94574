#!/usr/bin/env python3
"""Pictures of the bench results: each measured ratio (ours / the reference measured in the same run) as a bar that
starts at the reference (1) and goes left or right on a log scale, so 0.5x and 2x are bars of the same length.
Green: we do better than the reference (faster throughput, or shorter time/latency); orange: worse.

    bench/charts.py bench/results/<date>.json [...]     writes <date>.png next to each JSON
bench/bench.py calls render_bench() after writing its JSON.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

BETTER, WORSE = "#2e7d32", "#ef6c00"  # exact colours: tests/unit/test_bench_charts.py finds the bars by them
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


def render_bench(document, png_path, title=None):
    """Write the chart of a bench results document; returns the rows drawn."""
    import matplotlib

    matplotlib.use("Agg")  # no display on the controller
    import matplotlib.pyplot as plt

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
    ax.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=9)
    ax.invert_yaxis()  # first row on top, as in the results table
    ax.set_xlabel("ratio ours / reference (log scale; 1 = as fast as the reference)")
    meta = document.get("meta") or {}
    ax.set_title(title or f"Isobar bench {meta.get('started', '')} (commit {str(meta.get('commit', '?'))[:10]})")
    fig.tight_layout()
    fig.savefig(png_path, format="png")
    plt.close(fig)
    return rows


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name in argv:
        path = Path(name)
        png = path.with_suffix(".png")
        rows = render_bench(json.loads(path.read_text(encoding="utf-8")), png)
        print(f"{png}: {len(rows)} ratios")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
