"""Figures: the waterfall's panels, bars, outlines and verdict markers; the overview's and the what-if
curves' series; the same figures written by ``tracegroup plot`` (Agg backend, no display)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.collections import PatchCollection, PathCollection
from matplotlib.container import BarContainer

import tracegroup as tg
from tracegroup.cli import main
from tracegroup.render import plot

HOTROD = "fixtures/external/getTrace-response.json"
POLYGLOT = "fixtures/polyglot.pb"
PNG = b"\x89PNG\r\n\x1a\n"


def bars(ax: object) -> list[BarContainer]:
    return [c for c in ax.containers if isinstance(c, BarContainer)]  # type: ignore[attr-defined]


def by_gid(ax: object, gid: str) -> list[object]:
    return [c for c in ax.collections if c.get_gid() == gid]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def hotrod() -> tg.Explorer:
    return tg.Explorer.load([HOTROD])


@pytest.fixture(scope="module")
def polyglot() -> tg.Explorer:
    return tg.Explorer.load([POLYGLOT])


def test_waterfall_one_bar_per_span_per_panel(hotrod: tg.Explorer) -> None:
    fig = hotrod.waterfall(hotrod.table.trace_hex[0])
    tree, ref, cmp = fig.axes
    assert len(fig.axes) == 3
    assert not bars(tree) and len(tree.texts) == 2 * 40  # name (indented) and service per span
    for ax, n_tx in ((ref, 28), (cmp, 13)):
        (container,) = bars(ax)
        assert len(container.patches) == 40
        (outlines,) = by_gid(ax, "transactions")
        assert isinstance(outlines, PatchCollection) and len(outlines.get_paths()) == n_tx
        (roots,) = by_gid(ax, "roots")
        assert len(roots.get_offsets()) == n_tx
    (merged,) = by_gid(cmp, "verdict-merged")
    assert isinstance(merged, PathCollection) and len(merged.get_offsets()) == 15
    assert not by_gid(cmp, "verdict-dropped") and not by_gid(ref, "parent-missing")
    assert "sentryexporter: 13 transactions, 15 spans not ok" in cmp.get_title()
    # bars sit on the time axis: the root spans the whole trace from 0
    root = bars(ref)[0].patches[0]
    assert root.get_x() == 0 and root.get_width() == pytest.approx(702.6, abs=0.1)
    # indentation: names of deeper spans start further right
    xs = [t.get_position()[0] for t in tree.texts[::2]]
    depth = hotrod.trace(hotrod.table.trace_hex[0]).depth
    assert all((xs[i] < xs[j]) == (depth[i] < depth[j]) for i in range(40) for j in range(40))


def test_waterfall_marks_dropped_orphaned_and_missing_parents(polyglot: tg.Explorer) -> None:
    frame = polyglot.traces()
    worst = frame.iloc[0]
    assert worst["dropped"] > 0 and worst["orphaned"] > 0
    fig = polyglot.waterfall(worst["trace_id"])
    tree, ref, cmp = fig.axes
    assert not tree.texts and tree.collections  # too many rows: a depth profile, not names
    assert [len(bars(ax)[0].patches) for ax in (ref, cmp)] == [worst["spans"]] * 2
    for v in ("dropped", "orphaned", "split", "merged"):
        found = by_gid(cmp, f"verdict-{v}")
        assert [len(c.get_offsets()) for c in found] == ([worst[v]] if worst[v] else [])  # type: ignore[attr-defined]
    hatched = [p for p in bars(cmp)[0].patches if p.get_hatch()]
    assert len(hatched) == worst["dropped"] and not any(p.get_hatch() for p in bars(ref)[0].patches)
    anomalies = polyglot.anomalies()
    missing = anomalies[anomalies["kind"] == "missing_parent"]
    tid = missing["trace_id"].iloc[0]
    fig = polyglot.waterfall(tid)
    (marks,) = by_gid(fig.axes[1], "parent-missing")
    assert len(marks.get_offsets()) == (missing["trace_id"] == tid).sum()  # type: ignore[attr-defined]


def test_waterfall_max_spans_and_other_groupings(hotrod: tg.Explorer) -> None:
    tid = hotrod.table.trace_hex[0]
    fig = hotrod.waterfall(tid, max_spans=10)
    assert [len(bars(ax)[0].patches) for ax in fig.axes[1:]] == [10, 10]
    assert "first 10 of 40 spans" in fig.get_suptitle()
    fig = hotrod.waterfall(tid, "span-kind", routes="service")
    assert fig.axes[2].get_title().startswith("span-kind: ")
    view = hotrod.trace(tid, compare="remote-parent")
    assert view.waterfall().axes[2].get_title().startswith("remote-parent: ")
    # plot.waterfall draws the data it is given: a trace's spans frame, its id and the options
    fig = plot.waterfall(view.spans, view.trace_id, {**view.analysis.options, "compare": "mine"}, max_spans=5)
    assert fig.axes[2].get_title().startswith("mine: ") and f"trace {tid}: 40 spans" in fig.get_suptitle()


def test_overview_series(polyglot: tg.Explorer) -> None:
    an = polyglot.analyze()
    fig = plot.overview(an)
    ax_s, ax_t = fig.axes
    for ax in (ax_s, ax_t):
        assert [c.get_label() for c in bars(ax)] == ["split", "merged", "orphaned", "dropped"]
    services = int((np.bincount(polyglot.table.service) > 0).sum())
    assert all(len(c.patches) == services for c in bars(ax_s))
    per_trace = an.diff.by_arrays("trace")["spans"]
    buckets = len(set(np.floor(np.log10(per_trace)).astype(int).tolist()))
    assert all(len(c.patches) == buckets for c in bars(ax_t))
    # stacked shares are the per-service verdict shares
    svc = an.diff.by_arrays("service")
    first = [t.get_text() for t in ax_s.get_yticklabels()][0]
    code = polyglot.table.services.index(first)
    dropped = next(c for c in bars(ax_s) if c.get_label() == "dropped").patches[0]
    assert dropped.get_width() == pytest.approx(100 * svc["dropped"][code] / svc["spans"][code])


def whatif_frame() -> pd.DataFrame:
    rows = []
    for setting, values in (("batch-size", [256, 1024, 8192]), ("sdk-batch", [64, 512, 2048])):
        for strategy in ("sentryexporter", "sentryexporter-2021"):
            for k, v in enumerate(values):
                rows.append(
                    {
                        "setting": setting, "value": float(v), "strategy": strategy, "spans": 1000,
                        "misgrouped_pct": 10.0 - k, "dropped_pct": 5.0 - k, "incomplete_pct": 1.0,
                        "sentry_events": 50,
                    }
                )  # fmt: skip
    ref = {"spans": 1000, "dropped_pct": 0.0}
    rows.append({**ref, "setting": "groupbytrace", "value": 1000.0, "strategy": "sentryexporter"})
    rows[-1].update(misgrouped_pct=2.0, incomplete_pct=0.5, sentry_events=40)
    rows.append({**ref, "setting": "sentry-otlp", "value": np.nan, "strategy": "sentry-otlp"})
    rows[-1].update(misgrouped_pct=0.0, incomplete_pct=0.7, sentry_events=30)
    return pd.DataFrame(rows)


def test_whatif_curves_series() -> None:
    frame = whatif_frame()
    fig = plot.whatif_curves(frame)
    assert len(fig.axes) == 3 * 2  # metrics x settings
    for ax in fig.axes:
        labels = [ln.get_label() for ln in ax.lines]
        assert labels == [
            "sentryexporter", "sentryexporter-2021", "groupbytrace (sentryexporter)", "sentry-otlp",
        ]  # fmt: skip
        assert [len(ln.get_xdata()) for ln in ax.lines[:2]] == [3, 3]
    top_left = fig.axes[0]
    assert top_left.get_title() == "batch-size"
    assert list(top_left.lines[0].get_ydata()) == [10.0, 9.0, 8.0]
    assert list(top_left.lines[2].get_ydata()) == [2.0, 2.0]  # a horizontal reference line
    only_refs = plot.whatif_curves(frame[frame["setting"].isin(plot.REFERENCE_SETTINGS)])
    assert len(only_refs.axes) == 3 and [len(ax.lines) for ax in only_refs.axes] == [2, 2, 2]


def test_whatif_curves_of_the_simulation(polyglot: tg.Explorer) -> None:
    from tracegroup.whatif import whatif

    result = whatif(polyglot.table, vary={"batch-size": [256, 8192]})
    fig = plot.whatif_curves(result.frame)
    # the curve, then groupbytrace, per-trace and sentry-otlp reference lines
    assert len(fig.axes) == 3 and all(len(ax.lines) == 4 for ax in fig.axes)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--trace", "2EA75461946A7DD10F2C15AB36A076CB"),
        ("--kind", "overview"),
        ("--kind", "waterfall", "--routes", "service", "--max-spans", "5"),
    ],
)
def test_cli_writes_a_png(tmp_path: Path, args: tuple[str, ...]) -> None:
    out = tmp_path / "figure.png"
    code, text = run("plot", HOTROD, *args, "-o", str(out))
    assert code == 0, text
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000


def test_cli_whatif_and_worst_trace_default(tmp_path: Path) -> None:
    out = tmp_path / "whatif.png"
    code, text = run("plot", POLYGLOT, "--kind", "whatif", "--vary", "batch-size=256,8192", "-o", str(out))
    assert code == 0, text
    assert out.read_bytes()[:8] == PNG
    out = tmp_path / "worst.svg"
    code, text = run("plot", POLYGLOT, "-o", str(out))
    assert code == 0 and "showing the worst trace" in text
    assert out.read_text().lstrip().startswith("<?xml")


def test_cli_errors_exit_2(tmp_path: Path) -> None:
    out = str(tmp_path / "x.png")
    code, text = run("plot", HOTROD, "--trace", "00" * 16, "-o", out)
    assert code == 2 and "not in the dump" in text
    assert run("plot", HOTROD, "--kind", "whatif", "--vary", "batch-size", "-o", out)[0] == 2
    assert run("plot", HOTROD, "--kind", "whatif", "--vary", "colour=1,2", "-o", out)[0] == 2
    assert run("plot", HOTROD)[0] == 2  # -o is required


def test_plot_and_show_take_every_grouping_option_of_analyze() -> None:
    names = {p.name for p in main.commands["analyze"].params}
    names -= {"fmt", "top", "fail_on_misgrouped"}
    for command in ("plot", "show"):
        assert names <= {p.name for p in main.commands[command].params}
