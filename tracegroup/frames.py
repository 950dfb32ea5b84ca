"""The one per-span table: pandas views of a table and an analysis, one row per span.

Contract: :func:`spans_frame` (and :func:`spans_frames`, the same rows as frames of whole batches, which
``tracegroup spans`` writes one at a time through :mod:`tracegroup.render.tables`) is the only builder of
per-span frames: ``tracegroup spans`` (CSV, JSON Lines, Parquet), :func:`tracegroup.spans_frame`, and the
notebook's ``Explorer.spans()``, ``Explorer.diff()`` and ``TraceView.spans`` all get their columns from
one function (``_frame``), so they never disagree. One row per span in table order (or in the order of
``rows``), index = table row (index name ``row``). The columns, in this order (README.md, "``tracegroup
spans`` columns"):

- :data:`SPAN_COLUMNS` before ``flags``: ``trace_id, span_id, parent_span_id`` (lowercase hex, 32 and 16
  chars, ``""`` for no parent), ``service, name, kind`` (OTLP kind name), ``batch``, ``start_ns,
  end_ns``, ``start, end`` (the same instants as UTC datetimes), ``duration_ms``, ``depth`` (0 at a span
  without a parent in the dump), ``parent_missing`` (has a parent id that is not in the dump);
- given an :class:`~tracegroup.analysis.Analysis`, :data:`DIFF_COLUMNS`: ``transaction`` (root span id
  of its reference transaction), ``compared_transaction`` (root span id of its compared transaction,
  ``""`` when dropped), ``verdict``, ``incomplete``, ``reason`` (why the compared grouping put it where
  it did);
- ``flags`` (OTLP span flags), ``position`` (``resource/scope/span`` index in its batch message);
- with ``details``, :data:`DETAIL_COLUMNS`: status, scope, attributes, resource attributes, events and
  links, decoded from every batch message in one pass (:func:`decode_details`), each distinct set of a
  span's detail fields once.

:func:`span_columns` gives the same rows and values per chunk as :class:`SpanColumns` (numpy and Arrow
columns, repeated values as :class:`Coded` indices into their distinct values) for the file writers, with
no pandas frame and no Python object per span; :func:`file_chunks` is what ``tracegroup spans`` writes
(:func:`span_columns` when pyarrow is installed, else :func:`spans_frames`). :func:`detail_messages` and
:func:`span_keys` are the message readers the detail decoding (and ``tracegroup emit``) share: spans with
their details kept as encoded bytes, or cut to one bytes key per span by protobuf itself.

Dtypes (:data:`SPAN_COLUMNS`, :data:`DIFF_COLUMNS`): ids, names and ``position`` pandas strings (``str``),
``service``/``kind``/``verdict``/``reason`` categoricals (every service of the table, the six OTLP kind
names, :data:`~tracegroup.diff.VERDICTS`, lowercase :class:`~tracegroup.grouping.Reason` names), counts
and times in ns ``int64``, ``start``/``end`` ``datetime64[ns, UTC]``, ``duration_ms`` float64. The file
writers write categoricals as their labels. Every column is built from whole numpy columns (ids as hex
through one Arrow buffer when pyarrow is installed): no per-span Python loop except the detail decoding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup import tree
from tracegroup.diff import VERDICTS
from tracegroup.model import KIND_NAMES, STATUS_NAMES, SpanTable, hex_ids
from tracegroup.otlp import any_json, attributes
from tracegroup.reasons import Reason

if TYPE_CHECKING:
    import pandas as pd

    from tracegroup.analysis import Analysis

#: pandas dtype of id and name columns (pandas' string dtype).
STR = "str"
#: Categories of the ``reason`` columns, indexed by position; :data:`_REASON_CODE` maps Reason -> position.
REASON_NAMES: tuple[str, ...] = tuple(r.name.lower() for r in Reason)
_REASON_CODE = np.zeros(max(Reason) + 1, dtype=np.int16)
for _pos, _reason in enumerate(Reason):
    _REASON_CODE[_reason] = _pos

#: Columns (and dtypes) of every per-span frame, in order; with an analysis :data:`DIFF_COLUMNS` go in
#: before ``flags`` (:func:`column_order`).
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
    "position": STR,
}
#: Columns (and dtypes) an analysis adds: both transactions of the span, its verdict and the reason.
DIFF_COLUMNS: dict[str, str] = {
    "transaction": STR,
    "compared_transaction": STR,
    "verdict": "category",
    "incomplete": "bool",
    "reason": "category",
}
#: Spans per frame of :func:`spans_frames` (whole batches; one frame's Python objects live at a time).
CHUNK_SPANS = 16_384
#: Columns ``details`` adds at the end (nested ones hold dicts and lists).
DETAIL_COLUMNS = (
    "status_code",
    "status_message",
    "scope_name",
    "scope_version",
    "attributes",
    "resource_attributes",
    "events",
    "links",
)
#: The :data:`SPAN_COLUMNS` that come after the :data:`DIFF_COLUMNS`.
_TAIL = ("flags", "position")


def column_order(analysis: bool, details: bool) -> list[str]:
    """The columns of :func:`spans_frame`, in order, with or without an analysis and the details."""
    head = [c for c in SPAN_COLUMNS if c not in _TAIL]
    return (
        head
        + (list(DIFF_COLUMNS) if analysis else [])
        + list(_TAIL)
        + (list(DETAIL_COLUMNS) if details else [])
    )


# ------------------------------------------------------------------------------------------- helpers
def datetimes(ns: np.ndarray) -> pd.Series:
    """Nanoseconds since the epoch as ``datetime64[ns, UTC]``."""
    import pandas as pd

    return pd.Series(ns.astype(np.int64).view("M8[ns]")).dt.tz_localize("UTC")


def categorical(codes: np.ndarray, categories: Sequence[str]) -> pd.Categorical:
    import pandas as pd

    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(categories))


def kinds(kind: np.ndarray) -> np.ndarray:
    """OTLP kind codes, unknown ones as 0 (unspecified)."""
    return np.where((kind < 0) | (kind >= len(KIND_NAMES)), 0, kind)


def reasons(reason: np.ndarray) -> pd.Categorical:
    """Reason codes as a categorical of :data:`REASON_NAMES`."""
    return categorical(_REASON_CODE[reason.astype(np.int64)], REASON_NAMES)


def str_array(values: Sequence[str] | np.ndarray) -> Any:
    """Strings as a pandas ``str`` array (through one Arrow array when pyarrow is there: no per-string
    check)."""
    import pandas as pd

    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pyarrow is the parquet extra
        return pd.array(values, dtype=STR)
    return pd.array(pa.array(values, type=pa.large_string()), dtype=STR)


def hex_array(values: np.ndarray, width: int, blank: np.ndarray | None = None) -> Any:
    """Lowercase hex ids (uint64 span ids: ``width`` 16; V16 trace ids: 32) as a pandas ``str`` array,
    ``""`` where ``blank``; built from one hex buffer without a Python string per id when pyarrow is
    there."""
    import pandas as pd

    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - pyarrow is the parquet extra
        text = np.array(hex_ids(values, width), dtype=object)
        if blank is not None:
            text[blank] = ""
        return pd.array(text, dtype=STR)
    return pd.array(hex_arrow(values, width, blank), dtype=STR)


def hex_arrow(values: np.ndarray, width: int, blank: np.ndarray | None = None) -> Any:
    """:func:`hex_array` as a pyarrow ``large_string`` array (needs pyarrow)."""
    import pyarrow as pa

    kept = values if blank is None else values[~blank]
    raw = (kept.astype(">u8") if width == 16 else kept).tobytes().hex().encode("ascii")
    lengths = np.full(len(values), width, dtype=np.int64)
    if blank is not None:
        lengths[blank] = 0
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(raw))


def root_hex(table: SpanTable, root: np.ndarray, span_hex: np.ndarray | None = None) -> np.ndarray:
    """Hex span id of each root row, ``""`` where the root is -1 (dropped). ``span_hex``: the hex ids of
    every row when already at hand (object array)."""
    safe = np.maximum(root, 0)
    out = span_hex[safe] if span_hex is not None else np.array(hex_ids(table.span_id[safe], 16), dtype=object)
    out[root < 0] = ""
    return out


def positions(table: SpanTable, rows: np.ndarray | slice) -> np.ndarray:
    """``resource/scope/span`` index of each span in its batch message (object array of str): the distinct
    triples are formatted once, then taken by their rank."""
    rank, text = coded_positions(table, rows)
    return np.array(text, dtype=object)[rank] if len(rank) else np.zeros(0, dtype=object)


def coded_positions(table: SpanTable, rows: np.ndarray | slice) -> Coded:
    """:func:`positions` as the distinct texts and each span's index into them."""
    res = table.res[rows].astype(np.int64)
    scope = table.scope[rows].astype(np.int64)
    idx = table.idx[rows].astype(np.int64)
    if not len(res):
        return Coded(np.zeros(0, dtype=np.int64), [])
    scope_n, idx_n = int(scope.max()) + 1, int(idx.max()) + 1
    key = (res * scope_n + scope) * idx_n + idx
    uniq, rank = np.unique(key, return_inverse=True)
    r, rest = np.divmod(uniq, scope_n * idx_n)
    s, i = np.divmod(rest, idx_n)
    text = [f"{a}/{b}/{c}" for a, b, c in zip(r.tolist(), s.tolist(), i.tolist(), strict=True)]
    return Coded(rank.reshape(-1), text)


