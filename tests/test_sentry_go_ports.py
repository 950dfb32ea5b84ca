"""Ports of the conversion tests of the collector-contrib Sentry exporter's Go test suite.

Origin: open-telemetry/opentelemetry-collector-contrib, ``exporter/sentryexporter/sentry_exporter_test.go``
at 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (the pdata/ptrace era, ``semconv/v1.6.1``, the status table
of PR #13407), testing ``sentry_exporter.go`` whose logic is unchanged up to
c87eb2d72377878d31559a21093b0b5ce2a36c56 (Apache-2.0). Ported: ``TestGenerateSpanDescriptors`` (all 7
cases), ``TestGenerateTagsFromAttributes``, ``TestStatusFromSpanStatus`` (all 6 cases),
``TestSpanEventToSentryEvent`` (all 3 cases), ``TestSpanToSentrySpan`` (both cases) and
``TestTransactionContextFromSpanMarshalEvent`` (both cases). The grouping tests of the same file are ported
in ``test_grouping_go_ports.py``.

Where the Go tests compare ``sentry.Span``/``sentry.Event`` structs, these compare the JSON objects
sentry-go would marshal from them (empty fields omitted, ``time.Time`` as RFC 3339 with nanoseconds, maps
with sorted keys); the error event is checked through ``emit`` end to end, since "no event" for an
exception without type and message is a property of the whole conversion.

The module also holds the small OTLP builders the other ``test_sentry_*`` files import.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from tracegroup.load import table_from_messages
from tracegroup.model import SpanTable
from tracegroup.sentry.convert import (
    exporter_descriptors,
    exporter_span,
    exporter_status,
    exporter_tags_from_attributes,
    go_float,
    go_times,
    iso_times,
)
from tracegroup.sentry.emit import emit
from tracegroup.sentry.events import dumps, trace_context

KIND = {"UNSPECIFIED": 0, "INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}


# ----------------------------------------------------------------------------------------------- builders
def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(v)))
    if v is None:
        return AnyValue()
    return AnyValue(string_value=str(v))


def kvs(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def pb_span(
    span: str,
    parent: str = "",
    *,
    trace: str = "01020304050607080807060504030201",
    name: str = "span_name",
    kind: str = "INTERNAL",
    start: int = 1_000,
    end: int = 2_000,
    attrs: Mapping[str, Any] | None = None,
    status: tuple[int, str] = (0, ""),
    events: Sequence[tuple[str, Mapping[str, Any], int]] = (),
    links: Sequence[tuple[str, str, int, Mapping[str, Any]]] = (),
) -> Span:
    """A protobuf span; ids as hex strings ("" = empty)."""
    sp = Span(
        trace_id=bytes.fromhex(trace),
        span_id=bytes.fromhex(span),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        kind=KIND[kind],  # type: ignore[arg-type]
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    sp.attributes.extend(kvs(attrs or {}))
    sp.status.code = status[0]  # type: ignore[assignment]
    sp.status.message = status[1]
    for ev_name, ev_attrs, t in events:
        ev = sp.events.add()
        ev.name, ev.time_unix_nano = ev_name, t
        ev.attributes.extend(kvs(ev_attrs))
    for l_trace, l_span, flags, l_attrs in links:
        link = sp.links.add()
        link.trace_id, link.span_id, link.flags = bytes.fromhex(l_trace), bytes.fromhex(l_span), flags
        link.attributes.extend(kvs(l_attrs))
    return sp


Resource = tuple[Mapping[str, Any], tuple[str, str], Sequence[Span]]


def message(*resources: Resource) -> bytes:
    """One TracesData: each resource is (resource attributes, (scope name, version), spans)."""
    td = TracesData()
    for res_attrs, (scope_name, scope_version), spans in resources:
        rs = td.resource_spans.add()
        rs.resource.attributes.extend(kvs(res_attrs))
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = scope_name, scope_version
        ss.spans.extend(spans)
    return td.SerializeToString()


def pb_table(*batches: Sequence[Resource]) -> SpanTable:
    """A table with one batch per argument."""
    return table_from_messages([message(*b) for b in batches])


# ----------------------------------------------------------------------------------------------- ports
@pytest.mark.parametrize(
    ("name", "attrs", "kind", "op", "description"),
    [
        ("/api/users/{user_id}", {"http.method": "GET"}, 3, "http.client", "GET /api/users/{user_id}"),
        ("/api/users/{user_id}", {"http.method": "POST"}, 2, "http.server", "POST /api/users/{user_id}"),
        ("SET mykey 'Val'", {"db.system": "redis"}, 3, "db", "SET mykey 'Val'"),
        (
            "mysql call",
            {"db.system": "sqlite", "db.statement": "SELECT * FROM table"},
            3,
            "db",
            "SELECT * FROM table",
        ),
        (
            "grpc.test.EchoService/Echo",
            {"rpc.service": "EchoService"},
            3,
            "rpc",
            "grpc.test.EchoService/Echo",
        ),
        ("message-destination", {"messaging.system": "kafka"}, 4, "message", "message-destination"),
        ("message-destination", {"faas.trigger": "pubsub"}, 2, "pubsub", "message-destination"),
    ],
    ids=[
        "http-client",
        "http-server",
        "db-call-without-statement",
        "db-call-with-statement",
        "rpc",
        "message-system",
        "faas",
    ],
)
def test_generate_span_descriptors(
    name: str, attrs: dict[str, str], kind: int, op: str, description: str
) -> None:
    _, present = exporter_tags_from_attributes(kvs(attrs))
    assert exporter_descriptors(name, present, kind) == (op, description)


def test_generate_tags_from_attributes() -> None:
    attrs = {"string-key": "string-value", "bool-key": True, "double-key": 123.123, "int-key": 321}
    tags, _ = exporter_tags_from_attributes(kvs(attrs))
    assert tags == {
        "string-key": "string-value",
        "bool-key": "true",
        "double-key": "123.123",
        "int-key": "321",
    }


STATUS_CASES = {
    "with empty status": (0, "", {}, "ok", ""),
    "with status code": (2, "message", {}, "unknown", "message"),
    "with unimplemented status code": (1337, "message", {}, "unknown", "error code 1337"),
    "with ok status code": (1, "message", {}, "ok", "message"),
    "with 400 http status code": (2, "message", {"http.status_code": "401"}, "unauthenticated", "message"),
    "with canceled grpc status code": (2, "message", {"rpc.grpc.status_code": "1"}, "cancelled", "message"),
}


@pytest.mark.parametrize(
    ("code", "message", "tags", "status", "out_message"), STATUS_CASES.values(), ids=STATUS_CASES.keys()
)
def test_status_from_span_status(
    code: int, message: str, tags: dict[str, str], status: str, out_message: str
) -> None:
    assert exporter_status(code, message, tags) == (status, out_message)


FULL_SPAN_TAGS = {
    "key": "value",
    "library_name": "otel-python",
    "library_version": "1.4.3",
    "aws_instance": "ca-central-1",
    "unique_id": "abcd1234",
    "span_kind": "SPAN_KIND_CLIENT",
    "status_message": "message",
}


def test_span_to_sentry_span_full() -> None:
    sp = pb_span(
        "0102030405060708",
        "0807060504030201",
        name="span_name",
        kind="CLIENT",
        start=123,
        end=1234567890,
        attrs={"key": "value"},
        status=(1, "message"),
    )
    resource_tags = {"aws_instance": "ca-central-1", "unique_id": "abcd1234"}
    got = exporter_span(
        sp,
        sp.name,
        resource_tags,
        "otel-python",
        "1.4.3",
        "1970-01-01T00:00:00.000000123Z",
        "1970-01-01T00:00:01.23456789Z",
    )
    assert got == {
        "trace_id": "01020304050607080807060504030201",
        "span_id": "0102030405060708",
        "parent_span_id": "0807060504030201",
        "description": "span_name",
        "status": "ok",
        "tags": dict(sorted(FULL_SPAN_TAGS.items())),
        "start_timestamp": "1970-01-01T00:00:00.000000123Z",
        "timestamp": "1970-01-01T00:00:01.23456789Z",
    }
    assert "op" not in got  # Op "" is omitted by sentry-go's omitempty


def test_span_to_sentry_span_root_with_invalid_parent_id() -> None:
    got = exporter_span(pb_span("0102030405060708", ""), "n", {}, "", "", "a", "b")
    assert "parent_span_id" not in got
    assert got["tags"] == {"library_name": "", "library_version": "", "span_kind": "SPAN_KIND_INTERNAL"}


@pytest.mark.parametrize(
    ("item", "want"),
    [
        (
            {
                "trace_id": "1915f8aa35ff8fbebbfeedb9d7e07216",
                "span_id": "ea4864700408805c",
                "parent_span_id": "4c577fe4aec9523b",
            },
            '{"trace":{"parent_span_id":"4c577fe4aec9523b","span_id":"ea4864700408805c",'
            '"trace_id":"1915f8aa35ff8fbebbfeedb9d7e07216"}}',
        ),
        (
            {"trace_id": "11ab4adc8ac6ed96f245cd96b5b6d141", "span_id": "cc55ac735f0170ac"},
            '{"trace":{"span_id":"cc55ac735f0170ac","trace_id":"11ab4adc8ac6ed96f245cd96b5b6d141"}}',
        ),
    ],
    ids=["with parent span id", "without parent span id"],
)
def test_transaction_context_marshal(item: dict[str, str], want: str) -> None:
    """Regression test of contrib #13415: ``parent_span_id`` absent when the span has none."""
    assert dumps({"trace": trace_context(item, "exporter")}).decode() in want


