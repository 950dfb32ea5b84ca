"""The real-SDK recording, re-run on the spot: Python services instrumented with the OpenTelemetry SDK
(Flask, requests, sqlite3) export over OTLP/HTTP to a local receiver; what it writes must load, group
into one ``service`` transaction per service per request, and link services parent to child."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import tracegroup as tg
from tracegroup.cli import main
from tracegroup.grouping import Reason
from tracegroup.model import KIND_CLIENT, KIND_INTERNAL, KIND_SERVER, kind_name

ROOT = Path(__file__).resolve().parent.parent
RECORDER = ROOT / "fixtures" / "record" / "record_python.py"
#: Services each of the recorder's four requests reaches (GET /products/1, /2, /999, POST /orders).
EXPECTED = [
    ("inventory", "storefront"),
    ("inventory", "storefront"),
    ("storefront",),
    ("inventory", "notifier", "storefront"),
]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    prefix = tmp_path_factory.mktemp("record") / "live"
    proc = subprocess.run(
        [sys.executable, str(RECORDER), str(prefix)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return prefix, json.loads(proc.stdout)


def test_recorder_reports_what_it_wrote(recording: tuple[Path, dict[str, object]]) -> None:
    prefix, counts = recording
    assert counts["spans"] == 20
    assert counts["services"] == ["inventory", "notifier", "storefront"]
    pb, jl = prefix.parent / "live.pb", prefix.parent / "live.jsonl"
    assert counts["bytes_pb"] == pb.stat().st_size < 100_000
    assert counts["bytes_jsonl"] == jl.stat().st_size < 100_000
    # one message per SDK export call, each holding one service's spans
    table = tg.load([pb])
    assert len(table.batches) == counts["messages"] >= 3
    assert table.sources[0].format == "otlp-proto-stream"
    assert all(len(set(table.service[table.batch == b].tolist())) == 1 for b in range(len(table.batches)))


def test_one_service_transaction_per_service_per_request(recording: tuple[Path, dict[str, object]]) -> None:
    prefix, _ = recording
    table = tg.load([prefix.parent / "live.pb"])
    an = tg.analyze(table)
    assert len(table) == 20 and table.n_traces == 4 and an.forest.counts().get("missing_parent", 0) == 0
    roots = an.reference.roots()
    per_trace: dict[int, list[str]] = collections.defaultdict(list)
    for r in roots.tolist():
        per_trace[int(table.trace_code[r])].append(table.service_name(r))
    assert sorted(tuple(sorted(s)) for s in per_trace.values()) == sorted(EXPECTED)
    spans_per_service = collections.Counter(table.service_name(i) for i in range(len(table)))
    assert spans_per_service == {"storefront": 12, "inventory": 6, "notifier": 2}
    entries = sorted(
        (
            table.service_name(r),
            kind_name(int(table.kind[r])),
            table.span(r).name,
            Reason(int(an.reference.reason[r])).name,
        )
        for r in roots.tolist()
    )
    assert entries == [
        ("inventory", "SERVER", "GET /stock/<int:pid>", "OTHER_SERVICE"),
        ("inventory", "SERVER", "GET /stock/<int:pid>", "OTHER_SERVICE"),
        ("inventory", "SERVER", "POST /reserve", "OTHER_SERVICE"),
        ("notifier", "INTERNAL", "notify.send", "OTHER_SERVICE"),
        ("storefront", "SERVER", "GET /products/<int:pid>", "NO_PARENT"),
        ("storefront", "SERVER", "GET /products/<int:pid>", "NO_PARENT"),
        ("storefront", "SERVER", "GET /products/<int:pid>", "NO_PARENT"),
        ("storefront", "SERVER", "POST /orders", "NO_PARENT"),
    ]
    sizes = sorted(
        (table.service_name(r), int(n)) for r, n in zip(roots, an.reference.sizes()[roots], strict=True)
    )
    assert sizes == [
        ("inventory", 2), ("inventory", 2), ("inventory", 2), ("notifier", 2),
        ("storefront", 2), ("storefront", 3), ("storefront", 3), ("storefront", 4),
    ]  # fmt: skip


def test_cross_service_links_run_from_a_client_span_to_the_callee_entry(
    recording: tuple[Path, dict[str, object]],
) -> None:
    prefix, _ = recording
    table = tg.load([prefix.parent / "live.pb"])
    parent = tg.analyze(table).forest.parent
    child = np.flatnonzero((parent >= 0) & (table.service != table.service[np.maximum(parent, 0)]))
    links = sorted(
        (
            table.service_name(int(parent[c])),
            int(table.kind[parent[c]]),
            table.service_name(c),
            int(table.kind[c]),
        )
        for c in child
    )
    assert links == [
        ("storefront", KIND_CLIENT, "inventory", KIND_SERVER),
        ("storefront", KIND_CLIENT, "inventory", KIND_SERVER),
        ("storefront", KIND_CLIENT, "inventory", KIND_SERVER),
        ("storefront", KIND_CLIENT, "notifier", KIND_INTERNAL),
    ]
    # the Python SDK marks the remote parent in the OTLP flags (0x100 known | 0x200 remote)
    assert sorted(int(table.flags[c]) & 0x300 for c in child) == [0x300] * 4


def test_json_lines_copy_holds_the_same_spans(recording: tuple[Path, dict[str, object]]) -> None:
    prefix, _ = recording
    pb, jl = tg.load([prefix.parent / "live.pb"]), tg.load([prefix.parent / "live.jsonl"])
    assert jl.sources[0].format == "otlp-jsonl"
    assert len(jl.batches) == len(pb.batches)
    assert np.array_equal(jl.span_id, pb.span_id) and np.array_equal(jl.parent_id, pb.parent_id)
    assert np.array_equal(jl.trace_id, pb.trace_id) and np.array_equal(jl.kind, pb.kind)


def test_exporter_drops_the_service_whose_entry_span_is_internal(
    recording: tuple[Path, dict[str, object]],
) -> None:
    """Every export call holds one service; the notifier's calls have no root-rule span: dropped whole.
    (Which other calls lack a root depends on how the live SDKs cut their exports under load, so only the
    notifier's fate is asserted exactly; every dropped span is dropped for that one reason.)"""
    prefix, _ = recording
    table = tg.load([prefix.parent / "live.pb"])
    cmp = tg.analyze(table).compared
    notifier = np.flatnonzero(table.service == table.services.index("notifier"))
    assert sorted(table.span(int(i)).name for i in notifier) == ["notify.send", "render_email"]
    assert (cmp.root[notifier] < 0).all()
    dropped = np.flatnonzero(cmp.root < 0)
    assert set(cmp.reason[dropped].tolist()) == {Reason.DROPPED_NO_ROOT}


def test_a_fresh_recording_round_trips_through_check(
    recording: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    prefix, _ = recording
    dump = str(prefix.parent / "live.pb")
    runner = CliRunner()
    created = runner.invoke(main, ["check", dump, "--expected", str(tmp_path), "--update"])
    assert created.exit_code == 0 and created.stdout.startswith("created  ")
    again = runner.invoke(main, ["check", dump, "--expected", str(tmp_path)])
    assert again.exit_code == 0 and again.stdout.startswith("ok       ")
