"""bench/charts.py draws what the results say: one bar per measured ratio, starting at the reference, as long as
|log(ratio)|, to the left below 1 and to the right above, green when we do better and orange when worse. The PNG
is read back pixel by pixel (no image comparison with a stored picture)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fixtures.operations import load_program

ROOT = Path(__file__).resolve().parents[2]
plt_image = pytest.importorskip("matplotlib.image", reason="matplotlib is in requirements.txt (make venv)")


@pytest.fixture(scope="module")
def charts():
    return load_program("bench/charts.py", "bench_charts")


def rgb(hex_colour):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def bars(png, colours):
    """[(colour, top row, left column, right column)] of the solid bars of these colours, top to bottom."""
    image = (plt_image.imread(png)[:, :, :3] * 255).round().astype(int)
    found = []
    for name, colour in colours.items():
        mask = (image == rgb(colour)).all(axis=2)
        rows = [y for y in range(mask.shape[0]) if mask[y].sum() > 3]
        groups = []
        for y in rows:  # consecutive rows form one bar
            if groups and y == groups[-1][-1] + 1:
                groups[-1].append(y)
            else:
                groups.append([y])
        for group in groups:
            middle = group[len(group) // 2]
            xs = [x for x in range(mask.shape[1]) if mask[middle, x]]
            found.append((name, group[0], min(xs), max(xs)))
    return sorted(found, key=lambda bar: bar[1])


def document(rows):
    return {"meta": {"started": "2026-12-03T00:00:00Z", "commit": "abc"}, "rows": rows}


def row(key, ratio, unit, status="measured"):
    return {"key": key, "measure": key, "ratio": ratio, "unit": unit, "status": status}


def test_bars_follow_the_ratios(charts, tmp_path):
    doc = document([row("throughput half", 0.5, "msg/s"), row("latency half", 0.5, "s"),
                    row("not measured", None, "s", status="skipped"), row("time double", 2.0, "s"),
                    row("throughput 4x", 4.0, "points/s"), row("zero", 0.0, "s")])
    png = tmp_path / "bench.png"
    drawn = charts.render_bench(doc, png)
    assert [label for label, _, _ in drawn] == ["throughput half", "latency half", "time double", "throughput 4x"]
    found = bars(png, {"better": charts.BETTER, "worse": charts.WORSE})
    assert [b[0] for b in found] == ["worse", "better", "worse", "better"], found
    (_, _, l1, r1), (_, _, l2, r2), (_, _, l3, r3), (_, _, l4, r4) = found
    reference = r1 + 1  # the 0.5x bars end at the reference line, the others start there
    # (the reference line, drawn over the bars, hides a few pixels where they meet)
    assert abs(r2 + 1 - reference) <= 4 and abs(l3 - reference) <= 4 and abs(l4 - reference) <= 4
    half, double, quadruple = r1 - l1, r3 - l3, r4 - l4
    assert abs(half - double) <= 2, (half, double)          # log scale: 0.5x and 2x are as long
    assert abs(quadruple - 2 * double) <= 3, (quadruple, double)  # 4x twice as long as 2x


def test_nothing_to_draw_is_an_error(charts, tmp_path):
    with pytest.raises(ValueError, match="no measured row"):
        charts.render_bench(document([row("x", None, "s")]), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_committed_bench_results_have_their_picture(charts, tmp_path):
    """Every results JSON has a PNG next to it with one bar per measured ratio (bench.py and charts.py write it)."""
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    assert results
    for path in results:
        png = path.with_suffix(".png")
        assert png.exists(), f"{png.name} missing: python bench/charts.py {path.relative_to(ROOT)}"
        # a ratio within 12 % of 1 is a bar a few pixels wide, which the reference line may hide: found or not, both
        # pass; every other bar must be there, in order, in its colour
        expected = [("better" if better else "worse", abs(math.log10(value)) < 0.05)
                    for _, value, better in charts.chart_rows(json.loads(path.read_text()))]
        found = [b[0] for b in bars(png, {"better": charts.BETTER, "worse": charts.WORSE})]
        assert bars_match(found, expected), (path.name, found, expected)


def bars_match(found, expected):
    """found (colours, top to bottom) is expected (colour, optional) with some optional ones left out.

    Not greedy: an optional bar left out may be followed by a bar of its colour (0.946 hidden, then 0.774 drawn)."""
    if not expected:
        return not found
    (colour, optional), rest = expected[0], expected[1:]
    if found and found[0] == colour and bars_match(found[1:], rest):
        return True
    return optional and bars_match(found, rest)


def test_bars_match():
    assert bars_match(["worse", "better"], [("worse", False), ("better", True)])
    assert bars_match(["worse"], [("worse", False), ("better", True)])
    assert not bars_match(["better"], [("worse", False), ("better", True)])
    assert not bars_match(["worse", "worse"], [("worse", False), ("better", True)])
    # an optional bar of the next one's colour, left out: the drawn one is the next
    assert bars_match(["worse", "worse"], [("worse", True), ("worse", False), ("worse", False)])
    assert not bars_match(["worse"], [("worse", True), ("worse", False), ("worse", False)])


def drill_events():
    """30 s of sends every 0.1 s from t=1000: acked in 10 ms, except those sent while the broker was down (10-15 s:
    acked 4 s later) and two that failed."""
    events = []
    for i in range(300):
        sent = 1000 + i * 0.1
        if 1010 <= sent < 1015:
            events.append({"e": "ack", "seq": i, "sent": sent, "t": sent + 4.0, "p": 1})
        elif i in (50, 51):
            events.append({"e": "err", "seq": i, "sent": sent, "t": sent + 0.5, "kind": "NotEnoughReplicas"})
        else:
            events.append({"e": "ack", "seq": i, "sent": sent, "t": sent + 0.01, "p": i % 4})
    return events


def columns_of(png, colour):
    image = (plt_image.imread(png)[:, :, :3] * 255).round().astype(int)
    mask = (image == rgb(colour)).all(axis=2)
    ys, xs = mask.nonzero()
    return xs, ys


def test_drill_chart_shows_the_stall_inside_the_down_phase(charts, tmp_path):
    phases = [{"name": "before", "begin": 1000, "end": 1010}, {"name": "broker down", "begin": 1010, "end": 1020},
              {"name": "restarted", "begin": 1020, "end": 1030}]
    png = tmp_path / "drill.png"
    points = charts.render_drill(drill_events(), phases, png)
    kinds = [k for _, _, k in points]
    assert (kinds.count("ok"), kinds.count("stalled"), kinds.count("failed")) == (248, 50, 2)
    line_xs, _ = columns_of(png, charts.PHASE_LINE)
    columns = sorted({int(x) for x in line_xs if (line_xs == x).sum() > 100})  # full-height vertical lines
    lines = []
    for x in columns:  # a line may be a few pixels wide: one line per run of adjacent columns
        if lines and x - lines[-1][-1] == 1:
            lines[-1].append(x)
        else:
            lines.append([x])
    lines = [group[0] for group in lines]
    assert len(lines) == 3, lines
    ok_x, ok_y = columns_of(png, charts.BETTER)
    stall_x, stall_y = columns_of(png, charts.WORSE)
    failed_x, _ = columns_of(png, charts.FAILED)
    # stalled sends: between the "broker down" line and the middle of that phase, above (smaller y) every ok send
    second, third = lines[1], lines[2]
    assert second - 2 <= stall_x.min() and stall_x.max() <= (second + third) // 2 + 3, (stall_x.min(), stall_x.max())
    assert stall_y.max() < ok_y.min()
    assert len(failed_x) > 0


def test_drill_without_outcomes_is_an_error(charts, tmp_path):
    with pytest.raises(ValueError, match="no acknowledged or failed send"):
        charts.render_drill([{"e": "retried", "t": 1.0, "kind": "x"}], [], tmp_path / "x.png")


@pytest.mark.parametrize("span", [0.375, 0.9, 1.5, 2.5])
def test_the_ratio_axis_labels_few_ticks_far_enough_apart(charts, span):
    ticks = charts.ratio_ticks(span)
    assert 1 in ticks and 3 <= len(ticks) <= 12
    assert all(abs(math.log10(t)) <= span for t in ticks)
    gaps = [math.log10(b) - math.log10(a) for a, b in zip(ticks, ticks[1:])]
    assert min(gaps) >= 2 * span / 20, (ticks, gaps)  # a label is under 5 % of the axis (0.4 in of 8)
