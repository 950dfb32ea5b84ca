"""Notebook API: a loaded :class:`~tracegroup.model.SpanTable` as pandas DataFrames, one trace as a tree.

``SpanTable.spans()``, ``.transactions()``, ``.diff()``, ``.traces()``, ``.anomalies()``, ``.analyze()`` and
``.trace()`` delegate here; the CLI (``tracegroup show``, ``tracegroup plot``) and :mod:`tracegroup.plot`
call the same functions, so a notebook and the command line never disagree.

Contract:
- Every frame is indexed by table row (index name ``row``) unless it is one row per transaction, trace
  or anomaly, and its columns and dtypes are fixed (the tests check them exactly): ids and names are
  pandas strings (``str``; ids lowercase hex, 32 chars for traces and 16 for spans, ``""`` for "none"),
  ``service`` and ``kind`` are categoricals (every service of the table; the six OTLP kind names),
  ``verdict`` a categorical of :data:`~tracegroup.diff.VERDICTS`, ``reason`` a categorical of lowercase
  :class:`~tracegroup.grouping.Reason` names, counts ``int64``, times both as ``int64`` ns
  (``start_ns``/``end_ns``) and as ``datetime64[ns, UTC]`` (``start``/``end``), ``duration_ms`` float64.
- Groupings come from :func:`tracegroup.analysis.analyze` with the same options as the CLI
  (``compare``, ``reference``, ``batching``, ``routing`` — ``none``, ``service``, a routes file path or a
  :class:`~tracegroup.routes.Routes` — and ``boundary``). :func:`analysis` keeps the last few analyses
  of a table, so ``t.diff()`` followed by ``t.analyze()`` with the same options returns the very
  Analysis the frame was built from, without grouping twice.
- :func:`trace` accepts a hex trace id in any case, 16 or 32 chars (16 is left-padded with zeros, as
  Jaeger and Zipkin 64-bit ids are at load), with or without ``0x``; a malformed id raises ``ValueError``
  and an id not in the dump ``KeyError``. The :class:`TraceView` orders the trace's spans depth first
  (children by start time, then input order) without recursion, so traces 100k spans deep are fine.
- Nothing here imports matplotlib; pandas and networkx are imported when a function needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup import tree
from tracegroup.analysis import Analysis, analyze
from tracegroup.diff import OK, VERDICTS
from tracegroup.grouping import Reason
from tracegroup.model import KIND_NAMES, SpanTable, hex_ids
from tracegroup.routes import Routes, load_routes

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd
    from matplotlib.figure import Figure

#: pandas dtype of id and name columns (pandas' string dtype).
STR = "str"
#: Categories of the ``reason`` columns, indexed by position; :data:`_REASON_CODE` maps Reason -> position.
REASON_NAMES: tuple[str, ...] = tuple(r.name.lower() for r in Reason)
_REASON_CODE = np.zeros(max(Reason) + 1, dtype=np.int16)
for _pos, _reason in enumerate(Reason):
    _REASON_CODE[_reason] = _pos

_CACHE_ATTR = "_tracegroup_explore_cache"
_MAX_ANALYSES = 8
#: Traces deeper than this are indented no further in text trees; the depth is printed instead.
MAX_INDENT = 24


# ------------------------------------------------------------------------------------------- helpers
def _cache(table: SpanTable) -> dict[Any, Any]:
    """Per-table memo (analyses, forests, names), kept on the instance: it dies with the table."""
    cache: dict[Any, Any] | None = table.__dict__.get(_CACHE_ATTR)
    if cache is None:
        cache = {}
        table.__dict__[_CACHE_ATTR] = cache
    return cache


def analysis(table: SpanTable, **options: Any) -> Analysis:
    """:func:`tracegroup.analyze` of ``table`` with these options (``compare``, ``reference``,
    ``batching``, ``routing`` — a routes file path is loaded —, ``boundary``, ``pipeline``, ``heal``),
    memoized per table: the same options give the same Analysis object (the last few are kept)."""
    import inspect

    defaults = {
        k: p.default for k, p in inspect.signature(analyze).parameters.items() if k not in ("table", "forest")
    }
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(
            f"unknown analysis option(s) {', '.join(unknown)} (choose from {', '.join(defaults)})"
        )
    options = {k: v for k, v in options.items() if v != defaults[k] or isinstance(v, Routes)}
    routing = options.get("routing")
    key = (
        "analysis",
        *sorted((k, ("routes", id(v)) if isinstance(v, Routes) else str(v)) for k, v in options.items()),
    )
    if routing is not None and not isinstance(routing, Routes) and routing not in ("none", "service"):
        options["routing"] = load_routes(routing)
    cache = _cache(table)
    hit = cache.get(key)
    if hit is not None and (not isinstance(routing, Routes) or hit[0] is routing):
        return hit[1]  # type: ignore[no-any-return]
    result = analyze(table, forest=cache.get("forest"), **options)
    cache["forest"] = result.forest
    analyses = [k for k in cache if isinstance(k, tuple) and k[0] == "analysis"]
    for old in analyses[: max(0, len(analyses) - _MAX_ANALYSES + 1)]:
        del cache[old]
    cache[key] = (routing, result)
    return result


_memoized = analysis  # for functions whose ``analysis`` parameter shadows the name


def forest(table: SpanTable) -> tree.Forest:
    """The table's forest without the clock-skew check (what :func:`analyze` uses), memoized."""
    cache = _cache(table)
    if "forest" not in cache:
        cache["forest"] = tree.build(table, timing=False)
    return cache["forest"]  # type: ignore[no-any-return]