# TestSpanEventToSentryEvent: the sample span, with an exception event on it, end to end.
EVENT_SPAN_TAGS = {
    "key": "value",
    "library_name": "otel-go",
    "library_version": "1.4.3",
    "aws_instance": "ap-south-1",
    "unique_id": "abcd1234",
    "span_kind": "SPAN_KIND_CLIENT",
    "status_message": "message",
}


def _event_table(exc_attrs: dict[str, str]) -> SpanTable:
    sp = pb_span(
        "0102030405060708",
        "0807060504030201",
        name="span_name",
        kind="CLIENT",
        start=123,
        end=1234567890,
        attrs={"key": "value"},
        status=(1, "message"),
        events=[("exception", exc_attrs, 500)],
    )
    return pb_table([({"aws_instance": "ap-south-1", "unique_id": "abcd1234"}, ("otel-go", "1.4.3"), [sp])])


def _expected_error(message: str, type_: str) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "contexts": {
            "trace": {
                "description": "span_name",
                "parent_span_id": "0807060504030201",
                "span_id": "0102030405060708",
                "status": "ok",
                "trace_id": "01020304050607080807060504030201",
            }
        },
        "exception": [{k: v for k, v in (("type", type_), ("value", message)) if v}],
        "level": "error",
        "sdk": {"name": "sentry.opentelemetry", "version": "0.0.2"},
        "tags": dict(sorted(EVENT_SPAN_TAGS.items())),
        "timestamp": "1970-01-01T00:00:01.23456789Z",
        "transaction": "span_name",
    }
    if message:
        ev["message"] = message
    return ev


