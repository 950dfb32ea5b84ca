"""The command line end to end on real fixtures: analyze (text, json, fail threshold), spans, info."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tracegroup.cli import main

HOTROD = "fixtures/external/getTrace-response.json"
DSB = "fixtures/external/traces-1695947455229.json"
CONTRACT = [
    "trace_id", "span_id", "parent_span_id", "service", "name", "kind", "batch", "start_ns", "end_ns",
    "start", "end", "duration_ms", "depth", "parent_missing", "transaction", "compared_transaction",
    "verdict", "incomplete", "reason", "flags", "position",
]  # fmt: skip
DETAILS = [
    "status_code", "status_message", "scope_name", "scope_version", "attributes", "resource_attributes",
    "events", "links",
]  # fmt: skip


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_analyze_hotrod_text_names_the_merge() -> None:
    code, out = run("analyze", HOTROD)
    assert code == 0
    assert "40 spans, 1 traces, 6 services" in out
    assert "entry span of redis-manual is CLIENT: merged into driver" in out
    assert "merged 15 (37.5%)" in out


def test_analyze_json_numbers_hotrod() -> None:
    code, out = run("analyze", HOTROD, "--format", "json")
    s = json.loads(out)
    assert code == 0
    assert s["input"]["spans"] == 40 and s["input"]["services"] == 6
    assert s["reference"]["transactions"] == 28  # 1 frontend + 10 route + 14 redis + driver/customer/mysql
    assert s["compared"]["transactions"] == 13
    assert s["verdicts"] == {"ok": 25, "split": 0, "merged": 15, "orphaned": 0, "dropped": 0}
    assert s["transactions"]["intact"] == 11
    by_service = {r["name"]: r for r in s["per_service"]}
    assert by_service["redis-manual"]["merged"] == 14 and by_service["mysql"]["merged"] == 1


def test_routing_service_drops_entry_parts_that_are_not_server() -> None:
    s = json.loads(run("analyze", HOTROD, "--routes", "service", "--format", "json")[1])
    assert s["verdicts"]["dropped"] == 15  # redis-manual and mysql parts have no root: dropped whole
    assert s["options"]["routes"] == "service"


def test_fail_on_misgrouped_exit_codes() -> None:
    assert run("analyze", HOTROD, "--fail-on-misgrouped", "0.5")[0] == 0
    code, out = run("analyze", HOTROD, "--fail-on-misgrouped", "0.1")
    assert code == 1 and "37.50% of spans" in out


def test_usage_errors_exit_2() -> None:
    assert run("analyze", HOTROD, "--compare", "nope")[0] == 2
    code, out = run("analyze", HOTROD, "--routes", "missing.toml")
    assert code == 2 and "missing.toml" in out


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_spans_formats_carry_the_contract_columns(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"spans.{fmt}"
    code, text = run("spans", DSB, "--format", fmt, "-o", str(out))
    assert code == 0, text
    if fmt == "csv":
        frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    elif fmt == "jsonl":
        frame = pd.read_json(out, lines=True, dtype=False)
    else:
        frame = pd.read_parquet(out)
    assert list(frame.columns) == CONTRACT + DETAILS
    assert len(frame) == 660
    assert frame["trace_id"].str.fullmatch("[0-9a-f]{32}").all()
    assert frame["span_id"].str.fullmatch("[0-9a-f]{16}").all()
    assert set(frame["verdict"]) == {"ok", "merged"}
    roots = frame[frame["parent_span_id"] == ""]
    assert len(roots) == 20 and set(roots["service"]) == {"nginx-web-server"}
    assert (roots["transaction"] == roots["span_id"]).all()


def test_spans_csv_to_stdout_hand_check() -> None:
    code, out = run("spans", HOTROD, "--no-details")
    frame = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)
    assert code == 0 and len(frame) == 40 and list(frame.columns) == CONTRACT
    redis = frame[frame["service"] == "redis-manual"]
    # Each redis span is its own service transaction and sits in driver's exporter transaction.
    assert (redis["transaction"] == redis["span_id"]).all()
    driver_root = frame.loc[frame["service"] == "driver", "span_id"].item()
    assert (redis["compared_transaction"] == driver_root).all()
    assert (redis["verdict"] == "merged").all()


def test_info_counts_real_traces() -> None:
    code, out = run("info", DSB, "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["spans"] == 660 and d["traces"] == 20 and len(d["services"]) == 12
    assert d["cross_service_links"] == 220


def test_routing_is_the_deprecated_spelling_of_routes() -> None:
    result = CliRunner().invoke(main, ["analyze", HOTROD, "--routing", "service", "--format", "json"])
    assert result.exit_code == 0
    assert "tracegroup: warning: --routing is deprecated, use --routes" in result.stderr
    assert json.loads(result.stdout)["options"]["routes"] == "service"


def test_usage_errors_are_one_line_and_a_closed_pipe_is_quiet() -> None:
    import subprocess
    import sys

    def tracegroup(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "tracegroup.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    for args in (["analyze"], ["analyze", HOTROD, "--compare", "nope"], ["nope"]):
        r = tracegroup(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("tracegroup: error: ")
    assert tracegroup("--version").returncode == 0
    pipe = subprocess.Popen(
        [sys.executable, "-m", "tracegroup.cli", "spans", "fixtures/polyglot.pb"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert pipe.stdout is not None and pipe.stdout.readline().startswith(b"trace_id,")
    pipe.stdout.close()  # the reader goes away, as `| head -1` does
    assert pipe.wait(timeout=120) == 0
    assert pipe.stderr is not None and pipe.stderr.read() == b""


def test_info_says_what_a_damaged_dump_held_versus_what_loaded(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pb"
    cut.write_bytes(Path("fixtures/recorded/sdk-python.pb").read_bytes()[:3000])
    code, out = run("info", str(cut))
    assert code == 0 and "loaded 1 of 2 messages, 4 of at least 8 spans; 1,419 bytes skipped" in out
    assert "loaded" not in run("info", HOTROD)[1]  # an intact dump says nothing of the kind


def test_dash_reads_a_dump_from_standard_input() -> None:
    import subprocess
    import sys

    data = Path("fixtures/recorded/sdk-python.jsonl").read_bytes()
    cmd = [sys.executable, "-m", "tracegroup.cli", "analyze", "-", "--format", "json"]
    r = subprocess.run(cmd, input=data, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["input"]["files"][0]["path"] == "<stdin>" and summary["input"]["spans"] == 20


def test_every_reporting_command_speaks_json(tmp_path: Path) -> None:
    """check and redact, like info, analyze, whatif, show, emit and send, report as one JSON document."""
    dump = "fixtures/polyglot.pb"
    code, out = run("check", dump, "--expected", "fixtures/expected", "--format", "json")
    checked = json.loads(out)
    assert code == 0 and checked["exit_code"] == 0
    [fixture] = checked["fixtures"]
    assert fixture["status"] == "ok" and fixture["lines"] > 0 and fixture["diff"] == []
    code, out = run("redact", dump, "-o", str(tmp_path / "copy.pb"), "--format", "json", "-q")
    redacted = json.loads(out)
    assert code == 0 and redacted["spans"] == 3013 and redacted["batches"] == 14
    assert redacted["files"] == [
        {
            "input": dump,
            "output": str(tmp_path / "copy.pb"),
            "format": "otlp-proto-stream",
            "written_as": "otlp-proto-stream",
            "arrivals": None,
        }
    ]


def test_a_directory_holding_other_files_points_to_keep_going(tmp_path: Path) -> None:
    (tmp_path / "dump.pb").write_bytes(Path("fixtures/polyglot.pb").read_bytes())
    (tmp_path / "README.md").write_text("how this capture was taken\n")
    code, out = run("analyze", str(tmp_path))
    assert code == 2 and out.count("\n") == 1
    assert "README.md: not a trace dump" in out and "--keep-going skips such files" in out
    code, out = run("analyze", str(tmp_path / "README.md"))  # named on its own: no hint
    assert code == 2 and "--keep-going" not in out
    code, out = run("analyze", str(tmp_path), "--keep-going", "--format", "json", "-q")
    assert code == 0 and json.loads(out)["input"]["spans"] == 3013


@pytest.mark.parametrize(("name", "problem"), [("x.jpgg", "unknown image format 'jpgg'"), ("no/x.png", "")])
def test_plot_refuses_a_bad_output_before_the_analysis(tmp_path: Path, name: str, problem: str) -> None:
    missing = str(tmp_path / "not-loaded-yet.pb")  # the output is judged first: this is never opened
    code, out = run("plot", missing, "-o", str(tmp_path / name))
    assert code == 2 and out.count("\n") == 1 and (problem or "does not exist") in out
    assert "not-loaded-yet" not in out and not list(tmp_path.iterdir())


def test_every_command_says_what_a_damaged_dump_held(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pb"
    cut.write_bytes(Path("fixtures/recorded/sdk-python.pb").read_bytes()[:3000])
    held = "loaded 1 of 2 messages, 4 of at least 8 spans; 1,419 bytes skipped"
    commands = [
        ["analyze", "--format", "json"],
        ["whatif", "--vary", "batch-size=64"],
        ["spans", "-o", str(tmp_path / "s.csv")],
        ["show"],
        ["emit", "--out", str(tmp_path / "emit")],
        ["redact", "-o", str(tmp_path / "copy.pb")],
        ["check", "--expected", str(tmp_path / "expected"), "--update", "--accept-warnings"],
    ]
    for args in commands:
        result = CliRunner().invoke(main, [args[0], str(cut), *args[1:]])
        assert result.exit_code == 0, (args, result.output)
        assert f"{cut}: {held}" in result.stderr, args