class Coded(NamedTuple):
    """A column as its distinct values and, per row, the index of its value (``values[codes[i]]``)."""

    codes: np.ndarray
    values: Sequence[Any]


def decode_details(table: SpanTable, batches: range | None = None) -> dict[str, list[Any]]:
    """Decode name, status, scope, attributes, resource attributes, events and links of every span (of
    the batches in ``batches`` only, when given: their rows are contiguous).

    Each span's detail fields are cut out as one encoded string (:class:`_Details`), and each distinct one
    is decoded once per call: spans with the same attributes share one dict (and the same events and links
    lists), as the spans of one resource share one ``resource_attributes`` dict (treat them as read-only).
    """
    dec = _Details(table)
    codes, scopes = dec.read(range(len(table.batches)) if batches is None else batches)
    rows = codes.tolist()
    status = [dec.status_values[i] for i in dec.status]
    cols: dict[str, list[Any]] = {
        "name": list(map(dec.name.__getitem__, rows)),
        "status_code": [status[i][0] for i in rows],
        "status_message": [status[i][1] for i in rows],
    }
    sname, sver, res = [], [], []
    for n, scope_name, scope_version, res_attrs in scopes:
        sname.extend([scope_name] * n)
        sver.extend([scope_version] * n)
        res.extend([res_attrs] * n)
    sets = [dec.set_values[i] for i in dec.attrs]
    cols.update(
        scope_name=sname,
        scope_version=sver,
        attributes=list(map(sets.__getitem__, rows)),
        resource_attributes=res,
        events=list(map(dec.events.__getitem__, rows)),
        links=list(map(dec.links.__getitem__, rows)),
    )
    return cols


