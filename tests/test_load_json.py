"""Tests of the JSON reader (tracegroup.load.jsonfmt) on real public dumps and small inline documents."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.jsonfmt import decode_json

EXTERNAL = Path(__file__).resolve().parent.parent / "fixtures" / "external"


def load(file: str) -> Decoded:
    path = EXTERNAL / file
    return decode_json(path.read_bytes(), str(path))


def decode(doc: Any, name: str = "inline.json") -> Decoded:
    return decode_json(json.dumps(doc).encode(), name)


def spans_of(decoded: Decoded) -> list[tuple[Span, str | None]]:
    """Every span of every message with its resource's service.name, after a protobuf round trip."""
    out: list[tuple[Span, str | None]] = []
    for raw in decoded.messages:
        for rs in TracesData.FromString(raw).resource_spans:
            attrs = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            out.extend((span, attrs.get("service.name")) for ss in rs.scope_spans for span in ss.spans)
    return out


def cross_service_links(spans: list[tuple[Span, str | None]]) -> int:
    """Spans whose parent is in the data and belongs to another service."""
    owner: dict[tuple[bytes, bytes], set[str | None]] = {}
    for span, service in spans:
        owner.setdefault((span.trace_id, span.span_id), set()).add(service)
    return sum(
        1
        for span, service in spans
        if span.parent_span_id
        and (span.trace_id, span.parent_span_id) in owner
        and service not in owner[(span.trace_id, span.parent_span_id)]
    )


def attrs_of(kvs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value") or "string_value") for kv in kvs}


def otlp_doc(**span: Any) -> dict[str, Any]:
    base = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "op"}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [{**base, **span}]}]}]}


def only_span(decoded: Decoded) -> Span:
    spans = spans_of(decoded)
    assert len(spans) == 1
    return spans[0][0]


# ------------------------------------------------------------------------------------- real public files


def test_hotrod_jaeger_v3() -> None:
    decoded = load("getTrace-response.json")
    assert decoded.format == "jaeger-v3"
    assert len(decoded.messages) == 1 and not decoded.warnings
    spans = spans_of(decoded)
    assert len(spans) == 40
    assert Counter(service for _, service in spans) == {
        "frontend": 13,
        "redis-manual": 14,
        "route": 10,
        "driver": 1,
        "customer": 1,
        "mysql": 1,
    }
    assert cross_service_links(spans) == 27
    assert {span.trace_id.hex() for span, _ in spans} == {"2ea75461946a7dd10f2c15ab36a076cb"}
    assert sum(1 for span, _ in spans if not span.parent_span_id) == 1
    assert all(len(span.span_id) == 8 for span, _ in spans)
    assert Counter(span.flags for span, _ in spans)[257] > 0
    first = spans[0][0]
    assert (first.span_id.hex(), first.parent_span_id.hex()) == ("9082d67808fc8870", "c8d93156b47cd010")
    assert first.kind == Span.SPAN_KIND_CLIENT and first.start_time_unix_nano == 1782036644636668325


def test_otlp_spec_example_uppercase_hex() -> None:
    decoded = load("trace.json")
    assert decoded.format == "otlp-json"
    msg = TracesData.FromString(decoded.messages[0])
    scope_spans = msg.resource_spans[0].scope_spans[0]
    span = scope_spans.spans[0]
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.parent_span_id.hex() == "eee19b7ec3c1b173"
    assert span.kind == Span.SPAN_KIND_SERVER and span.end_time_unix_nano == 1544712661000000000
    assert scope_spans.scope.name == "my.library"
    assert attrs_of(span.attributes) == {"my.span.attr": "some value"}
    assert attrs_of(msg.resource_spans[0].resource.attributes) == {"service.name": "my.service"}


