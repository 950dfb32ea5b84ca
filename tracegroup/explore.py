"""Notebook API: an :class:`Explorer` over a loaded :class:`~tracegroup.model.SpanTable` answers with pandas
DataFrames, one trace as a tree, its text and its waterfall.

``Explorer(table)`` (or ``Explorer.load(paths)``) offers ``.spans()``, ``.diff()``, ``.transactions()``,
``.traces()``, ``.anomalies()``, ``.analyze()``, ``.trace()``, ``.show()`` and ``.waterfall()``; the CLI
(``tracegroup show``, ``tracegroup plot``) calls the same methods, so a notebook and the command line never
disagree. This module sits above everything it calls: the model, the groupings, the analysis, the frames
and the renderers (:mod:`tracegroup.render.text` for the text tree, :mod:`tracegroup.render.plot` for
figures); nothing below imports it.

Contract:
- Every frame is indexed by table row (index name ``row``) unless it is one row per transaction, trace
  or anomaly, and its columns and dtypes are fixed (the tests check them exactly). The per-span frames
  (``.spans()``, ``.diff()``, ``TraceView.spans``) are :func:`tracegroup.frames.spans_frame`'s, the
  columns of ``tracegroup spans``: one contract for the CLI, the files and the notebook. Ids and names are
  pandas strings (``str``; ids lowercase hex, 32 chars for traces and 16 for spans, ``""`` for "none"),
  ``service`` and ``kind`` are categoricals (every service of the table; the six OTLP kind names),
  ``verdict`` a categorical of :data:`~tracegroup.diff.VERDICTS`, ``reason`` a categorical of lowercase
  :class:`~tracegroup.grouping.Reason` names, counts ``int64``, times both as ``int64`` ns
  (``start_ns``/``end_ns``) and as ``datetime64[ns, UTC]`` (``start``/``end``), ``duration_ms`` float64.
- Groupings come from :func:`tracegroup.analysis.analyze` with the same options as the CLI, exactly those
  of :class:`AnalysisOptions` (defaults :data:`ANALYSIS_DEFAULTS`), named as the CLI names them:
  ``compare``, ``reference``, ``batches``, ``routes`` — ``none``, ``service``, a routes file path or a
  :class:`~tracegroup.routes.Routes` —, ``boundary``, ``pipeline``, ``heal``. Every method takes the
  groupings as ``reference=`` and ``compare=``; the former ``routing=``/``batching=`` still work with a
  ``DeprecationWarning``; any other name is a ``TypeError``. An Explorer keeps its memo (the last few
  analyses, the forests, the span names): the same options give the very same Analysis, so ``ex.diff()``
  followed by ``ex.analyze()`` returns the Analysis the frame was built from without grouping twice.
  The memo lives and dies with the Explorer; the table is never modified.
- :meth:`Explorer.trace` accepts a hex trace id in any case, 16 or 32 chars (16 is left-padded with zeros,
  as Jaeger and Zipkin 64-bit ids are at load), with or without ``0x``; a malformed id raises
  ``ValueError`` and an id not in the dump ``KeyError``. The :class:`TraceView` orders the trace's spans
  depth first (children by start time, then input order) without recursion, so traces 100k spans deep are
  fine.
- :class:`TraceView` holds one trace's data (its spans frame and header :meth:`~TraceView.facts`); its
  ``.header()``, ``.lines()``, ``.text()`` and ``.waterfall()`` hand that data to the renderers
  (:func:`tracegroup.render.text.trace_lines`, :func:`tracegroup.render.plot.waterfall`) and draw nothing
  themselves.
- Nothing here imports matplotlib (:mod:`tracegroup.render.plot` does, when a figure is drawn); pandas and
  networkx are imported when a method needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from tracegroup import tree
from tracegroup.analysis import Analysis, analyze, head_rows, head_text, renamed_options, worst_first
from tracegroup.diff import OK, VERDICTS
from tracegroup.frames import (
    DIFF_COLUMNS,
    REASON_NAMES,
    SPAN_COLUMNS,
    STR,
    spans_frame,
)
from tracegroup.frames import categorical as _categorical
from tracegroup.frames import datetimes as _datetime
from tracegroup.frames import kinds as _kinds
from tracegroup.frames import reasons as _reasons
from tracegroup.layout import TraceLayout, trace_layout
from tracegroup.load import load as load_dumps
from tracegroup.model import KIND_NAMES, SpanTable, hex_ids
from tracegroup.pipeline import PipelineOptions
from tracegroup.redact import Policy
from tracegroup.render import plot
from tracegroup.render.html import trace_iframe
from tracegroup.render.text import plural, trace_header, trace_lines, trace_records, trace_text
from tracegroup.report import REPORT_MAX_SPANS, report_data
from tracegroup.routes import Routes, load_routes

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "ANALYSIS_DEFAULTS",
    "ANOMALY_COLUMNS",
    "DIFF_COLUMNS",
    "REASON_NAMES",
    "SPAN_COLUMNS",
    "STR",
    "TRACE_COLUMNS",
    "TRANSACTION_COLUMNS",
    "AnalysisOptions",
    "Explorer",
    "TraceView",
    "analysis_options",
    "normalize_trace_id",
    "tree_order",
]

_MAX_ANALYSES = 8


class AnalysisOptions(TypedDict, total=False):
    """The keyword options of :func:`tracegroup.analyze` an :class:`Explorer` passes on."""

    compare: str
    reference: str
    batches: str | None
    routes: str | Routes
    boundary: str
    pipeline: PipelineOptions | None
    heal: bool


#: Every analysis option with :func:`tracegroup.analyze`'s default (tests/test_explore.py checks they agree).
ANALYSIS_DEFAULTS: AnalysisOptions = {
    "compare": "sentryexporter",
    "reference": "service",
    "batches": None,
    "routes": "none",
    "boundary": "service",
    "pipeline": None,
    "heal": False,
}


def analysis_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against :data:`ANALYSIS_DEFAULTS` (the former ``routing=``/``batching=``
    renamed ``routes=``/``batches=`` with a ``DeprecationWarning``)."""
    out = renamed_options(options, stacklevel=4)
    unknown = sorted(set(out) - set(ANALYSIS_DEFAULTS))
    if unknown:
        raise TypeError(
            f"unknown analysis option(s) {', '.join(unknown)} (choose from {', '.join(ANALYSIS_DEFAULTS)})"
        )
    return out


