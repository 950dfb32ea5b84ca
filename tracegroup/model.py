"""The flat span table every other module works on.

Contract:
- A :class:`SpanTable` holds one row per input span, in input order (batch by batch, then resource,
  scope and span order inside each batch). Row ``i`` of every column describes the same span.
- Hot columns are numpy arrays, extracted once at load time: ids as raw integers/bytes (never hex strings),
  kind, service as an integer code into :attr:`SpanTable.services`, batch index and the span's position
  inside its batch message (resource, scope, span index): exactly what the groupings need.
- Warm columns (OTLP flags, start/end in ns) are decoded in one extra pass the first time anything
  asks for one of them (remote-parent rules, clock skew, simulation, plots).
- Everything else (name, status, attributes, resource attributes, scope, events, links) stays in the raw
  OTLP ``TracesData`` bytes of each batch and is decoded on demand by :meth:`SpanTable.details` (all spans,
  one pass) or :meth:`SpanTable.span` (one span). This keeps a load of millions of spans close to the cost
  of parsing the protobuf once.
- Ids print as lowercase hex: 32 chars for trace ids, 16 for span ids; a parent id of 0 means "no parent".
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
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
    arrival_ns: int = -1  # Unix ns it reached ``tracegroup capture`` (its sidecar), -1 unknown


@dataclass
class Source:
    """One input file: its path, the format it was detected as, and what its reader noticed.

    ``batches`` / ``spans`` are what was loaded; ``messages_held`` / ``spans_held`` what the file held as
    far as it could be read (messages and spans in damaged parts included; spans of a damaged message are
    counted up to where its bytes stop), ``bytes_skipped`` the bytes (after decompression) not loaded."""

    path: str
    format: str
    batches: int = 0
    spans: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    messages_held: int = 0
    spans_held: int = 0
    bytes_skipped: int = 0
    capture: dict[str, Any] | None = None  # a tracegroup capture file: its sidecar's summary

    def note_invalid_utf8(self, strings: int, spans: int, name: str | None = None) -> None:
        """Record that ``strings`` strings in ``spans`` spans were not valid UTF-8 (repaired on decoding)."""
        if strings:
            self.notes["invalid_utf8_strings"] = strings
            self.notes["invalid_utf8_spans"] = spans
            self.warnings.append(
                f"{name or self.path}: {strings:,} strings ({spans:,} spans) were not valid UTF-8; "
                "decoded with U+FFFD replacement characters, every span kept"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "batches": self.batches,
            "spans": self.spans,
            "messages_held": self.messages_held,
            "spans_held": self.spans_held,
            "bytes_skipped": self.bytes_skipped,
            "warnings": self.warnings,
            "notes": self.notes,
        } | ({"capture": self.capture} if self.capture is not None else {})


def held_text(f: Mapping[str, Any]) -> str:
    """What a damaged input file held versus what loaded (a :meth:`Source.as_dict`); empty when intact."""
    held, spans_held = f.get("messages_held", 0), f.get("spans_held", 0)
    if held > f["batches"] or spans_held > f["spans"] or f.get("bytes_skipped"):
        return (
            f"loaded {f['batches']:,} of {held:,} messages, {f['spans']:,} of at least "
            f"{spans_held:,} spans; {f.get('bytes_skipped', 0):,} bytes skipped"
        )
    return ""


@dataclass
class SpanTable:
    """Columnar span table (see the module docstring for the contract)."""

    trace_id: np.ndarray  # (n,) V16, raw 16 bytes
    span_id: np.ndarray  # (n,) uint64, big-endian value of the 8 id bytes; 0 = empty/invalid
    parent_id: np.ndarray  # (n,) uint64; 0 = no parent
    kind: np.ndarray  # (n,) int32
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
    _parsed: dict[int, TracesData] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.span_id)

    # ----------------------------------------------------------------- columns decoded on first use
    @functools.cached_property
    def _warm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """flags, start and end of every span: one more pass over the messages, only when asked for."""
        parts: list[tuple[tuple[int, ...], ...]] = []
        with gc_paused():
            for b in self.batches:
                for rs in TracesData.FromString(b.raw).resource_spans:
                    for ss in rs.scope_spans:
                        if len(ss.spans):
                            parts.append(tuple(zip(*map(_WARM, ss.spans), strict=True)))
        return self._warm_columns(parts)

    def set_start(self, start: np.ndarray) -> None:
        """Give the start times read by the loader (uint64, row order) alone: flags and end times are
        then decoded (with the start times again) in the table's own pass, only if asked for."""
        self.__dict__["_start"] = start.view(np.int64)

    def set_warm(self, flags: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        """Give the warm columns read by the loader (uint32 flags, uint64 start and end, in row order), so
        that they are not decoded in a pass of their own."""
        self.__dict__["_warm"] = (flags, start.view(np.int64), end.view(np.int64))

    def _warm_columns(
        self, parts: list[tuple[tuple[int, ...], ...]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(self)

        def col(k: int, dtype: type) -> np.ndarray:
            return np.fromiter(itertools.chain.from_iterable(p[k] for p in parts), dtype=dtype, count=n)

        return col(0, np.uint32), col(1, np.uint64).view(np.int64), col(2, np.uint64).view(np.int64)

    def with_flags(self, flags: np.ndarray) -> SpanTable:
        """A table sharing every column but ``flags`` (the same spans with other parent-remote bits: what a
        remedy that fixes the SDKs' flags would send)."""
        out = dataclasses.replace(self)
        out.__dict__["_warm"] = (np.asarray(flags, dtype=np.uint32), self.start_ns, self.end_ns)
        return out

    @property
    def flags(self) -> np.ndarray:
        """OTLP ``Span.flags`` (uint32): bits 0x100/0x200 carry the parent-remote flag."""
        return self._warm[0]

    @property
    def start_ns(self) -> np.ndarray:
        if "_warm" not in self.__dict__ and "_start" in self.__dict__:
            start: np.ndarray = self.__dict__["_start"]
            return start
        return self._warm[1]

    @property
    def end_ns(self) -> np.ndarray:
        return self._warm[2]

    @functools.cached_property
    def trace_code(self) -> np.ndarray:
        """Trace code per span (int64), codes numbered by first appearance in input order."""
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        # Factorize on the low 64 bits (fast); fall back to all 128 when two traces share them.
        halves = self.trace_id.view(np.uint64).reshape(-1, 2)
        _, inverse, order, new = factorize(halves[:, 1])
        first = order[new]
        if not np.array_equal(halves[first[inverse], 0], halves[:, 0]):
            _, first, inverse = np.unique(self.trace_id, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[inverse].astype(np.int64)

    @functools.cached_property
    def id_ranks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Span ids as dense ranks, shared by every parent lookup: (sorted distinct span ids, rank of each
        span's id — empty when every span id is distinct —, rank of each parent id, whether the parent id
        is some span's id at all, and — when every span id in the table is distinct — the row holding
        each rank, else None)."""
        uniq, rank, order, new = factorize(self.span_id, distinct_ranks=False)
        p_rank = np.minimum(search_sorted(uniq, self.parent_id), max(len(uniq) - 1, 0))
        known = (self.parent_id != 0) & (uniq[p_rank] == self.parent_id) if len(uniq) else new
        return uniq, rank, p_rank.astype(np.int64), known, order if len(uniq) == len(self) else None

    def drop_id_ranks(self) -> None:
        """Free :attr:`id_ranks` (five columns) once the parent lookups are done; computed again if asked."""
        self.__dict__.pop("id_ranks", None)

    @property
    def n_traces(self) -> int:
        return int(self.trace_code.max()) + 1 if len(self) else 0

    @functools.cached_property
    def trace_hex(self) -> list[str]:
        """Hex trace id of each trace code."""
        first = np.full(self.n_traces, -1, dtype=np.int64)
        first[self.trace_code[::-1]] = np.arange(len(self) - 1, -1, -1)
        return hex_ids(self.trace_id[first], 32)

    def service_name(self, i: int) -> str:
        return self.services[int(self.service[i])]

    # ----------------------------------------------------------------- lazy decoding
    def _message(self, b: int) -> TracesData:
        """Batch ``b`` parsed; the last few stay cached (keyed by index: hashing megabytes is not free)."""
        cache = self._parsed
        if b not in cache:
            if len(cache) >= 8:
                del cache[next(iter(cache))]
            cache[b] = TracesData.FromString(self.batches[b].raw)
        return cache[b]

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


def argsort_stable(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` of uint64 values, a few times faster on a million: one value
    sort of each value's top bits packed with its row (ties then stay in row order), checked, and the
    plain argsort when two values sharing their top bits come out of order."""
    n = len(values)
    bits = max(1, (n - 1).bit_length())
    if n < 4096 or bits > 32 or values.dtype != np.uint64:
        return np.argsort(values, kind="stable")
    shift = np.uint64(max(0, int(values.max()).bit_length() - (64 - bits)))
    packed = ((values >> shift) << np.uint64(bits)) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64((1 << bits) - 1)).astype(np.int64)
    if shift:
        ordered = values[order]
        if (ordered[1:] < ordered[:-1]).any():
            return np.argsort(values, kind="stable")
    return order


def factorize(
    values: np.ndarray, distinct_ranks: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dense ranks by one stable sort: (sorted distinct values, rank of each value, the argsort, and a
    mask over it marking the first — lowest-row — occurrence of each distinct value). When every value
    is distinct and not ``distinct_ranks``, the ranks are left empty (the argsort already is their
    inverse) and the sorted values are not copied."""
    order = argsort_stable(values)
    ordered = values[order]
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    if not distinct_ranks and new.all():
        return ordered, np.zeros(0, dtype=np.int64), order, new
    rank = np.empty(len(ordered), dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    return ordered[new], rank, order, new


def search_sorted(sorted_ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``np.searchsorted(sorted_ids, queries)`` for distinct sorted uint64 ids, several times faster when
    the ids are spread like random ids: bucket by the top bits, then step inside each (small) bucket.
    Falls back to binary search when some bucket is crowded (small or sequential ids)."""
    n = len(sorted_ids)
    bits = max(1, n.bit_length())
    if n < 1024 or bits >= 63:
        return np.searchsorted(sorted_ids, queries)
    shift = np.uint64(64 - bits)
    counts = np.bincount((sorted_ids >> shift).astype(np.int64), minlength=1 << bits)
    if counts.max() > 32:
        return np.searchsorted(sorted_ids, queries)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    bucket = (queries >> shift).astype(np.int64)
    pos, end = offsets[bucket], offsets[bucket + 1]
    active = np.flatnonzero(pos < end)
    while len(active):
        active = active[sorted_ids[pos[active]] < queries[active]]
        pos[active] += 1
        active = active[pos[active] < end[active]]
    return pos


_WARM = attrgetter("flags", "start_time_unix_nano", "end_time_unix_nano")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building millions of small acyclic objects (it would rescan them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
