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
from tracegroup import layout
from tracegroup.cli import main
from tracegroup.pipeline import PipelineOptions
from tracegroup.render import plot

HOTROD = "fixtures/external/getTrace-response.json"
POLYGLOT = "fixtures/polyglot.pb"
SMARTTHINGS = "fixtures/external/smartthings-mobile-web-install.json"
BIG = "47c657d05b819aa436bd0ff4d36ddb18"
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


def test_waterfall_one_bar_per_row_per_panel(hotrod: tg.Explorer) -> None:
    fig = hotrod.waterfall(hotrod.table.trace_hex[0], collapse=0)
    tree, ref, cmp, lane = fig.axes
    assert len(fig.axes) == 4 and lane.get_title() == "call"
    assert not bars(tree) and len(tree.texts) == 2 * 40  # name (indented) and service per span
    assert [len(c.patches) for c in bars(lane)] == [40] and len(lane.texts) == 40  # exporter call per row
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
    # a legend entry for every mark: root, box, the verdicts drawn, the lane
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"transaction root", "one transaction (box)", "merged (15 in the trace)"} <= set(labels)
    assert any(x.startswith("call: ") for x in labels)


def test_waterfall_counts_are_the_whole_trace(polyglot: tg.Explorer) -> None:
    small = {
        "batches": "simulate",
        "pipeline": PipelineOptions(sdk_batch=128, batch_size=256, batch_max_size=256),
    }
    frame = polyglot.traces(**small)  # small batches: the worst trace has orphaned and dropped spans
    worst = frame.iloc[0]
    assert worst["dropped"] > 0 and worst["orphaned"] > 0
    an = polyglot.analyze(**small)
    for kw in ({}, {"max_spans": 5}, {"collapse": 0, "max_spans": 80}, {"service": "nope"}):
        fig = polyglot.waterfall(worst["trace_id"], analysis=an, **kw)
        tree, ref, cmp, lane = fig.axes
        not_ok = worst["spans"] - worst["ok"]
        assert (
            f": {worst['compared_transactions']:,} transactions, {not_ok:,} spans not ok" in cmp.get_title()
        )
        assert (
            ref.get_title()
            == f"service (correct): {tg.render.plural(int(worst['transactions']), 'transaction')}"
        )
        assert f"{worst['spans']:,} spans" in fig.get_suptitle()
    fig = polyglot.waterfall(worst["trace_id"], analysis=an, collapse=0, max_spans=80)
    tree, ref, cmp, lane = fig.axes
    assert [len(bars(ax)[0].patches) for ax in (ref, cmp)] == [80, 80]
    assert "80 rows of 80 spans drawn" in fig.get_suptitle()
    for v in ("dropped", "orphaned"):
        (found,) = by_gid(cmp, f"verdict-{v}")
        assert found.get_label() == f"{v} ({worst[v]:,} in the trace)"  # type: ignore[attr-defined]
    # collapsed by default: every span drawn in a few rows, names readable
    fig = polyglot.waterfall(worst["trace_id"])
    tree, ref, cmp, lane = fig.axes
    assert len(bars(ref)[0].patches) < 60 and tree.texts
    assert "left out" not in fig.get_suptitle()
    hatched = [p for p in bars(cmp)[0].patches if p.get_hatch() == "////"]
    assert hatched and not any(p.get_hatch() == "////" for p in bars(ref)[0].patches)
    anomalies = polyglot.anomalies()
    missing = anomalies[anomalies["kind"] == "missing_parent"]
    tid = missing["trace_id"].iloc[0]
    fig = polyglot.waterfall(tid, collapse=0, max_spans=0)
    (marks,) = by_gid(fig.axes[1], "parent-missing")
    assert len(marks.get_offsets()) == (missing["trace_id"] == tid).sum()  # type: ignore[attr-defined]


def test_waterfall_duplicate_span_ids_and_missing_timestamps() -> None:
    ex = tg.Explorer.load([SMARTTHINGS])
    an = ex.analyze()
    per = an.diff.by_arrays("trace")
    tid = ex.table.trace_hex[0]
    fig = ex.waterfall(tid, max_spans=0, collapse=0)
    tree, ref, cmp, lane = fig.axes
    assert ref.get_title() == f"service (correct): {int(per['transactions'][0]):,} transactions"
    assert "381 transactions" in ref.get_title()  # not 297: transactions are keyed by root row
    assert "326 transactions" in cmp.get_title()
    (outlines,) = by_gid(ref, "transactions")
    assert len(outlines.get_paths()) == 381  # type: ignore[attr-defined]
    assert ref.get_xlim()[1] < 1e7  # ms: spans without a timestamp sit at their parent's start, not at 0
    (untimed,) = by_gid(ref, "no-timestamp")
    assert len(untimed.get_offsets()) == 84  # type: ignore[attr-defined]


