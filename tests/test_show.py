"""``tracegroup show``: one trace as an indented tree with its transaction under both groupings."""

from __future__ import annotations

from pathlib import Path

from builders import S, batch
from click.testing import CliRunner, Result

from tracegroup.cli import main

HOTROD = "fixtures/external/getTrace-response.json"
HOTROD_TRACE = "2ea75461946a7dd10f2c15ab36a076cb"
DSB = "fixtures/external/traces-1695947455229.json"
POLYGLOT = "fixtures/polyglot.pb"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["show", *args])


def test_show_hotrod_tree_with_both_transactions() -> None:
    result = run(HOTROD, "--trace", HOTROD_TRACE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"trace {HOTROD_TRACE}: 40 spans, 6 services, 1 batch"
    assert "service: 28 transactions; sentryexporter: 13 transactions" in lines[1]
    assert lines[2] == "  verdicts: ok 25, merged 15"
    header = next(k for k, x in enumerate(lines) if x.startswith("span "))
    assert "service tx" in lines[header] and "sentryexporter tx" in lines[header]
    body = lines[header + 1 :]
    assert len(body) == 40
    root = body[0].split()
    assert body[0].startswith("GET /dispatch") and root[-3] == root[-2] == "*c8d93156b47cd010"
    assert root[-1] == "ok"
    # the mysql span opens its own transaction (correct) but the exporter merged it into customer's
    sql = next(x for x in body if "SQL SELECT" in x)
    assert sql.startswith("      SQL SELECT")  # depth 3
    cols = sql.split()
    assert cols[-3].startswith("*") and cols[-2] == "2947f6da1a6168d0" and cols[-1] == "merged"
    assert sum(x.split()[-1] == "merged" for x in body) == 15


def test_show_takes_a_64_bit_id_and_other_groupings() -> None:
    result = run(DSB, "--trace", "151E8EA44A5CF41C", "--compare", "span-kind", "--routes", "service")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("trace 0000000000000000151e8ea44a5cf41c: ")
    assert "span-kind tx" in result.stdout and "routing service" in result.stdout


def test_show_max_spans_says_what_was_cut() -> None:
    result = run(HOTROD, "--trace", HOTROD_TRACE, "--max-spans", "7")
    assert result.exit_code == 0
    last = result.stdout.splitlines()[-1]
    assert last.startswith("... 33 more spans not shown: the first 7 of 40 in tree order are listed")
    assert "--max-spans" in last and "merged" in last
    full = run(HOTROD, "--trace", HOTROD_TRACE, "--max-spans", "0").stdout
    assert "more spans not shown" not in full and len(full.splitlines()) > 40


def test_show_defaults_to_the_worst_trace() -> None:
    result = run(POLYGLOT, "--max-spans", "3")
    assert result.exit_code == 0
    assert "showing the worst trace" in result.stderr
    worst = result.stderr.split("showing the worst trace, ")[1].split()[0]
    assert result.stdout.startswith(f"trace {worst}: ")
    assert "dropped" in result.stdout.splitlines()[2]


def test_show_bad_trace_ids_exit_2() -> None:
    missing = run(HOTROD, "--trace", "ab" * 16)
    assert missing.exit_code == 2 and "not in the dump" in missing.output
    malformed = run(HOTROD, "--trace", "not-hex")
    assert malformed.exit_code == 2 and "16 or 32 hex chars" in malformed.output


def test_show_a_very_deep_trace(tmp_path: Path) -> None:
    n = 20_000  # recursion would fail long before this depth
    dump = tmp_path / "deep.pb"
    dump.write_bytes(
        batch(*[S(i + 1, i or None, "svc" if i < n - 1 else "db", start=i, end=10**9) for i in range(n)])
    )
    result = run(str(dump), "--max-spans", "40")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "20,000 spans, 2 services" in lines[0]
    deep = [x for x in lines if x.startswith(" " * 48 + "[")]
    assert deep and deep[0].startswith(" " * 48 + "[25] span-26")  # indentation stops, depth printed
    assert lines[-1].startswith("... 19,960 more spans not shown")
    assert max(len(x) for x in lines[:-1]) < 200