def _timed_forest(table: SpanTable) -> tree.Forest:
    """The forest with every anomaly kind, clock skew included, memoized."""
    cache = _cache(table)
    if "timed_forest" not in cache:
        cache["timed_forest"] = tree.build(table, timing=True)
    return cache["timed_forest"]  # type: ignore[no-any-return]


def _depth(table: SpanTable) -> np.ndarray:
    cache = _cache(table)
    if "depth" not in cache:
        cache["depth"] = forest(table).depth()
    return cache["depth"]  # type: ignore[no-any-return]


def _names(table: SpanTable, rows: np.ndarray | None) -> list[str]:
    """Names of ``rows`` (all when None): one pass over every message the first time all are asked for."""
    cache = _cache(table)
    if rows is None or "names" in cache or len(rows) > max(1024, len(table) // 8):
        if "names" not in cache:
            cache["names"] = table.names()
        names: list[str] = cache["names"]
        return names if rows is None else [names[i] for i in rows.tolist()]
    return table.names(rows)


def normalize_trace_id(trace_id: str | bytes | int) -> str:
    """A trace id as 32 lowercase hex chars: any case, 16 or 32 chars (16 left-padded), optional ``0x``."""
    if isinstance(trace_id, bytes):
        text = trace_id.hex()
    elif isinstance(trace_id, int):
        text = f"{trace_id:032x}"
    else:
        text = str(trace_id).strip().lower().removeprefix("0x")
    if len(text) not in (16, 32) or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"trace id {trace_id!r}: expected 16 or 32 hex chars")
    return text.rjust(32, "0")


def trace_code(table: SpanTable, trace_id: str | bytes | int) -> int:
    """The table's trace code of a trace id (see :func:`normalize_trace_id`); ``KeyError`` if absent."""
    wanted = normalize_trace_id(trace_id)
    cache = _cache(table)
    if "trace_index" not in cache:
        cache["trace_index"] = {h: c for c, h in enumerate(table.trace_hex)}
    code = cache["trace_index"].get(wanted)
    if code is None:
        raise KeyError(f"trace {wanted} is not in the dump ({table.n_traces:,} traces)")
    return int(code)


