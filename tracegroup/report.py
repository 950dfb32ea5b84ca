"""The data of ``tracegroup report``: one analysis as the compact, JSON-ready dict the HTML page embeds.

Contract:
- :func:`report_data` takes an :class:`~tracegroup.analysis.Analysis` and returns plain JSON data (lists,
  ints, strings; no numpy) that :func:`tracegroup.render.html.report_html` draws and nothing else: the
  ``analyze`` summary (exactly :meth:`~tracegroup.analysis.Analysis.summary`, so the page's counts are
  ``analyze --format json``'s), the what-if result when one is given (``WhatIf.as_dict()``), every trace
  of the dump worst first (:func:`~tracegroup.analysis.worst_first`: id, head, spans, spans per verdict)
  and the spans of the *embedded* traces, columnar.
- Embedded traces: the worst traces, in that order, as long as their spans fit in ``max_spans`` (0 = no
  cap; a trace that does not fit is skipped and smaller ones after it may still fit); ``traces=`` names
  the trace codes to embed instead. What was left out is counted under ``embedded`` (traces, spans, and
  the left-out spans per verdict), so the page can say it.
- Spans columnar (``spans``), per embedded trace in depth-first order (children by start time, as
  :func:`tracegroup.explore.tree_order`), the trace's spans at ``offset .. offset + count`` (``traces``
  columns ``offset``/``count``, ``-1`` when not embedded). Columns: ``parent``, ``ref`` and ``cmp`` (the
  reference and compared transaction root) as positions *within the trace* (``-1``: no parent / dropped;
  ``-2``: a root outside the embedded trace), ``name`` (index into ``names``, each distinct name once),
  ``service`` (index into ``services``), ``kind`` (into ``kinds``), ``verdict`` (into ``verdicts``),
  ``reason`` (into ``reasons``), ``call`` (exporter call of the compared grouping's delivery, ``-1``
  never delivered), ``start``/``duration`` in microseconds from the trace's first start (spans without a
  timestamp placed at their parent's start with zero length, as :func:`tracegroup.layout.placed_times`
  does, and flagged in ``no_time``), and ``span_id`` (hex).
- Span details (``details=True``, the default): ``spans.detail`` indexes ``details``, each distinct
  ``{"status": [code, message], "attributes": {…}, "events": [{"name", "time", "attributes"}], "links":
  [{"trace_id", "span_id", "attributes"}]}`` once (event ``time`` in microseconds from the span's start,
  ``null`` without one); ``spans.resource`` indexes ``resources``, each distinct resource's attributes
  once. Read from each embedded span's batch message, parsed once; each distinct encoding decoded once,
  after the same scrubbing as ``emit`` (:func:`tracegroup.redact.scrub_traces` with ``policy``).
- Colours are :func:`tracegroup.layout.service_colors` (the static plots' palette, one per service of the
  dump); verdict colours :data:`tracegroup.layout.VERDICT_COLORS`; runs of alike siblings collapse at
  :data:`tracegroup.layout.DEFAULT_COLLAPSE`.
- Secrets: with a ``policy`` (default :data:`SECRETS`: ``Policy()``, emit's default) every string in
  the result but the service names (kept, as emit keeps the service attribute) goes through
  ``policy.text``: credentials in URLs and secret-looking query values never reach the page. ``policy=
  None`` keeps everything (``--keep-secrets``).
- Cost: the summary, one decode of the embedded spans' names and of the trace heads, one Python pass
  over the embedded spans (their depth-first order) and, with details, one parse of each message holding
  an embedded span; everything else is numpy over whole columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.analysis import Analysis, head_rows, head_text, worst_first
from tracegroup.diff import VERDICTS
from tracegroup.frames import detail_messages
from tracegroup.layout import DEFAULT_COLLAPSE, VERDICT_COLORS, placed_times, service_colors
from tracegroup.model import KIND_NAMES, SpanTable, hex_ids
from tracegroup.otlp import attributes
from tracegroup.reasons import Reason
from tracegroup.redact import Policy, scrub_traces

#: Spans embedded by default (``--max-spans``): about 6 MB of HTML.
REPORT_MAX_SPANS = 100_000
#: emit's default redaction: secrets only.
SECRETS = Policy()
REASON_NAMES: tuple[str, ...] = tuple(r.name.lower() for r in Reason)
_REASON_POS = np.zeros(max(Reason) + 1, dtype=np.int64)
for _pos, _reason in enumerate(Reason):
    _REASON_POS[_reason] = _pos

Names = Callable[[np.ndarray], list[str]]


def choose_traces(analysis: Analysis, max_spans: int) -> np.ndarray:
    """Trace codes to embed: worst first, while their spans fit in ``max_spans`` (0 = all)."""
    order = worst_first(analysis.diff)
    if max_spans <= 0:
        return order
    sizes = np.bincount(analysis.table.trace_code, minlength=analysis.table.n_traces)[order].tolist()
    chosen, total = [], 0
    for code, size in zip(order.tolist(), sizes, strict=True):
        if total + size <= max_spans:
            chosen.append(code)
            total += size
    return np.asarray(chosen, dtype=np.int64)


def _tree_order(parent: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Depth-first order of a forest given as local parent positions, siblings and roots by ``key``."""
    m = len(parent)
    children: list[list[int]] = [[] for _ in range(m)]
    roots: list[int] = []
    par = parent.tolist()
    for k in np.argsort(key, kind="stable").tolist():
        p = par[k]
        (roots if p < 0 else children[p]).append(k)
    order: list[int] = []
    stack = list(reversed(roots))
    while stack:
        k = stack.pop()
        order.append(k)
        stack.extend(reversed(children[k]))
    return np.asarray(order, dtype=np.int64)


