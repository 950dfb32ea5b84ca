"""Commands past the memory budget (tracegroup.spill): the same output as in memory, byte for byte.

The spill path runs on dumps both paths can hold: a generated file exporter stream (``--memory 16MB``
through the CLI: the stream needs about 62 MB, so it is read frame by frame into 8 partitions), every
fixture family through the library with one and several partitions, and the option combinations that
change the groupings. ``analyze``: the summary; ``check``: the golden lines of every committed golden file;
``spans``: the frames (CSV and JSON Lines bytes, Parquet values); ``emit``: every record and the summary,
the envelope files, manifest and bare events byte for byte (with ``--rebase-time``, so every partition
gets the dump's shift).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tracegroup.analysis import analyze
from tracegroup.check import CheckOptions, golden_lines, read_golden
from tracegroup.cli import main
from tracegroup.frames import spans_frames
from tracegroup.load import load
from tracegroup.redact import Policy, redact_table
from tracegroup.render import to_json
from tracegroup.routes import load_routes
from tracegroup.sentry.build import EmittedEvent
from tracegroup.sentry.emit import emit
from tracegroup.spill import analyze_spilled, memory_needed
from tracegroup.spill_emit import emit_spilled
from tracegroup.spill_frames import spans_frames_spilled

#: The CLI budget of these tests: well under what the generated stream needs.
BUDGET = "16MB"

DUMPS = [
    "fixtures/polyglot.pb",
    "fixtures/polyglot-groupbytrace.pb",
    "fixtures/polyglot-routed",
    "fixtures/recorded/sdk-node-python.jsonl",
    "fixtures/external/getTrace-response.json",
    "fixtures/external/yelp.json",
    "tests/data/zipkin-v1-frontend-backend.json",
]
BASE = {"compare": "sentryexporter", "reference": "service", "batches": None, "routes": "none"}
OPTIONS = [
    {},
    {"routes": "service"},
    {"boundary": "service+remote"},
    {"compare": "span-kind"},
    {"compare": "remote-parent"},
    {"compare": "sentryexporter-2021", "batches": "trace"},
    {"batches": "captured"},
]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_the_generated_stream_needs_the_spill(generated: Path) -> None:
    assert memory_needed([generated]) > 3 * 16_000_000  # the budget below really sends it through the spill


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize(
    "extra", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default"
)
def test_spilled_summary_equals_in_memory(dump: str, extra: dict[str, str]) -> None:
    opts = {**BASE, **extra}
    expected = to_json(analyze(load(dump), **opts).summary(top=10))
    for partitions in (1, 4):
        got, _ = analyze_spilled([dump], budget=1, partitions=partitions, **opts)
        assert to_json(got) == expected


def test_spilled_summary_with_a_routes_file() -> None:
    routes = load_routes("fixtures/routes-example.toml")
    dump = "fixtures/polyglot.pb"
    expected = to_json(analyze(load(dump), routes=routes).summary())
    got, _ = analyze_spilled([dump], budget=1, partitions=3, routes=routes)
    assert to_json(got) == expected


def test_cli_memory_budget_streams_a_big_stream_identically(generated: Path) -> None:
    code, in_memory = run("analyze", str(generated), "--format", "json", "-q")
    assert code == 0
    code, spilled = run("analyze", str(generated), "--format", "json", "-q", "--memory", BUDGET)
    assert code == 0
    assert spilled == in_memory
    code, text = run("analyze", str(generated), "-q", "--memory", BUDGET, "--routes", "service")
    assert code == 0 and text == run("analyze", str(generated), "-q", "--routes", "service")[1]


def test_cli_refuses_what_needs_every_span_in_one_line(generated: Path) -> None:
    for args in (["--batches", "simulate"], ["--heal"], ["--batches", "all"]):
        code, out = run("analyze", str(generated), "-q", "--memory", "1MB", *args)
        assert code == 2
        assert out.startswith("tracegroup: error: ") and "MB" in out and "--memory" in out
        assert len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["whatif", "plan"])
def test_commands_that_need_every_span_refuse_past_the_budget_before_loading(command: str) -> None:
    """whatif and plan simulate every span in time order: past --memory they refuse, in one line naming the
    memory needed, before reading the dump; within it they run."""
    code, out = run(command, "fixtures/polyglot.pb", "--memory", "1MB")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert out.startswith(f"tracegroup: error: {command} needs every span in memory: about 3 MB, over the ")
    assert run(command, "fixtures/polyglot.pb", "-q", "--memory", "64MB")[0] == 0


def test_memory_sizes() -> None:
    assert run("analyze", "fixtures/polyglot.pb", "--memory", "12XB")[0] == 2
    assert run("analyze", "fixtures/polyglot.pb", "--memory", "0MB")[0] == 2
    assert run("analyze", "fixtures/polyglot.pb", "-q", "--memory", "1.5GiB")[0] == 0


GOLDEN = sorted(Path("fixtures/expected").glob("*.golden.jsonl"))


def _fixture(golden: Path) -> Path:
    name = golden.name.removesuffix(".golden.jsonl")
    found = sorted(p for p in Path("fixtures").rglob(name) if "expected" not in p.parts)
    assert found, name
    return found[0]


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda p: p.name.removesuffix(".golden.jsonl"))
def test_spilled_golden_lines_equal_the_committed_ones(golden: Path) -> None:
    lines, recorded = read_golden(golden)
    options = CheckOptions().merged(recorded)
    fixture = _fixture(golden)
    assert golden_lines(fixture, options, budget=1) == lines  # 256 partitions, most of them empty
    assert golden_lines(fixture, options, budget=10**12) == lines


def test_cli_check_through_the_spill(generated: Path, tmp_path: Path) -> None:
    expected = tmp_path / "expected"
    code, _ = run("check", str(generated), "--expected", str(expected), "--update", "--routes", "service")
    assert code == 0
    code, out = run(
        "check", str(generated), "--expected", str(expected), "--memory", BUDGET, "--format", "json"
    )
    assert code == 0 and '"status": "ok"' in out
    golden = next(expected.iterdir())
    golden.write_text(golden.read_text().replace('"spans": 1,', '"spans": 2,', 1))
    assert run("check", str(generated), "--expected", str(expected), "--memory", BUDGET)[0] == 1
    code, out = run(
        "check", str(generated), "--expected", str(expected), "--memory", "1MB", "--batches", "all"
    )
    assert code == 2 and "--batches all needs every span in memory" in out


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize(
    "extra",
    [{}, {"routes": "service"}, {"compare": "span-kind", "boundary": "service+remote"}],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default",
)
def test_spilled_span_frames_equal_in_memory(dump: str, extra: dict[str, str]) -> None:
    import pandas as pd

    opts = {**BASE, **extra}
    table = load(dump, warm=True)
    expected = pd.concat(list(spans_frames(table, analyze(table, **opts))))
    for partitions in (1, 4):
        got = pd.concat(list(spans_frames_spilled([dump], budget=1, partitions=partitions, **opts)))
        pd.testing.assert_frame_equal(got, expected)


def test_spilled_span_frames_redacted_without_details() -> None:
    import pandas as pd

    dump, policy = "fixtures/polyglot.pb", Policy(secrets=True, pii=True)
    table = load(dump, warm=True)
    an = analyze(table)
    for details in (True, False):
        expected = pd.concat(list(spans_frames(redact_table(table, policy), an, details=details)))
        got = pd.concat(list(spans_frames_spilled([dump], budget=1, details=details, redaction=policy)))
        pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_cli_spans_through_the_spill(generated: Path, tmp_path: Path, fmt: str) -> None:
    out = {}
    for name, extra in (("memory", []), ("spilled", ["--memory", BUDGET])):
        out[name] = tmp_path / f"{name}.{fmt}"
        code, text = run(
            "spans", str(generated), "-q", "--format", fmt, "-o", str(out[name]), "--redact", *extra
        )
        assert code == 0, text
    if fmt == "parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out["spilled"]).equals(pq.read_table(out["memory"]))
        assert pq.ParquetFile(out["spilled"]).metadata.num_rows == 60_014
    else:
        assert out["spilled"].read_bytes() == out["memory"].read_bytes()


def test_cli_spans_refuses_what_needs_every_span(generated: Path) -> None:
    code, out = run("spans", str(generated), "-q", "--memory", "1MB", "--batches", "simulate")
    assert code == 2 and out.startswith("tracegroup: error: --batches simulate needs every span in memory")


NOW = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def _record(ev: EmittedEvent) -> dict[str, Any]:
    out = dataclasses.asdict(ev)
    out["rows"] = ev.rows.tolist()
    return out


@pytest.mark.parametrize("dump", [*DUMPS, "fixtures/recorded/sdk-python.pb"])
@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"rebase_time": True, "style": "sentry", "errors": "dedup"},
        {"routes": "fixtures/routes-example.toml", "rebase_time": True, "replay_id": "x"},
    ],
    ids=["default", "rebase-sentry-dedup", "routes"],
)
def test_spilled_emit_equals_in_memory(dump: str, extra: dict[str, Any]) -> None:
    opts = {**extra, "now": NOW}
    if "routes" in opts:
        opts["routes"] = load_routes(opts["routes"])
    expected = emit(load(dump, warm=True), **opts)
    for partitions in (1, 4, 16):
        got = emit_spilled([dump], budget=1, partitions=partitions, **opts)
        assert [_record(r) for r in got.records] == [_record(r) for r in expected.records]
        assert got.summary() == expected.summary()
        assert got.options == expected.options and got.services == expected.services


def test_cli_emit_through_the_spill(generated: Path, tmp_path: Path) -> None:
    runs = {}
    for name, extra in (("memory", []), ("spilled", ["--memory", BUDGET])):
        base = tmp_path / name
        args = [
            "emit",
            str(generated),
            "--out",
            str(base / "out"),
            "--rebase-time",
            "--now",
            "2026-01-01T00:00:00Z",
        ]
        args += [
            "--routes",
            "fixtures/routes-example.toml",
            "--manifest",
            str(base / "m.jsonl"),
            "-q",
            *extra,
        ]
        code, text = run(*args)
        assert code == 0, text
        files = {p.relative_to(base): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}
        runs[name] = (files, text.replace(str(base), "BASE"))
        # bare events: in memory the payloads are held, then written; spilled they wait in a file
        jsonl = ["--jsonl", str(base / "events.jsonl"), "--now", "2026-01-01T00:00:00Z", "--rebase-time"]
        code, _ = run("emit", str(generated), "-q", *jsonl, *extra)
        assert code == 0
        runs[name + "-jsonl"] = ((base / "events.jsonl").read_bytes(), b"")
    assert runs["spilled"] == runs["memory"]
    assert len(runs["memory"][0]) > 2000  # envelopes, manifest and summary
    assert runs["spilled-jsonl"] == runs["memory-jsonl"]


def test_cli_emit_refuses_otlp_past_the_budget(generated: Path, tmp_path: Path) -> None:
    code, out = run("emit", str(generated), "-q", "--memory", BUDGET, "--otlp", str(tmp_path / "x.pb"))
    assert code == 2 and out.startswith("tracegroup: error: --otlp needs every span in memory: about 6")


def test_spilled_emit_reports_progress() -> None:
    seen: list[tuple[str, int, int]] = []
    emit_spilled(
        ["fixtures/polyglot.pb"], budget=1, partitions=3, now=NOW, progress=lambda *a: seen.append(a)
    )
    assert seen[0] == ("fixtures/polyglot.pb", 3013, 1)
    assert [w for w, _, _ in seen[1:]] == ["partition 1/3", "partition 2/3", "partition 3/3"]
