"""Issue 17: Sentry payloads that match what Sentry shows, and nothing secret leaves the machine.

One test per item, each with a real judge: Relay's normalizer (``sentry_relay.StoreNormalizer``, from the
``sentry-relay`` package) for what Relay keeps or trims, sentry-python (``sentry_sdk``) for what an SDK
builds from the same span.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from test_sentry_emit import NOW, NS, TRACE_A, TRACE_B, normalizer, relay_problems
from test_sentry_go_ports import pb_span, pb_table

import tracegroup as tg
from tracegroup.model import SpanTable
from tracegroup.otlp_out import corrected_messages, service_flags
from tracegroup.redact import Policy
from tracegroup.routes import Route, Routes
from tracegroup.sentry.emit import emit

SECRETS = ("hunter2", "tok3n", "Bearer-xyz", "sess1on", "pr1vate")
URL = "https://bob:hunter2@api.example.com/v1/items?token=tok3n&page=2"


def secret_table() -> SpanTable:
    end = NOW - 10 * NS
    root = pb_span(
        "5000000000000001",
        trace=TRACE_A,
        name="GET /items",
        kind="SERVER",
        start=end - 5 * NS,
        end=end,
        attrs={
            "http.request.method": "GET",
            "http.route": "/items",
            "url.full": "https://shop.example.com/items?api_key=pr1vate",
            "http.request.header.authorization": ["Bearer-xyz"],
            "http.request.header.cookie": "sid=sess1on",
            "http.response.status_code": 200,
        },
        events=[("exception", {"exception.type": "E", "exception.message": f"fetch {URL} failed"}, end - NS)],
    )
    client = pb_span(
        "5000000000000002",
        "5000000000000001",
        trace=TRACE_A,
        name="GET",
        kind="CLIENT",
        start=end - 4 * NS,
        end=end - 2 * NS,
        attrs={"http.method": "GET", "http.url": URL, "http.response.header.set-cookie": ["sid=sess1on"]},
    )
    return pb_table([({"service.name": "shop"}, ("lib", "1"), [root, client])])


def payload_text(result: Any) -> str:
    return "\n".join(ev.payload.decode() + json.dumps(ev.headers) for ev in result.events)


# --------------------------------------------------------------------------------------------- item 1
@pytest.mark.parametrize("style", ["exporter", "sentry"])
def test_secrets_never_leave_unless_kept(style: str) -> None:
    table = secret_table()
    result = emit(table, now=NOW, style=style)
    text = payload_text(result)
    assert not [s for s in SECRETS if s in text], "a secret was emitted"
    assert "[Filtered]" in text
    norm = normalizer()
    for ev in result.events:
        assert relay_problems(norm, ev.event()) == []
    otlp = b"".join(m.SerializeToString() for m in corrected_messages(table, service_flags(table)))
    assert not [s for s in SECRETS if s.encode() in otlp]
    kept = payload_text(emit(table, now=NOW, style=style, redaction=Policy(secrets=False)))
    assert "hunter2" in kept and "tok3n" in kept


def test_sentry_style_url_matches_sentry_python() -> None:
    """sentry-python's ``sanitize_url`` writes userinfo as ``[Filtered]:[Filtered]@``: so do we."""
    from sentry_sdk.utils import sanitize_url

    tx = next(
        e.event() for e in emit(secret_table(), now=NOW, style="sentry").events if e.kind == "transaction"
    )
    (client,) = tx["spans"]
    expected = sanitize_url(URL.split("?")[0], remove_authority=True, remove_query_values=False)
    assert client["description"] == f"GET {expected}"
    assert client["data"]["http.url"] == expected + "?token=[Filtered]&page=2"
    assert client["data"]["http.response.header.set-cookie"] == ["[Filtered]"]


# --------------------------------------------------------------------------------------------- item 2
def test_exporter_error_events_keep_the_environment_tag() -> None:
    end = NOW - 10 * NS
    sp = pb_span(
        "6000000000000001",
        trace=TRACE_B,
        name="work",
        start=end - NS,
        end=end,
        events=[("exception", {"exception.type": "E", "exception.message": "boom"}, end)],
    )
    result = emit(
        pb_table([({"service.name": "svc", "environment": "staging"}, ("lib", "1"), [sp])]), now=NOW
    )
    tx, err = (next(e.event() for e in result.events if e.kind == k) for k in ("transaction", "error"))
    norm = normalizer()
    assert norm.normalize_event(tx)["environment"] == "staging"
    assert err["environment"] == "staging" and norm.normalize_event(err)["environment"] == "staging"
    assert relay_problems(norm, err) == []


# --------------------------------------------------------------------------------------------- item 3
def test_long_tags_are_trimmed_as_relay_trims_them() -> None:
    end = NOW - 10 * NS
    sp = pb_span(
        "7000000000000001", trace=TRACE_B, start=end - NS, end=end, attrs={"long": "w " * 150, "k" * 230: "v"}
    )
    (ev,) = emit(pb_table([({"service.name": "svc"}, ("lib", "1"), [sp])]), now=NOW).events
    d = ev.event()
    out = norm_tags = dict(normalizer().normalize_event(json.loads(json.dumps(d)))["tags"])
    for key in ("long", "k" * 197 + "..."):
        assert d["tags"][key] == norm_tags[key] and len(out[key]) <= 200
    assert relay_problems(normalizer(), d) == []


