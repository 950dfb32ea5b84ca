"""Hand-built OTLP batches for tests: spans as small tuples, batches as real serialized TracesData."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, TracesData

from tracegroup.load import table_from_messages
from tracegroup.model import KIND_NAMES, SpanTable

KINDS = {name: i for i, name in enumerate(KIND_NAMES)}


@dataclass
class S:
    """One span: ints for ids (trace 128-bit, span 64-bit), parent None or 0 for a root."""

    span: int
    parent: int | None = None
    service: str = "a"
    kind: str = "INTERNAL"
    trace: int = 1
    start: int = 1_000
    end: int = 2_000
    flags: int = 0
    name: str = ""
    attrs: dict[str, str] = field(default_factory=dict)


def batch(*spans: S) -> bytes:
    """One TracesData; a new ResourceSpans whenever the service changes, so span order is kept."""
    td = TracesData()
    rs: ResourceSpans | None = None
    current = None
    for s in spans:
        if rs is None or s.service != current:
            rs = td.resource_spans.add()
            if s.service is not None:
                rs.resource.attributes.append(
                    KeyValue(key="service.name", value=AnyValue(string_value=s.service))
                )
            rs.scope_spans.add().scope.name = "test"
            current = s.service
        sp: Span = rs.scope_spans[0].spans.add()
        sp.trace_id = s.trace.to_bytes(16, "big")
        sp.span_id = s.span.to_bytes(8, "big")
        if s.parent:
            sp.parent_span_id = s.parent.to_bytes(8, "big")
        sp.kind = KINDS[s.kind]  # type: ignore[assignment]
        sp.name = s.name or f"span-{s.span}"
        sp.start_time_unix_nano = s.start
        sp.end_time_unix_nano = s.end
        sp.flags = s.flags
        for k, v in s.attrs.items():
            sp.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    return td.SerializeToString()


def table(*batches: list[S] | tuple[S, ...]) -> SpanTable:
    """A table with one batch per argument."""
    return table_from_messages([batch(*b) for b in batches])


def row_of(t: SpanTable, span: int, trace: int = 1) -> int:
    """Row index of the first span with this id (in this trace)."""
    for i in range(len(t)):
        if int(t.span_id[i]) == span and bytes(t.trace_id[i]) == trace.to_bytes(16, "big"):
            return i
    raise KeyError(span)


def roots_by_id(t: SpanTable, root: np.ndarray) -> dict[int, int | None]:
    """span id -> span id of its transaction root (None when dropped), for readable assertions."""
    out: dict[int, int | None] = {}
    for i, r in enumerate(root.tolist()):
        out[int(t.span_id[i])] = None if r < 0 else int(t.span_id[r])
    return out


def stream(*batches: list[S] | tuple[S, ...]) -> bytes:
    """A collector file-exporter stream (4-byte big-endian length + TracesData) with one message per batch."""
    out = []
    for b in batches:
        raw = batch(*b)
        out += [len(raw).to_bytes(4, "big"), raw]
    return b"".join(out)


def wide_trace(spans: int, trace: int = 7, calls: int = 3) -> list[list[S]]:
    """One trace of ``spans`` spans (a SERVER root, chunks of 99 CLIENT queries each under an INTERNAL
    span), cut across ``calls`` exporter calls in end-time order, so the exporter orphans and drops part of
    it; a second service answers the first chunk (a merged-free, correct cross-service call)."""
    t0 = 1_700_000_000_000_000_000
    out = [S(1, None, "api", "SERVER", trace, t0, t0 + 10_000_000_000, name="POST /jobs")]
    sid = 2
    while sid <= spans:
        chunk = sid
        start = t0 + (sid * 1_000_000)
        out.append(S(chunk, 1, "api", "INTERNAL", trace, start, start + 900_000, name="process_chunk"))
        sid += 1
        for q in range(min(99, spans - sid + 1)):
            s = start + q * 9_000
            out.append(S(sid, chunk, "api", "CLIENT", trace, s, s + 8_000, name="SELECT items"))
            sid += 1
    q = out[3]
    out[3] = S(q.span, q.parent, "db-proxy", "SERVER", trace, q.start, q.end, name="query")
    ordered = sorted(out, key=lambda s: s.end)
    size = -(-len(ordered) // calls)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]
