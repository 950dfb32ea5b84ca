"""What of one trace is drawn: the rows of its text tree and waterfall, computed once for both.

Contract:
- :func:`trace_layout` takes one trace's spans in depth-first order (``TraceView.spans``: the span and
  diff columns), the position of each span's parent in that order (``-1`` at roots), and per span its
  reference and compared transaction root as *table rows* (``-1``: dropped) and the exporter call it was
  delivered in (``Delivery.call``, ``-1``: never reached an exporter), plus the whole trace's ``facts``
  (``TraceView.facts()``). It returns a :class:`TraceLayout`: at most ``max_spans`` rows (a collapsed run
  is one row; 0 = no limit), in depth-first order of the rows, and what was left out. Renderers draw the
  layout and compute nothing; every count a title or legend prints comes from ``facts``, i.e. from the
  whole trace, whatever is drawn.
- Transactions are keyed by their root's table row, never by the root's span id: duplicate span ids do
  not merge transactions. A collapsed row whose members each open their own transaction gets its own
  synthetic key (``< -1``).
- Spans without timestamps (start 0) are placed at their parent's (placed) start with zero length, at
  the trace's first real start when they have no parent, and flagged (``no_time``).
- Filters (``only_bad``, ``verdicts``, ``services``, ``max_depth``) choose the matching spans; their
  ancestors are kept as context rows (``context``), so the tree stays connected.
- Collapsing (``collapse`` >= 2; 0 or 1 = never): siblings — children of the same row — with the same
  name, service, verdict, reason, exporter call and transactions (the same root, or each its own root)
  become one row with a ``count`` when there are at least ``collapse`` of them, wherever they are among
  their siblings (as Sentry's span autogrouping groups same-named siblings); the row sits where its first
  member was, its children are the members' children (collapsed in turn) and its time range spans its
  members'.
- ``max_spans`` keeps the most informative rows: every row holding a span that is not ``ok`` with its
  path to the root first (verdicts taken in turn — split, merged, orphaned, dropped — each in tree order,
  so every kind shows), then rows opening a transaction under either grouping with their paths, then the
  rest in tree order; a row is only kept with its whole path. ``left_out`` counts the spans not drawn,
  by verdict and by cause (``filtered``, ``max_spans``).
- Names are escaped: control characters print as ``\\n``, ``\\t``, ``\\x1b``, ``\\u200b``-style escapes.
- :func:`service_colors` gives every service of a dump one colour for good: the dump's services are
  sorted and take :data:`SERVICE_PALETTE` in turn, so the same dump gives the same colours in every
  figure and every run. :data:`VERDICT_COLORS` share no colour with the service palette.
- Cost: one Python pass over the trace's spans (filters, ancestors, collapsing) and numpy aggregation;
  the result holds only the drawn rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup.diff import VERDICTS

if TYPE_CHECKING:
    import pandas as pd

#: ``max_spans`` when none is given: rows drawn by ``show``, ``plot`` and the notebook (0 = all).
DEFAULT_MAX_SPANS = 200
#: Siblings collapse when at least this many are alike (0 or 1: never).
DEFAULT_COLLAPSE = 5
#: Light tones, one per service (tab20's light half, then ColorBrewer Set3); cycled beyond 22 services.
SERVICE_PALETTE: tuple[str, ...] = (
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d",
    "#9edae5", "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
    "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f",
)  # fmt: skip
#: Dark, saturated verdict colours: none is a service colour.
VERDICT_COLORS: dict[str, str] = {
    "ok": "#4d4d4d",
    "split": "#542788",
    "merged": "#01665e",
    "orphaned": "#b35806",
    "dropped": "#b2182b",
}
#: Columns of :attr:`TraceLayout.rows`.
ROW_COLUMNS: tuple[str, ...] = (
    "depth", "name", "service", "kind", "count", "span_id", "parent", "start_ns", "end_ns",
    "duration_ms", "transaction", "compared_transaction", "opens", "opens_compared", "tx_key",
    "compared_key", "verdict", "reason", "batch", "parent_missing", "no_time", "context", "first",
)  # fmt: skip


def service_colors(services: Sequence[str]) -> dict[str, str]:
    """One colour per service of a dump (all its services, in any order): sorted, then the palette."""
    return {s: SERVICE_PALETTE[i % len(SERVICE_PALETTE)] for i, s in enumerate(sorted(set(services)))}


def escape(text: str) -> str:
    """``text`` with control and format characters escaped (``\\n``, ``\\x1b``, ``\\u200b``)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch in "\n\r\t" or ord(ch) < 0x100:
            out.append(repr(ch)[1:-1])
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out)


@dataclass
class TraceLayout:
    """The drawn rows of one trace (columns :data:`ROW_COLUMNS`, see the module docstring), the whole
    trace's ``facts``, what was left out, and the dump's service colours."""

    trace_id: str
    facts: dict[str, Any]
    rows: pd.DataFrame
    left_out: dict[str, Any]
    colors: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def spans_drawn(self) -> int:
        return int(self.rows["count"].sum())


