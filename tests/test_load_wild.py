"""Formats found in the wild (issue 18): Zipkin v1 JSON, Zipkin v2 halves without ``shared`` and span
fragments (Zipkin's ``Trace.merge``), bare Jaeger traces and arrays of Jaeger spans with inline process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

from tracegroup.analysis import analyze
from tracegroup.load import load
from tracegroup.load.base import Decoded
from tracegroup.load.jsonfmt import decode_json

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXTERNAL = ROOT / "fixtures" / "external"


def spans_of(decoded: Decoded) -> list[tuple[Span, str | None]]:
    out: list[tuple[Span, str | None]] = []
    for raw in decoded.messages:
        for rs in TracesData.FromString(raw).resource_spans:
            attrs = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            out.extend((sp, attrs.get("service.name")) for ss in rs.scope_spans for sp in ss.spans)
    return out


def decode(doc: Any) -> Decoded:
    return decode_json(json.dumps(doc).encode(), "inline.json")


def attrs(sp: Span) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in sp.attributes}


# ---------------------------------------------------------------------------------------------- Zipkin v1


def test_zipkin_v1_services_kinds_and_tags_from_endpoints() -> None:
    decoded = decode_json((DATA / "zipkin-v1-frontend-backend.json").read_bytes(), "v1.json")
    assert decoded.format == "zipkin-v1"
    assert decoded.notes == {"zipkin_v1_records": 3, "zipkin_shared_split": 1}
    spans = spans_of(decoded)
    by_name = {(sp.name, service): sp for sp, service in spans}
    assert sorted(by_name) == [
        ("get /", "frontend"),
        ("get /api", "backend"),
        ("get /api", "frontend"),
        ("select", "backend"),
    ]
    root, client = by_name[("get /", "frontend")], by_name[("get /api", "frontend")]
    server, local = by_name[("get /api", "backend")], by_name[("select", "backend")]
    assert (root.kind, client.kind, server.kind, local.kind) == (2, 3, 2, 0)
    assert client.parent_span_id == root.span_id and server.parent_span_id == client.span_id
    assert local.parent_span_id == server.span_id  # under the server half, in the server's service
    assert (client.start_time_unix_nano, client.end_time_unix_nano) == (
        1530232340179000000,
        1530232340369000000,
    )
    assert (server.start_time_unix_nano, server.end_time_unix_nano) == (
        1530232340181000000,
        1530232340366000000,
    )
    assert attrs(root) == {
        "http.method": "GET",
        "http.path": "/",
        "net.peer.ip": "127.0.0.1",
        "net.peer.port": "61309",
    }
    assert attrs(client)["peer.service"] == "backend" and attrs(server) == {"mvc.controller.class": "Backend"}
    assert [e.name for e in server.events] == ["retrying"]  # core annotations are not events
    assert attrs(local)["sql.query"] == "select * from accounts"


def test_zipkin_v1_groups_like_the_same_trace_in_v2(tmp_path: Path) -> None:
    path = tmp_path / "v1.json"
    path.write_bytes((DATA / "zipkin-v1-frontend-backend.json").read_bytes())
    an = analyze(load([path]))
    t = an.table
    assert sorted(t.services) == ["backend", "frontend"] and len(t) == 4
    assert an.diff.counts().get("blamed", 0) == 0


def test_zipkin_v1_loopback_and_incomplete_rpc() -> None:
    ep = {"serviceName": "svc", "ipv4": "10.0.0.1"}
    loopback = {
        "traceId": "a",
        "id": "b",
        "name": "self",
        "annotations": [
            {"timestamp": 10, "value": "cs", "endpoint": ep},
            {"timestamp": 11, "value": "sr", "endpoint": ep},
            {"timestamp": 19, "value": "ss", "endpoint": ep},
            {"timestamp": 20, "value": "cr", "endpoint": ep},
        ],
    }
    server_only = {
        "traceId": "a",
        "id": "c",
        "parentId": "b",
        "name": "half",
        "annotations": [{"timestamp": 30, "value": "sr", "endpoint": {"serviceName": "other"}}],
    }
    spans = spans_of(decode([loopback, server_only]))
    kinds = sorted((sp.name, sp.kind, service) for sp, service in spans)
    assert kinds == [("half", 2, "other"), ("self", 2, "svc"), ("self", 3, "svc")]
    half = next(sp for sp, _ in spans if sp.name == "half")
    assert half.start_time_unix_nano == 30000 and half.span_id == bytes(7) + b"\x0c"  # no client half: kept


def test_zipkin_v2_is_not_mistaken_for_v1() -> None:
    decoded = decode(
        [
            {
                "traceId": "1",
                "id": "1",
                "localEndpoint": {"serviceName": "s"},
                "annotations": [{"timestamp": 1, "value": "x", "endpoint": {"serviceName": "s"}}],
            }
        ]
    )
    assert decoded.format == "zipkin"


# ------------------------------------------------------------------------------ Zipkin v2 Trace.merge


def fe_be(shared: bool | None) -> list[dict[str, Any]]:
    server = {
        "traceId": "1",
        "id": "b",
        "parentId": "a",
        "kind": "SERVER",
        "name": "serve",
        "timestamp": 3,
        "duration": 1,
        "localEndpoint": {"serviceName": "be"},
    }
    if shared is not None:
        server["shared"] = shared
    return [
        {
            "traceId": "1",
            "id": "a",
            "kind": "SERVER",
            "name": "root",
            "timestamp": 1,
            "duration": 9,
            "localEndpoint": {"serviceName": "fe"},
        },
        {
            "traceId": "1",
            "id": "b",
            "parentId": "a",
            "kind": "CLIENT",
            "name": "call",
            "timestamp": 2,
            "duration": 3,
            "localEndpoint": {"serviceName": "fe"},
        },
        server,
        {
            "traceId": "1",
            "id": "c",
            "parentId": "b",
            "name": "db",
            "timestamp": 3,
            "duration": 1,
            "localEndpoint": {"serviceName": "be"},
        },
    ]


def test_server_half_without_shared_flag_is_treated_as_shared() -> None:
    flagged, unflagged = decode(fe_be(True)), decode(fe_be(None))
    assert unflagged.notes == {"zipkin_shared_split": 1, "zipkin_shared_backfilled": 1}
    assert [(sp.span_id, sp.parent_span_id, sp.kind) for sp, _ in spans_of(unflagged)] == [
        (sp.span_id, sp.parent_span_id, sp.kind) for sp, _ in spans_of(flagged)
    ]
    assert len({sp.span_id for sp, _ in spans_of(unflagged)}) == 4  # no duplicate ids left
    explicit_false = decode(fe_be(False))  # "shared": false is backfilled as well, as Zipkin does
    assert explicit_false.notes == unflagged.notes


def test_fragments_of_one_span_are_merged() -> None:
    records = fe_be(True)
    late = {
        "traceId": "1",
        "id": "a",
        "localEndpoint": {"serviceName": "fe", "ipv4": "10.0.0.1"},
        "tags": {"http.status_code": "200"},
        "annotations": [{"timestamp": 5, "value": "flush"}],
    }
    decoded = decode([*records, late])
    assert decoded.notes["zipkin_merged_records"] == 1 and decoded.spans_unread == 1
    spans = spans_of(decoded)
    assert len(spans) == 4
    root = next(sp for sp, _ in spans if sp.name == "root")
    assert (root.kind, root.start_time_unix_nano, attrs(root), [e.name for e in root.events]) == (
        2,
        1000,
        {"http.status_code": "200"},
        ["flush"],
    )


def test_fragments_on_other_hosts_are_not_merged() -> None:
    fan_out = [
        {"traceId": "1", "id": "b", "kind": "CLIENT", "localEndpoint": {"serviceName": "fe"}},
        *(
            {
                "traceId": "1",
                "id": "b",
                "kind": "SERVER",
                "shared": True,
                "localEndpoint": {"serviceName": "be", "ipv4": f"10.0.0.{k}"},
            }
            for k in range(3)
        ),
    ]
    decoded = decode(fan_out)
    assert "zipkin_merged_records" not in decoded.notes and len(spans_of(decoded)) == 4


def test_merge_accounting_in_the_loaded_source(tmp_path: Path) -> None:
    path = tmp_path / "z.json"
    path.write_text(json.dumps([*fe_be(None), {"traceId": "1", "id": "c", "tags": {"rows": "3"}}]))
    s = load([path]).sources[0]
    assert (s.spans, s.spans_held) == (4, 5)


# ---------------------------------------------------------------------------------------------- Jaeger


def test_bare_jaeger_trace_object() -> None:
    whole = json.loads((EXTERNAL / "traces-1695947455229.json").read_text())
    reference = decode(whole)
    first = decode(whole["data"][0])  # `jq .data[0]`
    assert first.format == "jaeger"
    trace = bytes.fromhex(whole["data"][0]["traceID"].rjust(32, "0"))
    key = sorted((sp.span_id, sp.parent_span_id, service) for sp, service in spans_of(first))
    want = sorted((sp.span_id, sp.parent_span_id, s) for sp, s in spans_of(reference) if sp.trace_id == trace)
    assert key == want and len(key) == len(whole["data"][0]["spans"])
    assert len(spans_of(decode(whole["data"]))) == len(spans_of(reference))  # an array of traces


def test_array_of_jaeger_spans_with_inline_process() -> None:
    whole = json.loads((EXTERNAL / "traces-1695947455229.json").read_text())
    spans = []
    for trace in whole["data"]:
        for span in trace["spans"]:
            span = dict(span)
            span["process"] = trace["processes"][span.pop("processID")]
            spans.append(span)
    decoded = decode(spans)  # jaeger-anonymizer output
    assert decoded.format == "jaeger"
    got = sorted((sp.span_id, sp.parent_span_id, service) for sp, service in spans_of(decoded))
    want = sorted((sp.span_id, sp.parent_span_id, service) for sp, service in spans_of(decode(whole)))
    assert got == want and len(got) == 660