def test_deathstarbench_jaeger_v1() -> None:
    decoded = load("traces-1695947455229.json")
    assert decoded.format == "jaeger"
    assert len(decoded.messages) == 1
    spans = spans_of(decoded)
    assert len(spans) == 660
    assert len({span.trace_id for span, _ in spans}) == 20
    assert len({service for _, service in spans}) == 12
    assert cross_service_links(spans) == 220
    ids = {(span.trace_id, span.span_id) for span, _ in spans}
    assert all((span.trace_id, span.parent_span_id) in ids for span, _ in spans if span.parent_span_id)
    assert sum(1 for span, _ in spans if not span.parent_span_id) == 20
    # 64-bit Jaeger trace ids are left-padded to 16 bytes
    assert all(len(span.trace_id) == 16 and span.trace_id[:8] == bytes(8) for span, _ in spans)
    assert {span.trace_id[8:].hex() for span, _ in spans} >= {"151e8ea44a5cf41c"}
    assert all("span.kind" not in attrs_of(span.attributes) for span, _ in spans)
    assert {span.kind for span, _ in spans} == {Span.SPAN_KIND_UNSPECIFIED}  # the file has no span.kind tags
    first = spans[0][0]
    raw = json.loads((EXTERNAL / "traces-1695947455229.json").read_bytes())["data"][0]["spans"][0]
    assert first.name == raw["operationName"] == "compose_user_mentions_memcached_get_client"
    assert first.span_id.hex() == "137cfc2d87740f56" and first.parent_span_id.hex() == "37e2b05295806961"
    assert not first.links and not first.events
    assert first.start_time_unix_nano == raw["startTime"] * 1000
    assert first.end_time_unix_nano == (raw["startTime"] + raw["duration"]) * 1000
    assert attrs_of(first.attributes)["internal.span.format"] == "proto"
    resource = TracesData.FromString(decoded.messages[0]).resource_spans[0].resource
    assert {"service.name", "host.name", "ip"} <= set(attrs_of(resource.attributes))


def test_smartthings_zipkin_shared_spans() -> None:
    decoded = load("smartthings-mobile-web-install.json")
    assert decoded.format == "zipkin"
    assert decoded.notes == {
        "zipkin_shared_split": 294,
        "zipkin_shared_fragments": 84,
        "zipkin_no_timestamp": 84,
    }
    spans = spans_of(decoded)
    assert len(spans) == 1041
    assert len({service for _, service in spans}) == 16
    # one ResourceSpans per service
    assert len(TracesData.FromString(decoded.messages[0]).resource_spans) == 16
    by_id: dict[bytes, list[tuple[Span, str | None]]] = {}
    for span, service in spans:
        by_id.setdefault(span.span_id, []).append((span, service))
    assert not any(span.span_id == bytes(8) for span, _ in spans)
    # every split server half hangs under its client half, in another service
    records = json.loads((EXTERNAL / "smartthings-mobile-web-install.json").read_bytes())
    shared_ids = {bytes.fromhex(r["id"]) for r in records if r.get("shared")}
    clients = {span.span_id: service for span, service in spans if span.kind == Span.SPAN_KIND_CLIENT}
    halves = [
        (s, svc) for s, svc in spans if s.kind == Span.SPAN_KIND_SERVER and s.parent_span_id in shared_ids
    ]
    halves = [(s, svc) for s, svc in halves if s.span_id not in shared_ids]
    assert len(halves) == 294
    assert all(clients[s.parent_span_id] != svc for s, svc in halves)
    # no span but the server halves (and their fragments) hangs under a shared id in the server's service
    half_service = {(s.parent_span_id, svc) for s, svc in halves}
    half_ids = {s.span_id for s, _ in halves}
    assert not any((s.parent_span_id, svc) in half_service for s, svc in spans if s.span_id not in half_ids)
    # the 5-way fan-out of one shared id gets 5 distinct derived ids
    fan = [s for s, _ in halves if s.parent_span_id.hex() == "cbab506b53f336fc"]
    assert len(fan) == 5 and len({s.span_id for s in fan}) == 5
    # the only duplicated ids left are the 84 kind-less timestamp-less fragments of a server half
    dups = [group for group in by_id.values() if len(group) > 1]
    assert len(dups) == 84
    assert all(sorted(s.kind for s, _ in group) == [0, 2] for group in dups)
    assert cross_service_links(spans) == 380
    assert all(len(span.trace_id) == 16 and span.trace_id[:8] == bytes(8) for span, _ in spans)


