"""matplotlib figures: one trace's waterfall under both groupings, the mis-grouping overview, what-if curves.

Contract:
- Every function returns a new :class:`matplotlib.figure.Figure` built without pyplot (no global figure
  state: the CLI saves it with ``fig.savefig``, a notebook displays it as the cell's value after
  ``%matplotlib inline``). matplotlib is imported inside the functions, never at module import.
- Every function takes the data it draws (DataFrames, an Analysis, plain values) and never imports
  :mod:`tracegroup.explore`, which sits above it and calls it (``Explorer.waterfall``,
  ``TraceView.waterfall``).
- :func:`waterfall` takes one trace's spans as :meth:`tracegroup.explore.Explorer.trace` lists them
  (``TraceView.spans``: the span and diff columns, one row per span in depth-first order), the trace id and
  the analysis options (``reference``, ``compare``, ``batches``, ``routes``). It draws three panels
  sharing the span rows. Left, the tree: span names indented by depth (a depth profile instead when
  there are more than :data:`LABEL_LIMIT` rows). Middle, the reference grouping; right, the compared
  one. Each of these two holds exactly one ``BarContainer`` with one bar per shown span (time axis: ms
  since the trace's first start; colour: service), one outline per transaction (a ``PatchCollection``
  with gid ``transactions``: the box around its spans' rows and times) and a ``>`` marker on each
  transaction root. The compared panel also marks each verdict other than ``ok`` with its own marker
  series (dropped spans' bars are hatched and faded); the reference panel marks spans whose parent is
  not in the dump. ``max_spans`` keeps the first spans in tree order and says so in the title.
- :func:`overview`: two panels, each with one stacked ``BarContainer`` per non-``ok`` verdict (split,
  merged, orphaned, dropped): share of spans by service (worst first) and by trace size (span count
  buckets 1–9, 10–99, …; the number of traces printed on each bar).
- :func:`whatif_curves`: takes a ``WhatIf.frame`` (columns ``setting, value, strategy,
  misgrouped_pct, dropped_pct, incomplete_pct``; rows whose setting is in :data:`REFERENCE_SETTINGS` are
  reference rows). One row of panels per metric, one column per varied setting; in each panel one line
  per strategy against the value, plus one horizontal line per reference row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup.diff import VERDICTS
from tracegroup.render.text import MAX_INDENT, plural

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tracegroup.analysis import Analysis

#: Above this many rows the tree panel draws a depth profile instead of span names.
LABEL_LIMIT = 100
#: Verdict colours and the marker each non-ok verdict gets in the waterfall's compared panel.
VERDICT_COLORS: dict[str, str] = {
    "ok": "#bbbbbb",
    "split": "#7b3294",
    "merged": "#a6611a",
    "orphaned": "#f28e2b",
    "dropped": "#d62728",
}
VERDICT_MARKERS: dict[str, str] = {"split": "v", "merged": "^", "orphaned": "o", "dropped": "x"}
BAD_VERDICTS: tuple[str, ...] = VERDICTS[1:]
#: ``WhatIf.frame`` settings that are reference lines, not curves.
REFERENCE_SETTINGS: tuple[str, ...] = ("groupbytrace", "per-trace", "sentry-otlp")
REFERENCE_STYLES: dict[str, str] = {"groupbytrace": "--", "per-trace": "-.", "sentry-otlp": ":"}
WHATIF_METRICS: dict[str, str] = {
    "misgrouped_pct": "mis-grouped",
    "dropped_pct": "dropped",
    "incomplete_pct": "incomplete",
}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def service_colors(services: list[str]) -> dict[str, Any]:
    """A colour per service, in the given order (tab10, tab20 beyond ten services, then cycling)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(services) <= 10 else "tab20"]
    return {s: cmap(i % cmap.N) for i, s in enumerate(services)}