def _datetime(ns: np.ndarray) -> pd.Series:
    import pandas as pd

    return pd.Series(ns.astype(np.int64).view("M8[ns]")).dt.tz_localize("UTC")


def _categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    import pandas as pd

    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(categories))


def _kinds(kind: np.ndarray) -> np.ndarray:
    return np.where((kind < 0) | (kind >= len(KIND_NAMES)), 0, kind)


def _reasons(reason: np.ndarray) -> pd.Categorical:
    return _categorical(_REASON_CODE[reason.astype(np.int64)], REASON_NAMES)


def _root_hex(table: SpanTable, root: np.ndarray) -> np.ndarray:
    """Hex span id of each root row, ``""`` where the root is -1 (dropped)."""
    out = np.array(hex_ids(table.span_id[np.maximum(root, 0)], 16), dtype=object)
    out[root < 0] = ""
    return out


# ------------------------------------------------------------------------------------------- spans
#: Columns (and dtypes) of :func:`spans`; :func:`diff` adds :data:`DIFF_COLUMNS`.
SPAN_COLUMNS: dict[str, str] = {
    "trace_id": STR,
    "span_id": STR,
    "parent_span_id": STR,
    "service": "category",
    "name": STR,
    "kind": "category",
    "batch": "int64",
    "start_ns": "int64",
    "end_ns": "int64",
    "start": "datetime64[ns, UTC]",
    "end": "datetime64[ns, UTC]",
    "duration_ms": "float64",
    "depth": "int64",
    "parent_missing": "bool",
    "flags": "int64",
}
DIFF_COLUMNS: dict[str, str] = {
    "transaction": STR,
    "heuristic_transaction": STR,
    "verdict": "category",
    "incomplete": "bool",
    "reason": "category",
}


def _span_frame(table: SpanTable, rows: np.ndarray | None, depth: np.ndarray | None = None) -> pd.DataFrame:
    """The :data:`SPAN_COLUMNS` of ``rows`` (all rows when None), index = table row."""
    import pandas as pd

    sel = slice(None) if rows is None else rows
    index = pd.RangeIndex(len(table), name="row") if rows is None else pd.Index(rows, name="row")
    parent = table.parent_id[sel]
    parent_hex = np.array(hex_ids(parent, 16), dtype=object)
    parent_hex[parent == 0] = ""
    start, end = table.start_ns[sel], table.end_ns[sel]
    frame = pd.DataFrame(
        {
            "trace_id": pd.array(hex_ids(table.trace_id[sel], 32), dtype=STR),
            "span_id": pd.array(hex_ids(table.span_id[sel], 16), dtype=STR),
            "parent_span_id": pd.array(parent_hex, dtype=STR),
            "service": _categorical(table.service[sel], table.services),
            "name": pd.array(_names(table, rows), dtype=STR),
            "kind": _categorical(_kinds(table.kind[sel]), KIND_NAMES),
            "batch": table.batch[sel].astype(np.int64),
            "start_ns": start.astype(np.int64),
            "end_ns": end.astype(np.int64),
            "start": _datetime(start).array,
            "end": _datetime(end).array,
            "duration_ms": (end - start) / 1e6,
            "depth": (_depth(table)[sel] if depth is None else depth).astype(np.int64),
            "parent_missing": forest(table).missing_parent[sel],
            "flags": table.flags[sel].astype(np.int64),
        },
        index=index,
    )
    return frame


def spans(table: SpanTable, *, details: bool = False) -> pd.DataFrame:
    """One row per span in table order (columns :data:`SPAN_COLUMNS`).

    ``details=True`` adds status, scope, attributes, resource attributes, events and links
    (:func:`tracegroup.frames.details`: one more decoding pass over every message).
    """
    frame = _span_frame(table, None)
    if details:
        from tracegroup.frames import details as decode

        for key, values in decode(table).items():
            if key != "name":
                frame[key] = values
    return frame