def test_yelp_zipkin() -> None:
    decoded = load("yelp.json")
    assert decoded.format == "zipkin"
    assert decoded.notes == {"zipkin_shared_split": 3}
    spans = spans_of(decoded)
    assert len(spans) == 16
    assert {service for _, service in spans} == {
        "yelp-main",
        "mobile_api",
        "routing",
        "spectre",
        "yelp_main/api_proxy",
        "unknown",
    }
    trace_id = bytes.fromhex("0000000000000000a03ee8fff1dcd9b9")
    assert {span.trace_id for span, _ in spans} == {trace_id}
    # the spectre server half of 7a778764a0d0b594: derived id, parented to the mobile_api client half
    client_id = bytes.fromhex("7a778764a0d0b594")
    derived = hashlib.sha256(b"tracegroup-zipkin-shared" + trace_id + client_id).digest()[:8]
    (half,) = [span for span, service in spans if service == "spectre"]
    assert (half.span_id, half.parent_span_id, half.kind) == (derived, client_id, Span.SPAN_KIND_SERVER)
    assert half.start_time_unix_nano == 1571896375310740000 and half.end_time_unix_nano - 1490000 == (
        half.start_time_unix_nano
    )
    # the routing root is shared but has no client half: it keeps its id and (absent) parent
    (root,) = [span for span, service in spans if service == "routing"]
    assert root.span_id.hex() == "2e8cfb154b59a41f" and not root.parent_span_id
    # the api_proxy server half is split from the "unknown" client half; the records under 668ed78ad94b35a1
    # run in "yelp-main", not in the server half's service, so they stay under the client half's id
    proxy = next(span for span, service in spans if service == "yelp_main/api_proxy")
    assert proxy.parent_span_id.hex() == "668ed78ad94b35a1" and proxy.span_id != proxy.parent_span_id
    assert [e.name for e in proxy.events] == ["py_zipkin.logging_end"]
    children = [service for span, service in spans if span.parent_span_id == proxy.parent_span_id]
    assert Counter(children) == {"yelp-main": 2, "yelp_main/api_proxy": 1}
    assert cross_service_links(spans) == 7
    # kind absent -> UNSPECIFIED
    assert Counter(span.kind for span, _ in spans)[Span.SPAN_KIND_UNSPECIFIED] == 1


# ---------------------------------------------------------------------------------------------- OTLP ids


def test_hex_id_that_is_also_valid_base64_decodes_as_hex() -> None:
    trace_hex, span_hex = "0123456789abcdef0123456789abcdef", "0123456789abcdef"
    base64.b64decode(trace_hex, validate=True)  # would silently give 24 bytes through json_format
    span = only_span(decode(otlp_doc(traceId=trace_hex, spanId=span_hex, parentSpanId="ABCDEF0123456789")))
    assert span.trace_id == bytes.fromhex(trace_hex)
    assert span.span_id == bytes.fromhex(span_hex)
    assert span.parent_span_id == bytes.fromhex("abcdef0123456789")


def test_base64_ids_decode() -> None:
    trace_b64 = base64.b64encode(bytes(range(16))).decode()
    span_b64 = base64.b64encode(bytes(range(1, 9))).decode()
    assert (len(trace_b64), len(span_b64)) == (24, 12)
    link = {"traceId": trace_b64, "spanId": span_b64, "flags": 256}
    span = only_span(decode(otlp_doc(traceId=trace_b64, spanId=span_b64, links=[link])))
    assert span.trace_id == bytes(range(16))
    assert span.span_id == bytes(range(1, 9))
    assert (span.links[0].trace_id, span.links[0].span_id, span.links[0].flags) == (
        bytes(range(16)),
        bytes(range(1, 9)),
        256,
    )