class _Details:
    """The detail fields of spans, each distinct combination decoded once.

    Per message, protobuf does the cutting: the message is parsed as a copy of ``TracesData`` whose
    ``Span`` declares only name, status, attributes, events and links (the last four as ``bytes``:
    :func:`detail_messages`), its unknown fields (every other span field) are discarded, and the result,
    serialized again, is parsed as a copy whose ``ScopeSpans.spans`` are ``bytes``: one string per span
    holding exactly its detail fields, with no Python object per field. Equal strings have equal details,
    so each distinct string gets a code (:attr:`codes`), and only new ones are decoded, as
    :func:`decode_details` did per span: each distinct attribute list, attribute and status once.
    """

    def __init__(self, table: SpanTable) -> None:
        self.table = table
        self.reduce, self.split, self.span = _detail_classes()
        self.clear()

    def clear(self) -> None:
        self.codes: dict[bytes, int] = {}
        self.name: list[str] = []
        self.status: list[int] = []  # per code: index into status_values
        self.attrs: list[int] = []  # per code: index into set_values
        self.events: list[list[dict[str, Any]]] = []
        self.links: list[list[dict[str, Any]]] = []
        self.statuses: dict[bytes, int] = {}
        self.status_values: list[tuple[str, str]] = []
        self.sets: dict[tuple[bytes, ...], int] = {}
        self.set_values: list[dict[str, Any]] = []
        self.pairs: dict[bytes, tuple[str, Any]] = {}

    def read(self, batches: range) -> tuple[np.ndarray, list[tuple[int, str, str, dict[str, Any]]]]:
        """The code of every span of ``batches`` (contiguous rows, in row order) and its scopes: (spans,
        scope name, scope version, resource attributes), one dict per resource."""
        if len(self.codes) >= _MEMO:
            self.clear()
        codes = self.codes
        out: list[int] = []
        scopes: list[tuple[int, str, str, dict[str, Any]]] = []
        for b in batches:
            td = self.reduce(self.table.batches[b].raw)
            td.DiscardUnknownFields()
            for rs in self.split(td.SerializeToString()).resource_spans:
                res_attrs: dict[str, Any] | None = None
                for ss in rs.scope_spans:
                    spans = ss.spans
                    if not len(spans):
                        continue
                    if res_attrs is None:
                        res_attrs = attributes(rs.resource.attributes)
                    scopes.append((len(spans), ss.scope.name, ss.scope.version, res_attrs))
                    setdefault = codes.setdefault
                    out.extend([setdefault(k, len(codes)) for k in spans])
        if len(codes) > len(self.name):
            for key in list(codes)[len(self.name) :]:
                self._decode(key)
        return np.array(out, dtype=np.int64), scopes

    def _decode(self, key: bytes) -> None:
        sp = self.span(key)
        self.name.append(sp.name)
        st = sp.status
        code = self.statuses.get(st)
        if code is None:
            pb = PbStatus.FromString(st)
            c = pb.code
            code = self.statuses[st] = len(self.status_values)
            self.status_values.append((STATUS_NAMES[c] if 0 <= c < 3 else str(c), pb.message))
        self.status.append(code)
        kvs = tuple(sp.attributes)
        code = self.sets.get(kvs)
        if code is None:
            pairs = self.pairs
            code = self.sets[kvs] = len(self.set_values)
            self.set_values.append(dict(pairs.get(kv) or _pair(kv, pairs) for kv in kvs))
        self.attrs.append(code)
        evs, lns = sp.events, sp.links
        self.events.append(_events(evs) if len(evs) else _EMPTY)
        self.links.append(_links(lns) if len(lns) else _EMPTY)

    def columns(self, batches: range) -> dict[str, Coded]:
        """The columns :data:`DETAIL_COLUMNS` and ``name`` of ``batches`` as :class:`Coded` columns, each
        with the distinct values of these rows only."""
        codes, scopes = self.read(batches)
        uniq, inv = np.unique(codes, return_inverse=True)
        inv = inv.reshape(-1)
        ul = uniq.tolist()

        def by(per_code: list[int], values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
            which, rank = np.unique(np.array([per_code[i] for i in ul], dtype=np.int64), return_inverse=True)
            return rank.reshape(-1)[inv], [values[i] for i in which.tolist()]

        st_codes, st_values = by(self.status, self.status_values)
        set_codes, set_values = by(self.attrs, self.set_values)
        sizes = np.array([sc[0] for sc in scopes], dtype=np.int64)
        per_scope = np.repeat(np.arange(len(scopes)), sizes)
        res_ids: dict[int, int] = {}
        res_values: list[dict[str, Any]] = []
        res_of_scope = []
        for sc in scopes:
            k = res_ids.get(id(sc[3]))
            if k is None:
                k = res_ids[id(sc[3])] = len(res_values)
                res_values.append(sc[3])
            res_of_scope.append(k)
        return {
            "name": Coded(inv, [self.name[i] for i in ul]),
            "status_code": Coded(st_codes, [v[0] for v in st_values]),
            "status_message": Coded(st_codes, [v[1] for v in st_values]),
            "scope_name": Coded(per_scope, [sc[1] for sc in scopes]),
            "scope_version": Coded(per_scope, [sc[2] for sc in scopes]),
            "attributes": Coded(set_codes, set_values),
            "resource_attributes": Coded(np.array(res_of_scope, dtype=np.int64)[per_scope], res_values),
            "events": Coded(inv, [self.events[i] for i in ul]),
            "links": Coded(inv, [self.links[i] for i in ul]),
        }


_EMPTY: list[Any] = []


#: Most distinct attribute lists (and attributes) remembered at once while decoding details.
_MEMO = 1 << 16


def _pair(raw: bytes, pairs: dict[bytes, tuple[str, Any]]) -> tuple[str, Any]:
    kv = KeyValue.FromString(raw)
    out = pairs[raw] = (kv.key, any_json(kv.value))
    return out


@functools.cache
def detail_messages() -> Callable[[bytes | memoryview], Any]:
    """``FromString`` of ``TracesData`` as declared by a copy of the OTLP descriptors in a pool of its own
    where ``Span.status``, ``attributes``, ``events`` and ``links`` are declared ``bytes`` (the same wire
    format: a length-delimited field), so that parsing makes one bytes object per attribute instead of a
    message object per key-value and per value."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, trace_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        for msg in proto.message_type:
            if msg.name == "Span":
                for f in msg.field:
                    if f.name in ("status", "attributes", "events", "links"):
                        f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                        f.ClearField("type_name")
        pool.Add(proto)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(TracesData.DESCRIPTOR.full_name))
    return cls.FromString  # type: ignore[no-any-return]


_DETAIL_BYTES = ("status", "attributes", "events", "links")


@functools.cache
def _detail_classes(
    fields: tuple[str, ...] = ("name", *_DETAIL_BYTES),
) -> tuple[Callable[[bytes | memoryview], Any], Callable[[bytes], Any], Callable[[bytes], Any]]:
    """``FromString`` of the copies :class:`_Details` parses with: ``TracesData`` whose ``Span`` declares only
    ``fields`` (status, attributes, events and links as ``bytes``, as in :func:`detail_messages`);
    ``TracesData`` whose ``ScopeSpans.spans`` are ``bytes``; and that ``Span`` itself."""
    bytes_type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES

    def details_only(msg: Any) -> None:
        if msg.name == "Span":
            kept = [f for f in msg.field if f.name in fields]
            for f in kept:
                if f.name in _DETAIL_BYTES:
                    f.type = bytes_type
                    f.ClearField("type_name")
            del msg.field[:]
            msg.field.extend(kept)

    def spans_as_bytes(msg: Any) -> None:
        if msg.name == "ScopeSpans":
            for f in msg.field:
                if f.name == "spans":
                    f.type = bytes_type
                    f.ClearField("type_name")

    reduced = _pool_copy(details_only)
    split = _pool_copy(spans_as_bytes)
    return (
        _message_class(reduced, TracesData).FromString,
        _message_class(split, TracesData).FromString,
        _message_class(reduced, PbSpan).FromString,
    )


def span_keys(fields: tuple[str, ...]) -> Callable[[bytes | memoryview], tuple[Any, Callable[[bytes], Any]]]:
    """A reader of one serialized ``TracesData`` giving (the message with every span cut to its ``fields``
    as one ``bytes`` string, its key: ``resource_spans[..].scope_spans[..].spans`` are those strings, the
    resources and scopes whole; ``FromString`` of the cut ``Span``, whose ``status``, ``attributes``,
    ``events`` and ``links`` are ``bytes`` as in :func:`detail_messages`). Spans with equal keys have
    equal ``fields``; protobuf does the cutting, with no Python object per span but its key."""
    reduce, split, span = _detail_classes(tuple(fields))

    def read(raw: bytes | memoryview) -> tuple[Any, Callable[[bytes], Any]]:
        td = reduce(raw)
        td.DiscardUnknownFields()
        return split(td.SerializeToString()), span

    return read


def _pool_copy(edit: Callable[[Any], None]) -> Any:
    """A descriptor pool of its own holding copies of the OTLP common, resource and trace files, each
    message declaration passed through ``edit`` first."""
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, trace_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        for msg in proto.message_type:
            edit(msg)
        pool.Add(proto)
    return pool


def _message_class(pool: Any, cls: Any) -> Any:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(cls.DESCRIPTOR.full_name))


def _events(evs: Any) -> list[dict[str, Any]]:
    out = []
    for raw in evs:
        e = PbSpan.Event.FromString(raw)
        out.append({"name": e.name, "time_ns": e.time_unix_nano, "attributes": attributes(e.attributes)})
    return out


def _links(lns: Any) -> list[dict[str, Any]]:
    out = []
    for raw in lns:
        ln = PbSpan.Link.FromString(raw)
        out.append(
            {
                "trace_id": ln.trace_id.hex(),
                "span_id": ln.span_id.hex(),
                "flags": ln.flags,
                "attributes": attributes(ln.attributes),
            }
        )
    return out


def batch_chunks(table: SpanTable, spans: int = CHUNK_SPANS) -> Iterator[tuple[range, slice]]:
    """The table cut into runs of whole batches of about ``spans`` spans: (batches, their rows)."""
    b0 = row0 = row = 0
    for b, batch in enumerate(table.batches):
        row += batch.spans
        if row - row0 >= spans or b == len(table.batches) - 1:
            yield range(b0, b + 1), slice(row0, row)
            b0, row0 = b + 1, row
    if not table.batches:
        yield range(0), slice(0, 0)


# --------------------------------------------------------------------------------------------- frame
def spans_frame(
    table: SpanTable,
    analysis: Analysis | None = None,
    *,
    details: bool = True,
    rows: np.ndarray | None = None,
    forest: tree.Forest | None = None,
    depth: np.ndarray | None = None,
    names: list[str] | None = None,
    details_: bool | None = None,
) -> pd.DataFrame:
    """One row per span (see the module docstring).

    ``rows`` picks and orders the spans (all, in table order, when None; ``details`` needs all).
    ``forest`` (default: the analysis's, else built here), ``depth`` (of the listed rows) and ``names``
    (of the listed rows) let a caller that already has them skip the work; ``depth`` may also be another
    depth, such as a trace view's. ``details_`` is the former name of ``details``.
    """
    import pandas as pd

    if details_ is not None:
        details = details_
    if details and rows is not None:
        raise ValueError("details are decoded for every span: give rows=None")
    picked = None if rows is None else np.asarray(rows, dtype=np.int64)
    sel: np.ndarray | slice = slice(None) if picked is None else picked
    index = pd.RangeIndex(len(table), name="row") if picked is None else pd.Index(picked, name="row")
    if forest is None:
        forest = analysis.forest if analysis is not None else tree.build(table, timing=False)
    if depth is None:
        depth = forest.depth()[sel]
    decoded = decode_details(table) if details else {}
    if details:
        names = decoded.pop("name")
    elif names is None:
        names = table.names(picked)
    return _frame(table, analysis, forest, sel, index, depth, names, decoded)


def spans_frames(
    table: SpanTable,
    analysis: Analysis | None = None,
    *,
    details: bool = True,
    forest: tree.Forest | None = None,
    chunk: int = CHUNK_SPANS,
) -> Iterator[pd.DataFrame]:
    """:func:`spans_frame` of every span, in order, as frames of whole batches of about ``chunk`` spans:
    concatenated, the same rows, columns and values. Writers take one at a time, so the Python objects of
    the details never exist for the whole dump at once."""
    import pandas as pd

    if forest is None:
        forest = analysis.forest if analysis is not None else tree.build(table, timing=False)
    depth = forest.depth()
    for batches, rows in batch_chunks(table, chunk):
        if details:
            decoded = decode_details(table, batches)
            names = decoded.pop("name")
        else:
            decoded, names = {}, batch_names(table, batches)
        index = pd.RangeIndex(rows.start, rows.stop, name="row")
        yield _frame(table, analysis, forest, rows, index, depth[rows], names, decoded)


class SpanColumns:
    """One chunk of :func:`span_columns`: the columns of :func:`spans_frame`, in order, for the file
    writers (:func:`tracegroup.render.tables.write_frames`). Each column is a numpy array (``int64``,
    ``bool``, ``float64``, ``datetime64[ns]`` for ``start``/``end``, in UTC), a pyarrow ``large_string``
    array of plain text that no format quotes or escapes (ids), or a :class:`Coded` column
    (categoricals, names, positions and the details: the nested ones hold dicts and lists). ``len()`` is
    its number of rows."""

    def __init__(self, columns: dict[str, Any], rows: int) -> None:
        self.columns = columns
        self.rows = rows

    def __len__(self) -> int:
        return self.rows


def span_columns(
    table: SpanTable,
    analysis: Analysis | None = None,
    *,
    details: bool = True,
    forest: tree.Forest | None = None,
    chunk: int = CHUNK_SPANS,
) -> Iterator[SpanColumns]:
    """:func:`spans_frames` as :class:`SpanColumns` (needs pyarrow): the same rows, columns and values
    without a pandas frame or a Python object per span and value; repeated values (names, statuses,
    scopes, attribute lists …) are kept once per chunk with an index per row."""
    if forest is None:
        forest = analysis.forest if analysis is not None else tree.build(table, timing=False)
    depth = forest.depth()
    dec = _Details(table) if details else None
    seen: dict[int, str] = {}
    for batches, rows in batch_chunks(table, chunk):
        decoded = dec.columns(batches) if dec is not None else {}
        name = decoded.pop("name") if dec is not None else Coded(*_codes(batch_names(table, batches)))
        yield SpanColumns(
            _columns(table, analysis, forest, rows, depth[rows], name, decoded, seen), rows.stop - rows.start
        )


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Strings as (index per value, distinct values)."""
    memo: dict[str, int] = {}
    codes = np.array([memo.setdefault(v, len(memo)) for v in values], dtype=np.int64)
    return codes, list(memo)


def _columns(
    table: SpanTable,
    analysis: Analysis | None,
    forest: tree.Forest,
    sel: slice,
    depth: np.ndarray,
    name: Coded,
    decoded: dict[str, Coded],
    seen: dict[int, str],
) -> dict[str, Any]:
    """The columns of rows ``sel`` for :class:`SpanColumns` (the same as :func:`_frame`)."""
    parent = table.parent_id[sel]
    start, end = table.start_ns[sel].astype(np.int64), table.end_ns[sel].astype(np.int64)
    cols: dict[str, Any] = {
        "trace_id": hex_arrow(table.trace_id[sel], 32),
        "span_id": hex_arrow(table.span_id[sel], 16),
        "parent_span_id": hex_arrow(parent, 16, parent == 0),
        "service": Coded(table.service[sel], table.services),
        "name": name,
        "kind": Coded(kinds(table.kind[sel]), KIND_NAMES),
        "batch": table.batch[sel].astype(np.int64),
        "start_ns": start,
        "end_ns": end,
        "start": start.view("M8[ns]"),
        "end": end.view("M8[ns]"),
        "duration_ms": (end - start) / 1e6,
        "depth": np.asarray(depth).astype(np.int64),
        "parent_missing": np.asarray(forest.missing_parent[sel], dtype=bool),
    }
    if analysis is not None:
        ref, cmp = analysis.reference.root[sel], analysis.compared.root[sel]
        cols["transaction"] = hex_arrow(table.span_id[np.maximum(ref, 0)], 16, ref < 0)
        cols["compared_transaction"] = hex_arrow(table.span_id[np.maximum(cmp, 0)], 16, cmp < 0)
        cols["verdict"] = Coded(analysis.diff.verdict[sel], VERDICTS)
        cols["incomplete"] = np.asarray(analysis.diff.incomplete[sel], dtype=bool)
        cols["reason"] = Coded(_REASON_CODE[analysis.compared.reason[sel].astype(np.int64)], REASON_NAMES)
    cols["flags"] = table.flags[sel].astype(np.int64)
    cols["position"] = _position_codes(table, sel, seen)
    cols.update(decoded)
    return cols


def _position_codes(table: SpanTable, rows: slice, seen: dict[int, str]) -> Coded:
    """:func:`positions` as a :class:`Coded` column; ``seen`` remembers the text of each position across
    chunks (batch messages repeat the same positions)."""
    res = table.res[rows].astype(np.int64)
    scope = table.scope[rows].astype(np.int64)
    idx = table.idx[rows].astype(np.int64)
    if not len(res) or max(res.max(), scope.max()) >= 1 << 20 or idx.max() >= 1 << 23:
        return coded_positions(table, rows)
    uniq, rank = np.unique((res << 43) | (scope << 23) | idx, return_inverse=True)
    if len(seen) >= _MEMO:
        seen.clear()
    text = []
    for key in uniq.tolist():
        t = seen.get(key)
        if t is None:
            t = seen[key] = f"{key >> 43}/{(key >> 23) & 0xFFFFF}/{key & 0x7FFFFF}"
        text.append(t)
    return Coded(rank.reshape(-1), text)


def file_chunks(
    table: SpanTable,
    analysis: Analysis | None = None,
    *,
    details: bool = True,
    forest: tree.Forest | None = None,
    chunk: int = CHUNK_SPANS,
) -> Iterator[SpanColumns] | Iterator[pd.DataFrame]:
    """What ``tracegroup spans`` hands its writer: :func:`span_columns` when pyarrow is installed, else
    :func:`spans_frames` (the same rows and values); a table without spans gets its one empty frame, whose
    Parquet file has always typed the empty detail columns as pandas does."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - pyarrow is the parquet extra
        return spans_frames(table, analysis, details=details, forest=forest, chunk=chunk)
    if not len(table):
        return spans_frames(table, analysis, details=details, forest=forest, chunk=chunk)
    return span_columns(table, analysis, details=details, forest=forest, chunk=chunk)


def batch_names(table: SpanTable, batches: range) -> list[str]:
    """Span names of every span of ``batches`` (contiguous rows), in row order."""
    out: list[str] = []
    for b in batches:
        for rs in TracesData.FromString(table.batches[b].raw).resource_spans:
            for ss in rs.scope_spans:
                out.extend(map(_NAME, ss.spans))
    return out


_NAME = attrgetter("name")


def _frame(
    table: SpanTable,
    analysis: Analysis | None,
    forest: tree.Forest,
    sel: np.ndarray | slice,
    index: pd.Index,
    depth: np.ndarray,
    names: list[str],
    decoded: dict[str, list[Any]],
) -> pd.DataFrame:
    """The frame of rows ``sel``."""
    import pandas as pd

    span_id = table.span_id[sel]
    parent = table.parent_id[sel]
    start, end = table.start_ns[sel].astype(np.int64), table.end_ns[sel].astype(np.int64)
    cols: dict[str, Any] = {
        "trace_id": hex_array(table.trace_id[sel], 32),
        "span_id": hex_array(span_id, 16),
        "parent_span_id": hex_array(parent, 16, parent == 0),
        "service": categorical(table.service[sel], table.services),
        "name": str_array(names),
        "kind": categorical(kinds(table.kind[sel]), KIND_NAMES),
        "batch": table.batch[sel].astype(np.int64),
        "start_ns": start,
        "end_ns": end,
        "start": datetimes(start).array,
        "end": datetimes(end).array,
        "duration_ms": (end - start) / 1e6,
        "depth": np.asarray(depth).astype(np.int64),
        "parent_missing": forest.missing_parent[sel],
    }
    if analysis is not None:
        ref, cmp = analysis.reference.root[sel], analysis.compared.root[sel]
        cols["transaction"] = hex_array(table.span_id[np.maximum(ref, 0)], 16, ref < 0)
        cols["compared_transaction"] = hex_array(table.span_id[np.maximum(cmp, 0)], 16, cmp < 0)
        cols["verdict"] = categorical(analysis.diff.verdict[sel], VERDICTS)
        cols["incomplete"] = analysis.diff.incomplete[sel]
        cols["reason"] = reasons(analysis.compared.reason[sel])
    cols["flags"] = table.flags[sel].astype(np.int64)
    cols["position"] = str_array(positions(table, sel))
    cols.update(decoded)
    return pd.DataFrame(cols, index=index)