def _spans(
    analysis: Analysis, codes: np.ndarray, names: Names
) -> tuple[dict[str, list[Any]], list[str], np.ndarray]:
    """The columnar spans of traces ``codes`` (in that order), the distinct names they use and their
    table rows in output order."""
    table, forest = analysis.table, analysis.forest
    rank = np.full(table.n_traces, -1, dtype=np.int64)
    rank[codes] = np.arange(len(codes))
    rows = np.flatnonzero(rank[table.trace_code] >= 0)  # ascending
    tr = rank[table.trace_code[rows]]
    parent_row = forest.parent[rows]
    at = np.searchsorted(rows, np.maximum(parent_row, 0))
    local = np.where(parent_row >= 0, at, -1)
    key = np.empty(len(rows), dtype=np.int64)
    key[np.lexsort((np.arange(len(rows)), table.start_ns[rows], tr))] = np.arange(len(rows))
    order = _tree_order(local, key)
    out_rows = rows[order]
    pos_of = np.empty(len(rows), dtype=np.int64)  # index into rows -> output position
    pos_of[order] = np.arange(len(rows))
    tr_out = tr[order]
    offset = np.searchsorted(tr_out, np.arange(len(codes)))
    base = offset[tr_out]

    def local_pos(target_rows: np.ndarray) -> np.ndarray:
        found = np.searchsorted(rows, np.maximum(target_rows, 0))
        found = np.minimum(found, max(len(rows) - 1, 0))
        inside = (target_rows >= 0) & (len(rows) > 0)
        inside &= rows[found] == target_rows if len(rows) else inside
        p = pos_of[found] - base if len(rows) else found
        inside &= (p >= 0) & (p < len(rows))
        return np.where(target_rows < 0, -1, np.where(inside, p, -2))

    parent = local_pos(forest.parent[out_rows])
    ref = local_pos(analysis.reference.root[out_rows])
    cmp = local_pos(analysis.compared.root[out_rows])
    # times: spans without a timestamp at their parent's start (depth-first order: parents first)
    glob_parent = np.where(parent >= 0, parent + base, -1)
    start, end, no_time = placed_times(table.start_ns[out_rows], table.end_ns[out_rows], glob_parent)
    t0 = np.full(len(codes), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(t0, tr_out, start)
    start_us = (start - t0[tr_out]) // 1000
    dur_us = (end - start) // 1000
    all_names = names(out_rows)
    distinct = list(dict.fromkeys(all_names))
    index = {n: i for i, n in enumerate(distinct)}
    kind = table.kind[out_rows].astype(np.int64)
    kind = np.where((kind < 0) | (kind >= len(KIND_NAMES)), 0, kind)
    spans = {
        "parent": parent.tolist(),
        "name": [index[n] for n in all_names],
        "service": table.service[out_rows].astype(np.int64).tolist(),
        "kind": kind.tolist(),
        "start": start_us.tolist(),
        "duration": dur_us.tolist(),
        "ref": ref.tolist(),
        "cmp": cmp.tolist(),
        "verdict": analysis.diff.verdict[out_rows].astype(np.int64).tolist(),
        "reason": _REASON_POS[analysis.compared.reason[out_rows].astype(np.int64)].tolist(),
        "call": analysis.delivery.call[out_rows].astype(np.int64).tolist(),
        "no_time": np.flatnonzero(no_time).tolist(),
        "span_id": hex_ids(table.span_id[out_rows], 16),
        "_offset": offset.tolist(),
        "_count": np.bincount(tr_out, minlength=len(codes)).tolist(),
    }
    return spans, distinct, out_rows


def _details(
    table: SpanTable, rows: np.ndarray, policy: Policy | None
) -> tuple[list[int], list[dict[str, Any]], list[int], list[dict[str, Any]]]:
    """Per row of ``rows``: the index of its details and of its resource attributes, and both distinct
    lists (see the module docstring). Each batch message holding one of ``rows`` is parsed once, with a
    span's status, attributes, events and links as their encoded bytes
    (:func:`tracegroup.frames.detail_messages`); each distinct encoding is scrubbed and decoded once."""
    parse = detail_messages()
    detail = [0] * len(rows)
    resource = [0] * len(rows)
    details: dict[tuple[Any, ...], int] = {}
    resources: dict[bytes, int] = {}
    detail_list: list[dict[str, Any]] = []
    resource_list: list[dict[str, Any]] = []
    batch = table.batch[rows]
    for b in np.unique(batch).tolist():
        td = parse(table.batches[b].raw)
        for k in np.flatnonzero(batch == b).tolist():
            row = int(rows[k])
            rs = td.resource_spans[int(table.res[row])]
            sp = rs.scope_spans[int(table.scope[row])].spans[int(table.idx[row])]
            events = tuple(sp.events)
            key = (
                sp.status,
                tuple(sp.attributes),
                events,
                tuple(sp.links),
                sp.start_time_unix_nano if events else 0,
            )
            at = details.get(key)
            if at is None:
                at = details[key] = len(detail_list)
                detail_list.append(_decode_detail(key, policy))
            detail[k] = at
            rkey = rs.resource.SerializeToString()
            at = resources.get(rkey)
            if at is None:
                at = resources[rkey] = len(resource_list)
                holder = TracesData()
                holder.resource_spans.add().resource.MergeFromString(rkey)
                if policy is not None:
                    scrub_traces(holder, policy)
                resource_list.append(attributes(holder.resource_spans[0].resource.attributes))
            resource[k] = at
    return detail, detail_list, resource, resource_list


def _decode_detail(key: tuple[Any, ...], policy: Policy | None) -> dict[str, Any]:
    """One span's encoded status, attributes, events and links (and start, for event times) as the
    details dict, scrubbed as ``emit`` scrubs."""
    status, attrs, events, links, start = key
    holder = TracesData()
    sp = holder.resource_spans.add().scope_spans.add().spans.add()
    sp.status.MergeFromString(status)
    for raw in attrs:
        sp.attributes.add().MergeFromString(raw)
    for raw in events:
        sp.events.add().MergeFromString(raw)
    for raw in links:
        sp.links.add().MergeFromString(raw)
    if policy is not None:
        scrub_traces(holder, policy)
    return {
        "status": [int(sp.status.code), sp.status.message],
        "attributes": attributes(sp.attributes),
        "events": [
            {
                "name": ev.name,
                "time": (int(ev.time_unix_nano) - start) // 1000 if ev.time_unix_nano and start else None,
                "attributes": attributes(ev.attributes),
            }
            for ev in sp.events
        ],
        "links": [
            {
                "trace_id": ln.trace_id.hex(),
                "span_id": ln.span_id.hex(),
                "attributes": attributes(ln.attributes),
            }
            for ln in sp.links
        ],
    }


def _scrub(value: Any, policy: Policy) -> Any:
    """``value`` with ``policy.text`` applied to every string in it (keys included); iterative."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        holder, key = stack.pop()
        v = holder[key]
        if isinstance(v, str):
            holder[key] = policy.text(v)
        elif isinstance(v, dict):
            new = {policy.text(k) if isinstance(k, str) else k: x for k, x in v.items()}
            holder[key] = new
            stack.extend((new, k) for k in new)
        elif isinstance(v, list | tuple):
            if all(type(x) in (int, float, bool) for x in v):
                continue
            new_list = list(v)
            holder[key] = new_list
            stack.extend((new_list, i) for i in range(len(new_list)))
    return root[0]


def report_data(
    analysis: Analysis,
    *,
    max_spans: int = REPORT_MAX_SPANS,
    traces: Sequence[int] | np.ndarray | None = None,
    top: int = 10,
    whatif: dict[str, Any] | None = None,
    policy: Policy | None = SECRETS,
    names: Names | None = None,
    summary: bool = True,
    title: str = "tracegroup report",
    details: bool = True,
) -> dict[str, Any]:
    """The report of ``analysis`` (see the module docstring). ``names`` gives the span names of table rows
    (default ``analysis.table.names``); ``summary=False`` leaves the summary out (one trace's view);
    ``details=False`` leaves out span attributes, status, events, links and resources."""
    table, d = analysis.table, analysis.diff
    names = names or analysis.table.names
    codes = (
        choose_traces(analysis, max_spans)
        if traces is None
        else np.asarray(list(traces), dtype=np.int64).reshape(-1)
    )
    per = d.by_arrays("trace")
    order = worst_first(d) if summary else codes
    head = head_rows(table, analysis.forest)[order]
    head_names = names(head)
    spans, distinct, rows = _spans(analysis, codes, names)
    detail_sets: list[dict[str, Any]] = []
    resources: list[dict[str, Any]] = []
    if details:
        spans["detail"], detail_sets, spans["resource"], resources = _details(table, rows, policy)
    offset = np.full(table.n_traces, -1, dtype=np.int64)
    count = np.zeros(table.n_traces, dtype=np.int64)
    offset[codes] = spans.pop("_offset")
    count[codes] = spans.pop("_count")
    embedded = np.zeros(table.n_traces, dtype=bool)
    embedded[codes] = True
    left = ~embedded[table.trace_code]
    left_verdicts = np.bincount(d.verdict[left].astype(np.int64), minlength=len(VERDICTS))
    colors = service_colors(table.services)
    out: dict[str, Any] = {
        "format": 1,
        "title": title,
        "summary": analysis.summary(top=top) if summary else None,
        "options": analysis.options,
        "whatif": whatif,
        "redacted": policy is not None and bool(policy),
        "verdicts": list(VERDICTS),
        "verdict_colors": [VERDICT_COLORS[v] for v in VERDICTS],
        "services": list(table.services),
        "colors": [colors[s] for s in table.services],
        "kinds": list(KIND_NAMES),
        "reasons": list(REASON_NAMES),
        "collapse": DEFAULT_COLLAPSE,
        "traces": {
            "id": [table.trace_hex[c] for c in order.tolist()],
            "head": [head_text(table, r, n) for r, n in zip(head.tolist(), head_names, strict=True)],
            "spans": per["spans"][order].astype(np.int64).tolist(),
            **{v: per[v][order].astype(np.int64).tolist() for v in VERDICTS},
            "offset": offset[order].tolist(),
            "count": count[order].tolist(),
        },
        "embedded": {
            "max_spans": max_spans if traces is None else None,
            "traces": len(codes),
            "spans": int(count.sum()),
            "left_out_traces": int(table.n_traces - len(codes)),
            "left_out_spans": int(left.sum()),
            "left_out_verdicts": {
                v: int(n) for v, n in zip(VERDICTS, left_verdicts.tolist(), strict=True) if n
            },
        },
        "names": distinct,
        "spans": spans,
        "details": detail_sets if details else None,
        "resources": resources if details else None,
    }
    if policy is not None and policy:
        services = out.pop("services")
        out = _scrub(out, policy)
        out["services"] = services
    return out