# --------------------------------------------------------------------------------------------- items 4-7
def test_sentry_style_ops_dsc_response_and_grpc() -> None:
    end = NOW - 10 * NS
    consumer = pb_span(
        "8000000000000001",
        trace=TRACE_A,
        name="process orders",
        kind="CONSUMER",
        start=end - 5 * NS,
        end=end,
        attrs={
            "messaging.system": "kafka",
            "messaging.destination.name": "orders",
            "messaging.operation.type": "process",
        },
    )
    grpc = pb_span(
        "8000000000000002",
        "8000000000000001",
        trace=TRACE_A,
        name="Svc/Call",
        kind="CLIENT",
        start=end - 4 * NS,
        end=end - 3 * NS,
        attrs={"rpc.service": "Svc", "rpc.grpc.status_code": 0},
        status=(2, "deadline_exceeded"),
    )
    server = pb_span(
        "9000000000000001",
        trace=TRACE_B,
        name="GET /a",
        kind="SERVER",
        start=end - 2 * NS,
        end=end,
        attrs={"http.request.method": "GET", "http.route": "/a", "http.response.status_code": 404},
    )
    res = {"service.name": "svc", "service.version": "1.4.2", "deployment.environment.name": "prod"}
    table = pb_table([(res, ("lib", "1"), [consumer, grpc, server])])
    routes = Routes([Route("r", ["svc"], "https://pub@o42.ingest.sentry.io/7")], None)
    result = emit(table, now=NOW, style="sentry", routes=routes)
    by_trace = {e.trace_id: e for e in result.events if e.kind == "transaction"}
    q = by_trace[TRACE_A].event()
    # item 4: Relay's own op inference for messaging, the span name as transaction name
    assert q["contexts"]["trace"]["op"] == "message" and q["transaction"] == "process orders"
    # item 7: gRPC 0 on an ERROR span is absent for sentry-python: the status message decides
    assert q["spans"][0]["status"] == "deadline_exceeded"
    # item 5: the DSC as sentry-python's populate_from_transaction fills it
    dsc = by_trace[TRACE_A].headers["trace"]
    assert dsc["release"] == "1.4.2" and dsc["transaction"] == "process orders"
    assert dsc["environment"] == "prod" and dsc["org_id"] == "42"
    from sentry_sdk.utils import Dsn

    assert dsc["org_id"] == Dsn("https://pub@o42.ingest.sentry.io/7").org_id
    # item 6: contexts.response.status_code on HTTP server transactions
    srv = by_trace[TRACE_B].event()
    norm = normalizer()
    assert norm.normalize_event(srv)["contexts"]["response"]["status_code"] == 404
    for e in result.events:
        assert relay_problems(norm, e.event()) == []


# --------------------------------------------------------------------------------------------- item 8
def test_event_ids_change_with_the_replay_not_with_a_rerun() -> None:
    table = tg.load(["fixtures/polyglot.pb"])

    def ids(now: int, replay: str = "") -> list[str]:
        r = emit(table, now=now, rebase_time=True, replay_id=replay)
        return [e.event_id for e in r.records]

    first = ids(NOW)
    assert first == ids(NOW)  # same command, same --now: same ids (and bytes: test_deterministic_bytes)
    assert not set(first) & set(ids(NOW + 3600 * NS))  # another --now: another replay
    assert not set(first) & set(ids(NOW, "second"))  # --replay-id
    plain = [e.event_id for e in emit(table, now=NOW).records]
    assert not set(plain) & set(first)


# --------------------------------------------------------------------------------------------- old events
def test_time_rule_is_relays_transaction_timestamp_range() -> None:
    """Relay validates a transaction's end only (not its spans') against [now - 5 days, now + 60 s)."""
    day = 86_400 * NS
    end = NOW - 5 * day + NS  # just inside
    root = pb_span("a100000000000001", trace=TRACE_A, start=end - 10 * day, end=end)  # starts 15 days ago
    child = pb_span(
        "a100000000000002", "a100000000000001", trace=TRACE_A, start=end - 10 * day, end=end - 9 * day
    )
    result = emit(pb_table([({"service.name": "svc"}, ("lib", "1"), [root, child])]), now=NOW)
    assert [r.reason for r in result.records] == [""]
    late = pb_span("a200000000000001", trace=TRACE_B, start=NOW - 6 * day, end=NOW - 5 * day - NS)
    assert [
        r.reason for r in emit(pb_table([({"service.name": "svc"}, ("l", "1"), [late])]), now=NOW).records
    ] == ["too_old"]


def test_policy_is_idempotent_and_keeps_structure() -> None:
    td = TracesData.FromString(secret_table().batches[0].raw)
    before = [
        (s.span_id, s.parent_span_id, s.kind)
        for rs in td.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    from tracegroup.redact import scrub_traces

    assert scrub_traces(td, Policy(pii=True))
    once = td.SerializeToString()
    assert not scrub_traces(td, Policy(pii=True)) and td.SerializeToString() == once
    after = [
        (s.span_id, s.parent_span_id, s.kind)
        for rs in td.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]
    assert before == after