# ------------------------------------------------------------------------------------------ waterfall
def waterfall(
    spans: pd.DataFrame, trace_id: str, options: Mapping[str, Any], *, max_spans: int | None = None
) -> Figure:
    """Waterfall of one trace under the reference grouping and the compared one side by side (see the
    module docstring): ``spans`` is ``TraceView.spans``, ``options`` the Analysis' options."""
    from matplotlib.patches import Patch

    full = spans
    frame = full.iloc[:max_spans] if max_spans and len(full) > max_spans else full
    m = len(frame)
    opts = options
    t0 = int(full["start_ns"].min()) if len(full) else 0
    left = (frame["start_ns"].to_numpy() - t0) / 1e6
    width = frame["duration_ms"].to_numpy().clip(min=0)
    extent = float((left + width).max()) if m else 1.0
    width = np.maximum(width, max(extent, 1e-3) * 0.003)  # zero-length spans stay visible
    services = list(dict.fromkeys(map(str, frame["service"])))
    colors = service_colors(services)
    bar_colors = [colors[s] for s in map(str, frame["service"])]
    y = np.arange(m)
    marker_size = 18.0 if m <= LABEL_LIMIT else max(2.0, 18.0 * LABEL_LIMIT / m)

    fig = _figure(16, min(max(3.5, 0.17 * m + 2.2), 18))
    grid = fig.add_gridspec(1, 3, width_ratios=[1.2, 2, 2])
    ax_tree = fig.add_subplot(grid[0])
    ax_ref = fig.add_subplot(grid[1], sharey=ax_tree)
    ax_cmp = fig.add_subplot(grid[2], sharey=ax_tree, sharex=ax_ref)
    _tree_panel(ax_tree, frame)
    verdict = frame["verdict"].astype(str).to_numpy()
    sid = frame["span_id"].to_numpy(dtype=object)
    panels = (
        (ax_ref, frame["transaction"].to_numpy(dtype=object), opts["reference"] + " (correct)"),
        (ax_cmp, frame["compared_transaction"].to_numpy(dtype=object), opts["compare"]),
    )
    for ax, tx, label in panels:
        bars = ax.barh(y, width, left=left, height=0.72, color=bar_colors, linewidth=0, label="_spans")
        n_tx = _outlines(ax, tx, y, left, left + width)
        is_root = tx == sid
        ax.scatter(
            left[is_root], y[is_root], marker=">", s=marker_size * 0.8, color="black", zorder=3, gid="roots"
        )
        title = f"{label}: {plural(n_tx, 'transaction')}"
        if ax is ax_cmp:
            for k in np.flatnonzero(verdict == "dropped").tolist():
                bars.patches[k].set_alpha(0.3)
                bars.patches[k].set_hatch("////")
            bad = int((verdict != "ok").sum())
            title += f", {plural(bad, 'span')} not ok" if bad else ", every span ok"
            for v in BAD_VERDICTS:
                rows = np.flatnonzero(verdict == v)
                if len(rows):
                    ax.scatter(
                        left[rows] + width[rows] + extent * 0.01,
                        y[rows],
                        marker=VERDICT_MARKERS[v],
                        s=marker_size,
                        color=VERDICT_COLORS[v],
                        zorder=4,
                        label=f"{v} ({len(rows):,})",
                        gid=f"verdict-{v}",
                    )
        else:
            missing = np.flatnonzero(frame["parent_missing"].to_numpy())
            if len(missing):
                ax.scatter(
                    left[missing] - extent * 0.01,
                    y[missing],
                    marker="D",
                    s=marker_size * 0.8,
                    color="#555555",
                    zorder=4,
                    label=f"parent not in dump ({len(missing):,})",
                    gid="parent-missing",
                )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("ms since the trace's first span started")
        ax.tick_params(axis="y", left=False, labelleft=False)
        ax.set_xlim(-extent * 0.03, extent * 1.05)
        ax.grid(axis="x", alpha=0.3)
    ax_tree.set_ylim(m - 0.5, -0.5)

    handles: list[Any] = [Patch(color=colors[s], label=s) for s in services]
    for ax in (ax_ref, ax_cmp):
        h, _ = ax.get_legend_handles_labels()
        handles.extend(h)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 8),
        fontsize=8,
        markerscale=max(1.0, 18.0 / marker_size),
    )
    cut = f" — first {m:,} of {len(full):,} spans in tree order" if m < len(full) else ""
    fig.suptitle(
        f"trace {trace_id}: {plural(len(full), 'span')}, "
        f"{plural(full['service'].nunique(), 'service')}; batching {opts['batches']}, "
        f"routing {opts['routes']}{cut}",
        fontsize=11,
    )
    return fig