def test_one_colour_per_service_for_the_whole_dump(polyglot: tg.Explorer) -> None:
    from matplotlib.colors import to_hex

    traces = polyglot.traces()
    colours: dict[str, set[str]] = {}
    for tid in traces["trace_id"].iloc[:12]:
        fig = polyglot.waterfall(tid)
        for h in fig.legends[0].legend_handles:
            label = str(h.get_label())  # type: ignore[union-attr]
            if label in polyglot.table.services:
                colours.setdefault(label, set()).add(to_hex(h.get_facecolor()))  # type: ignore[union-attr]
    assert len(colours) > 1 and all(len(c) == 1 for c in colours.values())
    # the same across runs: derived from the dump's sorted services, never from the figure
    assert layout.service_colors(polyglot.table.services) == layout.service_colors(
        list(reversed(polyglot.table.services))
    )
    picked = {next(iter(c)) for c in colours.values()}
    assert picked <= set(layout.SERVICE_PALETTE)
    assert not set(layout.VERDICT_COLORS.values()) & set(layout.SERVICE_PALETTE)


def test_waterfall_image_size_and_not_blank(tmp_path: Path, polyglot: tg.Explorer) -> None:
    from matplotlib.image import imread

    out = tmp_path / "big.png"
    polyglot.waterfall(BIG).savefig(out, dpi=60)
    img = imread(out)
    h, w = img.shape[:2]
    assert w == 16 * 60 and 4 * 60 <= h <= 40 * 60
    ink = (img[..., :3].mean(axis=2) < 0.9).mean()
    assert 0.02 < ink < 0.6  # drawn, not blank, not a solid block


def test_waterfall_other_groupings(hotrod: tg.Explorer) -> None:
    tid = hotrod.table.trace_hex[0]
    fig = hotrod.waterfall(tid, max_spans=10, collapse=0)
    assert [len(bars(ax)[0].patches) for ax in fig.axes[1:3]] == [10, 10]
    assert "10 rows of 10 spans drawn, 30 left out" in fig.get_suptitle()
    fig = hotrod.waterfall(tid, "span-kind", routes="service")
    assert fig.axes[2].get_title().startswith("span-kind: ")
    view = hotrod.trace(tid, compare="remote-parent")
    assert view.waterfall().axes[2].get_title().startswith("remote-parent: ")
    # plot.waterfall draws the layout it is given and the options
    fig = plot.waterfall(view.layout(5), {**view.analysis.options, "compare": "mine"})
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
    # the curve, then the captured, fitted, groupbytrace, per-trace and sentry-otlp reference lines
    assert len(fig.axes) == 3 and all(len(ax.lines) == 6 for ax in fig.axes)
    assert [ln.get_label() for ln in fig.axes[0].lines][:3] == ["sentryexporter", "captured", "fitted"]


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
    names = {p.name for p in main.get_command(None, "analyze").params}
    names -= {"fmt", "top", "fail_on_misgrouped", "memory"}  # --memory: what streams or refuses (scale.md)
    for command in ("plot", "show"):
        assert names <= {p.name for p in main.get_command(None, command).params}


def test_whatif_curves_show_every_curve_the_captured_point_and_units(polyglot: tg.Explorer) -> None:
    from tracegroup.whatif import whatif

    result = whatif(polyglot.table, vary={"batch-size": [64, 8192], "wait": [1000.0, 5000.0]})
    fig = plot.whatif_curves(result.frame, result.base_values())
    assert len(fig.axes) == 6
    for ax in fig.axes:  # every line lies inside its own panel's y-range: nothing clipped
        low, high = ax.get_ylim()
        for line in ax.lines:
            ys = [float(y) for y in line.get_ydata()]
            assert all(low <= y <= high for y in ys), (ax.get_title(), line.get_label(), ys, (low, high))
    wait_panel = fig.axes[1]
    assert [t.get_text() for t in wait_panel.get_xticklabels()] == ["1s", "5s"]
    captured = [ln for ln in fig.axes[0].lines if ln.get_label() == "as captured"]
    assert len(captured) == 1 and list(captured[0].get_xdata()) == [result.base.batch_size]
    misgrouped = result.frame.query("setting == 'captured'")["misgrouped_pct"].iloc[0]
    assert list(captured[0].get_ydata()) == [misgrouped]
    assert not [ln for ln in wait_panel.lines if ln.get_label() == "as captured"]  # no wait was captured
    # a panel whose values span decades is drawn on a symlog scale rather than flattened
    frame = whatif_frame()
    frame.loc[frame["setting"] == "batch-size", "misgrouped_pct"] = [50.0, 5.0, 0.05] * 2
    assert plot.whatif_curves(frame).axes[0].get_yscale() == "symlog"
