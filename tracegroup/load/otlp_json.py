"""OTLP/JSON reader: one ``TracesData`` / ``ExportTraceServiceRequest`` document, or JSON Lines of them.

Contract: :func:`otlp_message` turns one parsed OTLP/JSON object (modified in place) into serialized
``TracesData``; :func:`decode_jsonl` turns the lines of a JSON Lines file
(collector file exporter) into one message per non-empty line, each line a ``TracesData`` object or a
Jaeger v3 ``{"result": {...}}`` wrapper of one; a truncated last line is skipped with a warning, any other
bad line is a :class:`~tracegroup.load.base.LoadError` naming the line. :mod:`~tracegroup.load.jsonfmt`
decides which of the two a file is.

OTLP ids are hex (any case); a value that is not hex of the right length but is padded base64 of exactly
16 / 8 bytes is read as base64; ``""`` is kept as empty bytes; anything else is a ``LoadError``. Both
lowerCamelCase and proto (snake_case) keys are read; old ``instrumentationLibrarySpans`` /
``instrumentationLibrary`` keys are read as ``scopeSpans`` / ``scope``. Spans, events, links and status
are set field by field (json_format is ~6x slower); resources, scopes and unusual attribute values go
through json_format.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.jsonutil import BAD, HEX, dicts, one_line, short

__all__ = ["decode_jsonl", "otlp_message"]

_B64_LEN = {16: 24, 8: 12}  # padded base64 length of a trace / span id


def _otlp_id(value: Any, nbytes: int, field: str, where: str) -> bytes:
    """One OTLP/JSON id: hex of the right length first, then padded base64 of exactly ``nbytes``."""
    if value == "":
        return b""
    if isinstance(value, str):
        if len(value) == 2 * nbytes and HEX.issuperset(value):
            return bytes.fromhex(value)
        if len(value) == _B64_LEN[nbytes] and value.endswith("="):
            try:
                raw = base64.b64decode(value, validate=True)
            except binascii.Error:
                raw = b""
            if len(raw) == nbytes:
                return raw
    raise LoadError(
        f"{where}: bad {field} {short(value)}: expected {2 * nbytes} hex chars or base64 of {nbytes} bytes"
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
                _otlp_attrs(msg.attributes, dicts(value, key, self.where))
            elif kind in (_K_EVENTS, _K_LINKS):
                dest, sub = (msg.events, _EVENT_FIELDS) if kind == _K_EVENTS else (msg.links, _LINK_FIELDS)
                for item in dicts(value, key, self.where):
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


def otlp_message(doc: dict[str, Any], where: str) -> bytes:
    """One TracesData / ExportTraceServiceRequest JSON object -> serialized TracesData."""
    msg = TracesData()
    spans = _OtlpSpans(where)
    for rs in dicts(doc.get("resourceSpans", doc.get("resource_spans")), "resourceSpans", where):
        sss = dicts(rs.pop("scopeSpans", None), "scopeSpans", where) + dicts(
            rs.pop("scope_spans", None), "scope_spans", where
        )
        for key in ("instrumentationLibrarySpans", "instrumentation_library_spans"):
            for ils in dicts(rs.pop(key, None), key, where):
                lib = ils.pop("instrumentationLibrary", ils.pop("instrumentation_library", None))
                if lib is not None and "scope" not in ils:
                    ils["scope"] = lib
                sss.append(ils)
        rs_msg = msg.resource_spans.add()
        json_format.ParseDict(rs, rs_msg, ignore_unknown_fields=True)  # resource and schemaUrl
        for ss in sss:
            span_list = dicts(ss.pop("spans", None), "spans", where)
            ss_msg = rs_msg.scope_spans.add()
            json_format.ParseDict(ss, ss_msg, ignore_unknown_fields=True)  # scope and schemaUrl
            add = ss_msg.spans.add
            for span in span_list:
                spans.fill(add(), span, _SPAN_FIELDS)
    return msg.SerializeToString()


def decode_jsonl(lines: list[bytes], name: str) -> Decoded:
    """The lines of a JSON Lines file -> one message per non-empty line (see the module docstring)."""
    numbered = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip()]
    out = Decoded("otlp-jsonl", [])
    for index, (number, line) in enumerate(numbered):
        where = f"{name}: line {number}"
        try:
            doc = json.loads(line)
        except ValueError as exc:
            if index == len(numbered) - 1:
                out.warnings.append(f"{name}: last line is truncated ({len(line)} bytes), skipped")
                out.messages_held, out.bytes_skipped = len(numbered), len(line)
                break
            raise LoadError(f"{where}: invalid JSON: {one_line(exc)}") from None
        if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
            doc = doc["result"]
        if not isinstance(doc, dict) or not ("resourceSpans" in doc or "resource_spans" in doc):
            raise LoadError(f"{where}: not an OTLP TracesData object")
        try:
            out.messages.append(otlp_message(doc, where))
        except BAD + (json_format.ParseError,) as exc:
            raise LoadError(f"{where}: malformed OTLP data: {type(exc).__name__}: {one_line(exc)}") from exc
    return out