def test_hex_link_ids_and_flags() -> None:
    link = {"traceId": "11" * 16, "spanId": "22" * 8, "flags": 769}
    span = only_span(decode(otlp_doc(flags=257, links=[link])))
    assert (span.links[0].trace_id, span.links[0].span_id) == (b"\x11" * 16, b"\x22" * 8)
    assert (span.flags, span.links[0].flags) == (257, 769)


@pytest.mark.parametrize(
    "field,value",
    [
        ("traceId", "abc"),
        ("traceId", "0af7651916cd43dd8448eb211c80319"),  # 31 hex chars
        ("traceId", "0af7651916cd43dd8448eb211c80319c00"),  # 34 hex chars
        ("traceId", "0af7651916cd43dd8448eb21"),  # 24 hex chars: base64 of 18 bytes
        ("traceId", "AAECAwQFBgcICQoLDA0O"),  # base64 of 15 bytes
        ("spanId", "b7ad6b716920333"),
        ("spanId", "zzad6b7169203331"),
        ("parentSpanId", 12345),
    ],
)
def test_bad_ids_are_errors(field: str, value: Any) -> None:
    with pytest.raises(LoadError) as err:
        decode(otlp_doc(**{field: value}), "bad-ids.json")
    message = str(err.value)
    assert message.startswith("bad-ids.json: ") and field in message and str(value)[:10] in message
    assert "\n" not in message


def test_empty_ids_are_kept() -> None:
    span = only_span(decode(otlp_doc(traceId="", spanId="", parentSpanId="")))
    assert (span.trace_id, span.span_id, span.parent_span_id, span.name) == (b"", b"", b"", "op")


def test_otlp_names_numbers_and_request_body() -> None:
    doc = otlp_doc(kind="SPAN_KIND_CLIENT", startTimeUnixNano=5, endTimeUnixNano="7", status={"code": 2})
    doc["resourceSpans"][0]["unknownField"] = {"ignored": True}
    span = only_span(decode(doc))
    assert (span.kind, span.start_time_unix_nano, span.end_time_unix_nano) == (3, 5, 7)
    assert span.status.code == 2


def test_snake_case_keys_with_base64_ids_round_trip() -> None:
    msg = TracesData()
    span = msg.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.parent_span_id, span.name = b"\x01" * 16, b"\x02" * 8, b"\x03" * 8, "x"
    doc = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    assert "resource_spans" in doc
    decoded = decode(doc)
    assert decoded.format == "otlp-json"
    assert TracesData.FromString(decoded.messages[0]) == msg


def test_instrumentation_library_spans() -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "old"}}]},
                "instrumentationLibrarySpans": [
                    {
                        "instrumentationLibrary": {"name": "lib", "version": "0.1"},
                        "spans": [
                            {"traceId": "aa" * 16, "spanId": "bb" * 8, "name": "a"},
                            {"traceId": "aa" * 16, "spanId": "cc" * 8, "parentSpanId": "bb" * 8, "name": "b"},
                        ],
                    }
                ],
            }
        ]
    }
    decoded = decode(doc)
    assert decoded.format == "otlp-json"
    scope_spans = TracesData.FromString(decoded.messages[0]).resource_spans[0].scope_spans
    assert len(scope_spans) == 1
    assert (scope_spans[0].scope.name, scope_spans[0].scope.version) == ("lib", "0.1")
    assert [s.span_id for s in scope_spans[0].spans] == [b"\xbb" * 8, b"\xcc" * 8]
    assert scope_spans[0].spans[1].parent_span_id == b"\xbb" * 8


def test_jaeger_v3_wrapper_inline() -> None:
    decoded = decode({"result": otlp_doc()})
    assert decoded.format == "jaeger-v3"
    assert only_span(decoded).trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"


# ---------------------------------------------------------------------------------------------- JSON Lines


def jsonl_line(span_id: str) -> bytes:
    return json.dumps(otlp_doc(spanId=span_id), separators=(",", ":")).encode()


def test_jsonl_batches() -> None:
    data = b"\n".join(jsonl_line(f"{i:016x}") for i in range(1, 4)) + b"\n"
    decoded = decode_json(data, "out.jsonl")
    assert decoded.format == "otlp-jsonl"
    assert len(decoded.messages) == 3 and not decoded.warnings
    assert [s.span_id for s, _ in spans_of(decoded)] == [i.to_bytes(8, "big") for i in range(1, 4)]


