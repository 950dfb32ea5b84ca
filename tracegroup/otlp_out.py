"""Corrected OTLP: the same spans with the parent-remote flags fixed, for Sentry's OTLP endpoint.

Contract: :func:`corrected_flags` computes, from the ``service`` grouping, the new ``Span.flags`` of every
row: a transaction root that has a parent id (an application-boundary entry span, or the root of an
incomplete transaction) gets "parent is remote" (0x100|0x200); every other span with a parent gets
"parent is local" (0x100, 0x200 cleared); spans without a parent keep their flags. The low bits (W3C trace
flags) are never touched. :func:`corrected_messages` re-serializes each batch with those flags, scrubbed by
the redaction policy (:mod:`tracegroup.redact`; default: secrets, the service attribute kept), nothing
else changed; :func:`write_otlp` writes them as the collector's file exporter would (``proto``: 4-byte
big-endian length + message; ``jsonl``: one OTLP/JSON document per line, hex ids). :func:`per_route`
splits a batch into one request body per route for posting.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.grouping import Grouping
from tracegroup.model import FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE, SpanTable
from tracegroup.otlp import to_json
from tracegroup.redact import Policy, scrub_traces
from tracegroup.routes import Routes

REMOTE = FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE


def corrected_flags(table: SpanTable, service: Grouping) -> np.ndarray:
    """New flags per row (see the module docstring)."""
    rows = np.arange(len(table))
    has_parent = table.parent_id != 0
    entry = has_parent & (service.root == rows)
    flags = table.flags.astype(np.uint32)
    local = (flags | FLAG_HAS_IS_REMOTE) & ~np.uint32(FLAG_IS_REMOTE)
    return np.where(entry, flags | REMOTE, np.where(has_parent, local, flags)).astype(np.uint32)


def service_flags(table: SpanTable) -> np.ndarray:
    """:func:`corrected_flags` for the ``service`` grouping of the whole dump."""
    from tracegroup import tree
    from tracegroup.batching import deliver
    from tracegroup.grouping import Context, group

    ctx = Context(table, tree.build(table, timing=False), deliver(table, "all"))
    return corrected_flags(table, group(ctx, "service"))


def corrected_messages(
    table: SpanTable, flags: np.ndarray, policy: Policy | None = None
) -> Iterator[TracesData]:
    """Every batch as a ``TracesData`` with the given flags set and scrubbed by ``policy`` (default
    ``Policy()``: secrets; ``Policy(secrets=False)`` keeps them), in input order."""
    policy = policy if policy is not None else Policy()
    policy = Policy(policy.secrets, policy.pii, policy.keys, policy.keep | {table.service_attribute})
    start = 0
    for batch in table.batches:
        td = TracesData.FromString(batch.raw)
        scrub_traces(td, policy)
        values = iter(flags[start : start + batch.spans].tolist())
        for rs in td.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    s.flags = next(values)
        start += batch.spans
        yield td


def write_otlp(messages: Iterator[TracesData], path: str | Path, fmt: str = "proto") -> int:
    """Write messages in file-exporter framing (``proto``) or JSON Lines (``jsonl``); returns the span
    count written."""
    spans = 0
    with open(path, "wb") as out:
        for td in messages:
            spans += sum(len(ss.spans) for rs in td.resource_spans for ss in rs.scope_spans)
            if fmt == "proto":
                body = td.SerializeToString()
                out.write(len(body).to_bytes(4, "big") + body)
            elif fmt == "jsonl":
                out.write(to_json(td).encode() + b"\n")
            else:
                raise ValueError(f"unknown OTLP output format {fmt!r} (proto or jsonl)")
    return spans


def service_of(rs: Any, attribute: str) -> str:
    for kv in rs.resource.attributes:
        if kv.key == attribute:
            which = kv.value.WhichOneof("value")
            return str(getattr(kv.value, which)) if which else ""
    return ""


def per_route(
    td: TracesData, routes: Routes, attribute: str = "service.name"
) -> dict[str | None, TracesData]:
    """Split one batch by route (None: services without a route); resource order is kept."""
    out: dict[str | None, TracesData] = {}
    for rs in td.resource_spans:
        route = routes.route_of(service_of(rs, attribute))
        out.setdefault(route.name if route else None, TracesData()).resource_spans.append(rs)
    return out
