"""Jaeger v1 reader: the query service's / UI's JSON ``{"data": [trace, ...]}``.

Contract: :func:`decode_jaeger` takes the ``data`` list and the file name and returns a
:class:`~tracegroup.load.base.Decoded` of format ``jaeger`` holding 1 message with every trace, converted
like the collector's jaeger->OTLP translator: one ResourceSpans per distinct process (service name and
tags; ``hostname`` -> ``host.name``), one ScopeSpans per ``otel.scope.*`` / ``otel.library.*`` name and
version; microseconds -> nanoseconds; the first ``CHILD_OF`` reference in the same trace (else the first
``FOLLOWS_FROM``, else the old ``parentSpanID``) is the parent and every other reference a link;
``span.kind``, ``error``, ``otel.status_*`` and ``w3c.tracestate`` tags become span fields; logs become
events. Hex ids shorter than OTLP's are left-padded with zeros. Jaeger v3 API output
(``{"result": {...}}``) is OTLP/JSON and is read by :mod:`~tracegroup.load.otlp_json`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.jsonutil import STATUS, dicts, pad_hex, put_attrs, to_str

__all__ = ["decode_jaeger"]

_KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def _to_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _to_bytes(value: Any) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return str(value).encode()


_TYPES: dict[str, Callable[[Any], Any]] = {
    "string": to_str,
    "bool": _to_bool,
    "int64": int,
    "float64": float,
    "binary": _to_bytes,
}


def _jaeger_tags(tags: Any, where: str) -> dict[str, Any]:
    """Jaeger ``[{key, type, value}]`` -> {key: typed value}; a later duplicate key wins."""
    out: dict[str, Any] = {}
    for tag in dicts(tags, "tags", where):
        kind = tag.get("type")
        convert = _TYPES.get(kind.lower()) if isinstance(kind, str) else None
        value = tag.get("value")
        out[str(tag["key"])] = convert(value) if convert is not None and value is not None else value
    return out


def decode_jaeger(traces: list[Any], name: str) -> Decoded:
    """Jaeger v1 JSON -> one TracesData: a ResourceSpans per distinct process, a ScopeSpans per scope."""
    msg = TracesData()
    resources: dict[str, ResourceSpans] = {}
    scopes: dict[tuple[str, str, str], ScopeSpans] = {}
    for number, trace in enumerate(dicts(traces, "data", name)):
        if "spans" not in trace:
            raise LoadError(f"{name}: data[{number}] is not a Jaeger trace (no spans)")
        processes = trace.get("processes") or {}
        if not isinstance(processes, dict):
            raise LoadError(f"{name}: processes is not an object")
        by_pid: dict[Any, str] = {}
        for span in dicts(trace.get("spans"), "spans", name):
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
                    put_attrs(rs.resource.attributes, attrs)
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
    sp.trace_id = trace_id = pad_hex(span.get("traceID"), 16, "traceID", where)
    sp.span_id = pad_hex(span.get("spanID"), 8, "spanID", where)
    sp.name = str(span.get("operationName") or "")
    start = int(span.get("startTime") or 0) * 1000
    sp.start_time_unix_nano = start
    sp.end_time_unix_nano = start + int(span.get("duration") or 0) * 1000

    refs = [
        (
            pad_hex(ref.get("traceID"), 16, "traceID", where),
            pad_hex(ref.get("spanID"), 8, "spanID", where),
            ref.get("refType"),
        )
        for ref in dicts(span.get("references"), "references", where)
    ]
    child_of = [i for i, ref in enumerate(refs) if ref[0] == trace_id and ref[2] == "CHILD_OF"]
    follows = [i for i, ref in enumerate(refs) if ref[0] == trace_id and ref[2] == "FOLLOWS_FROM"]
    parent = (child_of or follows or [-1])[0]
    if parent >= 0:
        sp.parent_span_id = refs[parent][1]
    elif span.get("parentSpanID"):  # deprecated field of old UI JSON
        sp.parent_span_id = pad_hex(span["parentSpanID"], 8, "parentSpanID", where)
    for i, (link_trace, link_span, ref_type) in enumerate(refs):
        if i != parent:
            link = sp.links.add()
            link.trace_id, link.span_id = link_trace, link_span
            kind = "child_of" if ref_type == "CHILD_OF" else "follows_from"
            put_attrs(link.attributes, {"opentracing.ref_type": kind})

    if "span.kind" in attrs:
        sp.kind = _KIND.get(str(attrs.pop("span.kind")), 0)  # type: ignore[assignment]
    if attrs.get("error") is True:
        del attrs["error"]
        sp.status.code = Status.STATUS_CODE_ERROR
        sp.status.message = str(attrs.pop("otel.status_description", ""))
        attrs.pop("otel.status_code", None)
    elif "otel.status_code" in attrs:
        sp.status.code = STATUS.get(str(attrs.pop("otel.status_code")).upper(), Status.STATUS_CODE_UNSET)
        sp.status.message = str(attrs.pop("otel.status_description", ""))
    if "w3c.tracestate" in attrs:
        sp.trace_state = str(attrs.pop("w3c.tracestate"))
    put_attrs(sp.attributes, attrs)

    for log in dicts(span.get("logs"), "logs", where):
        event = sp.events.add()
        event.time_unix_nano = int(log.get("timestamp") or 0) * 1000
        fields = _jaeger_tags(log.get("fields"), where)
        if "event" in fields:
            event.name = str(fields.pop("event"))
        put_attrs(event.attributes, fields)