def placed_times(
    start: np.ndarray, end: np.ndarray, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end of each span (depth-first order, ``parent`` positions), spans without a timestamp
    (start 0) placed at their parent's start with zero length; and which were placed."""
    start = start.astype(np.int64).copy()
    end = end.astype(np.int64).copy()
    missing = start <= 0
    real = start[~missing]
    t0 = int(real.min()) if len(real) else 0
    for k in np.flatnonzero(missing).tolist():  # parents come first in depth-first order
        p = int(parent[k])
        start[k] = start[p] if p >= 0 else t0
        end[k] = start[k]
    end = np.maximum(end, start)
    return start, end, missing


def _ancestors(keep: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """``keep`` plus every ancestor of a kept span (``parent`` positions, parents before children)."""
    out = keep.copy()
    par = parent.tolist()
    for k in range(len(out) - 1, -1, -1):
        if out[k] and par[k] >= 0:
            out[par[k]] = True
    return out


def trace_layout(
    spans: pd.DataFrame,
    parent: np.ndarray,
    ref_root: np.ndarray,
    cmp_root: np.ndarray,
    call: np.ndarray,
    facts: Mapping[str, Any],
    services: Sequence[str],
    *,
    max_spans: int | None = None,
    collapse: int | None = None,
    only_bad: bool = False,
    verdicts: Collection[str] | None = None,
    service: Collection[str] | None = None,
    max_depth: int | None = None,
) -> TraceLayout:
    """The rows to draw of one trace (see the module docstring)."""
    import pandas as pd

    max_spans = DEFAULT_MAX_SPANS if max_spans is None else max_spans
    collapse = DEFAULT_COLLAPSE if collapse is None else collapse
    n = len(spans)
    parent = np.asarray(parent, dtype=np.int64)
    table_row = spans.index.to_numpy(dtype=np.int64)
    depth = spans["depth"].to_numpy(dtype=np.int64)
    verdict = spans["verdict"].astype(str).to_numpy(dtype=object)
    svc = spans["service"].astype(str).to_numpy(dtype=object)
    start, end, no_time = placed_times(spans["start_ns"].to_numpy(), spans["end_ns"].to_numpy(), parent)
    opens = ref_root == table_row
    opens_cmp = cmp_root == table_row

    # ---- filters: matching spans, their ancestors as context
    unknown = sorted(set(verdicts or ()) - set(VERDICTS))
    if unknown:
        raise ValueError(f"unknown verdict {unknown[0]!r}: one of {', '.join(VERDICTS)}")
    match = np.ones(n, dtype=bool)
    if only_bad:
        match &= verdict != "ok"
    if verdicts:
        match &= np.isin(verdict, list(verdicts))
    if service:
        match &= np.isin(svc, list(service))
    if max_depth is not None:
        match &= depth <= max_depth
    keep = _ancestors(match, parent)
    context = keep & ~match

    # ---- collapse: level by level, siblings of the same row with the same key become one row
    names = [escape(x) or '""' for x in spans["name"].tolist()]
    reason = spans["reason"].astype(str).tolist()
    callv = np.asarray(call, dtype=np.int64).tolist()
    refv, cmpv = np.asarray(ref_root).tolist(), np.asarray(cmp_root).tolist()
    opens_l, opens_cmp_l = opens.tolist(), opens_cmp.tolist()
    row_of = np.full(n, -1, dtype=np.int64)
    kept = np.flatnonzero(keep)
    by_level = kept[np.argsort(depth[kept], kind="stable")]
    levels = np.split(by_level, np.flatnonzero(np.diff(depth[by_level])) + 1) if len(by_level) else []
    n_rows = 0
    row_parent: list[int] = []
    for level in levels:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for k in level.tolist():
            p = int(parent[k])
            prow = int(row_of[p]) if p >= 0 else -1
            key = (
                prow,
                names[k],
                svc[k],
                verdict[k],
                reason[k],
                callv[k],
                "own" if opens_l[k] else refv[k],
                "own" if opens_cmp_l[k] else cmpv[k],
                bool(context[k]),
            )
            groups.setdefault(key, []).append(k)
        for key, members in groups.items():
            if collapse >= 2 and len(members) >= collapse:
                row_of[members] = n_rows
                row_parent.append(key[0])
                n_rows += 1
            else:
                for k in members:
                    row_of[k] = n_rows
                    row_parent.append(key[0])
                    n_rows += 1

    # ---- per row aggregates (members share depth, name, service, verdict, reason, call, transactions)
    in_row = row_of >= 0
    r = row_of[in_row]
    pos = np.flatnonzero(in_row)
    count = np.bincount(r, minlength=n_rows)
    first = np.full(n_rows, n, dtype=np.int64)
    np.minimum.at(first, r, pos)
    r_start = np.full(n_rows, np.iinfo(np.int64).max, dtype=np.int64)
    r_end = np.full(n_rows, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(r_start, r, start[pos])
    np.maximum.at(r_end, r, end[pos])
    missing_parent = np.bincount(r, weights=spans["parent_missing"].to_numpy()[pos], minlength=n_rows)
    untimed = np.bincount(r, weights=no_time[pos], minlength=n_rows)
    rparent = np.asarray(row_parent, dtype=np.int64)

    # ---- selection: not-ok rows (verdicts in turn) with paths, then transaction openers, then the rest
    fv = verdict[first] if n_rows else np.zeros(0, dtype=object)
    chosen = np.zeros(n_rows, dtype=bool)
    budget = max_spans if max_spans and max_spans > 0 else n_rows
    taken = 0
    rp = rparent.tolist()

    def take(row: int) -> None:
        nonlocal taken
        path: list[int] = []
        room = budget - taken
        while row >= 0 and not chosen[row]:
            if len(path) == room:  # the path cannot fit: stop walking (a deep trace stays linear in budget)
                return
            path.append(row)
            row = rp[row]
        chosen[path] = True
        taken += len(path)

    order_rows = np.argsort(first, kind="stable")
    if budget >= n_rows:
        chosen[:] = True
    else:
        queues = [
            [x for x in order_rows.tolist() if fv[x] == v and not context[first[x]]] for v in VERDICTS[1:]
        ]
        cursor = [0] * len(queues)
        while taken < budget and any(c < len(q) for c, q in zip(cursor, queues, strict=True)):
            for i, q in enumerate(queues):
                if cursor[i] < len(q):
                    take(q[cursor[i]])
                    cursor[i] += 1
        openers = opens[first] | opens_cmp[first]
        for x in order_rows.tolist():
            if taken >= budget:
                break
            if openers[x]:
                take(x)
        for x in order_rows.tolist():
            if taken >= budget:
                break
            take(x)

    # ---- depth-first order of the chosen rows (children by first member)
    children: list[list[int]] = [[] for _ in range(n_rows)]
    roots: list[int] = []
    for x in order_rows.tolist():
        if chosen[x]:
            (roots if rp[x] < 0 else children[rp[x]]).append(x)
    out_order: list[int] = []
    stack = list(reversed(roots))
    while stack:
        x = stack.pop()
        out_order.append(x)
        stack.extend(reversed(children[x]))
    sel = np.asarray(out_order, dtype=np.int64)
    f = first[sel]
    position = np.full(n_rows, -1, dtype=np.int64)
    position[sel] = np.arange(len(sel))
    cnt = count[sel]
    tx_key = np.where(opens[f] & (cnt > 1), -2 - sel, np.asarray(ref_root)[f])
    ckey_own = opens_cmp[f] & (cnt > 1)
    cmp_key = np.where(ckey_own, -2 - n_rows - sel, np.asarray(cmp_root)[f])
    rows = pd.DataFrame(
        {
            "depth": depth[f],
            "name": [names[k] for k in f.tolist()],
            "service": svc[f],
            "kind": spans["kind"].astype(str).to_numpy(dtype=object)[f],
            "count": cnt,
            "span_id": spans["span_id"].to_numpy(dtype=object)[f],
            "parent": np.where(rparent[sel] >= 0, position[np.maximum(rparent[sel], 0)], -1),
            "start_ns": r_start[sel],
            "end_ns": r_end[sel],
            "duration_ms": (r_end[sel] - r_start[sel]) / 1e6,
            "transaction": spans["transaction"].to_numpy(dtype=object)[f],
            "compared_transaction": spans["compared_transaction"].to_numpy(dtype=object)[f],
            "opens": opens[f],
            "opens_compared": opens_cmp[f],
            "tx_key": tx_key.astype(np.int64),
            "compared_key": cmp_key.astype(np.int64),
            "verdict": fv[sel] if len(sel) else np.zeros(0, dtype=object),
            "reason": [reason[k] for k in f.tolist()],
            "batch": np.asarray(call, dtype=np.int64)[f],
            "parent_missing": missing_parent[sel].astype(np.int64),
            "no_time": untimed[sel].astype(np.int64),
            "context": context[f],
            "first": f,
        },
        columns=list(ROW_COLUMNS),
    )
    drawn = np.zeros(n, dtype=bool)
    drawn[pos[chosen[r]]] = True
    out_spans = ~drawn
    filtered = ~keep
    cut = out_spans & keep
    left = {
        "spans": int(out_spans.sum()),
        "filtered": int(filtered.sum()),
        "max_spans": int(cut.sum()),
        "verdicts": {
            v: int((verdict[out_spans] == v).sum()) for v in VERDICTS if (verdict[out_spans] == v).any()
        },
    }
    settings = {
        "max_spans": max_spans,
        "collapse": collapse,
        "only_bad": only_bad,
        "verdicts": sorted(verdicts or ()),
        "services": sorted(service or ()),
        "max_depth": max_depth,
        "rows": n_rows,
        "collapsed_rows": int((cnt > 1).sum()),
        "context_rows": int(rows["context"].sum()),
        "t0_ns": int(start.min()) if n else 0,
        "end_ns": int(end.max()) if n else 0,
        "no_time": int(no_time.sum()),
    }
    return TraceLayout(str(facts["trace_id"]), dict(facts), rows, left, service_colors(services), settings)
