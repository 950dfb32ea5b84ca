"""matplotlib figures: one trace's waterfall under both groupings, the mis-grouping overview, what-if curves.

Contract:
- Every function returns a new :class:`matplotlib.figure.Figure` built without pyplot (no global figure
  state: the CLI saves it with ``fig.savefig``, a notebook displays it as the cell's value after
  ``%matplotlib inline``). matplotlib is imported inside the functions, never at module import.
- Every function takes the data it draws (DataFrames, an Analysis, plain values) and never imports
  :mod:`tracegroup.explore`, which sits above it and calls it (``Explorer.waterfall``,
  ``TraceView.waterfall``).
- :func:`image_format` checks an output file name before anything is computed: its extension must be a
  format matplotlib writes and its folder must exist, else a one-line ``ValueError``.
- :func:`waterfall` takes one trace's :class:`~tracegroup.layout.TraceLayout` (``TraceView.layout()``:
  the rows to draw, the whole trace's facts, the dump's service colours) and the analysis options
  (``reference``, ``compare``, ``batches``, ``routes``). It draws four panels sharing the rows (axes in
  this order: tree, reference, compared, batch lane). The tree: names indented by depth and clipped to
  their column, with the service (a depth profile with integer ticks above :data:`LABEL_LIMIT` rows).
  The batch lane (title ``call``): one bar per row shaded by the exporter call it came in, labelled with
  the call. The reference and the compared grouping: exactly one ``BarContainer`` each with one bar per
  row (time axis: ms since the trace's first timed start; colour: the service's colour for the whole
  dump; dotted hatch: a collapsed run; faded: a context row), one outline per transaction key (a
  ``PatchCollection`` with gid ``transactions``) and a ``>`` marker on each row opening a transaction
  (gid ``roots``). The compared panel marks each verdict other than ``ok`` with its own marker series
  (gid ``verdict-<v>``; dropped bars hatched and faded), the reference panel rows with a parent not in
  the dump (``parent-missing``) and without a timestamp (``no-timestamp``). Titles, suptitle and legend
  labels take their counts from the layout's facts (the whole trace), never from the drawn rows; the
  legend has an entry for every service drawn and every mark; the suptitle says what was left out.
- :func:`overview`: two panels, each with one stacked ``BarContainer`` per non-``ok`` verdict (split,
  merged, orphaned, dropped): share of spans by service (worst first) and by trace size (span count
  buckets 1–9, 10–99, …; the number of traces printed on each bar).
- :func:`whatif_curves`: takes a ``WhatIf.frame`` (columns ``setting, value, strategy,
  misgrouped_pct, dropped_pct, incomplete_pct``; rows whose setting is in :data:`REFERENCE_SETTINGS` are
  reference rows). One row of panels per metric, one column per varied setting; in each panel one line
  per strategy against the value, plus one horizontal line per reference row, and with ``base`` the
  as-captured point (a star labelled ``as captured`` at the base value, the captured row's height). Each
  panel has its own y-range covering every line in it (symlog when the positive values span two
  decades or more), so no curve is clipped by another panel; durations are labelled with their unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup.diff import VERDICTS
from tracegroup.layout import VERDICT_COLORS as LAYOUT_VERDICT_COLORS
from tracegroup.render.text import MAX_INDENT, plural
from tracegroup.whatif import SETTINGS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tracegroup.analysis import Analysis
    from tracegroup.layout import TraceLayout

#: Above this many rows the tree panel draws a depth profile instead of span names.
LABEL_LIMIT = 200
#: Verdict colours (none is a service colour: :data:`tracegroup.layout.VERDICT_COLORS`) and the marker each
#: non-ok verdict gets in the waterfall's compared panel.
VERDICT_COLORS: dict[str, str] = dict(LAYOUT_VERDICT_COLORS)
VERDICT_MARKERS: dict[str, str] = {"split": "v", "merged": "^", "orphaned": "o", "dropped": "X"}
BAD_VERDICTS: tuple[str, ...] = VERDICTS[1:]
#: Shades of the batch lane, one per exporter call of the trace in order of first appearance.
CALL_SHADES: tuple[str, ...] = ("#525252", "#bdbdbd", "#737373", "#d9d9d9", "#3f3f3f", "#a8a8a8")
_DARK_SHADES = frozenset(("#525252", "#737373", "#3f3f3f"))
#: ``WhatIf.frame`` settings that are reference lines, not curves.
REFERENCE_SETTINGS: tuple[str, ...] = (
    "captured", "fitted", "groupbytrace", "loadbalancing", "per-trace", "sentry-otlp"
)  # fmt: skip
REFERENCE_STYLES: dict[str, Any] = {
    "captured": "-", "fitted": (0, (5, 1)), "groupbytrace": "--", "loadbalancing": (0, (3, 1, 1, 1)),
    "per-trace": "-.", "sentry-otlp": ":",
}  # fmt: skip
WHATIF_METRICS: dict[str, str] = {
    "misgrouped_pct": "mis-grouped",
    "dropped_pct": "dropped",
    "incomplete_pct": "incomplete",
}


def image_format(path: str) -> str:
    """The image format ``fig.savefig(path)`` will write (its extension), or a ``ValueError`` naming the
    file when matplotlib cannot write it or its folder does not exist."""
    from matplotlib.backend_bases import FigureCanvasBase

    known = FigureCanvasBase.get_supported_filetypes()
    ext = Path(path).suffix.lstrip(".").lower()
    if ext not in known:
        raise ValueError(f"{path}: unknown image format {ext!r} (one of {', '.join(sorted(known))})")
    folder = Path(path).parent
    if not folder.is_dir():
        raise ValueError(f"{path}: folder {folder} does not exist")
    return ext


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def service_colors(services: list[str]) -> dict[str, Any]:
    """A colour per name, in the given order (tab10, tab20 beyond ten names, then cycling): the what-if
    curves' strategies. Services take the dump's colours (:func:`tracegroup.layout.service_colors`)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(services) <= 10 else "tab20"]
    return {s: cmap(i % cmap.N) for i, s in enumerate(services)}