def _diff_columns(an: Analysis, rows: np.ndarray | None) -> dict[str, Any]:
    import pandas as pd

    sel = slice(None) if rows is None else rows
    a, b = an.reference.root[sel], an.compared.root[sel]
    return {
        "transaction": pd.array(_root_hex(an.table, a), dtype=STR),
        "heuristic_transaction": pd.array(_root_hex(an.table, b), dtype=STR),
        "verdict": _categorical(an.diff.verdict[sel], VERDICTS),
        "incomplete": an.diff.incomplete[sel],
        "reason": _reasons(an.compared.reason[sel]),
    }


def diff(table: SpanTable, a: str = "service", b: str = "sentryexporter", **options: Any) -> pd.DataFrame:
    """Per span: :data:`SPAN_COLUMNS`, then its transaction root under ``a`` (``transaction``) and under
    ``b`` (``heuristic_transaction``, ``""`` when dropped), the verdict, whether its ``a`` transaction is
    incomplete, and ``reason``: why ``b`` put it where it did. The Analysis behind it is
    ``analysis(table, reference=a, compare=b, **options)`` (``table.analyze(...)``)."""
    an = analysis(table, reference=a, compare=b, **options)
    frame = _span_frame(table, None)
    for key, col in _diff_columns(an, None).items():
        frame[key] = col
    frame.attrs["options"] = dict(an.options)
    return frame


# ------------------------------------------------------------------------------------- transactions
TRANSACTION_COLUMNS: dict[str, str] = {
    "trace_id": STR,
    "transaction": STR,
    "service": "category",
    "name": STR,
    "kind": "category",
    "reason": "category",
    "spans": "int64",
    "services": "int64",
    "start": "datetime64[ns, UTC]",
    "end": "datetime64[ns, UTC]",
    "duration_ms": "float64",
    "incomplete": "bool",
    "counterparts": "int64",
    "dropped": "int64",
    "not_ok": "int64",
    "intact": "bool",
}