def _tree_panel(ax: Axes, frame: pd.DataFrame) -> None:
    """Span names indented by depth, or a depth profile when there are too many rows to label."""
    m = len(frame)
    depth = frame["depth"].to_numpy()
    if m > LABEL_LIMIT:
        ax.fill_betweenx(np.arange(m), 0, depth, step="mid", color="#888888", linewidth=0)
        ax.set_xlim(0, max(int(depth.max(initial=0)), 1) * 1.15)
        ax.set_xlabel("depth (indentation)")
        ax.set_title(f"tree: {m:,} spans, too many to name", fontsize=10)
        ax.tick_params(axis="y", left=False, labelleft=False)
        return
    indent = min(0.05, 0.55 / (min(int(depth.max(initial=0)), MAX_INDENT) + 1))
    size = 8 if m <= 40 else 6
    for k, (d, name, service) in enumerate(
        zip(depth.tolist(), frame["name"].tolist(), map(str, frame["service"]), strict=True)
    ):
        label = (f"[{d}] " if d > MAX_INDENT else "") + name
        x = 0.01 + indent * min(d, MAX_INDENT)
        ax.text(x, k, label, va="center", ha="left", fontsize=size, clip_on=True)
        ax.text(0.995, k, service, va="center", ha="right", fontsize=size - 1, color="#777777")
    ax.set_xlim(0, 1)
    ax.set_title("span (indented by depth)      service", fontsize=10)
    ax.set_axis_off()


def _outlines(ax: Axes, tx: np.ndarray, y: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
    """One box per transaction around its spans' rows and times; returns the number of transactions."""
    import pandas as pd
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    sent = tx != ""
    if not sent.any():
        return 0
    box = pd.DataFrame({"tx": tx[sent], "y": y[sent], "start": start[sent], "end": end[sent]})
    agg = box.groupby("tx", sort=False).agg(
        y0=("y", "min"), y1=("y", "max"), x0=("start", "min"), x1=("end", "max")
    )
    rects = [
        Rectangle((x0, y0 - 0.45), x1 - x0, y1 - y0 + 0.9)
        for y0, y1, x0, x1 in agg[["y0", "y1", "x0", "x1"]].itertuples(index=False)
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
def whatif_curves(frame: pd.DataFrame) -> Figure:
    """What-if curves of a ``WhatIf.frame`` (see the module docstring)."""
    is_ref = frame["setting"].isin(REFERENCE_SETTINGS).to_numpy()
    refs, data = frame[is_ref], frame[~is_ref]
    settings = list(dict.fromkeys(data["setting"])) or ["(no setting varied)"]
    strategies = list(dict.fromkeys(data["strategy"]))
    fig = _figure(4.2 * len(settings) + 1.5, 2.6 * len(WHATIF_METRICS) + 1.2)
    axes = fig.subplots(len(WHATIF_METRICS), len(settings), squeeze=False, sharey="row")
    colors = service_colors(strategies + [f"ref:{s}" for s in REFERENCE_SETTINGS])
    ref_counts = refs["setting"].value_counts()
    for r, (metric, label) in enumerate(WHATIF_METRICS.items()):
        for c, setting in enumerate(settings):
            ax = axes[r][c]
            part = data[data["setting"] == setting]
            for strategy in strategies:
                rows = part[part["strategy"] == strategy].sort_values("value")
                ax.plot(
                    rows["value"].astype(float),
                    rows[metric].astype(float),
                    marker="o",
                    markersize=4,
                    color=colors[strategy],
                    label=strategy,
                )
            for ref in refs.itertuples(index=False):
                name = str(ref.setting)
                if ref_counts[name] > 1 or name == "groupbytrace":
                    name += f" ({ref.strategy})"
                ax.axhline(
                    float(getattr(ref, metric)),
                    linestyle=REFERENCE_STYLES.get(str(ref.setting), "-."),
                    color=colors.get(f"ref:{ref.setting}", "#444444"),
                    linewidth=1.2,
                    label=name,
                )
            values = np.unique(part["value"].astype(float).dropna().to_numpy())
            if len(values) and values.min() > 0 and values.max() / values.min() >= 20:
                ax.set_xscale("log")
                ax.set_xticks(values, [f"{v:g}" for v in values])
                ax.minorticks_off()
            ax.set_ylim(bottom=0)
            if r == 0:
                ax.set_title(setting, fontsize=10)
            if r == len(WHATIF_METRICS) - 1:
                ax.set_xlabel(setting)
            if c == 0:
                ax.set_ylabel(f"{label} (% of spans)")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=max(1, len(labels)))
    fig.suptitle("what if the pipeline were set differently", fontsize=11)
    return fig
