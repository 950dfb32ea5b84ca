"""Simulated delivery (SDK batch processor, groupbytrace, collector batch processor), the other
strategies on real remote-parent bits, --heal, and what-if."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders import S, roots_by_id, table
from click.testing import CliRunner

from tracegroup import analyze, load
from tracegroup.cli import main
from tracegroup.grouping import Reason
from tracegroup.pipeline import PipelineOptions, simulate
from tracegroup.whatif import whatif

SEC = 1_000_000_000
MS = 1_000_000


def six_second_trace() -> list[S]:
    """One service; children end at 0.5 s, 1 s and 5.8 s, the SERVER root at 6.1 s."""
    return [
        S(1, None, "a", "SERVER", start=0, end=int(6.1 * SEC)),
        S(2, 1, "a", start=0, end=SEC // 2),
        S(3, 1, "a", start=0, end=SEC),
        S(4, 1, "a", start=0, end=int(5.8 * SEC)),
    ]


def test_trace_crossing_an_sdk_export_loses_the_rootless_batch() -> None:
    t = table(six_second_trace())
    sim = simulate(t, PipelineOptions())
    # The 5 s timer (from the first arrival at 0.5 s) exports spans 2 and 3 at 5.5 s; the rest goes at
    # shutdown; the collector's 200 ms timer separates the two exports.
    assert sim.sdk_exports == 2 and sim.batches == 2
    assert sim.batch.tolist() == [1, 0, 0, 1]
    an = analyze(t, batches="simulate")
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: None, 3: None, 4: 1}
    assert an.compared.reason[1] == Reason.DROPPED_NO_ROOT
    # A bigger collector batch does not help (an SDK export is never split), a shorter SDK delay does not
    # either; groupbytrace with a long enough wait does.
    wide = analyze(t, batches="simulate", pipeline=PipelineOptions(batch_timeout_ms=10_000))
    assert roots_by_id(t, wide.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1}
    g = analyze(t, batches="groupbytrace", pipeline=PipelineOptions(wait_ms=10_000))
    assert roots_by_id(t, g.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1}


def test_full_sdk_queue_drops_spans() -> None:
    spans = [S(i + 1, None, "a", "SERVER", trace=i + 1, start=0, end=i * 10 * MS) for i in range(5)]
    t = table(spans)
    o = PipelineOptions(sdk_batch=2, sdk_queue=2, sdk_export_ms=1000)
    sim = simulate(t, o)
    # 0 and 1 leave at 10 ms; the worker is busy until 1.01 s; 2 and 3 fill the queue; 4 is dropped.
    assert sim.sdk_dropped == 1 and sim.batch[4] == -1 and (sim.batch[:4] >= 0).all()
    an = analyze(t, batches="simulate", pipeline=o)
    assert an.compared.root.tolist() == [0, 1, 2, 3, -1]
    assert an.compared.reason[4] == Reason.DROPPED_QUEUE_FULL
    assert an.summary()["options"]["pipeline_result"]["sdk_dropped"] == 1
    # Whole-trace strategies lose the same span: what never reaches Sentry cannot be grouped.
    sk = analyze(t, batches="simulate", pipeline=o, compare="span-kind")
    assert sk.compared.root.tolist() == [0, 1, 2, 3, -1]


def test_groupbytrace_releases_late_spans_as_a_new_group() -> None:
    t = table([S(1, None, "a", "SERVER", start=0, end=0), S(2, 1, "a", start=0, end=3 * SEC)])
    o = PipelineOptions(sdk_batch=1, wait_ms=1000)
    sim = simulate(t, o)
    assert sim.notes["groupbytrace_groups"] == 2
    assert sim.batch.tolist() == [0, 1]
    an = analyze(t, batches="groupbytrace", pipeline=o)
    # The late span is alone in its exporter call: no root there, so the exporter drops it.
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: None}
    assert an.diff.counts()["dropped"] == 1
    early = analyze(t, batches="groupbytrace", pipeline=PipelineOptions(sdk_batch=1, wait_ms=5000))
    assert roots_by_id(t, early.compared.root) == {1: 1, 2: 1}


def test_batch_max_size_splits_an_export() -> None:
    spans = [S(1, None, "a", "SERVER", end=10)] + [S(i, 1, "a", end=i) for i in range(2, 10)]
    t = table(spans)
    sim = simulate(t, PipelineOptions(batch_size=4, batch_max_size=4))
    # One SDK export of 9 spans (children end first, the root last) cut into 4 + 4 + 1.
    assert sim.batches == 3
    assert np.bincount(sim.batch).tolist() == [4, 4, 1]
    assert sim.batch[0] == 2  # the root ends last: alone in the last batch


def test_simulation_is_deterministic_on_the_fixture() -> None:
    t = load(["fixtures/polyglot.pb"])
    a, b = simulate(t, PipelineOptions()), simulate(t, PipelineOptions())
    assert (a.batch == b.batch).all() and (a.order == b.order).all()
    assert a.sdk_dropped == 0 and (a.batch >= 0).all()
    assert sorted(a.order.tolist()) == list(range(len(t)))


def test_strategies_on_hotrod_remote_bits() -> None:
    t = load(["fixtures/external/getTrace-response.json"])
    counts = {
        s: len(analyze(t, compare=s).compared.roots()) for s in ("remote-parent", "span-kind", "sentry-otlp")
    }
    service = analyze(t, compare="sentry-otlp")
    # The spans with flags 0x301 are exactly the service entries reached over the network; redis-manual
    # and mysql are in-process "services" (local parents), so the SDK rule merges them into their caller.
    assert int(((t.flags & 0x300) == 0x300).sum()) == 12
    assert counts == {"remote-parent": 13, "span-kind": 13, "sentry-otlp": 28}
    assert service.diff.counts()["ok"] == 40  # every service is its own project: same as `service`
    assert service.compared.notes["services_without_remote_bits"] == []


def test_sentry_otlp_reports_services_without_remote_bits() -> None:
    t = table([S(1, None, "ruby", "SERVER"), S(2, 1, "ruby", "CLIENT"), S(3, 2, "go", "SERVER", flags=0x300)])
    an = analyze(t, compare="sentry-otlp")
    assert an.compared.notes["services_without_remote_bits"] == ["ruby"]


def test_heal_attaches_only_a_unique_enclosing_transaction() -> None:
    t = table(
        [
            S(1, None, "a", "SERVER", start=0, end=100),
            S(2, 1, "a", start=5, end=50),
            S(3, 99, "a", start=10, end=20),  # parent 99 never captured: enclosed by 1 only
            S(4, 98, "b", start=10, end=20),  # service b has no other transaction: stays incomplete
            S(5, None, "c", "SERVER", start=0, end=100, trace=2),
            S(6, None, "c", "SERVER", start=0, end=100, trace=2),
            S(7, 97, "c", start=10, end=20, trace=2),  # two enclosing candidates: ambiguous
        ]
    )
    plain = analyze(t)
    assert int(plain.diff.incomplete.sum()) == 3
    an = analyze(t, heal=True)
    assert an.repairs == [
        {"trace_id": f"{1:032x}", "root": f"{3:016x}", "joined": f"{1:016x}"},
    ]
    assert roots_by_id(t, an.reference.root)[3] == 1
    assert an.reference.reason[2] == Reason.HEALED
    assert int(an.diff.incomplete.sum()) == 2
    assert an.summary()["repairs"] == an.repairs


def test_whatif_recommends_the_smallest_fix() -> None:
    t = table(six_second_trace())
    w = whatif(t, {"wait": [100, 10_000], "sdk-batch": [1, 512]}, strategies=["sentryexporter", "span-kind"])
    frame = w.frame
    assert list(frame.columns) == [
        "setting", "value", "strategy", "spans", "misgrouped_pct", "dropped_pct", "incomplete_pct",
        "sentry_events", "exporter_calls",
    ]  # fmt: skip
    # captured, fitted, the grid, groupbytrace and per-trace for both strategies, then sentry-otlp
    assert len(frame) == 2 * 2 + 2 * 2 * 2 + 2 * 2 + 1
    assert list(frame.setting[:4]) == ["captured", "captured", "fitted", "fitted"]
    row = frame[(frame.setting == "wait") & (frame.value == 10_000) & (frame.strategy == "sentryexporter")]
    assert row.dropped_pct.item() == 0 and row.misgrouped_pct.item() == 0
    # A 100 ms wait releases the trace at 5.6 s, before the root's export at 6.1 s: spans 2 and 3 are lost.
    bad = frame[(frame.setting == "wait") & (frame.value == 100) & (frame.strategy == "sentryexporter")]
    assert bad.dropped_pct.item() == 50.0
    assert w.recommendation.startswith("processors: {groupbytrace: {wait_duration: 10s}}")


def test_whatif_and_simulate_cli() -> None:
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "whatif",
            "fixtures/external/getTrace-response.json",
            "--vary",
            "batch-size=64,8192",
            "--format",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [row["setting"] for row in data["rows"]] == [
        "captured",
        "fitted",
        "batch-size",
        "batch-size",
        "groupbytrace",
        "per-trace",
        "sentry-otlp",
    ]
    assert data["recommendation"]
    bad = runner.invoke(main, ["whatif", "fixtures/external/getTrace-response.json", "--vary", "nope=1"])
    assert bad.exit_code == 2 and "nope" in bad.output
    r = runner.invoke(main, ["analyze", "fixtures/polyglot.pb", "--batches", "simulate", "--sdk-delay", "1s"])
    assert r.exit_code == 0 and "Pipeline: SDK batch 512 / delay 1000ms" in r.output
    r = runner.invoke(main, ["analyze", "fixtures/polyglot.pb", "--wait", "soon"])
    assert r.exit_code == 2 and "not a duration" in r.output


@pytest.mark.parametrize(
    "bad", [{"sdk_batch": 0}, {"batch_timeout_ms": 0}, {"batch_size": 10, "batch_max_size": 5}]
)
def test_bad_pipeline_options(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PipelineOptions(**bad)  # type: ignore[arg-type]


def test_one_vary_parser_for_whatif_plot_and_the_notebook() -> None:
    from tracegroup.pipeline import parse_duration_ms
    from tracegroup.whatif import DEFAULT_VARY, parse_vary

    assert parse_vary(["wait=1s, 500ms", "batch-size=64,8192"]) == {
        "wait": [1000.0, 500.0],
        "batch-size": [64.0, 8192.0],
    }
    assert parse_vary([]) == DEFAULT_VARY and parse_vary([]) is not DEFAULT_VARY
    for bad in (
        "nope=1",
        "batch-size",
        "batch-size=",
        "batch-size=1.5",
        "batch-size=-1",
        "wait=soon",
        "wait=-1s",
    ):
        with pytest.raises(ValueError, match="--vary"):
            parse_vary([bad])
    assert [parse_duration_ms(v) for v in ("200ms", "5s", "1.5s", "100us", "2m", " 7MS ", 3)] == [
        200.0, 5000.0, 1500.0, 0.1, 120000.0, 7.0, 3.0,
    ]  # fmt: skip
    for bad, says in (("5", "needs a unit"), ("1.5", "needs a unit"), ("infs", "not a duration"),
                      ("nans", "not a duration"), ("1e400ms", "not a duration"), ("-1s", "negative"),
                      ("soon", "not a duration"), ("", "not a duration")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            parse_duration_ms(bad)


def test_cli_durations_need_units_and_shares_take_percentages() -> None:
    runner = CliRunner()
    hotrod = "fixtures/external/getTrace-response.json"
    r = runner.invoke(main, ["analyze", hotrod, "--batches", "simulate", "--sdk-delay", "5"])
    assert r.exit_code == 2 and "needs a unit" in r.output
    r = runner.invoke(main, ["analyze", hotrod, "--batches", "simulate", "--batch-timeout", "inf"])
    assert r.exit_code == 2 and "not a duration" in r.output
    assert runner.invoke(main, ["analyze", hotrod, "--fail-on-misgrouped", "90%"]).exit_code == 0
    assert runner.invoke(main, ["analyze", hotrod, "--fail-on-misgrouped", "1%"]).exit_code == 1
    r = runner.invoke(main, ["analyze", hotrod, "--fail-on-misgrouped", "150%"])
    assert r.exit_code == 2 and "between 0 and 1" in r.output


@pytest.mark.parametrize(
    ("fixture", "wait"), [("fixtures/polyglot.pb", None), ("fixtures/polyglot-groupbytrace.pb", 1000.0)]
)
def test_the_synthetic_captures_are_cut_by_this_model(fixture: str, wait: float | None) -> None:
    """One model: fixtures/make_polyglot.py cuts its captures with tracegroup.pipeline, so simulating the
    capture's own settings gives its messages back, span for span."""
    t = load(fixture)
    options = PipelineOptions(sdk_batch=256, batch_size=512, batch_timeout_ms=200.0, wait_ms=wait)
    sim = simulate(t, options)
    assert sim.batches == len(t.batches) and sim.sdk_dropped == 0
    assert np.array_equal(sim.batch, t.batch.astype(np.int64))  # every span in the message it was captured in
    captured = analyze(t)
    simulated = analyze(t, batches="simulate" if wait is None else "groupbytrace", pipeline=options)
    assert np.array_equal(captured.diff.verdict, simulated.diff.verdict)