# ------------------------------------------------------------------------------------------ waterfall
def waterfall(layout: TraceLayout, options: Mapping[str, Any]) -> Figure:
    """Waterfall of one trace under the reference grouping and the compared one side by side (see the
    module docstring): ``layout`` is ``TraceView.layout()``, ``options`` the Analysis' options."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    frame, facts, st = layout.rows, layout.facts, layout.settings
    m = len(frame)
    opts = options
    t0 = st["t0_ns"]
    left = (frame["start_ns"].to_numpy(dtype=np.int64) - t0) / 1e6
    width = frame["duration_ms"].to_numpy(dtype=float).clip(min=0)
    extent = max((st["end_ns"] - t0) / 1e6, 1e-3)
    width = np.maximum(width, extent * 0.003)  # zero-length spans stay visible
    service = frame["service"].tolist()
    colors = layout.colors
    bar_colors = [colors.get(s, "#cccccc") for s in service]
    count = frame["count"].to_numpy()
    context = frame["context"].to_numpy(dtype=bool)
    y = np.arange(m)
    marker_size = 22.0 if m <= 60 else max(5.0, 22.0 * 60 / m)

    fig = _figure(16, min(max(4.0, 0.15 * m + 3.0), 40))
    grid = fig.add_gridspec(1, 4, width_ratios=[1.7, 0.22, 2, 2])
    ax_tree = fig.add_subplot(grid[0])
    ax_ref = fig.add_subplot(grid[2], sharey=ax_tree)
    ax_cmp = fig.add_subplot(grid[3], sharey=ax_tree, sharex=ax_ref)
    ax_call = fig.add_subplot(grid[1], sharey=ax_tree)
    _tree_panel(ax_tree, frame, 16 * 1.7 / 5.92)
    _call_lane(ax_call, frame["batch"].to_numpy(dtype=np.int64), m <= LABEL_LIMIT)
    verdict = frame["verdict"].astype(str).to_numpy()
    opens_ref = frame["opens"].to_numpy(dtype=bool)
    opens_cmp = frame["opens_compared"].to_numpy(dtype=bool)
    ref_key, cmp_key = frame["tx_key"].to_numpy(), frame["compared_key"].to_numpy()
    panels = (
        (ax_ref, ref_key, opens_ref, f"{opts['reference']} (correct)", facts["transactions"]),
        (ax_cmp, cmp_key, opens_cmp, opts["compare"], facts["compared_transactions"]),
    )
    for ax, key, opens, label, n_tx in panels:
        bars = ax.barh(y, width, left=left, height=0.72, color=bar_colors, linewidth=0, label="_spans")
        for k in np.flatnonzero((count > 1) | context).tolist():
            if count[k] > 1:
                bars.patches[k].set_hatch("..")
            if context[k]:
                bars.patches[k].set_alpha(0.35)
        _outlines(ax, key, y, left, left + width)
        ax.scatter(
            left[opens],
            y[opens],
            marker=">",
            s=marker_size,
            color="black",
            zorder=3,
            gid="roots",
            label="_roots",
        )
        title = f"{label}: {plural(n_tx, 'transaction')}"
        if ax is ax_cmp:
            for k in np.flatnonzero(verdict == "dropped").tolist():
                bars.patches[k].set_alpha(0.3)
                bars.patches[k].set_hatch("////")
            bad = facts["spans"] - facts["verdicts"].get("ok", 0)
            title += f", {plural(bad, 'span')} not ok" if bad else ", every span ok"
            for v in BAD_VERDICTS:
                rows = np.flatnonzero(verdict == v)
                if len(rows):
                    ax.scatter(
                        left[rows] + width[rows] + extent * 0.012,
                        y[rows],
                        marker=VERDICT_MARKERS[v],
                        s=marker_size,
                        color=VERDICT_COLORS[v],
                        edgecolors="white",
                        linewidths=0.4,
                        zorder=4,
                        label=f"{v} ({facts['verdicts'].get(v, 0):,} in the trace)",
                        gid=f"verdict-{v}",
                    )
        else:
            for col, fact, marker, gid, text in (
                ("parent_missing", "parent_missing", "D", "parent-missing", "parent not in dump"),
                ("no_time", "no_timestamp", "|", "no-timestamp", "no timestamp: at its parent's start"),
            ):
                rows = np.flatnonzero(frame[col].to_numpy() > 0)
                if len(rows):
                    ax.scatter(
                        left[rows] - extent * 0.012,
                        y[rows],
                        marker=marker,
                        s=marker_size,
                        color="#252525",
                        zorder=4,
                        label=f"{text} ({facts.get(fact, 0):,})",
                        gid=gid,
                    )
        counted = np.flatnonzero(count > 1)
        if ax is ax_ref and len(counted) and m <= LABEL_LIMIT:
            for k in counted.tolist():
                ax.text(left[k] + width[k], k, f" ×{count[k]:,}", va="center", fontsize=6, color="#333333")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ms since the trace's first span started")
        ax.tick_params(axis="y", left=False, labelleft=False)
        ax.set_xlim(-extent * 0.03, extent * 1.06)
        ax.grid(axis="x", alpha=0.3)
    ax_tree.set_ylim(max(m, 1) - 0.5, -0.5)

    shown = list(dict.fromkeys(service))
    handles: list[Any] = [Patch(color=colors.get(s, "#cccccc"), label=s) for s in shown]
    handles.append(Line2D([], [], marker=">", color="black", linestyle="none", label="transaction root"))
    handles.append(Patch(facecolor="none", edgecolor="black", linewidth=0.7, label="one transaction (box)"))
    if (count > 1).any():
        handles.append(Patch(facecolor="#dddddd", hatch="..", label="×N alike siblings in one row"))
    if context.any():
        handles.append(Patch(facecolor="#dddddd", alpha=0.35, label="context (filtered out, path kept)"))
    if (verdict == "dropped").any():
        handles.append(Patch(facecolor="#dddddd", alpha=0.3, hatch="////", label="dropped span's bar"))
    for ax in (ax_ref, ax_cmp):
        h, _ = ax.get_legend_handles_labels()
        handles.extend(h)
    handles.append(Patch(facecolor=CALL_SHADES[0], label="call: exporter call the span came in"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8)
    left_out = layout.left_out
    cut = ""
    if left_out["spans"]:
        cut = f" — {plural(m, 'row')} of {layout.spans_drawn:,} spans drawn, {left_out['spans']:,} left out"
    elif (count > 1).any():
        cut = f" — {plural(m, 'row')} (alike siblings collapsed)"
    fig.suptitle(
        f"trace {layout.trace_id}: {plural(facts['spans'], 'span')}, "
        f"{plural(facts['services'], 'service')}, "
        f"{plural(facts.get('exporter_calls', 0), 'exporter call')}; batching {opts['batches']}, "
        f"routing {opts['routes']}{cut}",
        fontsize=11,
    )
    return fig


def _tree_panel(ax: Axes, frame: pd.DataFrame, inches: float) -> None:
    """Span names indented by depth, clipped to their column, with the service; or a depth profile
    when there are too many rows to label."""
    from matplotlib.ticker import MaxNLocator

    m = len(frame)
    depth = frame["depth"].to_numpy()
    if m > LABEL_LIMIT:
        ax.fill_betweenx(np.arange(m), 0, depth, step="mid", color="#888888", linewidth=0)
        ax.set_xlim(0, max(int(depth.max(initial=0)), 1) * 1.15)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("depth")
        ax.set_title(f"tree: {m:,} rows, too many to name", fontsize=10)
        ax.tick_params(axis="y", left=False, labelleft=False)
        return
    indent = min(0.04, 0.4 / (min(int(depth.max(initial=0)), MAX_INDENT) + 1))
    size = 8 if m <= 40 else 6 if m <= 100 else 5
    per_char = size * 0.62 / 72 / inches  # axis fraction per character
    svc_chars = 18
    name_end = 1 - (svc_chars + 1) * per_char
    for k, (d, name, service, c) in enumerate(
        zip(
            depth.tolist(),
            frame["name"].tolist(),
            frame["service"].tolist(),
            frame["count"].tolist(),
            strict=True,
        )
    ):
        label = (f"[{d}] " if d > MAX_INDENT else "") + name + (f" ×{c:,}" if c > 1 else "")
        x = 0.01 + indent * min(d, MAX_INDENT)
        room = max(int((name_end - x) / per_char), 4)
        if len(label) > room:
            label = label[: room - 1] + "…"
        ax.text(x, k, label, va="center", ha="left", fontsize=size, clip_on=True)
        svc = service if len(service) <= svc_chars else service[: svc_chars - 1] + "…"
        ax.text(0.995, k, svc, va="center", ha="right", fontsize=size - 1, color="#555555")
    ax.set_xlim(0, 1)
    ax.set_title("span (indented by depth)      service", fontsize=10)
    ax.set_axis_off()


def _call_lane(ax: Axes, call: np.ndarray, labels: bool) -> None:
    """The batch lane: one cell per row shaded by the exporter call it came in, labelled with the call."""
    m = len(call)
    _, first = np.unique(call, return_index=True)
    rank = {int(call[i]): r for r, i in enumerate(sorted(first.tolist()))}
    shades = [("#ffffff" if c < 0 else CALL_SHADES[rank[c] % len(CALL_SHADES)]) for c in call.tolist()]
    ax.barh(
        np.arange(m), np.ones(m), left=0, height=1.0, color=shades, linewidth=0, label="_calls", gid="calls"
    )
    if labels:
        size = 7 if m <= 40 else 5
        for k, (c, shade) in enumerate(zip(call.tolist(), shades, strict=True)):
            ink = "white" if shade in _DARK_SHADES else "black"
            ax.text(0.5, k, "-" if c < 0 else str(c), ha="center", va="center", fontsize=size, color=ink)
    ax.set_xlim(0, 1)
    ax.set_xticks([])
    ax.tick_params(axis="y", left=False, labelleft=False)
    ax.set_title("call", fontsize=9)


def _outlines(ax: Axes, key: np.ndarray, y: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
    """One box per transaction key (root row; ``-1``: dropped, no box) around its rows and times;
    returns the number of boxes."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    sent = key != -1
    if not sent.any():
        return 0
    k, yy, x0, x1 = key[sent], y[sent], start[sent], end[sent]
    uniq, inv = np.unique(k, return_inverse=True)
    n = len(uniq)
    y0 = np.full(n, np.inf)
    y1 = np.full(n, -np.inf)
    b0 = np.full(n, np.inf)
    b1 = np.full(n, -np.inf)
    np.minimum.at(y0, inv, yy)
    np.maximum.at(y1, inv, yy)
    np.minimum.at(b0, inv, x0)
    np.maximum.at(b1, inv, x1)
    rects = [
        Rectangle((a0, c0 - 0.45), a1 - a0, c1 - c0 + 0.9)
        for c0, c1, a0, a1 in zip(y0.tolist(), y1.tolist(), b0.tolist(), b1.tolist(), strict=True)
    ]
    ax.add_collection(
        PatchCollection(rects, facecolor="none", edgecolor="black", linewidth=0.7, gid="transactions")
    )
    return len(rects)


