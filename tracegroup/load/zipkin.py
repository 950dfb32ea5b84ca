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
from tracegroup.load.zipkin_v1 import is_v1, v1_to_v2

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
    held = len(recs)
    v1 = sum(map(is_v1, recs))
    if v1:
        recs = [out for rec in recs for out in (v1_to_v2(rec) if is_v1(rec) else (rec,))]
    recs, merged, backfilled = _merge(recs, name)

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
    if v1:
        notes["zipkin_v1_records"] = v1
    if merged:
        notes["zipkin_merged_records"] = merged
    if backfilled:
        notes["zipkin_shared_backfilled"] = backfilled
    return Decoded(
        "zipkin-v1" if v1 else "zipkin",
        [msg.SerializeToString()],
        notes=notes,
        spans_unread=held - len(recs) if held > len(recs) else 0,
    )


def _endpoint_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    """Zipkin's order of records sharing an id: not shared before shared, CLIENT first among the not
    shared, then no local endpoint first, then by service, ipv4, ipv6 (a missing value last)."""
    shared = rec.get("shared") is True
    ep = rec.get("localEndpoint") or None
    fields = (
        tuple((ep.get(k) is None, str(ep.get(k) or "")) for k in ("serviceName", "ipv4", "ipv6"))
        if ep
        else ()
    )
    return (shared, shared or rec.get("kind") != "CLIENT", ep is not None, *fields)


class _Endpoints:
    """Zipkin's ``EndpointTracker``: endpoints of fragments of one span must not contradict each other."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def merge(self, ep: Any) -> bool:
        if not isinstance(ep, dict):
            return True
        values = {k: ep.get(k) for k in ("serviceName", "ipv4", "ipv6", "port") if ep.get(k)}
        if any(k in self.seen and self.seen[k] != v for k, v in values.items()):
            return False
        self.seen.update(values)
        return True


def _merge_into(dest: dict[str, Any], src: dict[str, Any]) -> None:
    """``zipkin2.Span.Builder.merge``: fill what ``dest`` lacks, add annotations and tags."""
    for key in ("parentId", "kind", "name", "timestamp", "duration"):
        if dest.get(key) in (None, "", 0) and src.get(key) not in (None, ""):
            dest[key] = src[key]
    for key in ("localEndpoint", "remoteEndpoint"):
        if isinstance(src.get(key), dict):
            dest[key] = {**src[key], **{k: v for k, v in (dest.get(key) or {}).items() if v is not None}}
    if src.get("annotations"):
        dest["annotations"] = list(dest.get("annotations") or ()) + list(src["annotations"])
    if src.get("tags"):
        dest["tags"] = {**(dest.get("tags") or {}), **src["tags"]}
    if src.get("shared") is True:
        dest["shared"] = True


def _merge(recs: list[dict[str, Any]], name: str) -> tuple[list[dict[str, Any]], int, int]:
    """Zipkin's ``Trace.merge`` over records sharing a trace and span id: fragments of one span (same
    ``shared`` flag, endpoints that agree) become one record; a SERVER record after a CLIENT record of
    the same id is marked ``shared`` (instrumentation often leaves the flag off) and inherits the client's
    parent when it has none. Returns the records (input order; a merged record at the place of the
    one Zipkin keeps), how many records were merged away and how many server records were marked shared."""
    groups: dict[tuple[bytes, bytes], list[int]] = {}
    for i, rec in enumerate(recs):
        key = (pad_hex(rec["traceId"], 16, "traceId", name), pad_hex(rec["id"], 8, "id", name))
        groups.setdefault(key, []).append(i)
    gone: set[int] = set()
    backfilled = 0
    for members in groups.values():
        if len(members) < 2:
            continue
        order = sorted(members, key=lambda i: _endpoint_key(recs[i]))
        last: dict[str, Any] | None = None
        k = 0
        while k < len(order):
            i = order[k]
            span = recs[i]
            endpoints: _Endpoints | None = None
            while k + 1 < len(order):
                nxt = recs[order[k + 1]]
                if endpoints is None:
                    endpoints = _Endpoints()
                    endpoints.merge(span.get("localEndpoint"))
                if (span.get("shared") is True) != (nxt.get("shared") is True) or not endpoints.merge(
                    nxt.get("localEndpoint")
                ):
                    break
                _merge_into(span, nxt)  # the parsed document is ours to change
                gone.add(order.pop(k + 1))
            if last is not None:
                if (
                    last.get("kind") == "CLIENT"
                    and span.get("kind") == "SERVER"
                    and span.get("shared") is not True
                ):
                    span = recs[i] = {**span, "shared": True}
                    backfilled += 1
                if span.get("shared") is True and not span.get("parentId") and last.get("parentId"):
                    span = recs[i] = {**span, "parentId": last["parentId"]}
            last = span
            k += 1
    if not gone and not backfilled:
        return recs, 0, 0
    return [rec for i, rec in enumerate(recs) if i not in gone], len(gone), backfilled