def _pair_counts(first: np.ndarray, second: np.ndarray, n: int) -> np.ndarray:
    """Per value of ``first`` (0..n-1): how many distinct values of ``second`` go with it."""
    if not len(first):
        return np.zeros(n, dtype=np.int64)
    pairs = np.unique(first.astype(np.int64) * (n + 1) + second.astype(np.int64))
    return np.bincount(pairs // (n + 1), minlength=n)


def transactions(table: SpanTable, strategy: str = "service", **options: Any) -> pd.DataFrame:
    """One row per transaction ``strategy`` makes (columns :data:`TRANSACTION_COLUMNS`), by trace then
    start time. The other grouping of the comparison is ``compare`` (default ``sentryexporter``) when
    ``strategy`` is the reference (default ``service``), else the reference.

    ``transaction`` is the root span id; ``name``, ``kind``, ``start``, ``end`` and ``duration_ms`` are the
    root's (a Sentry transaction's own); ``reason`` why the root opened it; ``services`` how many services
    its spans come from (more than one: a merge); ``counterparts`` into how many transactions of the
    other grouping its spans went, ``dropped`` how many of its spans the other grouping never sent,
    ``not_ok`` how many spans have another verdict than ``ok``; ``intact`` the other grouping has exactly
    this transaction; ``incomplete`` its root's reference transaction lacks its parent in the dump.
    """
    import pandas as pd

    reference = options.pop("reference", "service")
    if strategy == reference:
        an = analysis(table, reference=reference, **options)
        g, other = an.reference, an.compared
    else:
        options.pop("compare", None)
        an = analysis(table, reference=reference, compare=strategy, **options)
        g, other = an.compared, an.reference
    n = len(table)
    roots = _transaction_order(table, g.roots())
    sent = g.root >= 0
    member_root = g.root[sent]
    spans_per = np.bincount(member_root, minlength=n)
    services = _pair_counts(member_root, table.service[sent], n)
    both = sent & (other.root >= 0)
    counterparts = _pair_counts(g.root[both], other.root[both], n)
    dropped = np.bincount(g.root[sent & (other.root < 0)], minlength=n)
    not_ok = np.bincount(g.root[sent & (an.diff.verdict != OK)], minlength=n)
    other_size = np.bincount(other.root[other.root >= 0], minlength=n)
    o = other.root[roots]
    intact = (counterparts[roots] == 1) & (dropped[roots] == 0) & (o >= 0)
    intact &= other_size[np.maximum(o, 0)] == spans_per[roots]
    start, end = table.start_ns[roots], table.end_ns[roots]
    return pd.DataFrame(
        {
            "trace_id": pd.array(hex_ids(table.trace_id[roots], 32), dtype=STR),
            "transaction": pd.array(hex_ids(table.span_id[roots], 16), dtype=STR),
            "service": _categorical(table.service[roots], table.services),
            "name": pd.array(_names(table, roots), dtype=STR),
            "kind": _categorical(_kinds(table.kind[roots]), KIND_NAMES),
            "reason": _reasons(g.reason[roots]),
            "spans": spans_per[roots].astype(np.int64),
            "services": services[roots].astype(np.int64),
            "start": _datetime(start).array,
            "end": _datetime(end).array,
            "duration_ms": (end - start) / 1e6,
            "incomplete": an.diff.incomplete[roots],
            "counterparts": counterparts[roots].astype(np.int64),
            "dropped": dropped[roots].astype(np.int64),
            "not_ok": not_ok[roots].astype(np.int64),
            "intact": intact,
        }
    ).rename_axis(index=None)


def _transaction_order(table: SpanTable, roots: np.ndarray) -> np.ndarray:
    return roots[np.lexsort((roots, table.start_ns[roots], table.trace_code[roots]))]


# ------------------------------------------------------------------------------------------- traces
TRACE_COLUMNS: dict[str, str] = {
    "trace_id": STR,
    "head": STR,
    "spans": "int64",
    "services": "int64",
    **{v: "int64" for v in VERDICTS},
    "not_ok": "int64",
    "blamed": "int64",
    "in_incomplete": "int64",
    "transactions": "int64",
    "compared_transactions": "int64",
    "start": "datetime64[ns, UTC]",
    "duration_ms": "float64",
}


def traces(table: SpanTable, a: str = "service", b: str = "sentryexporter", **options: Any) -> pd.DataFrame:
    """One row per trace (columns :data:`TRACE_COLUMNS`), worst first: most spans not ``ok``, then most
    spans (the order of ``analyze``'s worst traces). ``head`` is ``service: name`` of its first span
    without a parent id (else its first span whose parent is missing); ``transactions`` counts ``a``'s,
    ``compared_transactions`` ``b``'s; ``start``/``duration_ms`` span its earliest start to latest end."""
    import pandas as pd

    an = analysis(table, reference=a, compare=b, **options)
    per = an.diff.by_arrays("trace")
    nt = table.n_traces
    not_ok = per["spans"] - per["ok"]
    order = np.lexsort((np.arange(nt), -per["spans"], -not_ok))
    parent = an.forest.parent
    top = np.flatnonzero(parent < 0)
    top = np.concatenate([top[table.parent_id[top] == 0], top[table.parent_id[top] != 0]])
    head_row = np.full(nt, -1, dtype=np.int64)
    head_row[table.trace_code[top][::-1]] = top[::-1]  # the first listed wins
    head_row = head_row[order]
    names = _names(table, head_row)
    heads = [
        f"{table.services[table.service[r]] or '(no service)'}: {nm}"
        for r, nm in zip(head_row.tolist(), names, strict=True)
    ]
    first = np.full(nt, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(nt, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, table.trace_code, table.start_ns)
    np.maximum.at(last, table.trace_code, table.end_ns)
    frame = pd.DataFrame(
        {
            "trace_id": pd.array([table.trace_hex[c] for c in order.tolist()], dtype=STR),
            "head": pd.array(heads, dtype=STR),
            "spans": per["spans"][order].astype(np.int64),
            "services": _pair_counts(table.trace_code, table.service, nt)[order].astype(np.int64),
            **{v: per[v][order].astype(np.int64) for v in VERDICTS},
            "not_ok": not_ok[order].astype(np.int64),
            "blamed": per["blamed"][order].astype(np.int64),
            "in_incomplete": per["in_incomplete"][order].astype(np.int64),
            "transactions": per["transactions"][order].astype(np.int64),
            "compared_transactions": per["compared_transactions"][order].astype(np.int64),
            "start": _datetime(first[order]).array,
            "duration_ms": (last[order] - first[order]) / 1e6,
        }
    )
    frame.attrs["options"] = dict(an.options)
    return frame


# ------------------------------------------------------------------------------------------ anomalies
ANOMALY_COLUMNS: dict[str, str] = {
    "kind": "category",
    "trace_id": STR,
    "span_id": STR,
    "parent_span_id": STR,
    "service": "category",
    "name": STR,
    "meaning": STR,
    "row": "int64",
}


def anomalies(table: SpanTable) -> pd.DataFrame:
    """One row per (anomaly kind, span), kinds in :data:`tracegroup.tree.ANOMALY_KINDS` order, then by
    row (columns :data:`ANOMALY_COLUMNS`; ``meaning`` is the kind's one-line explanation, ``row`` the
    span's table row). A span can appear under several kinds. Clock skew is included."""
    import pandas as pd

    found = _timed_forest(table).anomalies
    kinds = list(tree.ANOMALY_KINDS)
    codes = [np.full(len(found.get(k, ())), i, dtype=np.int64) for i, k in enumerate(kinds)]
    rows = [np.asarray(found.get(k, np.zeros(0, dtype=np.int64)), dtype=np.int64) for k in kinds]
    code = np.concatenate(codes)
    row = np.concatenate(rows)
    parent = table.parent_id[row]
    parent_hex = np.array(hex_ids(parent, 16), dtype=object)
    parent_hex[parent == 0] = ""
    meanings = [tree.ANOMALY_KINDS[kinds[c]] for c in code.tolist()]
    return pd.DataFrame(
        {
            "kind": _categorical(code, kinds),
            "trace_id": pd.array(hex_ids(table.trace_id[row], 32), dtype=STR),
            "span_id": pd.array(hex_ids(table.span_id[row], 16), dtype=STR),
            "parent_span_id": pd.array(parent_hex, dtype=STR),
            "service": _categorical(table.service[row], table.services),
            "name": pd.array(_names(table, row), dtype=STR),
            "meaning": pd.array(meanings, dtype=STR),
            "row": row,
        }
    )


# ------------------------------------------------------------------------------------------ one trace
def tree_order(parent: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth-first order of one forest given as local parent indices (``-1`` at roots): children by
    start time, then index; roots likewise. Returns (order, depth of each listed node). Iterative."""
    m = len(parent)
    by_start = np.lexsort((np.arange(m), start)).tolist()
    children: list[list[int]] = [[] for _ in range(m)]
    roots: list[int] = []
    for k in by_start:
        p = int(parent[k])
        (roots if p < 0 else children[p]).append(k)
    order: list[int] = []
    depth: list[int] = []
    stack = [(r, 0) for r in reversed(roots)]
    while stack:
        k, d = stack.pop()
        order.append(k)
        depth.append(d)
        stack.extend((c, d + 1) for c in reversed(children[k]))
    return np.array(order, dtype=np.int64), np.array(depth, dtype=np.int64)


@dataclass
class TraceView:
    """One trace: its spans in tree order with both groupings, its tree, its text rendering.

    ``spans`` has :data:`SPAN_COLUMNS` + :data:`DIFF_COLUMNS`, one row per span in depth-first order
    (index = table row; ``depth`` counts from the trace's roots). ``rows``/``depth`` are the same order
    as arrays. ``graph`` is the networkx tree (:func:`tracegroup.tree.trace_graph`) whose nodes also
    carry ``transaction``, ``heuristic_transaction`` and ``verdict``.
    """

    trace_id: str
    code: int
    rows: np.ndarray
    depth: np.ndarray
    spans: pd.DataFrame
    analysis: Analysis

    @property
    def table(self) -> SpanTable:
        return self.analysis.table

    def __len__(self) -> int:
        return len(self.rows)

    @functools.cached_property
    def graph(self) -> nx.DiGraph:
        g = tree.trace_graph(self.table, self.analysis.forest, self.code)
        for row, tx, htx, verdict in zip(
            self.rows.tolist(),
            self.spans["transaction"],
            self.spans["heuristic_transaction"],
            self.spans["verdict"],
            strict=True,
        ):
            g.nodes[row].update(transaction=tx, heuristic_transaction=htx, verdict=str(verdict))
        g.graph.update(trace_id=self.trace_id, **self.analysis.options)
        return g

    def header(self) -> list[str]:
        """Lines summing the trace up: spans, services, transactions under both groupings, verdicts."""
        an, f = self.analysis, self.spans
        ref, cmp = an.options["reference"], an.options["compare"]
        roots = (f["transaction"] == f["span_id"]).sum()
        hroots = (f["heuristic_transaction"] == f["span_id"]).sum()
        counts = f["verdict"].value_counts()
        verdicts = ", ".join(f"{v} {int(counts[v]):,}" for v in VERDICTS if counts.get(v, 0))
        return [
            f"trace {self.trace_id}: {plural(len(f), 'span')}, {plural(f['service'].nunique(), 'service')}, "
            f"{plural(f['batch'].nunique(), 'batch', 'batches')}",
            f"  {ref}: {plural(roots, 'transaction')}; {cmp}: {plural(hroots, 'transaction')} "
            f"(batching {an.options['batching']}, routing {an.options['routing']})",
            f"  verdicts: {verdicts}",
        ]

    def lines(self, max_spans: int | None = None) -> list[str]:
        """The trace as an indented tree, one line per span: name (indented by depth), service, kind,
        duration, its transaction root under the reference and the compared grouping (``*`` marks a
        span that is its own root, ``(dropped)`` a span never sent) and the verdict. Shows the first
        ``max_spans`` spans in tree order (all when None or 0) and then says what it left out."""
        an, f = self.analysis, self.spans
        ref, cmp = an.options["reference"], an.options["compare"]
        n = len(f)
        shown = n if not max_spans or max_spans >= n else max_spans
        part = f.iloc[:shown]
        trees = [
            "  " * min(d, MAX_INDENT) + (f"[{d}] " if d > MAX_INDENT else "") + name
            for d, name in zip(part["depth"].tolist(), part["name"].tolist(), strict=True)
        ]
        width = min(max([len(t) for t in trees] + [4]), 64)
        svc_w = min(max([len(s) for s in map(str, part["service"])] + [7]), 24)
        ref_w = max(len(ref), 18)
        head = f"{'span':<{width}}  {'service':<{svc_w}}  {'kind':<11} {'duration':>9}  "
        head += f"{ref + ' tx':<{ref_w + 3}} {cmp + ' tx':<{max(len(cmp), 18) + 3}} verdict"
        out = [*self.header(), "  * = the span opens its transaction", "", head]
        for t, svc, kind, dur, sid, tx, htx, verdict, missing in zip(
            trees,
            map(str, part["service"]),
            map(str, part["kind"]),
            part["duration_ms"].tolist(),
            part["span_id"],
            part["transaction"],
            part["heuristic_transaction"],
            map(str, part["verdict"]),
            part["parent_missing"].tolist(),
            strict=True,
        ):
            name = t if len(t) <= width else t[: width - 2] + ".."
            rtx = ("*" if tx == sid else " ") + tx
            ctx = "(dropped)" if not htx else ("*" if htx == sid else " ") + htx
            note = "  (parent not in dump)" if missing else ""
            out.append(
                f"{name:<{width}}  {svc[:svc_w]:<{svc_w}}  {kind:<11} {_duration(dur):>9}  "
                f"{rtx:<{ref_w + 3}} {ctx:<{max(len(cmp), 18) + 3}} {verdict}{note}"
            )
        if shown < n:
            rest = f["verdict"].iloc[shown:].value_counts()
            verdicts = ", ".join(f"{v} {int(rest[v]):,}" for v in VERDICTS if rest.get(v, 0))
            out.append(
                f"... {n - shown:,} more spans not shown: the first {shown:,} of {n:,} in tree order are "
                f"listed (raise max_spans / --max-spans, 0 = all). Not shown: {verdicts}."
            )
        return out

    def text(self, max_spans: int | None = None) -> str:
        return "\n".join(self.lines(max_spans)) + "\n"

    def __repr__(self) -> str:
        return "\n".join(self.header())

    def waterfall(self, **kwargs: Any) -> Figure:
        """:func:`tracegroup.plot.waterfall_of` this trace."""
        from tracegroup.plot import waterfall_of

        return waterfall_of(self, **kwargs)


def plural(n: int, word: str, words: str = "") -> str:
    """``1 span``, ``2 spans``, ``1,000 spans``."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def _duration(ms: float) -> str:
    if ms >= 999.95:
        return f"{ms / 1000:.2f}s"
    if ms >= 0.9995:
        return f"{ms:.1f}ms"
    return f"{ms * 1000:.0f}us"


def trace(
    table: SpanTable,
    trace_id: str | bytes | int,
    compare: str = "sentryexporter",
    *,
    analysis: Analysis | None = None,
    **options: Any,
) -> TraceView:
    """One trace (see :class:`TraceView`) under ``reference`` (default ``service``) and ``compare``, or
    under the groupings of a given ``analysis`` of this table (then ``compare`` and options are unused)."""
    code = trace_code(table, trace_id)
    an = analysis if analysis is not None else _memoized(table, compare=compare, **options)
    rows = np.flatnonzero(table.trace_code == code)
    parent = an.forest.parent[rows]
    local = np.where(parent >= 0, np.searchsorted(rows, np.maximum(parent, 0)), -1)
    order, depth = tree_order(local, table.start_ns[rows])
    rows = rows[order]
    frame = _span_frame(table, rows, depth)
    for key, col in _diff_columns(an, rows).items():
        frame[key] = col
    return TraceView(table.trace_hex[code], code, rows, depth, frame, an)


def worst_trace(table: SpanTable, *, analysis: Analysis | None = None, **options: Any) -> str:
    """Hex id of the worst trace (most spans not ``ok``, then most spans) under these options or the
    given ``analysis``."""
    an = analysis if analysis is not None else _memoized(table, **options)
    per = an.diff.by_arrays("trace")
    not_ok = per["spans"] - per["ok"]
    code = int(np.lexsort((np.arange(table.n_traces), -per["spans"], -not_ok))[0])
    return table.trace_hex[code]


def corrected(table: SpanTable, trace_id: str | bytes | int, **options: Any) -> pd.DataFrame:
    """The correct (reference) transactions of one trace, one row per span grouped by transaction:
    what corrected payloads of that trace contain (columns ``transaction``, ``service``, ``span_id``,
    ``parent_span_id``, ``name``, ``kind``, ``depth``, ``start``, ``duration_ms``, ``verdict``)."""
    view = trace(table, trace_id, **options)
    cols = ["transaction", "service", "span_id", "parent_span_id", "name", "kind", "depth", "start"]
    frame = view.spans[[*cols, "duration_ms", "verdict"]]
    group = frame.groupby("transaction", sort=False).ngroup().to_numpy()
    return frame.iloc[np.argsort(group, kind="stable")]
