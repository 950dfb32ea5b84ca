"""Hot-column extraction: parsed ``TracesData`` messages -> a :class:`~tracegroup.model.SpanTable`.

Contract: :class:`Columns` takes messages one at a time (one batch each) and extracts the hot columns
(trace id, span id, parent id, kind, service, batch, resource, scope, index; with ``warm`` also the warm
columns flags, start and end, with ``warm="start"`` the start times alone) in one pass per message with
no per-span Python objects beyond what protobuf creates; a span whose ids are empty or the wrong length
gets zero ids and is flagged in ``bad_ids``. :func:`table_from_messages` builds a table from serialized
messages in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from operator import attrgetter

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, TracesData

from tracegroup.model import Batch, Source, SpanTable

__all__ = ["Columns", "table_from_messages"]

Z8 = b"\x00" * 8
_HOT = attrgetter("trace_id", "span_id", "parent_span_id", "kind")
_HOT_START = attrgetter("trace_id", "span_id", "parent_span_id", "kind", "start_time_unix_nano")
_HOT_WARM = attrgetter(
    "trace_id", "span_id", "parent_span_id", "kind", "flags", "start_time_unix_nano", "end_time_unix_nano"
)


class Columns:
    """Accumulates hot columns scope by scope and builds the table at the end.

    Per span, one C-level ``attrgetter`` call reads the four hot fields (the floor's own field set); ids
    are joined into one bytes object per scope; per-scope constants (service, batch, position) are stored
    once per scope and expanded with ``np.repeat``.
    """

    def __init__(self, service_attribute: str, warm: bool | str = False) -> None:
        self.attr = service_attribute
        self.warm = warm  # also read the warm columns (flags, start, end; "start": start only) in the pass
        self.warm_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per scope
        self.start_parts: list[np.ndarray] = []  # per scope, warm="start"
        self.tid: list[bytes] = []
        self.sid: list[bytes] = []
        self.pid: list[bytes] = []
        self.kinds: list[tuple[int, ...]] = []
        self.scopes: list[tuple[int, int, int, int, int]] = []  # (n, service, batch, resource, scope)
        self.bad: dict[int, np.ndarray] = {}  # span offset of a scope -> bad-id mask of that scope
        self.count = 0
        self.services: dict[str, int] = {}

    def service_code(self, rs: ResourceSpans) -> int:
        """Code of the resource's service name (non-string values as text; "" when absent)."""
        name = ""
        for kv in rs.resource.attributes:
            if kv.key == self.attr:
                which = kv.value.WhichOneof("value")
                name = str(getattr(kv.value, which)) if which else ""
                break
        return self.services.setdefault(name, len(self.services))

    def add_message(self, td: TracesData, batch: int) -> int:
        before = self.count
        for ri, rs in enumerate(td.resource_spans):
            svc = self.service_code(rs)
            for si, ss in enumerate(rs.scope_spans):
                spans = ss.spans
                n = len(spans)
                if not n:
                    continue
                if self.warm == "start":
                    tids, sids, pids, kinds, starts = zip(*map(_HOT_START, spans), strict=True)
                    self.start_parts.append(np.array(starts, dtype=np.uint64))
                elif self.warm:
                    tids, sids, pids, kinds, flags, starts, ends = zip(*map(_HOT_WARM, spans), strict=True)
                    self.warm_parts.append(
                        (
                            np.array(flags, dtype=np.uint32),
                            np.array(starts, dtype=np.uint64),
                            np.array(ends, dtype=np.uint64),
                        )
                    )
                else:
                    tids, sids, pids, kinds = zip(*map(_HOT, spans), strict=True)
                tid, sid, pid = b"".join(tids), b"".join(sids), b"".join([p or Z8 for p in pids])
                if len(tid) != 16 * n or len(sid) != 8 * n or len(pid) != 8 * n:
                    tid, sid, pid, self.bad[self.count] = _fix_ids(tids, sids, pids)
                self.tid.append(tid)
                self.sid.append(sid)
                self.pid.append(pid)
                self.kinds.append(kinds)
                self.scopes.append((n, svc, batch, ri, si))
                self.count += n
        return self.count - before

    def table(self, batches: list[Batch], sources: list[Source]) -> SpanTable:
        sizes = np.array([sc[0] for sc in self.scopes], dtype=np.int64)
        per_scope = np.array(self.scopes, dtype=np.int64).reshape(-1, 5)
        starts = np.cumsum(sizes) - sizes
        bad = np.zeros(self.count, dtype=bool)
        for offset, mask in self.bad.items():
            bad[offset : offset + len(mask)] = mask
        table = SpanTable(
            trace_id=np.frombuffer(b"".join(self.tid), dtype="V16"),
            span_id=np.frombuffer(b"".join(self.sid), dtype=">u8").astype(np.uint64),
            parent_id=np.frombuffer(b"".join(self.pid), dtype=">u8").astype(np.uint64),
            kind=np.fromiter(itertools.chain.from_iterable(self.kinds), dtype=np.int32, count=self.count),
            service=np.repeat(per_scope[:, 1], sizes).astype(np.int32),
            batch=np.repeat(per_scope[:, 2], sizes).astype(np.int32),
            res=np.repeat(per_scope[:, 3], sizes).astype(np.int32),
            scope=np.repeat(per_scope[:, 4], sizes).astype(np.int32),
            idx=(np.arange(self.count) - np.repeat(starts, sizes)).astype(np.int32),
            services=list(self.services),
            batches=batches,
            sources=sources,
            service_attribute=self.attr,
            bad_ids=bad,
        )
        if self.warm == "start":
            got = self.start_parts
            table.set_start(np.concatenate(got) if got else np.zeros(0, dtype=np.uint64))
        elif self.warm:
            parts = self.warm_parts
            table.set_warm(
                *(
                    np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, dtype=dtype)
                    for k, dtype in enumerate((np.uint32, np.uint64, np.uint64))
                )
            )
        return table


def _fix_ids(
    tids: tuple[bytes, ...], sids: tuple[bytes, ...], pids: tuple[bytes, ...]
) -> tuple[bytes, bytes, bytes, np.ndarray]:
    """Slow path for a scope holding empty or wrong-length ids: zero them and flag the spans."""
    bad = np.zeros(len(tids), dtype=bool)
    t_out, s_out, p_out = [], [], []
    for i, (t, s, p) in enumerate(zip(tids, sids, pids, strict=True)):
        ok = len(t) == 16 and len(s) == 8 and len(p) in (0, 8)
        bad[i] = not ok
        t_out.append(t if len(t) == 16 else b"\x00" * 16)
        s_out.append(s if len(s) == 8 else Z8)
        p_out.append(p if len(p) == 8 else Z8)
    return b"".join(t_out), b"".join(s_out), b"".join(p_out), bad


def table_from_messages(
    messages: Iterable[bytes], *, service_attribute: str = "service.name", fmt: str = "otlp-proto"
) -> SpanTable:
    """Build a table from serialized TracesData messages (one batch each); used by tests and simulations."""
    cols = Columns(service_attribute)
    batches: list[Batch] = []
    source = Source("<memory>", fmt)
    for raw in messages:
        n = cols.add_message(TracesData.FromString(raw), len(batches))
        batches.append(Batch(0, raw, n))
        source.spans += n
    source.batches = len(batches)
    return cols.table(batches, [source])