def test_jsonl_crlf_and_blank_lines() -> None:
    data = b"\r\n".join([jsonl_line("01" * 8), b"", jsonl_line("02" * 8), b""])
    decoded = decode_json(data, "out.jsonl")
    assert decoded.format == "otlp-jsonl" and len(decoded.messages) == 2


def test_jsonl_truncated_last_line_is_skipped_with_warning() -> None:
    last = jsonl_line("03" * 8)[:57]
    data = jsonl_line("01" * 8) + b"\n" + jsonl_line("02" * 8) + b"\n" + last
    decoded = decode_json(data, "out.jsonl")
    assert decoded.format == "otlp-jsonl"
    assert len(decoded.messages) == 2
    assert decoded.warnings == ["out.jsonl: last line is truncated (57 bytes), skipped"]


def test_jsonl_bad_middle_line_is_an_error() -> None:
    data = jsonl_line("01" * 8) + b"\n" + b'{"resourceSpans": [' + b"\n" + jsonl_line("03" * 8) + b"\n"
    with pytest.raises(LoadError, match=r"^out\.jsonl: line 2: invalid JSON"):
        decode_json(data, "out.jsonl")


def test_jsonl_bad_id_names_the_line() -> None:
    data = jsonl_line("01" * 8) + b"\n" + jsonl_line("0102") + b"\n"
    with pytest.raises(LoadError, match=r"^out\.jsonl: line 2: bad spanId '0102'"):
        decode_json(data, "out.jsonl")


# ------------------------------------------------------------------------------------------- Jaeger v1


def jaeger_tag(key: str, type_: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "value": value}


