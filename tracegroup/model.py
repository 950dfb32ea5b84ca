"""The flat span table every other module works on.

Contract:
- A :class:`SpanTable` holds one row per input span, in input order (batch by batch, then resource,
  scope and span order inside each batch). Row ``i`` of every column describes the same span.
- Hot columns are numpy arrays, extracted once at load time: ids as raw integers/bytes (never hex strings),
  kind, OTLP flags, start/end in ns, service as an integer code into :attr:`SpanTable.services`, batch index
  and the span's position inside its batch message (resource, scope, span index).
- Everything else (name, status, attributes, resource attributes, scope, events, links) stays in the raw
  OTLP ``TracesData`` bytes of each batch and is decoded on demand by :meth:`SpanTable.details` (all spans,
  one pass) or :meth:`SpanTable.span` (one span). This keeps a load of millions of spans close to the cost
  of parsing the protobuf once.
- Ids print as lowercase hex: 32 chars for trace ids, 16 for span ids; a parent id of 0 means "no parent".
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

KIND_NAMES: tuple[str, ...] = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
KIND_UNSPECIFIED, KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER = range(6)
STATUS_NAMES: tuple[str, ...] = ("UNSET", "OK", "ERROR")

#: OTLP ``Span.flags`` bits (proto >= 1.2.0): the remote-parent bits.
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200


def kind_name(kind: int) -> str:
    """OTLP kind number -> its short name (``SERVER``); unknown numbers print as ``KIND_<n>``."""
    return KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else f"KIND_{kind}"


def hex_ids(values: np.ndarray, width: int) -> list[str]:
    """Lowercase hex of each value of a uint64 (width 16) or V16 (width 32) column, in one pass."""
    raw = (values.astype(">u8") if width == 16 else values).tobytes().hex()
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def span_hex(value: int) -> str:
    """One span id as 16 lowercase hex chars."""
    return f"{int(value):016x}"


@dataclass
class Batch:
    """One input message (one exporter call as captured): its source file and raw TracesData bytes."""

    source: int
    raw: bytes | memoryview  # views into the file buffer when uncompressed: no copy
    spans: int


@dataclass
class Source:
    """One input file: its path, the format it was detected as, and what its reader noticed."""

    path: str
    format: str
    batches: int = 0
    spans: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)


@dataclass
class SpanTable:
    """Columnar span table (see the module docstring for the contract)."""

    trace_id: np.ndarray  # (n,) V16, raw 16 bytes
    span_id: np.ndarray  # (n,) uint64, big-endian value of the 8 id bytes; 0 = empty/invalid
    parent_id: np.ndarray  # (n,) uint64; 0 = no parent
    kind: np.ndarray  # (n,) int32
    flags: np.ndarray  # (n,) uint32
    start_ns: np.ndarray  # (n,) int64
    end_ns: np.ndarray  # (n,) int64
    service: np.ndarray  # (n,) int32 code into ``services``
    batch: np.ndarray  # (n,) int32 index into ``batches``
    res: np.ndarray  # (n,) int32 resource index in the batch message
    scope: np.ndarray  # (n,) int32 scope index in the resource
    idx: np.ndarray  # (n,) int32 span index in the scope
    services: list[str]
    batches: list[Batch]
    sources: list[Source]
    service_attribute: str = "service.name"
    bad_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # wrong-length/empty ids

    def __len__(self) -> int:
        return len(self.span_id)

    # ----------------------------------------------------------------- derived columns, cached
    @functools.cached_property
    def trace(self) -> np.ndarray:
        """Trace code per span (int64), codes numbered by first appearance in input order."""
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        _, first, inverse = np.unique(self.trace_id, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[inverse].astype(np.int64)

    @property
    def n_traces(self) -> int:
        return int(self.trace.max()) + 1 if len(self) else 0

    @functools.cached_property
    def trace_hex(self) -> list[str]:
        """Hex trace id of each trace code."""
        first = np.full(self.n_traces, -1, dtype=np.int64)
        first[self.trace[::-1]] = np.arange(len(self) - 1, -1, -1)
        return hex_ids(self.trace_id[first], 32)

    def service_name(self, i: int) -> str:
        return self.services[int(self.service[i])]

    # ----------------------------------------------------------------- lazy decoding
    def _message(self, b: int) -> TracesData:
        return _parse(self.batches[b].raw)

    def span(self, i: int) -> PbSpan:
        """The full OTLP span of row ``i`` (decodes its batch message; the last few are cached)."""
        td = self._message(int(self.batch[i]))
        return td.resource_spans[int(self.res[i])].scope_spans[int(self.scope[i])].spans[int(self.idx[i])]

    def names(self, rows: np.ndarray | list[int] | None = None) -> list[str]:
        """Span names of the given rows (all rows when None)."""
        if rows is None:
            return [s.name for _, _, _, s in self.iter_spans()]
        return [self.span(int(i)).name for i in rows]

    def iter_spans(self) -> Iterator[tuple[int, Any, Any, PbSpan]]:
        """Yield ``(batch, resource_spans, scope_spans, span)`` for every row, in row order."""
        for b, batch in enumerate(self.batches):
            td = TracesData.FromString(batch.raw)
            for rs in td.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        yield b, rs, ss, s


@functools.lru_cache(maxsize=8)
def _parse(raw: bytes | memoryview) -> TracesData:
    return TracesData.FromString(raw)