def _pair(options: Mapping[str, Any], reference: str, compare: str | None) -> dict[str, Any]:
    """``options`` with the reference grouping and, when given, the compared one."""
    out = {**options, "reference": reference}
    if compare is not None:
        out["compare"] = compare
    return out


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


def _pair_counts(first: np.ndarray, second: np.ndarray, n: int) -> np.ndarray:
    """Per value of ``first`` (0..n-1): how many distinct values of ``second`` go with it."""
    if not len(first):
        return np.zeros(n, dtype=np.int64)
    pairs = np.unique(first.astype(np.int64) * (n + 1) + second.astype(np.int64))
    return np.bincount(pairs // (n + 1), minlength=n)


def _transaction_order(table: SpanTable, roots: np.ndarray) -> np.ndarray:
    return roots[np.lexsort((roots, table.start_ns[roots], table.trace_code[roots]))]


# -------------------------------------------------------------------------------------------- columns
#: Columns (and dtypes) of :meth:`Explorer.spans` (:data:`tracegroup.frames.SPAN_COLUMNS`);
#: :meth:`Explorer.diff` adds :data:`DIFF_COLUMNS` before ``flags`` (:func:`tracegroup.frames.column_order`).
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


# ------------------------------------------------------------------------------------------- explorer
class Explorer:
    """A table and its memo: every DataFrame, trace view and figure of the notebook API (see the module
    docstring). ``options`` of every method are :class:`AnalysisOptions`."""

    def __init__(self, table: SpanTable) -> None:
        self.table = table
        self._memo: dict[Any, Any] = {}

    @classmethod
    def load(cls, paths: str | Path | Iterable[str | Path], **kwargs: Any) -> Explorer:
        """An Explorer of :func:`tracegroup.load` ``(paths, **kwargs)``."""
        return cls(load_dumps(paths, **kwargs))

    def __repr__(self) -> str:
        t = self.table
        counts = [plural(len(t), "span"), plural(t.n_traces, "trace"), plural(len(t.services), "service")]
        return f"Explorer({', '.join(counts)})"

    # ----------------------------------------------------------------------------------- memo
    def analyze(self, **options: Any) -> Analysis:
        """:func:`tracegroup.analyze` of the table with these options (a routes file path is loaded),
        memoized: the same options give the same Analysis object (the last few are kept)."""
        options = analysis_options(options)
        defaults: Mapping[str, Any] = ANALYSIS_DEFAULTS
        options = {k: v for k, v in options.items() if v != defaults[k] or isinstance(v, Routes)}
        routes = options.get("routes")
        key = (
            "analysis",
            *sorted((k, ("routes", id(v)) if isinstance(v, Routes) else str(v)) for k, v in options.items()),
        )
        if routes is not None and not isinstance(routes, Routes) and routes not in ("none", "service"):
            options["routes"] = load_routes(routes)
        memo = self._memo
        hit = memo.get(key)
        if hit is not None and (not isinstance(routes, Routes) or hit[0] is routes):
            return hit[1]  # type: ignore[no-any-return]
        result = analyze(self.table, forest=memo.get("forest"), **options)
        memo["forest"] = result.forest
        analyses = [k for k in memo if isinstance(k, tuple) and k[0] == "analysis"]
        for old in analyses[: max(0, len(analyses) - _MAX_ANALYSES + 1)]:
            del memo[old]
        memo[key] = (routes, result)
        return result

    def forest(self) -> tree.Forest:
        """The table's forest without the clock-skew check (what :func:`analyze` uses), memoized."""
        if "forest" not in self._memo:
            self._memo["forest"] = tree.build(self.table, timing=False)
        return self._memo["forest"]  # type: ignore[no-any-return]

    def _timed_forest(self) -> tree.Forest:
        """The forest with every anomaly kind, clock skew included, memoized."""
        if "timed_forest" not in self._memo:
            self._memo["timed_forest"] = tree.build(self.table, timing=True)
        return self._memo["timed_forest"]  # type: ignore[no-any-return]

    def _depth(self) -> np.ndarray:
        if "depth" not in self._memo:
            self._memo["depth"] = self.forest().depth()
        return self._memo["depth"]  # type: ignore[no-any-return]

    def _names(self, rows: np.ndarray | None) -> list[str]:
        """Names of ``rows`` (all when None): one pass over every message the first time all are asked for."""
        memo, table = self._memo, self.table
        if rows is None or "names" in memo or len(rows) > max(1024, len(table) // 8):
            if "names" not in memo:
                memo["names"] = table.names()
            names: list[str] = memo["names"]
            return names if rows is None else [names[i] for i in rows.tolist()]
        return table.names(rows)

    def trace_code(self, trace_id: str | bytes | int) -> int:
        """The table's trace code of a trace id (see :func:`normalize_trace_id`); ``KeyError`` if absent."""
        wanted = normalize_trace_id(trace_id)
        if "trace_index" not in self._memo:
            self._memo["trace_index"] = {h: c for c, h in enumerate(self.table.trace_hex)}
        code = self._memo["trace_index"].get(wanted)
        if code is None:
            raise KeyError(f"trace {wanted} is not in the dump ({self.table.n_traces:,} traces)")
        return int(code)

    # ----------------------------------------------------------------------------------- spans
    def _span_frame(
        self, rows: np.ndarray | None, analysis: Analysis | None = None, depth: np.ndarray | None = None
    ) -> pd.DataFrame:
        """:func:`tracegroup.frames.spans_frame` of ``rows`` (all rows when None) without details, from
        the memo's forest, depths and names."""
        if depth is None:
            depth = self._depth() if rows is None else self._depth()[rows]
        forest = analysis.forest if analysis is not None else self.forest()
        names = self._names(rows)
        return spans_frame(
            self.table, analysis, details=False, rows=rows, forest=forest, depth=depth, names=names
        )

    def spans(self, details: bool = False) -> pd.DataFrame:
        """One row per span in table order (columns :data:`SPAN_COLUMNS`: the ``tracegroup spans`` columns
        without an analysis).

        ``details=True`` adds status, scope, attributes, resource attributes, events and links
        (:func:`tracegroup.frames.decode_details`: one more decoding pass over every message).
        """
        if not details:
            return self._span_frame(None)
        return spans_frame(self.table, details=True, forest=self.forest(), depth=self._depth())

    def diff(self, reference: str = "service", compare: str | None = None, **options: Any) -> pd.DataFrame:
        """Per span: :data:`SPAN_COLUMNS` with, before ``flags``, :data:`DIFF_COLUMNS`: its transaction root
        under ``reference`` (``transaction``) and under ``compare`` (default ``sentryexporter``;
        ``compared_transaction``, ``""`` when dropped), the verdict, whether its reference transaction is
        incomplete, and ``reason``: why the compared grouping put it where it did. The Analysis behind it
        is ``self.analyze(reference=reference, compare=compare, **options)``."""
        an = self.analyze(**_pair(options, reference, compare))
        frame = self._span_frame(None, an)
        frame.attrs["options"] = dict(an.options)
        return frame

    # ---------------------------------------------------------------------------- transactions
    def transactions(self, strategy: str = "service", **options: Any) -> pd.DataFrame:
        """One row per transaction ``strategy`` makes (columns :data:`TRANSACTION_COLUMNS`), by trace then
        start time. The other grouping of the comparison is ``compare`` (default ``sentryexporter``) when
        ``strategy`` is the reference (default ``service``), else the reference.

        ``transaction`` is the root span id; ``name``, ``kind``, ``start``, ``end`` and ``duration_ms`` are
        the root's (a Sentry transaction's own); ``reason`` why the root opened it; ``services`` how many
        services its spans come from (more than one: a merge); ``counterparts`` into how many transactions
        of the other grouping its spans went, ``dropped`` how many of its spans the other grouping never
        sent, ``not_ok`` how many spans have another verdict than ``ok``; ``intact`` the other grouping has
        exactly this transaction; ``incomplete`` its root's reference transaction lacks its parent in the
        dump.
        """
        import pandas as pd

        table = self.table
        options = analysis_options(options)
        reference = options.pop("reference", "service")
        if strategy == reference:
            an = self.analyze(reference=reference, **options)
            g, other = an.reference, an.compared
        else:
            options.pop("compare", None)
            an = self.analyze(reference=reference, compare=strategy, **options)
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
                "name": pd.array(self._names(roots), dtype=STR),
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

    # ---------------------------------------------------------------------------------- traces
    def traces(self, reference: str = "service", compare: str | None = None, **options: Any) -> pd.DataFrame:
        """One row per trace (columns :data:`TRACE_COLUMNS`), worst first: most spans not ``ok``, then most
        spans (the order of ``analyze``'s worst traces). ``head`` is ``service: name`` of its first span
        without a parent id (else its first span whose parent is missing); ``transactions`` counts the
        reference's, ``compared_transactions`` the compared grouping's (``compare``, default
        ``sentryexporter``);
        ``start``/``duration_ms`` span its earliest start to latest end."""
        import pandas as pd

        table = self.table
        an = self.analyze(**_pair(options, reference, compare))
        per = an.diff.by_arrays("trace")
        nt = table.n_traces
        not_ok = per["spans"] - per["ok"]
        order = worst_first(an.diff)
        head_row = head_rows(table, an.forest)[order]
        names = self._names(head_row)
        heads = [head_text(table, r, nm) for r, nm in zip(head_row.tolist(), names, strict=True)]
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

    def worst_trace(self, *, analysis: Analysis | None = None, **options: Any) -> str:
        """Hex id of the worst trace (most spans not ``ok``, then most spans) under these options or the
        given ``analysis``."""
        an = analysis if analysis is not None else self.analyze(**options)
        return self.table.trace_hex[int(worst_first(an.diff)[0])]

    # ------------------------------------------------------------------------------- anomalies
    def anomalies(self) -> pd.DataFrame:
        """One row per (anomaly kind, span), kinds in :data:`tracegroup.tree.ANOMALY_KINDS` order, then by
        row (columns :data:`ANOMALY_COLUMNS`; ``meaning`` is the kind's one-line explanation, ``row`` the
        span's table row). A span can appear under several kinds. Clock skew is included."""
        import pandas as pd

        table = self.table
        found = self._timed_forest().anomalies
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
                "name": pd.array(self._names(row), dtype=STR),
                "meaning": pd.array(meanings, dtype=STR),
                "row": row,
            }
        )

    # ------------------------------------------------------------------------------- one trace
    def trace(
        self,
        trace_id: str | bytes | int,
        compare: str | None = None,
        *,
        analysis: Analysis | None = None,
        **options: Any,
    ) -> TraceView:
        """One trace (see :class:`TraceView`) under ``reference`` (default ``service``) and ``compare``
        (default ``sentryexporter``), or under the groupings of a given ``analysis`` of this table (then
        ``compare`` and the options are unused)."""
        table = self.table
        code = self.trace_code(trace_id)
        if analysis is None:
            reference = options.pop("reference", "service")
            analysis = self.analyze(**_pair(options, reference, compare))
        rows = np.flatnonzero(table.trace_code == code)
        parent = analysis.forest.parent[rows]
        local = np.where(parent >= 0, np.searchsorted(rows, np.maximum(parent, 0)), -1)
        order, depth = tree_order(local, table.start_ns[rows])
        rows = rows[order]
        frame = self._span_frame(rows, analysis, depth)
        return TraceView(table.trace_hex[code], code, rows, depth, frame, analysis)

    def show(
        self,
        trace_id: str | bytes | int,
        compare: str | None = None,
        *,
        analysis: Analysis | None = None,
        max_spans: int | None = None,
        collapse: int | None = None,
        only_bad: bool = False,
        verdict: str | Iterable[str] | None = None,
        service: str | Iterable[str] | None = None,
        depth: int | None = None,
        **options: Any,
    ) -> str:
        """One trace as the text tree ``tracegroup show`` prints (:meth:`TraceView.text`; the drawing
        options are :meth:`TraceView.layout`'s)."""
        view = self.trace(trace_id, compare, analysis=analysis, **options)
        return view.text(
            max_spans, collapse=collapse, only_bad=only_bad, verdict=verdict, service=service, depth=depth
        )

    def waterfall(
        self,
        trace_id: str | bytes | int,
        compare: str | None = None,
        *,
        analysis: Analysis | None = None,
        max_spans: int | None = None,
        collapse: int | None = None,
        only_bad: bool = False,
        verdict: str | Iterable[str] | None = None,
        service: str | Iterable[str] | None = None,
        depth: int | None = None,
        **options: Any,
    ) -> Figure:
        """Waterfall of one trace under the reference grouping and ``compare`` side by side
        (:func:`tracegroup.render.plot.waterfall`): the figure ``tracegroup plot`` saves (the drawing
        options are :meth:`TraceView.layout`'s)."""
        view = self.trace(trace_id, compare, analysis=analysis, **options)
        return view.waterfall(
            max_spans=max_spans,
            collapse=collapse,
            only_bad=only_bad,
            verdict=verdict,
            service=service,
            depth=depth,
        )

    def report(
        self,
        *,
        analysis: Analysis | None = None,
        max_spans: int = REPORT_MAX_SPANS,
        top: int = 10,
        whatif: Mapping[str, Any] | None = None,
        keep_secrets: bool = False,
        details: bool = True,
        **options: Any,
    ) -> dict[str, Any]:
        """The data of ``tracegroup report`` (:func:`tracegroup.report.report_data`) under these options
        or the given ``analysis``: the summary, ``whatif`` (a ``WhatIf.as_dict()``) when given, every trace
        worst first and the spans of the worst traces up to ``max_spans`` (0 = all) with their attributes,
        status, events, links and resource unless ``details=False``; secrets redacted as ``emit`` does
        unless ``keep_secrets``. :func:`tracegroup.render.html.report_html` draws it."""
        an = analysis if analysis is not None else self.analyze(**options)
        return report_data(
            an,
            max_spans=max_spans,
            top=top,
            whatif=dict(whatif) if whatif is not None else None,
            policy=None if keep_secrets else Policy(),
            names=self._names,
            details=details,
        )

    def corrected(self, trace_id: str | bytes | int, **options: Any) -> pd.DataFrame:
        """The correct (reference) transactions of one trace, one row per span grouped by transaction:
        what corrected payloads of that trace contain (columns ``transaction``, ``service``, ``span_id``,
        ``parent_span_id``, ``name``, ``kind``, ``depth``, ``start``, ``duration_ms``, ``verdict``)."""
        view = self.trace(trace_id, **options)
        cols = ["transaction", "service", "span_id", "parent_span_id", "name", "kind", "depth", "start"]
        frame = view.spans[[*cols, "duration_ms", "verdict"]]
        group = frame.groupby("transaction", sort=False).ngroup().to_numpy()
        return frame.iloc[np.argsort(group, kind="stable")]


