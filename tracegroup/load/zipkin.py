"""Zipkin v2 reader: a JSON array of spans (``/api/v2/spans`` style) or of traces (``/api/v2/traces``).

Contract: :func:`decode_zipkin` takes the parsed array and the file name and returns a
:class:`~tracegroup.load.base.Decoded` of format ``zipkin`` holding 1 message, one ResourceSpans per
``localEndpoint.serviceName``; microseconds -> nanoseconds; hex ids shorter than OTLP's are left-padded
with zeros; ``otel.status_*`` and ``error`` tags set the status; ``remoteEndpoint`` becomes
``peer.service`` / ``net.peer.ip`` / ``net.peer.port`` unless tagged; annotations become events.
``shared`` server halves get a derived span id of their own (see :func:`decode_zipkin`); the notes count
them (``zipkin_shared_split``, ``zipkin_shared_fragments``) and spans without a timestamp
(``zipkin_no_timestamp``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Status, TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.jsonutil import STATUS, dicts, pad_hex, put_attrs, to_str

__all__ = ["decode_zipkin"]

_KIND = {"SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_REMOTE = (("peer.service", "serviceName"), ("net.peer.ip", "ipv4"), ("net.peer.port", "port"))


def _derived_id(trace_id: bytes, span_id: bytes, index: int) -> bytes:
    salt = b"" if index == 0 else index.to_bytes(4, "big")
    out = hashlib.sha256(b"tracegroup-zipkin-shared" + trace_id + span_id + salt).digest()[:8]
    return out if any(out) else b"\x00" * 7 + b"\x01"


def decode_zipkin(doc: list[Any], name: str) -> Decoded:
    """Zipkin v2 JSON -> one TracesData, one ResourceSpans per ``localEndpoint.serviceName``.

    A ``shared: true`` record is the server half of a span whose client half (a non-shared record with the
    same id) was recorded by the caller. It becomes a span of its own: id = :func:`_derived_id`, parent = the
    client half, kind SERVER; records of the server's service whose parent is the shared id (its children)
    and kind-less non-shared fragments of the server half (same id and service) move onto the derived id.
    Several server halves of one id and service (fan-out) get distinct derived ids and are told apart by
    ``localEndpoint`` ip. A shared record without a client half keeps its id and parent.
    """
    if doc and all(isinstance(item, list) for item in doc):  # GET /api/v2/traces: a list of traces
        doc = [span for trace in doc for span in trace]
    if not doc:
        raise LoadError(f"{name}: empty JSON array, no spans")
    recs = dicts(doc, "the top-level array", name)
    for number, rec in enumerate(recs):
        if "traceId" not in rec or "id" not in rec:
            raise LoadError(f"{name}: array element {number} is not a Zipkin span (no traceId / id)")

    def local(rec: dict[str, Any]) -> tuple[Any, Any]:
        ep = rec.get("localEndpoint") or {}
        return ep.get("serviceName") or None, ep.get("ipv4") or ep.get("ipv6")

    traces = [pad_hex(r["traceId"], 16, "traceId", name) for r in recs]
    ids = [pad_hex(r["id"], 8, "id", name) for r in recs]
    parents = [pad_hex(r.get("parentId"), 8, "parentId", name) for r in recs]
    kinds = [_KIND.get(str(r.get("kind")), 0) for r in recs]
    locals_ = [local(r) for r in recs]
    shared = [r.get("shared") is True for r in recs]
    is_fragment = [not shared[i] and recs[i].get("kind") is None for i in range(len(recs))]

    by_id: dict[tuple[bytes, bytes], list[int]] = {}
    for i in range(len(recs)):
        by_id.setdefault((traces[i], ids[i]), []).append(i)
    servers: dict[tuple[bytes, bytes, Any], list[tuple[Any, bytes]]] = {}  # -> [(ip, derived id)]
    splits = 0
    for i in range(len(recs)):
        if not shared[i]:
            continue
        service = locals_[i][0]
        others = by_id[(traces[i], ids[i])]
        if not any(not shared[j] and not (is_fragment[j] and locals_[j][0] == service) for j in others):
            continue
        key = (traces[i], ids[i], service)
        halves = servers.setdefault(key, [])
        derived = _derived_id(traces[i], ids[i], len(halves))
        halves.append((locals_[i][1], derived))
        parents[i], ids[i], kinds[i] = ids[i], derived, 2
        splits += 1

    def server_half(trace: bytes, span_id: bytes, i: int) -> bytes | None:
        halves = servers.get((trace, span_id, locals_[i][0]))
        if not halves:
            return None
        return next((d for ip, d in halves if ip == locals_[i][1]), halves[0][1])

    fragments = 0
    if servers:
        for i in range(len(recs)):
            if shared[i]:
                continue
            own = server_half(traces[i], ids[i], i) if is_fragment[i] else None
            if own is not None:
                parents[i], ids[i] = ids[i], own
                fragments += 1
            elif parents[i] and (above := server_half(traces[i], parents[i], i)) is not None:
                parents[i] = above

    msg = TracesData()
    by_service: dict[Any, ScopeSpans] = {}
    no_timestamp = 0
    for i, rec in enumerate(recs):
        service = locals_[i][0]
        if service not in by_service:
            rs = msg.resource_spans.add()
            if service is not None:
                put_attrs(rs.resource.attributes, {"service.name": str(service)})
            by_service[service] = rs.scope_spans.add()
        sp = by_service[service].spans.add()
        sp.trace_id, sp.span_id, sp.parent_span_id = traces[i], ids[i], parents[i]
        sp.kind = kinds[i]  # type: ignore[assignment]
        sp.name = str(rec.get("name") or "")
        if rec.get("timestamp") is None:
            no_timestamp += 1
        else:
            sp.start_time_unix_nano = start = int(rec["timestamp"]) * 1000
            sp.end_time_unix_nano = start + int(rec.get("duration") or 0) * 1000
        tags = {str(k): to_str(v) for k, v in (rec.get("tags") or {}).items()}
        if "otel.status_code" in tags:
            sp.status.code = STATUS.get(tags.pop("otel.status_code").upper(), Status.STATUS_CODE_UNSET)
            sp.status.message = tags.pop("otel.status_description", "")
        if "error" in tags:
            sp.status.code = Status.STATUS_CODE_ERROR
            if tags["error"] in ("", "true"):
                del tags["error"]
        remote = rec.get("remoteEndpoint") or {}
        for attr, field in _REMOTE:
            if remote.get(field) is not None:
                tags.setdefault(attr, to_str(remote[field]))
        put_attrs(sp.attributes, tags)
        for note in dicts(rec.get("annotations"), "annotations", name):
            event = sp.events.add()
            event.time_unix_nano = int(note.get("timestamp") or 0) * 1000
            event.name = str(note.get("value") or "")
    notes = {"zipkin_shared_split": splits}
    if fragments:
        notes["zipkin_shared_fragments"] = fragments
    if no_timestamp:
        notes["zipkin_no_timestamp"] = no_timestamp
    return Decoded("zipkin", [msg.SerializeToString()], notes=notes)