def test_jaeger_v1_inline_conversion() -> None:
    trace = {
        "traceID": "1",
        "spans": [
            {
                "traceID": "1",
                "spanID": "a",
                "operationName": "root",
                "references": [],
                "startTime": 10,
                "duration": 5,
                "tags": [
                    jaeger_tag("span.kind", "string", "server"),
                    jaeger_tag("otel.status_code", "string", "OK"),
                ],
                "processID": "p1",
            },
            {
                "traceID": "1",
                "spanID": "b",
                "operationName": "child",
                "flags": 1,
                "references": [
                    {"refType": "FOLLOWS_FROM", "traceID": "1", "spanID": "c"},
                    {"refType": "CHILD_OF", "traceID": "99", "spanID": "d"},
                    {"refType": "CHILD_OF", "traceID": "1", "spanID": "a", "span": {"ignored": True}},
                ],
                "startTime": 11,
                "duration": 2,
                "tags": [
                    jaeger_tag("span.kind", "string", "client"),
                    jaeger_tag("error", "bool", True),
                    jaeger_tag("otel.status_description", "string", "boom"),
                    jaeger_tag("otel.scope.name", "string", "lib"),
                    jaeger_tag("otel.scope.version", "string", "2"),
                    jaeger_tag("n", "int64", 7),
                    jaeger_tag("f", "float64", 0.5),
                    jaeger_tag("b", "bool", False),
                    jaeger_tag("raw", "binary", base64.b64encode(b"\x00\x01").decode()),
                ],
                "logs": [
                    {
                        "timestamp": 12,
                        "fields": [jaeger_tag("event", "string", "retry"), jaeger_tag("k", "int64", 1)],
                    }
                ],
                "processID": "p2",
                "depth": 1,
                "childSpanIds": [],
            },
        ],
        "processes": {
            "p1": {"serviceName": "front", "tags": [jaeger_tag("hostname", "string", "h1")]},
            "p2": {"serviceName": "back", "tags": []},
        },
    }
    decoded = decode({"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None})
    assert decoded.format == "jaeger"
    msg = TracesData.FromString(decoded.messages[0])
    assert [attrs_of(rs.resource.attributes) for rs in msg.resource_spans] == [
        {"service.name": "front", "host.name": "h1"},
        {"service.name": "back"},
    ]
    root = msg.resource_spans[0].scope_spans[0].spans[0]
    assert root.trace_id == bytes(15) + b"\x01" and root.span_id == bytes(7) + b"\x0a"
    assert (root.kind, root.status.code, root.start_time_unix_nano, root.end_time_unix_nano) == (
        2,
        1,
        10000,
        15000,
    )
    assert not root.attributes
    scope_spans = msg.resource_spans[1].scope_spans[0]
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("lib", "2")
    child = scope_spans.spans[0]
    assert child.parent_span_id == bytes(7) + b"\x0a"  # the CHILD_OF of the same trace wins
    assert [(link.trace_id[-1], link.span_id[-1]) for link in child.links] == [(0x01, 0x0C), (0x99, 0x0D)]
    assert [attrs_of(link.attributes) for link in child.links] == [
        {"opentracing.ref_type": "follows_from"},
        {"opentracing.ref_type": "child_of"},
    ]
    assert (child.kind, child.status.code, child.status.message) == (3, 2, "boom")
    assert attrs_of(child.attributes) == {"n": 7, "f": 0.5, "b": False, "raw": b"\x00\x01"}
    assert [(e.name, e.time_unix_nano, attrs_of(e.attributes)) for e in child.events] == [
        ("retry", 12000, {"k": 1})
    ]


def test_jaeger_v1_follows_from_parent() -> None:
    span = {
        "traceID": "1",
        "spanID": "b",
        "operationName": "x",
        "startTime": 1,
        "duration": 1,
        "references": [{"refType": "FOLLOWS_FROM", "traceID": "1", "spanID": "a"}],
        "processID": "p1",
    }
    decoded = decode({"data": [{"traceID": "1", "spans": [span], "processes": {"p1": {"serviceName": "s"}}}]})
    (only,) = spans_of(decoded)
    assert only[0].parent_span_id[-1] == 0x0A and not only[0].links and only[1] == "s"


# ---------------------------------------------------------------------------------------------- Zipkin


def zipkin(span_id: str, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"traceId": "1", "id": span_id, **({"parentId": parent} if parent else {}), **fields}


def test_zipkin_inline_shared_split_and_timestamps() -> None:
    fe, be = {"serviceName": "fe"}, {"serviceName": "be"}
    records = [
        zipkin("a", kind="SERVER", name="root", timestamp=1, localEndpoint=fe),
        zipkin("b", "a", kind="CLIENT", name="call", timestamp=2, duration=3, localEndpoint=fe,
               remoteEndpoint={"serviceName": "be", "port": 80}),
        zipkin("b", "a", kind="SERVER", name="serve", timestamp=3, duration=1, localEndpoint=be, shared=True,
               annotations=[{"timestamp": 4, "value": "ws"}]),
        zipkin("c", "b", name="db", localEndpoint=be, tags={"error": "timeout"}),
        zipkin("d", "b", name="local", timestamp=2, tags={"error": "true"}),
    ]  # fmt: skip
    decoded = decode([records])  # also the list-of-traces shape of GET /api/v2/traces
    assert decoded.format == "zipkin"
    assert decoded.notes == {"zipkin_shared_split": 1, "zipkin_no_timestamp": 1}
    spans = spans_of(decoded)
    assert [service for _, service in spans] == ["fe", "fe", "be", "be", None]
    msg = TracesData.FromString(decoded.messages[0])
    assert len(msg.resource_spans) == 3 and not msg.resource_spans[2].resource.attributes
    root, client, server, db, local = (span for span, _ in spans)
    b = bytes(7) + b"\x0b"
    assert root.trace_id == bytes(15) + b"\x01" and root.kind == Span.SPAN_KIND_SERVER
    assert (client.span_id, client.kind, client.start_time_unix_nano, client.end_time_unix_nano) == (
        b,
        3,
        2000,
        5000,
    )
    assert attrs_of(client.attributes) == {"peer.service": "be", "net.peer.port": "80"}
    derived = hashlib.sha256(b"tracegroup-zipkin-shared" + root.trace_id + b).digest()[:8]
    assert (server.span_id, server.parent_span_id, server.kind) == (derived, b, Span.SPAN_KIND_SERVER)
    assert [(e.name, e.time_unix_nano) for e in server.events] == [("ws", 4000)]
    assert db.parent_span_id == derived  # child of the server half, in the server's service
    assert (db.kind, db.start_time_unix_nano, db.end_time_unix_nano) == (Span.SPAN_KIND_UNSPECIFIED, 0, 0)
    assert (db.status.code, attrs_of(db.attributes)) == (2, {"error": "timeout"})
    assert local.parent_span_id == b  # no service: stays under the client half
    assert (local.status.code, attrs_of(local.attributes)) == (2, {})


def test_zipkin_shared_without_client_half_keeps_its_id() -> None:
    records = [{"traceId": "1" * 32, "id": "e" * 16, "parentId": "f" * 16, "kind": "SERVER", "shared": True}]
    decoded = decode(records)
    assert decoded.notes == {"zipkin_shared_split": 0, "zipkin_no_timestamp": 1}
    span = only_span(decoded)
    assert (span.trace_id, span.span_id, span.parent_span_id) == (b"\x11" * 16, b"\xee" * 8, b"\xff" * 8)


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n",
        b"not json",
        b'{"foo": 1}',
        b"[1,2]",
        b"[]",
        b"42",
        b'"text"',
        b"null",
        b"\xff\xfe\x00garbage",
        b'{"resourceSpans": [',
        b'{"resourceSpans": 5}',
        b'{"resourceSpans": [5]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "kind": "NOPE"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": [{"instrumentationLibrarySpans": "x"}]}',
        b'{"result": {"resourceSpans": {"a": 1}}}',
        b'{"data": [{"spans": [{"traceID": "xyz", "spanID": "1"}]}]}',
        b'{"data": [{"spans": [{"traceID": "1", "spanID": "1", "startTime": "later"}]}]}',
        b'{"data": [{"spans": [{"traceID": "1", "spanID": "1", "tags": [{"value": 1}]}]}]}',
        b'{"data": [{"spans": "none"}]}',
        b'{"data": [{"foo": 1}]}',
        b'{"data": null, "errors": [{"code": 404, "msg": "trace not found"}]}',
        b'[{"traceId": "1", "id": "1", "timestamp": "noon"}]',
        b'[{"traceId": "1", "id": "1"}, {"id": "2"}]',
        b'[{"traceId": "1", "id": "1", "tags": [1]}]',
    ],
)
def test_bad_input_is_one_line_load_error(data: bytes) -> None:
    with pytest.raises(LoadError) as err:
        decode_json(data, "dump.json")
    message = str(err.value)
    assert message.startswith("dump.json: ") and "\n" not in message and len(message) < 500


def test_bad_input_messages_say_what_is_wrong() -> None:
    with pytest.raises(LoadError, match="not valid JSON"):
        decode_json(b"not json", "x")
    with pytest.raises(LoadError, match="not OTLP"):
        decode_json(b'{"foo": 1}', "x")
    with pytest.raises(LoadError, match="not a list of objects"):
        decode_json(b"[1,2]", "x")
    with pytest.raises(LoadError, match="trace not found"):
        decode_json(b'{"data": null, "errors": [{"code": 404, "msg": "trace not found"}]}', "x")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "resourceSpans",
        "scopeSpans",
        "spans",
        "traceId",
        "spanId",
        "links",
        "data",
        "processes",
        "result",
        "references",
        "tags",
        "id",
        "localEndpoint",
        "serviceName",
        "shared",
        "timestamp",
        "key",
        "value",
        "type",
    ]
)
shaped = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(alphabet="0123456789abcdef=", max_size=34),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, shaped))
def test_fuzz_only_load_error_escapes(doc: Any) -> None:
    try:
        decoded = decode(doc)
    except LoadError as err:
        assert "\n" not in str(err)
        return
    for raw in decoded.messages:
        TracesData.FromString(raw)