@pytest.mark.parametrize(
    ("message", "type_"),
    [("Kernel Panic", "mySampleType"), ("", "mySampleType"), ("", "")],
    ids=["both exception type and message", "only exception type", "neither type nor message"],
)
def test_span_event_to_sentry_event(message: str, type_: str) -> None:
    attrs = {k: v for k, v in (("exception.message", message), ("exception.type", type_)) if v}
    result = emit(_event_table(attrs), style="exporter")
    errors = [e for e in result.records if e.kind == "error"]
    if not (message or type_):
        assert errors == [] and result.exception_events == 0
        return
    (ev,) = errors
    got = json.loads(ev.payload)
    assert got.pop("event_id") == ev.event_id and len(ev.event_id) == 32
    assert got == _expected_error(message, type_)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (123.123, "123.123"),
        (100.0, "100"),
        (1234567.0, "1.234567e+06"),
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (-2.5, "-2.5"),
        (1e21, "1e+21"),
        (123456.0, "123456"),
        (0.0, "0"),
        (float("inf"), "+Inf"),
        (1e16, "1e+16"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_go_float_format(value: float, text: str) -> None:
    """``strconv.FormatFloat(v, 'g', -1, 64)``, the exporter's double tags (values checked against Go's
    documented rules: shortest digits, %e below 1e-4 and from 1e6 on with at least two exponent digits)."""
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("ns", "go", "sdk"),
    [
        (0, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"),
        (123, "1970-01-01T00:00:00.000000123Z", "1970-01-01T00:00:00.000000Z"),
        (1_234_567_890, "1970-01-01T00:00:01.23456789Z", "1970-01-01T00:00:01.234567Z"),
        (1_500_000_000, "1970-01-01T00:00:01.5Z", "1970-01-01T00:00:01.500000Z"),
        (-1, "1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999Z"),
        (1_764_450_000 * 10**9 + 10**8, "2025-11-29T21:00:00.1Z", "2025-11-29T21:00:00.100000Z"),
        (2**63 - 1, "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775Z"),
        (-(2**63) + 1, "1677-09-21T00:12:43.145224193Z", "1677-09-21T00:12:43.145224Z"),
    ],
)  # fmt: skip
def test_times_as_go_and_the_sdks_write_them(ns: int, go: str, sdk: str) -> None:
    """``time.Time`` as Go's JSON writes it (``RFC3339Nano``: trailing zeros of the fraction trimmed) and as
    the SDKs write it (microseconds, truncated), alone and among other values (each a column)."""
    assert go_times(np.array([ns])) == [go]
    assert iso_times(np.array([ns])) == [sdk]
    column = np.array([ns, 1_764_450_000 * 10**9, ns], dtype=np.int64)
    assert go_times(column)[::2] == [go, go]
    assert iso_times(column)[::2] == [sdk, sdk]


def _reference_time(ns: int, digits: int, trim: bool) -> str:
    """An independent formatting: Python's calendar for the seconds, integer arithmetic for the fraction."""
    sec, frac = divmod(ns, 10**9)
    day = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=sec)
    text = f"{frac // 10 ** (9 - digits):0{digits}d}"
    if trim:
        text = text.rstrip("0")
    return day.strftime("%Y-%m-%dT%H:%M:%S") + (f".{text}" if text else "") + "Z"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**63) + 1, 2**63 - 1), min_size=1, max_size=40),
    st.integers(0, 2),
)  # fmt: skip
def test_time_columns_match_a_reference(values: list[int], spread: int) -> None:
    """Whole columns (a batch's times: close together, or years apart) give each value's own text."""
    ns = np.array(values, dtype=np.int64)
    if spread == 0:  # a batch's times: within a few minutes of the first
        ns = ns[0] // 2 + ns % (300 * 10**9)
    elif spread == 1:  # whole seconds and milliseconds (many trailing zeros)
        ns = ns - ns % 10**6
    got_go, got_sdk = go_times(ns), iso_times(ns)
    for k, v in enumerate(ns.tolist()):
        assert got_go[k] == _reference_time(v, 9, True)
        assert got_sdk[k] == _reference_time(v, 6, False)