# ------------------------------------------------------------------------------------------- overview
def trace_size_buckets(spans: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Bucket of each trace by span count (decades: 1–9, 10–99, …) and the bucket labels."""
    bucket = np.floor(np.log10(np.maximum(spans, 1))).astype(np.int64)
    labels = []
    for b in range(int(bucket.max(initial=0)) + 1):
        lo, hi = 10**b, 10 ** (b + 1) - 1
        labels.append(f"{lo:,}–{hi:,}")
    return bucket, labels


def overview(analysis: Analysis, top_services: int = 25) -> Figure:
    """Mis-grouped and dropped share of spans by service and by trace size (see the module docstring)."""
    d, t = analysis.diff, analysis.table
    svc = d.by_arrays("service")
    present = np.flatnonzero(svc["spans"] > 0)
    total = np.maximum(svc["spans"], 1)
    bad_share = (svc["spans"] - svc["ok"]) / total
    order = present[np.lexsort((-svc["spans"][present], -bad_share[present]))][:top_services]
    per_trace = d.by_arrays("trace")
    bucket, labels = trace_size_buckets(per_trace["spans"])
    used = np.flatnonzero(np.bincount(bucket, minlength=len(labels)))  # drop empty buckets
    bucket = np.searchsorted(used, bucket)
    labels = [labels[b] for b in used.tolist()]
    nb = len(labels)

    fig = _figure(14, max(4.0, 0.32 * len(order) + 2.5))
    ax_s, ax_t = fig.subplots(1, 2, width_ratios=[3, 2])
    names = [t.services[i] or "(no service)" for i in order.tolist()]
    y = np.arange(len(order))
    acc = np.zeros(len(order))
    for v in BAD_VERDICTS:
        share = 100 * svc[v][order] / total[order]
        ax_s.barh(y, share, left=acc, color=VERDICT_COLORS[v], label=v, height=0.7)
        acc += share
    for k, i in enumerate(order.tolist()):
        ax_s.text(acc[k] + 1, k, f"{int(svc['spans'][i]):,} spans", va="center", fontsize=8, color="#444444")
    ax_s.set_yticks(y, names)
    ax_s.set_ylim(len(order) - 0.5, -0.5)
    ax_s.set_xlim(0, 115)
    ax_s.set_xlabel("% of the service's spans")
    ax_s.set_title("by service (worst first)", fontsize=10)
    ax_s.grid(axis="x", alpha=0.3)

    spans_b = np.bincount(bucket, weights=per_trace["spans"], minlength=nb)
    traces_b = np.bincount(bucket, minlength=nb)
    x = np.arange(nb)
    acc_t = np.zeros(nb)
    for v in BAD_VERDICTS:
        share = 100 * np.bincount(bucket, weights=per_trace[v], minlength=nb) / np.maximum(spans_b, 1)
        ax_t.bar(x, share, bottom=acc_t, color=VERDICT_COLORS[v], label=v, width=0.7)
        acc_t += share
    for k in range(nb):
        ax_t.text(k, acc_t[k] + 1.5, plural(int(traces_b[k]), "trace"), ha="center", fontsize=8)
    ax_t.set_xticks(x, labels)
    ax_t.set_ylim(0, 110)
    ax_t.set_xlabel("spans in the trace")
    ax_t.set_ylabel("% of spans in traces of that size")
    ax_t.set_title("by trace size", fontsize=10)
    ax_t.grid(axis="y", alpha=0.3)

    s = analysis.summary(top=0)
    opts = analysis.options
    fig.legend(*ax_s.get_legend_handles_labels(), loc="outside lower center", ncol=len(BAD_VERDICTS))
    fig.suptitle(
        f"{opts['compare']} against {opts['reference']}: {s['misgrouped']['ratio']:.1%} of "
        f"{len(t):,} spans mis-grouped, {s['dropped']['ratio']:.1%} dropped "
        f"(batching {opts['batches']}, routing {opts['routes']})",
        fontsize=11,
    )
    return fig


# -------------------------------------------------------------------------------------------- what-if
def _setting_value(setting: str, value: float) -> str:
    """A varied value as users write it: durations with their unit (``200ms``, ``5s``), counts bare."""
    if SETTINGS.get(setting, ("", "", ""))[2] != "ms":
        return f"{value:g}"
    return f"{value / 1000:g}s" if value >= 1000 else f"{value:g}ms"


def whatif_curves(frame: pd.DataFrame, base: Mapping[str, float] | None = None) -> Figure:
    """What-if curves of a ``WhatIf.frame`` (see the module docstring); ``base`` (``WhatIf.base_values()``)
    places the as-captured point on each varied setting's axis."""
    is_ref = frame["setting"].isin(REFERENCE_SETTINGS).to_numpy()
    refs, data = frame[is_ref], frame[~is_ref]
    settings = list(dict.fromkeys(data["setting"])) or ["(no setting varied)"]
    strategies = list(dict.fromkeys(data["strategy"]))
    fig = _figure(4.2 * len(settings) + 1.5, 2.6 * len(WHATIF_METRICS) + 1.2)
    axes = fig.subplots(len(WHATIF_METRICS), len(settings), squeeze=False)
    colors = service_colors(strategies + [f"ref:{s}" for s in REFERENCE_SETTINGS])
    ref_counts = refs["setting"].value_counts()
    captured = refs[refs["setting"] == "captured"]
    for r, (metric, label) in enumerate(WHATIF_METRICS.items()):
        for c, setting in enumerate(settings):
            ax = axes[r][c]
            part = data[data["setting"] == setting]
            shown: list[float] = []
            for strategy in strategies:
                rows = part[part["strategy"] == strategy].sort_values("value")
                ys = rows[metric].astype(float)
                shown += ys.tolist()
                ax.plot(
                    rows["value"].astype(float),
                    ys,
                    marker="o",
                    markersize=4,
                    color=colors[strategy],
                    label=strategy,
                )
            for ref in refs.itertuples(index=False):
                name = str(ref.setting)
                if ref_counts[name] > 1 or name == "groupbytrace":
                    name += f" ({ref.strategy})"
                shown.append(float(getattr(ref, metric)))
                ax.axhline(
                    float(getattr(ref, metric)),
                    linestyle=REFERENCE_STYLES.get(str(ref.setting), "-."),
                    color=colors.get(f"ref:{ref.setting}", "#444444"),
                    linewidth=1.2,
                    label=name,
                )
            at = (base or {}).get(setting)
            if at is not None and len(captured):
                y = float(captured.iloc[0][metric])
                ax.plot([float(at)], [y], marker="*", markersize=12, linestyle="none", color="#d62728",
                        label="as captured", zorder=5)  # fmt: skip
            values = np.unique(part["value"].astype(float).dropna().to_numpy())
            if at is not None:
                values = np.unique(np.append(values, float(at)))
            if len(values) and values.min() > 0 and values.max() / values.min() >= 20:
                ax.set_xscale("log")
                ax.minorticks_off()
            if len(values):
                ax.set_xticks(values, [_setting_value(setting, v) for v in values])
            positive = [y for y in shown if y > 0]
            if positive and max(positive) / min(positive) >= 100:  # values span decades: every curve shows
                ax.set_yscale("symlog", linthresh=min(positive))
            else:
                ax.set_ylim(bottom=0, top=max([*shown, 0.0]) * 1.08 or 1.0)
            if r == 0:
                ax.set_title(setting, fontsize=10)
            if r == len(WHATIF_METRICS) - 1:
                unit = " (duration)" if SETTINGS.get(setting, ("", "", ""))[2] == "ms" else ""
                ax.set_xlabel(setting + unit)
            if c == 0:
                ax.set_ylabel(f"{label} (% of spans)")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=max(1, min(len(labels), 4)))
    fig.suptitle("what if the pipeline were set differently", fontsize=11)
    return fig
