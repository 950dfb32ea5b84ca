"""``tracegroup check``: every fixture against its committed golden file, a changed rule caught with a
readable diff, ``--update`` round trips, options from the golden header, bad input exit codes, and the
fixtures themselves (reproducible synthetic dumps, capture variants that must agree)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import tracegroup.grouping.sentryexporter as sentryexporter
from tracegroup.check import CheckOptions, golden_lines, golden_path
from tracegroup.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = ROOT / "fixtures"
EXPECTED = FIXTURES_DIR / "expected"
#: Every fixture (a directory counts as one dump), relative to the repository root.
FIXTURES = [
    "fixtures/polyglot.pb",
    "fixtures/polyglot-routed",
    "fixtures/polyglot-groupbytrace.pb",
    "fixtures/recorded/sdk-python.pb",
    "fixtures/recorded/sdk-python.jsonl",
    "fixtures/recorded/sdk-node-python.pb",
    "fixtures/recorded/sdk-node-python.jsonl",
    "fixtures/collector/batch-small/collector-batch-small.pb.zst",
    "fixtures/collector/batch-default/collector-batch-default.pb.zst",
    "fixtures/collector/batch-timer/collector-batch-timer.pb.zst",
    "fixtures/collector/groupbytrace/collector-groupbytrace.pb.zst",
    "fixtures/collector/routing/collector-routing",
    "fixtures/external/getTrace-response.json",
    "fixtures/external/smartthings-mobile-web-install.json",
    "fixtures/external/trace.json",
    "fixtures/external/traces-1695947455229.json",
    "fixtures/external/yelp.json",
]
NOT_DUMPS = {".md", ".py", ".js", ".toml", ".yaml"}  # docs, scripts, routes files


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_every_fixture_matches_its_committed_golden_file() -> None:
    code, out, err = run(*FIXTURES, "--expected", "fixtures/expected")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == len(FIXTURES)
    for line, fixture in zip(lines, FIXTURES, strict=True):
        assert line.startswith(f"ok       {fixture} (")


def test_every_dump_in_fixtures_is_checked_and_every_golden_file_belongs_to_one() -> None:
    dumps = {
        str(p.relative_to(ROOT))
        for p in FIXTURES_DIR.rglob("*")
        if p.is_file()
        and p.suffix not in NOT_DUMPS
        and not {"expected", "record", "__pycache__"} & set(p.relative_to(FIXTURES_DIR).parts)
        and not p.name.startswith(".")
    }
    covered = {f for f in FIXTURES if not (ROOT / f).is_dir()}
    covered |= {
        str(p.relative_to(ROOT)) for f in FIXTURES if (ROOT / f).is_dir() for p in (ROOT / f).iterdir()
    }
    assert dumps == covered
    assert {p.name for p in EXPECTED.iterdir()} == {golden_path(f, EXPECTED).name for f in FIXTURES}


def test_dropping_consumer_from_the_exporter_root_rule_fails_with_a_readable_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sentryexporter, "KIND_CONSUMER", -1)  # CONSUMER spans no longer open transactions
    code, out, err = run(
        "fixtures/polyglot.pb", "fixtures/external/yelp.json", "--expected", "fixtures/expected"
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (
        "FAIL     fixtures/polyglot.pb (493 lines, fixtures/expected/polyglot.pb.golden.jsonl): "
        "sentryexporter: 7 lines gone, 9 new"
    )
    assert lines[1:3] == ["--- fixtures/expected/polyglot.pb.golden.jsonl", "+++ fixtures/polyglot.pb (now)"]
    gone = [json.loads(x[1:]) for x in lines if x.startswith("-{")]
    new = [json.loads(x[1:]) for x in lines if x.startswith("+{")]
    consumer_gone = [g for g in gone if g.get("kind") == "CONSUMER"]
    assert [(g["service"], g["reason"], g["spans"]) for g in consumer_gone] == [
        ("mailer", "consumer_kind", 3),
        ("mailer", "consumer_kind", 3),
        ("mailer", "consumer_kind", 3),
        ("mailer", "consumer_kind", 4),
    ]
    by_root = {n["root"]: n for n in new if "root" in n}
    grown = {(g["root"], g["spans"]) for g in gone if g.get("service") == "storefront"}
    for g in consumer_gone:
        # the root span is sent alone when its producer was in another exporter call; otherwise it joins
        # the producer's storefront transaction, which grows by its spans
        if g["root"] in by_root:
            assert (by_root[g["root"]]["reason"], by_root[g["root"]]["spans"]) == ("orphan", 1)
    lines_new = [n for n in new if "root" in n]
    assert {(n["service"], n["reason"]) for n in lines_new} == {
        ("mailer", "orphan"),
        ("storefront", "server_kind"),
    }
    for n in lines_new:
        if n["service"] == "storefront":  # the same root, more spans: a mailer CONSUMER merged in
            assert any(root == n["root"] and n["spans"] > spans for root, spans in grown)
    assert gone[0]["verdicts"] == {"dropped": 1295, "merged": 0, "ok": 1619, "orphaned": 79, "split": 20}
    assert new[0]["verdicts"] == {"dropped": 1295, "merged": 7, "ok": 1608, "orphaned": 83, "split": 20}
    assert lines[-1].startswith("ok       fixtures/external/yelp.json (")
    assert "rerun with --update and commit the golden files" in err
    diff = lines[1:-1]  # the whole diff fits the default 80 lines
    assert len(diff) == 46 and sum(1 for x in diff if x.startswith(("-{", "+{"))) == 7 + 9
    code, out, _ = run("fixtures/polyglot.pb", "--expected", "fixtures/expected", "--max-diff-lines", "10")
    assert code == 1 and out.splitlines()[1:] == [
        *diff[:10],
        "... 36 more diff lines (--max-diff-lines 0 shows all)",
    ]


def test_update_creates_checks_and_restores_golden_files(tmp_path: Path) -> None:
    fixture = "fixtures/recorded/sdk-python.pb"
    code, out, _ = run(fixture, "--expected", str(tmp_path), "--update")
    golden = tmp_path / "sdk-python.pb.golden.jsonl"
    assert code == 0 and out.startswith(f"created  {fixture} (20 lines, {golden}): 20 lines")
    committed = (EXPECTED / "sdk-python.pb.golden.jsonl").read_text()
    assert golden.read_text() == committed
    assert run(fixture, "--expected", str(tmp_path))[0] == 0
    lines = committed.splitlines()
    victim = next(x for x in lines if '"grouping": "service"' in x and '"root"' in x)
    golden.write_text("\n".join(x for x in lines if x != victim) + "\n")
    code, out, _ = run(fixture, "--expected", str(tmp_path))
    assert code == 1
    assert out.splitlines()[0].endswith("service: 0 lines gone, 1 new")
    assert f"+{victim}" in out.splitlines()
    code, out, _ = run(fixture, "--expected", str(tmp_path), "--update")
    assert (
        code == 0
        and out.startswith(f"updated  {fixture}")
        and out.rstrip().endswith("service: 0 lines gone, 1 new")
    )
    assert golden.read_text() == committed
    code, out, _ = run(fixture, "--expected", str(tmp_path), "--update")
    assert code == 0 and out.rstrip().endswith(": unchanged")


def test_options_come_from_the_golden_header_unless_given(tmp_path: Path) -> None:
    fixture = "fixtures/polyglot.pb"
    assert run(fixture, "--expected", str(tmp_path), "--routes", "service", "--update")[0] == 0
    header = json.loads((tmp_path / "polyglot.pb.golden.jsonl").read_text().splitlines()[0])
    assert header["options"] == {
        "batches": "captured",
        "boundary": "service",
        "compare": "sentryexporter",
        "reference": "service",
        "routes": "service",
        "service_attribute": "service.name",
    }
    assert run(fixture, "--expected", str(tmp_path))[0] == 0  # routes service read back from the header
    code, out, _ = run(fixture, "--expected", str(tmp_path), "--routes", "none")
    assert code == 1 and out.splitlines()[0].split(": ", 1)[1].startswith("header changed; sentryexporter: ")


def test_a_golden_file_with_the_old_option_keys_still_checks_ok(tmp_path: Path) -> None:
    """Golden files written before ``batching``/``routing`` became ``batches``/``routes`` keep working:
    their options are read under the new keys, the check passes, ``--update`` rewrites the header only."""
    fixture = "fixtures/polyglot.pb"
    assert run(fixture, "--expected", str(tmp_path), "--routes", "service", "--update")[0] == 0
    golden = tmp_path / "polyglot.pb.golden.jsonl"
    lines = golden.read_text().splitlines()
    header = json.loads(lines[0])
    opts = header["options"]
    header["options"] = {{"batches": "batching", "routes": "routing"}.get(k, k): v for k, v in opts.items()}
    old = "\n".join([json.dumps(header, sort_keys=True, ensure_ascii=False), *lines[1:]]) + "\n"
    assert '"routing": "service"' in old and '"routes"' not in old
    golden.write_text(old)
    code, out, err = run(fixture, "--expected", str(tmp_path))  # routing service read from the old header
    assert (code, err) == (0, "") and out.startswith(f"ok       {fixture}"), out
    code, out, _ = run(fixture, "--expected", str(tmp_path), "--update")
    assert code == 0 and "header changed" in out and "lines gone" not in out
    assert golden.read_text().splitlines() == lines


def test_routed_capture_equals_routing_emulation_and_capture_points_share_the_reference() -> None:
    routed = golden_lines(ROOT / "fixtures/polyglot-routed")
    emulated = golden_lines(ROOT / "fixtures/polyglot.pb", CheckOptions(routes="service"))
    assert routed[1:] == emulated[1:]  # file exporter group_by after routing == --routes service
    grouped = golden_lines(ROOT / "fixtures/polyglot-groupbytrace.pb")

    def reference(lines: list[str]) -> list[str]:
        return [x for x in lines[1:] if json.loads(x)["grouping"] == "service"]

    assert reference(routed) == reference(grouped) and len(reference(routed)) == 203  # summary + 202


def test_proto_and_json_lines_recordings_give_the_same_groupings() -> None:
    for name in ("sdk-python", "sdk-node-python"):
        pb = (EXPECTED / f"{name}.pb.golden.jsonl").read_text().splitlines()
        jl = (EXPECTED / f"{name}.jsonl.golden.jsonl").read_text().splitlines()
        assert pb[1:] == jl[1:]
        assert (json.loads(pb[0])["format"], json.loads(jl[0])["format"]) == (
            ["otlp-proto-stream"],
            ["otlp-jsonl"],
        )


def test_polyglot_fixture_holds_every_shape() -> None:
    lines = [json.loads(x) for x in (EXPECTED / "polyglot.pb.golden.jsonl").read_text().splitlines()]
    header = lines[0]
    assert (header["spans"], header["traces"], header["batches"]) == (3013, 76, 14)
    assert header["anomalies"] == {"missing_parent": 13}
    ref = [x for x in lines if x.get("grouping") == "service" and "root" in x]
    assert len(ref) == 202 and max(x["spans"] for x in ref) == 1403  # one report job of thousands of spans
    entries = {(x["service"], x["kind"]) for x in ref if x["reason"] == "other_service"}
    assert ("search", "INTERNAL") in entries and ("mailer", "CONSUMER") in entries
    assert ("inventory", "SERVER") in entries and ("storefront", "SERVER") in entries
    assert ("payments", "SERVER") in entries
    cmp = [x for x in lines if x.get("grouping") == "sentryexporter" and "root" in x]
    names = {x["name"] for x in cmp if x["service"] == "payments" and x["reason"] == "server_kind"}
    assert {"HTTP POST", "/api/charges"} <= names  # Cowboy and Phoenix both SERVER: split
    assert sum(x["spans"] for x in lines if x.get("dropped") is True) == 1295


def test_synthetic_fixtures_are_exactly_what_the_generator_makes() -> None:
    proc = subprocess.run(
        [sys.executable, str(FIXTURES_DIR / "make_polyglot.py"), "--check"], capture_output=True, text=True
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    for f in [*FIXTURES_DIR.glob("polyglot*.pb"), *(FIXTURES_DIR / "polyglot-routed").iterdir()]:
        assert f.stat().st_size < 1_000_000


def test_missing_golden_file_exits_2_and_says_how_to_create_it(tmp_path: Path) -> None:
    code, out, err = run("fixtures/external/yelp.json", "--expected", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (
        f"tracegroup: error: no golden file {tmp_path}/yelp.json.golden.jsonl: create it with "
        f"`tracegroup check fixtures/external/yelp.json --expected {tmp_path} --update` and commit it\n"
    )


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    code, _, err = run("fixtures/nope.pb", "--expected", str(tmp_path), "--update")
    assert code == 2 and err == "tracegroup: error: fixtures/nope.pb: no such file or directory\n"
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\x00\x00\x00\x09not proto")
    code, _, err = run(str(garbage), "--expected", str(tmp_path), "--update")
    assert code == 2 and err.startswith(f"tracegroup: error: {garbage}")
    shutil.copy(EXPECTED / "yelp.json.golden.jsonl", tmp_path / "yelp.json.golden.jsonl")
    (tmp_path / "trace.json.golden.jsonl").write_text("not a golden file\n")
    code, out, err = run(
        "fixtures/external/yelp.json", "fixtures/external/trace.json", "--expected", str(tmp_path)
    )
    # the other fixtures are still checked and reported
    assert code == 2 and out.startswith("ok       fixtures/external/yelp.json")
    assert "trace.json.golden.jsonl: not a tracegroup golden file" in err
    code, _, err = run(
        "fixtures/external/yelp.json", str(tmp_path / "yelp.json"), "--expected", str(tmp_path)
    )
    assert code == 2 and "would share the golden file" in err
    code, _, err = run("fixtures/external/yelp.json", "--expected", str(tmp_path), "--routes", "nowhere.toml")
    assert code == 2 and "nowhere.toml" in err
    assert run("fixtures/external/yelp.json", "--expected", str(tmp_path), "--compare", "nope")[0] == 2


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """The installed command, as CI runs it."""
    exe = Path(sys.executable).with_name("tracegroup")
    ok = subprocess.run(
        [str(exe), "check", "fixtures/external/trace.json", "--expected", "fixtures/expected"]
    )
    assert ok.returncode == 0
    bad = subprocess.run([str(exe), "check", "fixtures/external/trace.json", "--expected", str(tmp_path)])
    assert bad.returncode == 2


def test_update_refuses_a_damaged_dump_unless_warnings_are_accepted(tmp_path: Path) -> None:
    dump = tmp_path / "crashed.pb"
    dump.write_bytes((ROOT / "fixtures" / "recorded" / "sdk-python.pb").read_bytes() + bytes(64))
    code, _, err = run(str(dump), "--expected", str(tmp_path / "exp"), "--update")
    assert code == 2 and "--accept-warnings" in err and "tracegroup: warning: " in err
    assert not (tmp_path / "exp").exists()
    code, out, err = run(str(dump), "--expected", str(tmp_path / "exp"), "--update", "--accept-warnings")
    assert code == 0 and out.startswith("created") and "tracegroup: warning: " in err
    code, out, err = run(str(dump), "--expected", str(tmp_path / "exp"))
    assert code == 0 and out.startswith("ok") and "zero" in err
