"""Sending: retries, rate limits, 413, resume, dry run, against a local fake Sentry (Relay's normalizer
judges every event); corrected OTLP flags posted to a fake OTLP endpoint."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from builders import S, table
from click.testing import CliRunner
from fake_sentry import FakeSentry, fake_sentry
from sentry_sdk.envelope import Envelope, Item, PayloadRef

from tracegroup import analyze, load
from tracegroup.cli import main
from tracegroup.otlp_out import corrected_flags, corrected_messages, write_otlp
from tracegroup.routes import Route, Routes
from tracegroup.send import NOT_SENT, envelope_requests, otlp_requests, send
from tracegroup.transport import parse_rate_limits, parse_retry_after


def write_envelopes(root: Path, dsns: dict[str, str], per_service: int = 3) -> int:
    """Small valid transactions per service (and one error event), laid out as emit does."""
    n = 0
    now = time.time()
    for service, dsn in dsns.items():
        (root / service).mkdir(parents=True)
        for k in range(per_service):
            event_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{service}{k}").hex
            event = {
                "event_id": event_id, "type": "transaction", "transaction": f"GET /{k}",
                "start_timestamp": now - 2, "timestamp": now - 1,
                "contexts": {"trace": {"trace_id": "ab" * 16, "span_id": f"{k + 1:016x}", "op": "http"}},
                "spans": [], "sdk": {"name": "tracegroup", "version": "0.1.0"},
            }  # fmt: skip
            env = Envelope(headers={"event_id": event_id, "dsn": dsn})
            env.add_item(Item(payload=PayloadRef(json=event), type="transaction"))
            (root / service / f"{event_id}.envelope").write_bytes(env.serialize())
            n += 1
    error = {"event_id": "e" * 32, "level": "error", "message": "boom", "timestamp": now - 1,
             "exception": {"values": [{"type": "ValueError", "value": "boom"}]}}  # fmt: skip
    env = Envelope(headers={"event_id": "e" * 32, "dsn": next(iter(dsns.values()))})
    env.add_item(Item(payload=PayloadRef(json=error), type="event"))
    (root / next(iter(dsns)) / f"{'e' * 32}.envelope").write_bytes(env.serialize())
    return n + 1


def test_flaky_route_then_resume_every_event_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)
    keys = {"11": "k11", "22": "k22"}
    with fake_sentry(keys, {"22": [(500, {})] * 6}) as fake:
        total = write_envelopes(tmp_path, {"shop": fake.dsn("11"), "payments": fake.dsn("22")})
        runner = CliRunner()
        first = runner.invoke(main, ["send", str(tmp_path), "--retries", "2", "--concurrency", "1"])
        assert first.exit_code == 1, first.output
        assert "payments" in first.output and "--resume" in first.output
        not_sent = [json.loads(x) for x in (tmp_path / NOT_SENT).read_text().splitlines()]
        assert {o["service"] for o in not_sent} == {"payments"} and all(
            o["status"] == "failed" for o in not_sent
        )
        assert len(fake.events["11"]) == 4  # 3 transactions + 1 error, each checked by Relay's normalizer
        second = runner.invoke(main, ["send", str(tmp_path), "--resume", "--retries", "2"])
        assert second.exit_code == 0, second.output
        assert "Everything was accepted" in second.output
        assert not (tmp_path / NOT_SENT).exists()
        assert sum(len(v) for v in fake.events.values()) == total
        assert fake.problems == []
        assert "k11" not in first.output + second.output and "k22" not in first.output + second.output


def test_rate_limits_are_honoured_per_category(tmp_path: Path) -> None:
    keys = {"11": "k11"}
    script = {
        "11": [
            (429, {"X-Sentry-Rate-Limits": "7:transaction:key, 3::organization"}),
            (429, {"Retry-After": "2"}),
        ]
    }
    with fake_sentry(keys, script) as fake:
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        requests, unsendable = envelope_requests(tmp_path)
        waits: list[float] = []
        clock = [1000.0]

        def sleep(seconds: float) -> None:
            waits.append(round(seconds, 3))
            clock[0] += seconds

        result = send(requests, unsendable, tmp_path, concurrency=1, sleep=sleep, clock=lambda: clock[0])
        assert result.ok and unsendable == []
        # The transaction goes first (name order): its 429 blocks transactions 7 s and everything 3 s, so it
        # waits 7 s; its retry gets Retry-After: 2 (everything, 2 s) and waits again; the error event then
        # finds no limit left.
        assert [r.category for r in requests] == ["transaction", "error"]
        assert waits == [7.0, 2.0]
        assert len(fake.events["11"]) == 2


def test_413_is_rejected_and_reported(tmp_path: Path) -> None:
    with fake_sentry({"11": "k11"}, {"11": [(413, {})]}) as fake:
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--format", "json", "--concurrency", "1"])
        data = json.loads(r.output)
        assert r.exit_code == 1
        assert [(o["status"], o["code"], o["detail"]) for o in data["not_sent"]] == [
            ("rejected", 413, "too large")
        ]


def test_dry_run_sends_nothing_and_redacts(tmp_path: Path) -> None:
    with fake_sentry({"11": "k11"}) as fake:
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=2)
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--dry-run", "--format", "json"])
        assert r.exit_code == 0 and fake.hits == 0
        assert "k11" not in r.output
        assert json.loads(r.output)["per_service"]["shop"]["would-send"] == 3


def test_envelope_without_dsn_is_reported_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    env = Envelope(headers={"event_id": "a" * 32})
    env.add_item(Item(payload=PayloadRef(json={"event_id": "a" * 32}), type="transaction"))
    (tmp_path / "svc" / "x.envelope").write_bytes(env.serialize())
    r = CliRunner().invoke(main, ["send", str(tmp_path)])
    assert r.exit_code == 1 and "no DSN" in r.output


def test_bad_directory_exit_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["send", str(tmp_path)])
    assert r.exit_code == 2 and "no .envelope files" in r.output


def test_header_parsers() -> None:
    assert parse_rate_limits("60:transaction;error:key, 2700::organization") == [
        (60.0, ["transaction", "error"]), (2700.0, ["*"])
    ]  # fmt: skip
    assert parse_retry_after("5", 0) == 5.0 and parse_retry_after(None, 0) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", 1445412480.0) == 10.0


def test_corrected_otlp_is_segmented_by_remote_parent_as_service_groups_it(tmp_path: Path) -> None:
    t = load(["fixtures/polyglot.pb"])
    an = analyze(t)
    flags = corrected_flags(t, an.reference)
    out = tmp_path / "corrected.pb"
    assert write_otlp(corrected_messages(t, flags), out) == len(t)
    fixed = load([out])
    assert (fixed.flags == flags).all() and (fixed.span_id == t.span_id).all()
    again = analyze(fixed, compare="remote-parent")
    assert (again.compared.root == an.reference.root).all()
    assert again.diff.counts()["ok"] == len(t)
    # Low bits (W3C trace flags) survive; spans without a parent keep their flags.
    assert ((fixed.flags & 0xFF) == (t.flags & 0xFF)).all()
    assert (fixed.flags[t.parent_id == 0] == t.flags[t.parent_id == 0]).all()
    jsonl = tmp_path / "corrected.jsonl"
    write_otlp(corrected_messages(t, flags), jsonl, "jsonl")
    assert (load([jsonl]).flags == flags).all()


def test_send_corrected_otlp_to_each_route() -> None:
    t = table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "b", "SERVER"),
            S(4, 3, "b"),
            S(5, 4, "c"),
        ]
    )
    flags = corrected_flags(t, analyze(t).reference)
    with fake_sentry({"11": "k11", "22": "k22"}, {"22": [(503, {})]}) as fake:
        routes = Routes([Route("front", ["a"], fake.dsn("11")), Route("back", ["b"], fake.dsn("22"))])
        requests, unsendable = otlp_requests(corrected_messages(t, flags), routes)
        assert [o.detail for o in unsendable] == ["1 spans of services without a route or DSN"]
        result = send(requests, [], None, sleep=lambda s: None)
        assert result.ok
        assert fake.otlp_flags == {
            "11": {f"{1:016x}": 0, f"{2:016x}": 0x100},
            "22": {f"{3:016x}": 0x300, f"{4:016x}": 0x100},
        }


@pytest.mark.parametrize("value", ["1s", "200ms", "1.5s"])
def test_duration_option(value: str) -> None:
    from tracegroup.cli.common import Duration

    assert Duration().convert(value, None, None) == {"1s": 1000.0, "200ms": 200.0, "1.5s": 1500.0}[value]


def routes_file(tmp_path: Path, fake: FakeSentry) -> Path:
    """Storefront and frontend to project 11; every other service to the default, project 22."""
    path = tmp_path / "routes.toml"
    path.write_text(
        f'[default]\ndsn = "{fake.dsn("22")}"\n\n'
        f'[[route]]\nname = "shop"\nservices = ["storefront", "frontend"]\ndsn = "{fake.dsn("11")}"\n'
    )
    return path


def test_emit_send_flaky_route_then_resume_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user routes a shipped fixture to two projects, one of them flaky: emit --send leaves the flaky
    project's events listed as not sent; `send --resume` delivers them; Relay's normalizer accepts all."""
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)  # backoff without waiting
    with fake_sentry({"11": "k11", "22": "k22"}, {"22": [(503, {})] * 100_000}) as fake:
        out = tmp_path / "out"
        args = [
            "emit",
            "fixtures/polyglot.pb",
            "--out",
            str(out),
            "--routes",
            str(routes_file(tmp_path, fake)),
        ]
        runner = CliRunner()
        first = runner.invoke(main, [*args, "--rebase-time", "--send"])
        assert first.exit_code == 1, first.output
        envelopes = sorted(out.rglob("*.envelope"))
        not_sent = [json.loads(x) for x in (out / NOT_SENT).read_text().splitlines()]
        assert not_sent and all(o["status"] == "failed" for o in not_sent)
        assert len(fake.events["11"]) + len(not_sent) == len(envelopes)
        fake.script["22"] = []  # the flaky project recovers
        second = runner.invoke(main, ["send", str(out), "--resume"])
        assert second.exit_code == 0, second.output
        assert sum(len(v) for v in fake.events.values()) == len(envelopes)
        assert fake.problems == []
        assert "k11" not in first.output + second.output and "k22" not in first.output + second.output
        spans = sum(
            len(e.get("spans", [])) + 1
            for v in fake.events.values()
            for e in v
            if e.get("type") == "transaction"
        )
        assert spans == 3013  # every span of the fixture arrived, in exactly one transaction


def test_emit_otlp_and_send_otlp(tmp_path: Path) -> None:
    t = load(["fixtures/polyglot.pb"])
    with fake_sentry({"11": "k11", "22": "k22"}) as fake:
        otlp = tmp_path / "fixed.pb"
        routes = str(routes_file(tmp_path, fake))
        out = str(tmp_path / "out")
        args = [
            "emit",
            "fixtures/polyglot.pb",
            "--routes",
            routes,
            "--otlp",
            str(otlp),
            "--out",
            out,
            "--send-otlp",
        ]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        flags = {**fake.otlp_flags["11"], **fake.otlp_flags["22"]}
        assert len(flags) == len(t)
        fixed = load([otlp])
        assert flags == {f"{int(s):016x}": int(f) for s, f in zip(fixed.span_id, fixed.flags, strict=True)}
        assert analyze(fixed, compare="remote-parent").diff.counts()["ok"] == len(t)
