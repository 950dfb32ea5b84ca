"""Reader for JSON trace dumps: OTLP/JSON, OTLP JSON Lines, Jaeger (v1 UI/query and v3 API) and Zipkin v2.

Contract: :func:`decode_json` takes the whole (decompressed) content of one file and its name, detects the
format from the content only, and returns a :class:`~tracegroup.load.base.Decoded` whose messages are
serialized OTLP ``TracesData``:

- ``otlp-json``: one OTLP/JSON document (``TracesData`` or ``ExportTraceServiceRequest``) -> 1 message.
- ``otlp-jsonl``: JSON Lines of ``TracesData`` (collector file exporter) -> 1 message per non-empty line; a
  truncated last line is skipped with a warning, any other bad line is an error.
- ``jaeger-v3``: ``{"result": {"resourceSpans": ...}}`` (Jaeger query API v3) -> 1 message.
- ``jaeger``: Jaeger v1 query/UI JSON ``{"data": [trace, ...]}`` -> 1 message holding every trace, converted
  like the collector's jaeger->OTLP translator.
- ``zipkin``: Zipkin v2 JSON (an array of spans, or an array of traces) -> 1 message; ``shared`` server halves
  get a derived span id of their own (see :func:`_zipkin`).

OTLP ids are hex (any case); a value that is not hex of the right length but is padded base64 of exactly
16 / 8 bytes is read as base64; ``""`` is kept as empty bytes; anything else is a :class:`LoadError`. Old
``instrumentationLibrarySpans`` / ``instrumentationLibrary`` keys are read as ``scopeSpans`` / ``scope``.
Nothing but :class:`LoadError` (one line, naming the file) escapes for bad input.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

from tracegroup.load.base import Decoded, LoadError

__all__ = ["decode_json"]

_NONBLANK = re.compile(rb"\S")
_HEX = frozenset("0123456789abcdefABCDEF")
_B64_LEN = {16: 24, 8: 12}  # padded base64 length of a trace / span id
_BAD = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError)
_INT64 = (-(1 << 63), (1 << 63) - 1)

_JAEGER_KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_ZIPKIN_KIND = {"SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_ZIPKIN_REMOTE = (("peer.service", "serviceName"), ("net.peer.ip", "ipv4"), ("net.peer.port", "port"))
_STATUS = {"OK": Status.STATUS_CODE_OK, "ERROR": Status.STATUS_CODE_ERROR}


def decode_json(data: bytes, name: str) -> Decoded:
    """Decode one JSON trace file (see the module docstring for the formats and the contract)."""
    fmt = "JSON"
    try:
        if not _NONBLANK.search(data):
            raise LoadError(f"{name}: empty file")
        lines = _jsonl_head(data)
        if lines is not None:
            fmt = "otlp-jsonl"
            return _jsonl(lines, name)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise LoadError(f"{name}: not valid JSON: {_one_line(exc)}") from None
        if isinstance(doc, list):
            fmt = "zipkin"
            return _zipkin(doc, name)
        if not isinstance(doc, dict):
            raise LoadError(f"{name}: JSON {type(doc).__name__} is not a trace document")
        if "resourceSpans" in doc or "resource_spans" in doc:
            fmt = "otlp-json"
            return Decoded(fmt, [_otlp_message(doc, name)])
        if isinstance(doc.get("result"), dict):
            fmt = "jaeger-v3"
            return Decoded(fmt, [_otlp_message(doc["result"], name)])
        if isinstance(doc.get("data"), list):
            fmt = "jaeger"
            decoded = _jaeger(doc["data"], name)
            if doc.get("errors"):
                decoded.warnings.append(f"{name}: Jaeger API reported errors: {_short(doc['errors'], 200)}")
            return decoded
        problem = doc.get("errors") or doc.get("error")
        if problem:
            raise LoadError(f"{name}: the document is an API error response: {_short(problem, 200)}")
        raise LoadError(
            f"{name}: JSON object with keys {_short(sorted(doc)[:5])} is not OTLP (resourceSpans), "
            'Jaeger ({"data": [...]}) or Jaeger v3 ({"result": {...}})'
        )
    except _BAD + (json_format.ParseError,) as exc:
        raise LoadError(f"{name}: malformed {fmt} data: {type(exc).__name__}: {_one_line(exc)}") from exc


# ---------------------------------------------------------------------------------------------- helpers


def _one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: object, limit: int = 60) -> str:
    return _one_line(repr(value), limit)


def _dicts(value: Any, what: str, where: str) -> list[dict[str, Any]]:
    """``value`` as a list of JSON objects (``None`` -> empty); anything else is a LoadError."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise LoadError(f"{where}: {what} is not a list of objects")
    return value


