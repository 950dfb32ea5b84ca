"""``tracegroup emit`` end to end: the new user's path (two services routed to two DSNs, a shipped fixture,
either style, Relay accepts every event, the same command twice gives byte-identical files), the outputs,
and bad input as one line on stderr with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_sentry_emit import NOW, iso, normalizer, relay_problems

from tracegroup.cli import main
from tracegroup.sentry.envelope import read_envelope

POLYGLOT = "fixtures/polyglot.pb"
ROUTES = "fixtures/routes-example.toml"
NOW_ARG = iso(NOW)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def files(p: Path) -> dict[str, bytes]:
    return {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("style", ["exporter", "sentry"])
def test_new_user_two_routes_either_style(tmp_path: Path, style: str) -> None:
    out = tmp_path / "out"
    args = ["emit", POLYGLOT, "--routes", ROUTES, "--rebase-time", "--now", NOW_ARG, "--style", style]
    code, stdout, stderr = run(*args, "--out", str(out))
    assert code == 0, stderr
    assert "public1" not in stdout and "public2" not in stdout  # keys never printed
    assert "https://***@o1.ingest.sentry.io/11" in stdout
    first = files(out)
    envelopes = {k: v for k, v in first.items() if k.endswith(".envelope")}
    assert envelopes and "manifest.jsonl" in first and "summary.json" in first
    norm = normalizer()
    dsns: dict[str, set[str]] = {}
    for name, data in envelopes.items():
        env = read_envelope(data)
        payload = env.items[0].payload.json
        assert relay_problems(norm, payload) == [], name
        dsns.setdefault(name.split("/")[0], set()).add(env.headers["dsn"])
    assert dsns["storefront"] == {"https://public1@o1.ingest.sentry.io/11"}
    assert dsns["payments"] == {"https://public2@o1.ingest.sentry.io/12"}
    assert dsns["frontend"] == {"https://public0@o1.ingest.sentry.io/10"}
    manifest = [json.loads(line) for line in first["manifest.jsonl"].decode().splitlines()]
    written = [m for m in manifest if m["written"]]
    assert {m["file"] for m in written} == set(envelopes)
    summary = json.loads(first["summary.json"])
    assert summary["spans"]["written"] == summary["spans"]["in"]
    # the same command twice: byte-identical files
    code, _, stderr = run(*args, "--out", str(out))
    assert code == 0, stderr
    assert files(out) == first


def test_jsonl_manifest_and_json_summary(tmp_path: Path) -> None:
    jsonl, manifest = tmp_path / "events.jsonl", tmp_path / "m.jsonl"
    code, stdout, stderr = run(
        "emit",
        POLYGLOT,
        "--rebase-time",
        "--now",
        NOW_ARG,
        "--style",
        "sentry",
        "--errors",
        "dedup",
        "--jsonl",
        str(jsonl),
        "--manifest",
        str(manifest),
        "--environment",
        "replay",
        "--format",
        "json",
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(events) == sum(1 for m in lines if m["written"])
    assert summary["errors"]["written"] + summary["transactions"]["events"] == len(events)
    assert all(e["environment"] == "replay" for e in events)
    assert all(m["file"] is None for m in lines)  # no --out: no envelope files


def test_dry_run_reports_old_dump(tmp_path: Path) -> None:
    code, stdout, _ = run("emit", POLYGLOT, "--now", NOW_ARG)
    assert code == 0
    assert "too_old" in stdout and "--rebase-time" in stdout and "dry run" in stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[[route]\nname = ", "neither valid TOML"),
        (
            '[[rename]]\nmatch = "x("\nfrom_attributes = ["a"]\n[default]\ndsn = "https://k@h/1"\n',
            "bad regular",
        ),
        ('[default]\ndsn = "https://k@h/1"\nsample_rate = 2\n', "sample_rate"),
        ('[[route]]\nservices = ["a"]\ndsn = "not a dsn"\n', "dsn is not a DSN"),
    ],
)
def test_bad_routes_file(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(content)
    code, _, stderr = run("emit", POLYGLOT, "--routes", str(path))
    assert code == 2
    assert stderr.count("\n") == 1 and str(path) in stderr and needle in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--routes", "missing.toml"], "missing.toml"),
        (["--renames", "missing.yaml"], "missing.yaml"),
        (["--environment", "a/b"], "--environment"),
        (["--now", "yesterday"], "--now"),
    ],
)
def test_bad_options(extra: list[str], needle: str) -> None:
    code, _, stderr = run("emit", POLYGLOT, *extra)
    assert code == 2 and needle in stderr and stderr.count("\n") == 1


def test_unwritable_and_foreign_output(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    code, _, stderr = run("emit", POLYGLOT, "--out", str(foreign))
    assert code == 2 and str(foreign) in stderr and stderr.count("\n") == 1
    assert (foreign / "notes.txt").read_text() == "keep me"
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, stderr = run("emit", POLYGLOT, "--out", str(blocker / "sub"))
    assert code == 2 and stderr.count("\n") == 1
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, stderr = run("emit", POLYGLOT, "--rebase-time", "--out", str(locked / "out"))
        assert code == 2 and "locked" in stderr


def test_registering_the_command_imports_nothing_heavy() -> None:
    code = (
        "import sys, tracegroup; before = set(sys.modules); import tracegroup.cli.sentry; "
        "new = set(sys.modules) - before; "
        "print(sorted(m for m in new if m.split('.')[0] in ('sentry_sdk', 'yaml', 'sentry_relay')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