def _names_list(value: str | Iterable[str] | None) -> list[str] | None:
    """One name or several as a list (None stays None)."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


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
    """One trace: its spans in tree order with both groupings, its tree, its header facts; its text and
    waterfall come from the renderers (:mod:`tracegroup.render`).

    ``spans`` has :data:`SPAN_COLUMNS` + :data:`DIFF_COLUMNS`, one row per span in depth-first order
    (index = table row; ``depth`` counts from the trace's roots). ``rows``/``depth`` are the same order
    as arrays. ``graph`` is the networkx tree (:func:`tracegroup.tree.trace_graph`) whose nodes also
    carry ``transaction``, ``compared_transaction`` and ``verdict``.
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
        for row, tx, ctx, verdict in zip(
            self.rows.tolist(),
            self.spans["transaction"],
            self.spans["compared_transaction"],
            self.spans["verdict"],
            strict=True,
        ):
            g.nodes[row].update(transaction=tx, compared_transaction=ctx, verdict=str(verdict))
        g.graph.update(trace_id=self.trace_id, **self.analysis.options)
        return g

    @functools.cached_property
    def parent_pos(self) -> np.ndarray:
        """Position in :attr:`rows` of each span's parent (``-1`` at the trace's roots)."""
        parent = self.analysis.forest.parent[self.rows]
        by_row = np.argsort(self.rows)
        at = np.searchsorted(self.rows, np.maximum(parent, 0), sorter=by_row)
        at = np.minimum(at, len(self.rows) - 1)
        return np.where(parent >= 0, by_row[at], -1).astype(np.int64)

    def facts(self) -> dict[str, Any]:
        """What the header of this trace says, as plain values, always of the whole trace: ``trace_id``,
        ``spans``, ``services``, ``batches`` (how many captured batches the trace's spans came in),
        ``exporter_calls`` (how many exporter calls of the compared grouping's delivery), ``reference``,
        ``compared``, ``transactions`` and ``compared_transactions`` (distinct transaction roots, keyed by
        root row: duplicate span ids do not merge them), ``batching`` and ``routing`` (the ``batches``
        and ``routes`` options, under the words the header prints), ``verdicts`` (count per verdict, in
        :data:`~tracegroup.diff.VERDICTS` order, verdicts with no span left out), ``parent_missing`` and
        ``no_timestamp`` (spans without a start time)."""
        an, f = self.analysis, self.spans
        counts = f["verdict"].value_counts()
        ref, cmp = an.reference.root[self.rows], an.compared.root[self.rows]
        call = an.delivery.call[self.rows]
        return {
            "trace_id": self.trace_id,
            "spans": len(f),
            "services": int(f["service"].nunique()),
            "batches": int(f["batch"].nunique()),
            "exporter_calls": len(np.unique(call[call >= 0])),
            "reference": an.options["reference"],
            "compared": an.options["compare"],
            "transactions": len(np.unique(ref[ref >= 0])),
            "compared_transactions": len(np.unique(cmp[cmp >= 0])),
            "batching": an.options["batches"],
            "routing": an.options["routes"],
            "verdicts": {v: int(counts[v]) for v in VERDICTS if counts.get(v, 0)},
            "parent_missing": int(f["parent_missing"].sum()),
            "no_timestamp": int((f["start_ns"].to_numpy() <= 0).sum()),
        }

    def layout(
        self,
        max_spans: int | None = None,
        *,
        collapse: int | None = None,
        only_bad: bool = False,
        verdict: str | Iterable[str] | None = None,
        service: str | Iterable[str] | None = None,
        depth: int | None = None,
    ) -> TraceLayout:
        """The rows the text tree and the waterfall draw (:func:`tracegroup.layout.trace_layout`):
        ``max_spans`` rows at most (default :data:`~tracegroup.layout.DEFAULT_MAX_SPANS`, 0 = all; every
        span not ``ok`` and its path to the root first), siblings alike collapsed into one row when at
        least ``collapse`` (default :data:`~tracegroup.layout.DEFAULT_COLLAPSE`, 0 = never), only spans
        not ``ok`` (``only_bad``), of these verdicts, of these services, at most ``depth`` deep (their
        ancestors kept as context)."""
        an = self.analysis
        return trace_layout(
            self.spans,
            self.parent_pos,
            an.reference.root[self.rows],
            an.compared.root[self.rows],
            an.delivery.call[self.rows],
            self.facts(),
            self.table.services,
            max_spans=max_spans,
            collapse=collapse,
            only_bad=only_bad,
            verdicts=_names_list(verdict),
            service=_names_list(service),
            max_depth=depth,
        )

    def header(self) -> list[str]:
        """Lines summing the trace up: spans, services, transactions under both groupings, verdicts
        (:func:`tracegroup.render.text.trace_header` of :meth:`facts`)."""
        return trace_header(self.facts())

    def lines(self, max_spans: int | None = None, **layout: Any) -> list[str]:
        """The trace as an indented tree, one line per row of :meth:`layout` (same options;
        :func:`tracegroup.render.text.trace_lines`): name (indented by depth, ``×N`` on a collapsed row),
        service, kind, duration, the exporter call it came in, its transaction root under the reference
        and the compared grouping (``*`` marks a span that is its own root, ``(dropped)`` a span never
        sent), the verdict and the compared grouping's reason; then what was left out."""
        return trace_lines(self.layout(max_spans, **layout))

    def text(self, max_spans: int | None = None, **layout: Any) -> str:
        """:meth:`lines` as one text with a final newline: what ``tracegroup show`` prints."""
        return trace_text(self.layout(max_spans, **layout))

    def records(self, max_spans: int | None = None, **layout: Any) -> dict[str, Any]:
        """What ``tracegroup show --format json`` prints: the facts, what was left out and one object
        per span of :meth:`layout` (with ``collapse=0`` unless given;
        :func:`tracegroup.render.text.trace_records`)."""
        layout.setdefault("collapse", 0)
        return trace_records(self.layout(max_spans, **layout))

    def __repr__(self) -> str:
        return "\n".join(self.header())

    def report(self, keep_secrets: bool = False) -> dict[str, Any]:
        """This trace as the data of a report page holding only its view
        (:func:`tracegroup.report.report_data`; secrets redacted unless ``keep_secrets``)."""
        return report_data(
            self.analysis,
            traces=[self.code],
            policy=None if keep_secrets else Policy(),
            summary=False,
            title=f"trace {self.trace_id}",
        )

    def _repr_html_(self) -> str:
        """The interactive trace view of ``tracegroup report`` (collapse/expand, both groupings side by
        side, minimap, zoom, batch lane, filters), inline in a notebook cell."""
        return trace_iframe(self.report())

    def waterfall(self, *, max_spans: int | None = None, **layout: Any) -> Figure:
        """This trace's waterfall under both groupings (:func:`tracegroup.render.plot.waterfall` of
        :meth:`layout`, same options)."""
        return plot.waterfall(self.layout(max_spans, **layout), self.analysis.options)