def _set_value(dest: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        dest.bool_value = value
    elif isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        dest.int_value = value
    elif isinstance(value, float):
        dest.double_value = value
    elif isinstance(value, bytes):
        dest.bytes_value = value
    elif isinstance(value, str):
        dest.string_value = value
    elif value is not None:
        dest.string_value = json.dumps(value)


def _put_attrs(dest: Any, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        kv: KeyValue = dest.add()
        kv.key = key
        _set_value(kv.value, value)


def _pad_hex(value: Any, nbytes: int, field: str, where: str) -> bytes:
    """A Jaeger / Zipkin hex id, left-padded with zeros (64-bit trace ids -> 16 bytes); "" -> b""."""
    if value is None or value == "":
        return b""
    if isinstance(value, str) and len(value) <= 2 * nbytes and _HEX.issuperset(value):
        return bytes.fromhex(value.rjust(2 * nbytes, "0"))
    raise LoadError(f"{where}: bad {field} {_short(value)}: expected up to {2 * nbytes} hex digits")


# ------------------------------------------------------------------------------------------ OTLP / JSON


def _otlp_id(value: Any, nbytes: int, field: str, where: str) -> bytes:
    """One OTLP/JSON id: hex of the right length first, then padded base64 of exactly ``nbytes``."""
    if value == "":
        return b""
    if isinstance(value, str):
        if len(value) == 2 * nbytes and _HEX.issuperset(value):
            return bytes.fromhex(value)
        if len(value) == _B64_LEN[nbytes] and value.endswith("="):
            try:
                raw = base64.b64decode(value, validate=True)
            except binascii.Error:
                raw = b""
            if len(raw) == nbytes:
                return raw
    raise LoadError(
        f"{where}: bad {field} {_short(value)}: expected {2 * nbytes} hex chars or base64 of {nbytes} bytes"
    )


# how each JSON key of a Span / Event / Link / Status is set: (proto field, kind of value)
_K_INT, _K_STR, _K_TRACE_ID, _K_SPAN_ID, _K_ATTRS = range(5)
_K_EVENTS, _K_LINKS, _K_STATUS, _K_KIND, _K_CODE = range(5, 10)


def _fields(**fields: tuple[str, int]) -> dict[str, tuple[str, int]]:
    """JSON key table: each lowerCamelCase key and its proto field name map to (field, kind)."""
    return {key: spec for camel, spec in fields.items() for key in (camel, spec[0])}


_LINK_FIELDS = _fields(
    traceId=("trace_id", _K_TRACE_ID),
    spanId=("span_id", _K_SPAN_ID),
    traceState=("trace_state", _K_STR),
    attributes=("attributes", _K_ATTRS),
    droppedAttributesCount=("dropped_attributes_count", _K_INT),
    flags=("flags", _K_INT),
)
_SPAN_FIELDS = _LINK_FIELDS | _fields(
    parentSpanId=("parent_span_id", _K_SPAN_ID),
    name=("name", _K_STR),
    kind=("kind", _K_KIND),
    startTimeUnixNano=("start_time_unix_nano", _K_INT),
    endTimeUnixNano=("end_time_unix_nano", _K_INT),
    events=("events", _K_EVENTS),
    droppedEventsCount=("dropped_events_count", _K_INT),
    links=("links", _K_LINKS),
    droppedLinksCount=("dropped_links_count", _K_INT),
    status=("status", _K_STATUS),
)
_EVENT_FIELDS = _fields(
    timeUnixNano=("time_unix_nano", _K_INT),
    name=("name", _K_STR),
    attributes=("attributes", _K_ATTRS),
    droppedAttributesCount=("dropped_attributes_count", _K_INT),
)
_STATUS_FIELDS = _fields(message=("message", _K_STR), code=("code", _K_CODE))


class _OtlpSpans:
    """Sets Span / Event / Link / Status fields from OTLP/JSON directly (json_format is ~6x slower)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.ids: dict[tuple[str, int], bytes] = {}

    def id(self, value: Any, nbytes: int, field: str) -> bytes:
        hit = self.ids.get((value, nbytes)) if isinstance(value, str) else None
        if hit is None:
            hit = _otlp_id(value, nbytes, field, self.where)
            self.ids[(value, nbytes)] = hit
        return hit

    def fill(self, msg: Any, obj: Any, table: dict[str, tuple[str, int]]) -> None:
        if not isinstance(obj, dict):
            raise LoadError(f"{self.where}: a span, event, link or status is not an object")
        for key, value in obj.items():
            spec = table.get(key)
            if spec is None or value is None:
                continue
            field, kind = spec
            if kind == _K_STR:
                setattr(msg, field, value)
            elif kind == _K_INT:
                setattr(msg, field, int(value))
            elif kind in (_K_TRACE_ID, _K_SPAN_ID):
                setattr(msg, field, self.id(value, 16 if kind == _K_TRACE_ID else 8, key))
            elif kind == _K_ATTRS:
                _otlp_attrs(msg.attributes, _dicts(value, key, self.where))
            elif kind in (_K_EVENTS, _K_LINKS):
                dest, sub = (msg.events, _EVENT_FIELDS) if kind == _K_EVENTS else (msg.links, _LINK_FIELDS)
                for item in _dicts(value, key, self.where):
                    self.fill(dest.add(), item, sub)
            elif kind == _K_STATUS:
                msg.status.SetInParent()
                self.fill(msg.status, value, _STATUS_FIELDS)
            else:
                enum = Span.SpanKind if kind == _K_KIND else Status.StatusCode
                setattr(msg, field, value if isinstance(value, int) else enum.Value(value))


def _otlp_attrs(dest: Any, attrs: list[dict[str, Any]]) -> None:
    for attr in attrs:
        kv: KeyValue = dest.add()
        kv.key = attr.get("key", "")
        value = attr.get("value")
        if not value:
            if value is not None:
                kv.value.SetInParent()
        elif "stringValue" in value:
            kv.value.string_value = value["stringValue"]
        elif "intValue" in value:
            kv.value.int_value = int(value["intValue"])
        elif "boolValue" in value:
            kv.value.bool_value = value["boolValue"]
        else:  # doubles ("NaN"...), bytes, arrays, kvlists, snake_case keys
            json_format.ParseDict(value, kv.value, ignore_unknown_fields=True)


def _otlp_message(doc: dict[str, Any], where: str) -> bytes:
    """One TracesData / ExportTraceServiceRequest JSON object -> serialized TracesData."""
    msg = TracesData()
    spans = _OtlpSpans(where)
    for rs in _dicts(doc.get("resourceSpans", doc.get("resource_spans")), "resourceSpans", where):
        sss = _dicts(rs.pop("scopeSpans", None), "scopeSpans", where) + _dicts(
            rs.pop("scope_spans", None), "scope_spans", where
        )
        for key in ("instrumentationLibrarySpans", "instrumentation_library_spans"):
            for ils in _dicts(rs.pop(key, None), key, where):
                lib = ils.pop("instrumentationLibrary", ils.pop("instrumentation_library", None))
                if lib is not None and "scope" not in ils:
                    ils["scope"] = lib
                sss.append(ils)
        rs_msg = msg.resource_spans.add()
        json_format.ParseDict(rs, rs_msg, ignore_unknown_fields=True)  # resource and schemaUrl
        for ss in sss:
            span_list = _dicts(ss.pop("spans", None), "spans", where)
            ss_msg = rs_msg.scope_spans.add()
            json_format.ParseDict(ss, ss_msg, ignore_unknown_fields=True)  # scope and schemaUrl
            add = ss_msg.spans.add
            for span in span_list:
                spans.fill(add(), span, _SPAN_FIELDS)
    return msg.SerializeToString()


def _jsonl_head(data: bytes) -> list[bytes] | None:
    """The lines of ``data`` if it is JSON Lines: its first line is a whole JSON object and more follows."""
    found = _NONBLANK.search(data)
    start = found.start() if found else 0
    end = data.find(b"\n", start)
    if end < 0 or data[start] != ord("{") or not _NONBLANK.search(data, end):
        return None
    try:
        first = json.loads(data[start:end])
    except ValueError:
        return None
    return data.split(b"\n") if isinstance(first, dict) else None


def _jsonl(lines: list[bytes], name: str) -> Decoded:
    numbered = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    out = Decoded("otlp-jsonl", [])
    for index, (number, line) in enumerate(numbered):
        where = f"{name}: line {number}"
        try:
            doc = json.loads(line)
        except ValueError as exc:
            if index == len(numbered) - 1:
                out.warnings.append(f"{name}: last line is truncated ({len(line)} bytes), skipped")
                break
            raise LoadError(f"{where}: invalid JSON: {_one_line(exc)}") from None
        if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
            doc = doc["result"]
        if not isinstance(doc, dict) or not ("resourceSpans" in doc or "resource_spans" in doc):
            raise LoadError(f"{where}: not an OTLP TracesData object")
        try:
            out.messages.append(_otlp_message(doc, where))
        except _BAD + (json_format.ParseError,) as exc:
            raise LoadError(f"{where}: malformed OTLP data: {type(exc).__name__}: {_one_line(exc)}") from exc
    return out


# ------------------------------------------------------------------------------------------ Jaeger v1


def _to_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _to_bytes(value: Any) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return str(value).encode()


def _to_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


_JAEGER_TYPES: dict[str, Callable[[Any], Any]] = {
    "string": _to_str,
    "bool": _to_bool,
    "int64": int,
    "float64": float,
    "binary": _to_bytes,
}


def _jaeger_tags(tags: Any, where: str) -> dict[str, Any]:
    """Jaeger ``[{key, type, value}]`` -> {key: typed value}; a later duplicate key wins."""
    out: dict[str, Any] = {}
    for tag in _dicts(tags, "tags", where):
        kind = tag.get("type")
        convert = _JAEGER_TYPES.get(kind.lower()) if isinstance(kind, str) else None
        value = tag.get("value")
        out[str(tag["key"])] = convert(value) if convert is not None and value is not None else value
    return out


def _jaeger(traces: list[Any], name: str) -> Decoded:
    """Jaeger v1 JSON -> one TracesData: a ResourceSpans per distinct process, a ScopeSpans per scope."""
    msg = TracesData()
    resources: dict[str, ResourceSpans] = {}
    scopes: dict[tuple[str, str, str], ScopeSpans] = {}
    for number, trace in enumerate(_dicts(traces, "data", name)):
        if "spans" not in trace:
            raise LoadError(f"{name}: data[{number}] is not a Jaeger trace (no spans)")
        processes = trace.get("processes") or {}
        if not isinstance(processes, dict):
            raise LoadError(f"{name}: processes is not an object")
        by_pid: dict[Any, str] = {}
        for span in _dicts(trace.get("spans"), "spans", name):
            pid = span.get("processID")
            rkey = by_pid.get(pid) if isinstance(pid, str) else None
            if rkey is None:
                proc: Any = processes.get(pid) if isinstance(pid, str) else None
                if not isinstance(proc, dict):
                    proc = span.get("process")  # UI JSON without processes: the embedded copy
                    proc = proc if isinstance(proc, dict) else {}
                rkey = json.dumps([proc.get("serviceName"), proc.get("tags")], sort_keys=True, default=str)
                if isinstance(pid, str):
                    by_pid[pid] = rkey
                if rkey not in resources:
                    resources[rkey] = rs = msg.resource_spans.add()
                    attrs = {"service.name": proc["serviceName"]} if proc.get("serviceName") else {}
                    attrs.update(_jaeger_tags(proc.get("tags"), name))
                    if "hostname" in attrs and "host.name" not in attrs:
                        attrs["host.name"] = attrs.pop("hostname")
                    _put_attrs(rs.resource.attributes, attrs)
            attrs = _jaeger_tags(span.get("tags"), name)
            scope = ("", "")
            for prefix in ("otel.scope.", "otel.library."):
                if prefix + "name" in attrs:
                    scope = (str(attrs.pop(prefix + "name")), str(attrs.pop(prefix + "version", "")))
                    break
            skey = (rkey, *scope)
            if skey not in scopes:
                scopes[skey] = ss = resources[rkey].scope_spans.add()
                ss.scope.name, ss.scope.version = scope
            _jaeger_span(scopes[skey].spans.add(), span, attrs, name)
    return Decoded("jaeger", [msg.SerializeToString()])


def _jaeger_span(sp: Span, span: dict[str, Any], attrs: dict[str, Any], where: str) -> None:
    sp.trace_id = trace_id = _pad_hex(span.get("traceID"), 16, "traceID", where)
    sp.span_id = _pad_hex(span.get("spanID"), 8, "spanID", where)
    sp.name = str(span.get("operationName") or "")
    start = int(span.get("startTime") or 0) * 1000
    sp.start_time_unix_nano = start
    sp.end_time_unix_nano = start + int(span.get("duration") or 0) * 1000

    refs = [
        (
            _pad_hex(ref.get("traceID"), 16, "traceID", where),
            _pad_hex(ref.get("spanID"), 8, "spanID", where),
            ref.get("refType"),
        )
        for ref in _dicts(span.get("references"), "references", where)
    ]
    child_of = [i for i, ref in enumerate(refs) if ref[0] == trace_id and ref[2] == "CHILD_OF"]
    follows = [i for i, ref in enumerate(refs) if ref[0] == trace_id and ref[2] == "FOLLOWS_FROM"]
    parent = (child_of or follows or [-1])[0]
    if parent >= 0:
        sp.parent_span_id = refs[parent][1]
    elif span.get("parentSpanID"):  # deprecated field of old UI JSON
        sp.parent_span_id = _pad_hex(span["parentSpanID"], 8, "parentSpanID", where)
    for i, (link_trace, link_span, ref_type) in enumerate(refs):
        if i != parent:
            link = sp.links.add()
            link.trace_id, link.span_id = link_trace, link_span
            kind = "child_of" if ref_type == "CHILD_OF" else "follows_from"
            _put_attrs(link.attributes, {"opentracing.ref_type": kind})

    if "span.kind" in attrs:
        sp.kind = _JAEGER_KIND.get(str(attrs.pop("span.kind")), 0)  # type: ignore[assignment]
    if attrs.get("error") is True:
        del attrs["error"]
        sp.status.code = Status.STATUS_CODE_ERROR
        sp.status.message = str(attrs.pop("otel.status_description", ""))
        attrs.pop("otel.status_code", None)
    elif "otel.status_code" in attrs:
        sp.status.code = _STATUS.get(str(attrs.pop("otel.status_code")).upper(), Status.STATUS_CODE_UNSET)
        sp.status.message = str(attrs.pop("otel.status_description", ""))
    if "w3c.tracestate" in attrs:
        sp.trace_state = str(attrs.pop("w3c.tracestate"))
    _put_attrs(sp.attributes, attrs)

    for log in _dicts(span.get("logs"), "logs", where):
        event = sp.events.add()
        event.time_unix_nano = int(log.get("timestamp") or 0) * 1000
        fields = _jaeger_tags(log.get("fields"), where)
        if "event" in fields:
            event.name = str(fields.pop("event"))
        _put_attrs(event.attributes, fields)


# ------------------------------------------------------------------------------------------ Zipkin v2


def _derived_id(trace_id: bytes, span_id: bytes, index: int) -> bytes:
    salt = b"" if index == 0 else index.to_bytes(4, "big")
    out = hashlib.sha256(b"tracegroup-zipkin-shared" + trace_id + span_id + salt).digest()[:8]
    return out if any(out) else b"\x00" * 7 + b"\x01"


def _zipkin(doc: list[Any], name: str) -> Decoded:
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
    recs = _dicts(doc, "the top-level array", name)
    for number, rec in enumerate(recs):
        if "traceId" not in rec or "id" not in rec:
            raise LoadError(f"{name}: array element {number} is not a Zipkin span (no traceId / id)")

    def local(rec: dict[str, Any]) -> tuple[Any, Any]:
        ep = rec.get("localEndpoint") or {}
        return ep.get("serviceName") or None, ep.get("ipv4") or ep.get("ipv6")

    traces = [_pad_hex(r["traceId"], 16, "traceId", name) for r in recs]
    ids = [_pad_hex(r["id"], 8, "id", name) for r in recs]
    parents = [_pad_hex(r.get("parentId"), 8, "parentId", name) for r in recs]
    kinds = [_ZIPKIN_KIND.get(str(r.get("kind")), 0) for r in recs]
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
                _put_attrs(rs.resource.attributes, {"service.name": str(service)})
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
        tags = {str(k): _to_str(v) for k, v in (rec.get("tags") or {}).items()}
        if "otel.status_code" in tags:
            sp.status.code = _STATUS.get(tags.pop("otel.status_code").upper(), Status.STATUS_CODE_UNSET)
            sp.status.message = tags.pop("otel.status_description", "")
        if "error" in tags:
            sp.status.code = Status.STATUS_CODE_ERROR
            if tags["error"] in ("", "true"):
                del tags["error"]
        remote = rec.get("remoteEndpoint") or {}
        for attr, field in _ZIPKIN_REMOTE:
            if remote.get(field) is not None:
                tags.setdefault(attr, _to_str(remote[field]))
        _put_attrs(sp.attributes, tags)
        for note in _dicts(rec.get("annotations"), "annotations", name):
            event = sp.events.add()
            event.time_unix_nano = int(note.get("timestamp") or 0) * 1000
            event.name = str(note.get("value") or "")
    notes = {"zipkin_shared_split": splits}
    if fragments:
        notes["zipkin_shared_fragments"] = fragments
    if no_timestamp:
        notes["zipkin_no_timestamp"] = no_timestamp
    return Decoded("zipkin", [msg.SerializeToString()], notes=notes)
