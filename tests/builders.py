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
