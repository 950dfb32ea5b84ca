"""``tracegroup show``: one trace as an indented tree with its transaction under both groupings."""

from __future__ import annotations

import re
from pathlib import Path

from builders import S, batch
from click.testing import CliRunner, Result

from tracegroup.cli import main

HOTROD = "fixtures/external/getTrace-response.json"
HOTROD_TRACE = "2ea75461946a7dd10f2c15ab36a076cb"
DSB = "fixtures/external/traces-1695947455229.json"
POLYGLOT = "fixtures/polyglot.pb"
SMARTTHINGS = "fixtures/external/smartthings-mobile-web-install.json"
BIG = "47c657d05b819aa436bd0ff4d36ddb18"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["show", *args])


def test_show_hotrod_tree_with_both_transactions() -> None:
    result = run(HOTROD, "--trace", HOTROD_TRACE, "--collapse", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"trace {HOTROD_TRACE}: 40 spans, 6 services, 1 batch, 1 exporter call"
    assert "service: 28 transactions; sentryexporter: 13 transactions" in lines[1]
    assert lines[2] == "  verdicts: ok 25, merged 15"
    header = next(k for k, x in enumerate(lines) if x.startswith("span "))
    assert "service tx" in lines[header] and "sentryexporter tx" in lines[header]
    assert " call " in lines[header] and lines[header].split()[-2:] == ["verdict", "reason"]
    body = lines[header + 1 :]
    assert len(body) == 40
    root = body[0].split()
    assert body[0].startswith("GET /dispatch") and root[-4] == root[-3] == "*c8d93156b47cd010"
    assert root[-2:] == ["ok", "no_parent"] and root[-5] == "0"  # exporter call 0
    # the mysql span opens its own transaction (correct) but the exporter merged it into customer's
    sql = next(x for x in body if "SQL SELECT" in x)
    assert sql.startswith("      SQL SELECT")  # depth 3
    cols = sql.split()
    assert cols[-4].startswith("*") and cols[-3] == "2947f6da1a6168d0" and cols[-2:] == ["merged", "joined"]
    assert sum(x.split()[-2] == "merged" for x in body) == 15


def test_show_collapses_alike_siblings_with_counts() -> None:
    result = run(HOTROD, "--trace", HOTROD_TRACE)
    lines = result.stdout.splitlines()
    redis = next(x for x in lines if "GetDriver" in x)
    assert "GetDriver ×13" in redis and "*each its own (13)" in redis and redis.split()[-2] == "merged"
    assert any(x.startswith("3 rows ×N: N alike siblings collapsed") for x in lines)
    assert "not shown" not in result.stdout  # collapsed rows are shown, not left out


def test_show_filters_keep_ancestors_as_context() -> None:
    bad = run(HOTROD, "--trace", HOTROD_TRACE, "--only-bad", "--collapse", "0").stdout.splitlines()
    body = bad[bad.index(next(x for x in bad if x.startswith("span "))) + 1 :]
    shown = [x for x in body if "(context)" not in x and not x.startswith("...")]
    assert len(shown) == 15 and all(x.split()[-2] == "merged" for x in shown)
    assert body[0].startswith("GET /dispatch") and body[0].endswith("(context)")
    # the 5 ok ancestors of merged spans are drawn as context, the other 20 ok spans filtered out
    assert sum("(context)" in x for x in body) == 5
    assert bad[-1].startswith("... 20 spans of 40 not shown: 20 filtered out") and "ok 20" in bad[-1]
    assert (
        run(HOTROD, "--trace", HOTROD_TRACE, "--verdict", "merged", "--collapse", "0").stdout
        == "\n".join(bad) + "\n"
    )
    svc = run(HOTROD, "--trace", HOTROD_TRACE, "--service", "mysql").stdout
    assert "SQL SELECT" in svc and "GetDriver" not in svc
    top = run(HOTROD, "--trace", HOTROD_TRACE, "--depth", "1", "--collapse", "0").stdout.splitlines()
    assert top[-1].startswith("... 27 spans of 40 not shown: 27 filtered out")
    assert run(HOTROD, "--verdict", "nonsense").exit_code == 2


def test_show_json_one_object_per_span() -> None:
    import json

    out = run(HOTROD, "--trace", HOTROD_TRACE, "--format", "json").stdout
    data = json.loads(out)
    assert list(data) == ["trace", "left_out", "spans"]
    assert data["trace"]["transactions"] == 28 and data["trace"]["compared_transactions"] == 13
    spans = data["spans"]
    assert len(spans) == 40 and all(s["count"] == 1 for s in spans)  # not collapsed by default
    for key in ("transaction", "compared_transaction", "verdict", "reason", "batch", "depth", "span_id"):
        assert all(key in s for s in spans)
    assert sum(s["verdict"] == "merged" for s in spans) == 15
    assert all(spans[s["parent"]]["depth"] == s["depth"] - 1 for s in spans if s["parent"] >= 0)


def test_show_escapes_control_characters_and_counts_whole_trace() -> None:
    result = run(SMARTTHINGS, "--max-spans", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "service: 381 transactions; sentryexporter: 326 transactions" in lines[1]  # as analyze counts
    assert "84 spans without a timestamp" in result.stdout
    assert all(x.isprintable() for x in lines)
    assert any("\\n" in x for x in lines)


def test_show_takes_a_64_bit_id_and_other_groupings() -> None:
    result = run(DSB, "--trace", "151E8EA44A5CF41C", "--compare", "span-kind", "--routes", "service")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("trace 0000000000000000151e8ea44a5cf41c: ")
    assert "span-kind tx" in result.stdout and "routing service" in result.stdout


def test_show_max_spans_says_what_was_cut() -> None:
    result = run(HOTROD, "--trace", HOTROD_TRACE, "--max-spans", "7", "--collapse", "0")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    last = lines[-1]
    assert last.startswith("... 33 spans of 40 not shown: 33 beyond --max-spans 7")
    assert "merged" in last
    assert sum(" merged " in x for x in lines) >= 1  # spans not ok come first
    full = run(HOTROD, "--trace", HOTROD_TRACE, "--max-spans", "0", "--collapse", "0").stdout
    assert "not shown" not in full and len(full.splitlines()) > 40


def test_show_big_trace_is_readable() -> None:
    small = ["--batches", "simulate", "--sdk-batch", "128", "--batch-size", "256", "--batch-max-size", "256"]
    result = run(POLYGLOT, "--trace", BIG, *small)  # small batches cut the job into orphans and drops
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "sentryexporter: 129 transactions" in lines[1] and "11 exporter calls" in lines[0]
    assert len(lines) < 75 and "not shown" not in result.stdout  # every span in a collapsed row
    orphans = [x for x in lines if " orphaned " in x and not x.startswith("  verdicts")]
    assert orphans and sum(int(x.split("×")[1].split()[0]) if "×" in x else 1 for x in orphans) == 128
    calls = {re.search(r" (\d+|-) +\*?55bbc42775e7be09", x).group(1) for x in orphans}  # type: ignore[union-attr]
    assert calls == {"7"}  # all came in exporter call 7


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
    assert lines[-1].startswith("... 19,960 spans of 20,000 not shown: 19,960 beyond --max-spans 40")
    assert max(len(x) for x in lines[:-1]) < 200
