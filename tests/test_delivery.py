"""Delivery under an adversarial Sentry (issue 12), against the fake on 127.0.0.1: every retry path is
capped and spaced, --timeout bounds a whole answer, --deadline a whole run, redirects are not followed,
malformed answers are outcomes, and the journal makes --resume exact after any interruption, a kill
included. Counts are exact: these tests fail when a request too many (or too few) is sent."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_sentry import FakeSentry, fake_sentry
from test_send import routes_file, write_envelopes

from tracegroup.cli import main
from tracegroup.routes import redact_dsn
from tracegroup.send import JOURNAL, NOT_SENT, envelope_requests, send
from tracegroup.transport import Dsn, parse_rate_limits, parse_retry_after

KEYS = {"11": "k11"}


def journal(root: Path) -> dict[str, dict[str, Any]]:
    """The latest journal line per key (every line but a torn last one must parse)."""
    lines = (root / JOURNAL).read_bytes().splitlines()
    state = {}
    for n, line in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError:
            assert n == len(lines) - 1, f"torn line {n} is not the last"
            continue
        assert set(record) >= {"key", "sha256", "status", "code", "detail", "attempts", "time"}
        state[record["key"]] = record
    return state


def fake_time() -> tuple[list[float], Any, Any]:
    """waits, sleep, clock: a clock that only moves when the sender sleeps."""
    waits: list[float] = []
    now = [1000.0]

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        now[0] += seconds

    return waits, sleep, lambda: now[0]


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "0"},
        {"Retry-After": "-5"},
        {"Retry-After": "soon"},
        {"Retry-After": "Wed, 99 Oct 2015 07:28:10 GMT"},
        {"Retry-After": "inf"},
        {"X-Sentry-Rate-Limits": "garbage"},
        {"X-Sentry-Rate-Limits": "-3::organization"},
        {"X-Sentry-Rate-Limits": "nan:transaction:key"},
        {"X-Sentry-Rate-Limits": "0:error:key"},  # does not name the item's category (transaction)
        {"X-Sentry-Rate-Limits": "60:profile:key"},
        {},
    ],
)
def test_429_loops_are_capped_and_spaced(tmp_path: Path, headers: dict[str, str]) -> None:
    with fake_sentry(KEYS) as fake:
        fake.default = (429, headers)
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        requests, _ = envelope_requests(tmp_path)
        requests = [r for r in requests if r.category == "transaction"]
        waits, sleep, clock = fake_time()
        result = send(requests, [], tmp_path, retries=4, max_wait=1e6, sleep=sleep, clock=clock)
        assert fake.hits == 4 and list(fake.posts.values()) == [4]  # exactly the cap, never more
        assert len(waits) == 3 and min(waits) >= 1.0  # the floor holds whatever the answer says
        [o] = result.outcomes
        assert (o.status, o.code, o.attempts) == ("failed", 429, 4)
        assert o.detail == "rate limited (after 4 attempts)"
        assert not result.ok and json.loads((tmp_path / NOT_SENT).read_text())["key"] == o.key
        if (
            headers.get("Retry-After") in ("soon", "-5", "inf", "Wed, 99 Oct 2015 07:28:10 GMT")
            or not headers
        ):
            assert waits == [60.0, 60.0, 60.0]  # unreadable: the documented 60 s


def test_5xx_and_dropped_connections_back_off_and_stop_at_the_cap(tmp_path: Path) -> None:
    with fake_sentry(KEYS) as fake:
        fake.script["11"] = [(503, {})] * 3 + ["drop"] * 3
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        requests, _ = envelope_requests(tmp_path)
        waits, sleep, clock = fake_time()
        result = send(requests[:1], [], tmp_path, retries=5, sleep=sleep, clock=clock)
        assert waits == [1.0, 1.0, 2.0, 4.0]  # max(1 s, 0.5 s · 2^(k-1))
        assert fake.hits == 5
        [o] = result.outcomes
        assert o.status == "failed" and o.attempts == 5 and o.detail.startswith("network error")


def test_real_waits_are_at_least_a_second_apart(tmp_path: Path) -> None:
    with fake_sentry(KEYS) as fake:
        fake.default = (429, {"Retry-After": "0", "X-Sentry-Rate-Limits": "0::organization"})
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        start = time.monotonic()
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--retries", "3", "--concurrency", "2"])
        assert r.exit_code == 1
        assert time.monotonic() - start < 6
        assert sorted(fake.posts.values()) == [3, 3]
        for item in fake.posts:
            times = [t for t, i in fake.log if i == item]
            assert all(b - a >= 0.99 for a, b in zip(times, times[1:], strict=False))


def test_deadline_ends_the_run_and_lists_everything_left(tmp_path: Path) -> None:
    with fake_sentry(KEYS) as fake:
        fake.default = (429, {"Retry-After": "1"})
        total = write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=3)
        start = time.monotonic()
        args = ["send", str(tmp_path), "--retries", "100", "--deadline", "2.5s", "--concurrency", "1"]
        r = CliRunner().invoke(main, [*args, "--format", "json"])
        elapsed = time.monotonic() - start
        assert r.exit_code == 1 and elapsed < 4, elapsed
        data = json.loads(r.output)
        assert len(data["not_sent"]) == total and all(o["status"] == "failed" for o in data["not_sent"])
        assert "--deadline" in data["not_sent"][0]["detail"]
        assert fake.hits <= 3  # one attempt per second at most, for 2.5 s
        assert {o["key"] for o in map(json.loads, (tmp_path / NOT_SENT).read_text().splitlines())} == {
            o["key"] for o in data["not_sent"]
        }


@pytest.mark.parametrize("how", ["hang", "trickle"])
def test_timeout_bounds_the_whole_answer(tmp_path: Path, how: str) -> None:
    with fake_sentry(KEYS) as fake:
        fake.default, fake.trickle_every = how, 0.1  # a trickled 200 would take ~4 s
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        start = time.monotonic()
        args = ["send", str(tmp_path), "--timeout", "0.5s", "--retries", "2", "--format", "json"]
        r = CliRunner().invoke(main, args)
        elapsed = time.monotonic() - start
        assert r.exit_code == 1
        assert elapsed < 3.5, elapsed  # 2 × 0.5 s + 1 s backoff per item, two items at a time
        assert sorted(fake.posts.values()) == [2, 2]
        details = {o["detail"] for o in json.loads(r.output)["not_sent"]}
        assert all("timed out" in d or "--timeout" in d for d in details), details


@pytest.mark.parametrize("how", ["garbage", "bad-header", "drop"])
def test_malformed_answers_are_outcomes(tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)
    with fake_sentry(KEYS) as fake:
        fake.default = how
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--retries", "2"])
        assert r.exit_code == 1
        assert "Traceback" not in r.output and r.output.count("failed: shop/") == 2
        assert sorted(fake.posts.values()) == [2, 2]


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(tmp_path: Path, code: int) -> None:
    with fake_sentry(KEYS) as fake:
        fake.default = (code, {"Location": "http://pub:s3c@r@t@elsewhere.example/in?sentry_key=k11"})
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=1)
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--format", "json"])
        assert r.exit_code == 1 and fake.gets == 0
        assert sorted(fake.posts.values()) == [1, 1]  # no retry either
        [o, _] = json.loads(r.output)["not_sent"]
        assert (o["status"], o["code"]) == ("rejected", code)
        assert o["detail"] == "redirect to http://***@elsewhere.example/in?sentry_key=*** not followed"
        assert "s3c" not in r.output and "k11" not in r.output


def test_redact_dsn_masks_a_secret_with_at_signs() -> None:
    dsn = "https://pub:se@cr@et@o1.ingest.sentry.io/11"
    assert redact_dsn(dsn) == "https://***@o1.ingest.sentry.io/11"
    assert (
        redact_dsn(f"see {dsn} and http://a@b/2")
        == "see https://***@o1.ingest.sentry.io/11 and http://***@b/2"
    )
    assert redact_dsn("https://o1.ingest.sentry.io/11") == "https://o1.ingest.sentry.io/11"
    parsed = Dsn.parse(dsn)
    assert (parsed.public_key, parsed.host, parsed.project_id) == ("pub", "o1.ingest.sentry.io", "11")
    with pytest.raises(ValueError, match=r"\*\*\*@host") as err:
        Dsn.parse("https://pub:se@cr@et@host/notaproject")
    assert "cr@et" not in str(err.value) and "se@" not in str(err.value)


def test_header_parsers_reject_nonsense() -> None:
    assert parse_retry_after("0", 0) == 0.0 and parse_retry_after("2.5", 0) == 2.5
    for bad in [
        "soon",
        "-5",
        "inf",
        "nan",
        "Wed, 99 Oct 2015 07:28:10 GMT",
        "Wed, 21 Oct 99999 07:28:10 GMT",
    ]:
        assert parse_retry_after(bad, 0) == 60.0, bad
    assert parse_rate_limits("x:y, -1::org, nan:a, 5:a;b:key") == [(5.0, ["a", "b"])]


def run_sender(root: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tracegroup.cli", "send", str(root), "--concurrency", "2", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_fake_sentry_does_not_count_a_body_cut_short() -> None:
    """A sender killed between a request's headers and its body (http.client sends them apart above
    2,920 bytes) leaves a request that never arrived: the fake, like Relay, neither counts nor accepts it."""
    import socket

    with fake_sentry(KEYS) as fake:
        head = (
            "POST /api/11/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4000\r\n"
            "X-Sentry-Auth: Sentry sentry_key=k11\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as conn:
            conn.sendall(head.encode("ascii") + b'{"event_id":"')
        deadline = time.monotonic() + 5
        while fake.active and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert fake.posts == {} and fake.accepted == {} and fake.hits == 0


@pytest.mark.parametrize(
    ("sig", "seed"), [(signal.SIGKILL, 1), (signal.SIGKILL, 2), (signal.SIGTERM, 3), (signal.SIGINT, 4)]
)
def test_interrupted_send_then_resume_is_exactly_once_but_in_flight(
    tmp_path: Path, sig: signal.Signals, seed: int
) -> None:
    rng = random.Random(seed)
    with fake_sentry(KEYS) as fake:
        total = write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=29)
        fake.delay = 0.02
        kill_at = rng.randrange(3, total - 5)  # a random point: after this many requests arrived
        proc = run_sender(tmp_path)
        deadline = time.monotonic() + 20
        while fake.hits < kill_at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=10)
        settle = time.monotonic() + 10  # let the server finish the requests in flight at the kill
        while (fake.active or time.monotonic() < settle - 9.8) and time.monotonic() < settle:
            time.sleep(0.01)
        first_posts, first_accepted = dict(fake.posts), dict(fake.accepted)
        state = journal(tmp_path)
        assert len(state) == total  # every item planned durably before the first request
        sent = {k for k, r in state.items() if r["status"] == "sent"}
        ids = {k: Path(k).stem for k in state}
        assert kill_at - 2 <= len(first_accepted) < total
        # journaled as sent => accepted exactly once; accepted but not journaled => was in flight
        assert all(first_accepted.get(ids[k]) == 1 for k in sent)
        in_flight = {k for k in state if ids[k] in first_accepted and k not in sent}
        assert len(in_flight) <= 2  # --concurrency
        assert all(n == 1 for n in first_posts.values())
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 1, stderr
            assert b"interrupted" in stderr and b"Traceback" not in stderr
            listed = {json.loads(x)["key"] for x in (tmp_path / NOT_SENT).read_text().splitlines()}
            assert listed == set(state) - sent
        fake.delay = 0.0
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--resume"])
        assert r.exit_code == 0, r.output
        assert "Everything was accepted" in r.output
        resumed = {i: n - first_posts.get(i, 0) for i, n in fake.posts.items() if n - first_posts.get(i, 0)}
        assert resumed == {ids[k]: 1 for k in set(state) - sent}  # exactly what was not accepted, once
        assert set(fake.accepted) == set(ids.values())
        assert {i for i, n in fake.accepted.items() if n > 1} == {ids[k] for k in in_flight}
        assert all(r["status"] == "sent" for r in journal(tmp_path).values())
        assert not (tmp_path / NOT_SENT).exists() and fake.problems == []
        posts = sum(fake.posts.values())
        again = CliRunner().invoke(main, ["send", str(tmp_path), "--resume"])
        assert again.exit_code == 0 and sum(fake.posts.values()) == posts  # nothing left: nothing sent


def failed_run(tmp_path: Path, fake: FakeSentry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)
    fake.default = (503, {})
    r = CliRunner().invoke(main, ["send", str(tmp_path), "--retries", "1"])
    assert r.exit_code == 1
    fake.default = None


@pytest.mark.parametrize("change", ["edit", "add", "remove"])
def test_resume_refuses_a_changed_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    with fake_sentry(KEYS) as fake:
        write_envelopes(tmp_path, {"shop": fake.dsn("11")}, per_service=2)
        failed_run(tmp_path, fake, monkeypatch)
        victim = sorted(tmp_path.rglob("*.envelope"))[0]
        if change == "edit":
            victim.write_bytes(victim.read_bytes().replace(b"GET /", b"GET /x"))
        elif change == "add":
            (victim.parent / ("f" * 32 + ".envelope")).write_bytes(victim.read_bytes())
        else:
            victim.unlink()
        hits = fake.hits
        r = CliRunner().invoke(main, ["send", str(tmp_path), "--resume"])
        assert r.exit_code == 2 and fake.hits == hits
        assert (
            r.stderr.count("\n") == 1
            and {"edit": "changed", "add": "is new", "remove": "is gone"}[change] in r.stderr
        )


def test_resume_without_a_journal_is_refused(tmp_path: Path) -> None:
    write_envelopes(tmp_path, {"shop": "http://k@127.0.0.1:9/11"}, per_service=1)
    r = CliRunner().invoke(main, ["send", str(tmp_path), "--resume"])
    assert r.exit_code == 2 and "nothing to resume" in r.stderr


def test_otlp_failures_resume_with_send_and_reemit_clears_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)
    with fake_sentry({"11": "k11", "22": "k22"}, {"22": [(503, {})] * 10_000}) as fake:
        out = tmp_path / "out"
        emit = [
            "emit",
            "fixtures/polyglot.pb",
            "--routes",
            str(routes_file(tmp_path, fake)),
            "--out",
            str(out),
        ]
        first = CliRunner().invoke(main, [*emit, "--send-otlp"])
        assert first.exit_code == 1, first.output
        state = journal(out)
        failed = {k for k, r in state.items() if r["status"] != "sent"}
        assert failed and all(k.startswith(".otlp/") for k in state)
        assert all(state[k]["code"] == 503 and state[k]["attempts"] == 5 for k in failed)
        fake.script["22"] = []
        posts = sum(fake.posts.values())
        second = CliRunner().invoke(main, ["send", str(out), "--resume"])
        assert second.exit_code == 0 and "Everything was accepted" in second.output, second.output
        assert sum(fake.posts.values()) - posts == len(failed)  # only the failed OTLP requests, no envelope
        assert fake.events == {} and not (out / NOT_SENT).exists()
        # a re-emit into the directory forgets the old deliveries, not-sent list included
        (out / NOT_SENT).write_text('{"key": "stale"}\n')
        again = CliRunner().invoke(main, emit)
        assert again.exit_code == 0
        assert not (out / JOURNAL).exists() and not (out / NOT_SENT).exists() and not (out / ".otlp").exists()
        r = CliRunner().invoke(main, ["send", str(out), "--resume"])
        assert r.exit_code == 2 and "nothing to resume" in r.stderr


def test_send_otlp_needs_out() -> None:
    r = CliRunner().invoke(
        main, ["emit", "fixtures/polyglot.pb", "--routes", "fixtures/routes-example.toml", "--send-otlp"]
    )
    assert r.exit_code == 2 and "--out" in r.stderr


def test_no_secret_ever_printed(tmp_path: Path) -> None:
    with fake_sentry({"11": "pub"}) as fake:
        dsn = f"http://pub:s3cr@t@127.0.0.1:{fake.port}/11"
        write_envelopes(tmp_path, {"shop": dsn}, per_service=1)
        for args in (["--dry-run"], [], ["--resume"]):
            r = CliRunner().invoke(main, ["send", str(tmp_path), *args])
            assert r.exit_code == 0 and "s3cr" not in r.output + r.stderr
        assert sorted(fake.accepted.values()) == [1, 1]
        assert os.path.exists(tmp_path / JOURNAL)


def test_emit_send_takes_the_delivery_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """emit --send/--send-otlp obey --retries (and the other limits) as `tracegroup send` does."""
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)
    with fake_sentry({"11": "k11", "22": "k22"}, {"22": [(503, {})] * 10_000}) as fake:
        out = tmp_path / "out"
        routes = str(routes_file(tmp_path, fake))
        args = ["emit", "fixtures/polyglot.pb", "--routes", routes, "--out", str(out), "--send-otlp"]
        r = CliRunner().invoke(main, [*args, "--retries", "2", "--deadline", "60s"])
        assert r.exit_code == 1, r.output
        failed = [x for x in journal(out).values() if x["status"] != "sent"]
        assert failed and all(x["code"] == 503 and x["attempts"] == 2 for x in failed)
