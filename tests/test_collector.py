"""The real collector and the real legacy Sentry exporter as the judge (docs/collector.md).

Three tiers:

- every run, no Go: on every committed recording in ``fixtures/collector/`` (real SDK traffic through the
  real collector, contrib v0.141.0), tracegroup's ``sentryexporter`` grouping of the captured exporter
  calls equals the transactions the real exporter sent (roots, members, dropped spans, one-span orphans,
  error events), ``emit --style exporter`` equals the real payloads field by field except the documented
  deviations, and the pipeline model (``--batches simulate`` with the configuration's settings) lands
  within the documented tolerance of the real capture;
- every run, live smoke (needs Go): build or reuse the collector, record the Python services for ~20 s
  through one configuration, and require this run's capture, emulated, to equal this run's envelopes;
- on demand (``pytest -m collector_full``): every configuration, the Node.js and Go services included.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard
from click.testing import CliRunner
from tools import missing, registry_unreachable, require_executable

import tracegroup as tg
from tracegroup.cli import main as cli
from tracegroup.reasons import Reason

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "fixtures" / "collector"
RECORDER = ROOT / "fixtures" / "record" / "record_collector.py"
COLLECTOR = ROOT / "collector"
CONFIGS = ["batch-small", "batch-timer", "batch-default", "groupbytrace", "routing"]
#: Pipeline model tolerance (the issue's): exporter calls within ±15 %, mis-grouped share within 2 points.
CALLS_TOLERANCE = 0.15
MISGROUPED_TOLERANCE = 0.02


def _load_build() -> Any:
    """``collector/build.py`` as a module (not on sys.path: "build" is also a PyPI package's name)."""
    spec = importlib.util.spec_from_file_location("tracegroup_collector_build", COLLECTOR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


collector_build = _load_build()


# ------------------------------------------------------------------------------------------ the reading


@dataclass
class Sent:
    """What the real exporter sent, from the fake Sentry's log."""

    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)  # root span id -> event
    errors: list[dict[str, Any]] = field(default_factory=list)
    envelope_headers: list[dict[str, Any]] = field(default_factory=list)
    projects: Counter[str] = field(default_factory=Counter)  # project id per transaction root


def capture_path(rec: Path) -> Path:
    """The file exporter's capture: ``collector-<config>.pb.zst``, or the directory of one file per
    per-service pipeline (routing)."""
    folder = rec / f"collector-{rec.name}"
    return folder if folder.is_dir() else rec / f"collector-{rec.name}.pb.zst"


def read_envelopes(rec: Path) -> Sent:
    sent = Sent()
    data = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((rec / "record" / "envelopes.jsonl.zst").read_bytes())
    )
    for line in data.decode("utf-8").splitlines():
        entry = json.loads(line)
        project = entry["path"].strip("/").split("/")[1]
        for header, item_header, payload in _envelope_items(entry["body"]):
            sent.envelope_headers.append(header)
            if item_header["type"] == "transaction":
                root = payload["contexts"]["trace"]["span_id"]
                assert root not in sent.transactions, f"two transactions rooted at {root}"
                sent.transactions[root] = payload
                sent.projects[root] = project
            else:
                sent.errors.append(payload)
    return sent


def _envelope_items(body: str) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    raw = body.encode("utf-8")
    head, _, rest = raw.partition(b"\n")
    header = json.loads(head)
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].lstrip(b"\n")
        yield header, item_header, json.loads(payload)


def recording_meta(rec: Path) -> dict[str, Any]:
    return json.loads((rec / "record" / "recording.json").read_text())


def span_hex(v: int) -> str:
    return f"{int(v):016x}"


@dataclass
class Emulated:
    transactions: dict[str, set[str]]  # root span id -> member span ids (root excluded)
    orphans: set[str]  # one-span transactions made of a span whose parent was not in the call
    dropped: set[str]
    errors: Counter[tuple[str, str, str]]  # (span id, type, message)
    calls: int
    spans: int
    service: dict[str, str]  # span id -> service.name


def emulate(rec: Path) -> Emulated:
    table = tg.load([capture_path(rec)])
    an = tg.analyze(table, compare="sentryexporter", batches="captured")
    g = an.compared
    ids = [span_hex(v) for v in table.span_id.tolist()]
    members: dict[str, set[str]] = {}
    for r in np.flatnonzero(g.root == np.arange(len(table))).tolist():
        members[ids[r]] = set()
    for r, root in enumerate(g.root.tolist()):
        if root >= 0 and root != r:
            members[ids[root]].add(ids[r])
    orphans = {ids[r] for r in np.flatnonzero(g.reason == int(Reason.ORPHAN)).tolist()}
    dropped = {ids[r] for r in np.flatnonzero(g.root < 0).tolist()}
    errors: Counter[tuple[str, str, str]] = Counter()
    for r in np.flatnonzero(g.root >= 0).tolist():
        for ev in table.span(r).events:
            if ev.name != "exception":
                continue
            attrs = {kv.key: kv.value.string_value for kv in ev.attributes}
            typ, msg = attrs.get("exception.type", ""), attrs.get("exception.message", "")
            if typ or msg:
                errors[(ids[r], typ, msg)] += 1
    service = {ids[r]: table.service_name(r) for r in range(len(table))}
    return Emulated(members, orphans, dropped, errors, an.delivery.n_calls, len(table), service)


def real_grouping(sent: Sent) -> tuple[dict[str, set[str]], set[str]]:
    """Root -> members of every transaction the exporter sent, and its one-span orphans (a transaction of
    one span whose parent id is set but which is neither SERVER nor CONSUMER)."""
    members = {root: {s["span_id"] for s in ev.get("spans", [])} for root, ev in sent.transactions.items()}
    orphans = {
        root
        for root, ev in sent.transactions.items()
        if not members[root]
        and ev["contexts"]["trace"].get("parent_span_id")
        and ev["tags"].get("span_kind") not in ("SPAN_KIND_SERVER", "SPAN_KIND_CONSUMER")
    }
    return members, orphans


def real_errors(sent: Sent) -> Counter[tuple[str, str, str]]:
    return Counter(
        (ev["contexts"]["trace"]["span_id"], ev["exception"][0]["type"], ev["exception"][0]["value"])
        for ev in sent.errors
    )


def recordings() -> list[Path]:
    return sorted(p for p in RECORDINGS.iterdir() if (p / "record" / "recording.json").exists())


def compare_grouping(rec: Path) -> list[str]:
    """Every difference between the emulation and what the real exporter sent (empty: identical)."""
    emu, sent = emulate(rec), read_envelopes(rec)
    real, real_orphans = real_grouping(sent)
    problems = []
    for root in sorted(set(emu.transactions) | set(real)):
        if root not in real:
            problems.append(f"transaction {root}: emulated ({len(emu.transactions[root])} spans), never sent")
        elif root not in emu.transactions:
            problems.append(f"transaction {root}: sent ({len(real[root])} spans), not emulated")
        elif emu.transactions[root] != real[root]:
            extra, lost = emu.transactions[root] - real[root], real[root] - emu.transactions[root]
            problems.append(
                f"transaction {root}: members differ: emulated only {sorted(extra)[:5]}, "
                f"sent only {sorted(lost)[:5]}"
            )
    all_real = set(real) | {s for m in real.values() for s in m}
    all_emu = set(emu.transactions) | {s for m in emu.transactions.values() for s in m}
    if emu.dropped != (all_emu | emu.dropped) - all_real:
        problems.append(f"dropped spans differ: {len(emu.dropped)} emulated")
    if emu.orphans != real_orphans:
        problems.append(
            f"orphans differ: emulated only {sorted(emu.orphans - real_orphans)[:5]}, "
            f"sent only {sorted(real_orphans - emu.orphans)[:5]}"
        )
    projects = recording_meta(rec)["projects"]
    if "" not in projects:  # routing: each service's exporter has its own DSN project
        wrong = [r for r in real if sent.projects[r] != str(projects[emu.service[r]])]
        if wrong:
            problems.append(f"{len(wrong)} transactions reached another service's project, e.g. {wrong[0]}")
    if emu.errors != real_errors(sent):
        problems.append(f"error events differ: emulated {sum(emu.errors.values())}, sent {len(sent.errors)}")
    return problems


# ------------------------------------------------------------------------------- emit field by field

#: Event-level tags `emit` leaves out (README "deviations"): Relay rejects or removes them.
RESERVED_TAGS = {"release", "dist", "user", "filename", "function", "environment"}
TAG_KEY = re.compile(r"^[A-Za-z0-9_.:\- ]+$")
#: Top-level event fields sentry-go writes that `emit` does not, each a documented deviation
#: (docs/collector.md): the value the real exporter sent.
EMPTY_IN_REAL_ONLY: dict[str, Any] = {"user": {}}


def _relay_drops(key: str, value: str) -> bool:
    return (
        value.strip() == ""
        or len(value) > 200
        or "\n" in value
        or len(key) > 200
        or not TAG_KEY.match(key)
        or key in RESERVED_TAGS
    )


def diff_values(path: str, real: Any, emitted: Any) -> Iterator[str]:
    """Every differing field, as ``path: real … emitted …``."""
    if isinstance(real, dict) and isinstance(emitted, dict):
        for k in sorted(set(real) | set(emitted)):
            if k not in emitted:
                yield f"{path}.{k}: real {real[k]!r}, not emitted"
            elif k not in real:
                yield f"{path}.{k}: emitted {emitted[k]!r}, not in the real payload"
            else:
                yield from diff_values(f"{path}.{k}", real[k], emitted[k])
    elif real != emitted:
        yield f"{path}: real {real!r}, emitted {emitted!r}"


def _event_tags(path: str, real: dict[str, str], emitted: dict[str, str]) -> Iterator[str]:
    """Event-level tags: emitted must equal real but for the documented Relay-driven removals."""
    kept = {k: v for k, v in real.items() if not _relay_drops(k, v)}
    yield from diff_values(path, kept, emitted)


def _root_as_span(ev: dict[str, Any]) -> dict[str, Any]:
    """A transaction's root span in the shape of a ``spans[]`` entry (from ``contexts.trace``)."""
    trace = ev["contexts"]["trace"]
    out = {
        k: trace[k]
        for k in ("trace_id", "span_id", "parent_span_id", "op", "description", "status")
        if k in trace
    }
    out.update(tags=ev.get("tags", {}), start_timestamp=ev["start_timestamp"], timestamp=ev["timestamp"])
    return out


def _spans_by_id(
    events: Iterable[dict[str, Any]],
) -> dict[str, tuple[str, dict[str, Any]]]:
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for ev in events:
        out[ev["contexts"]["trace"]["span_id"]] = ("root", _root_as_span(ev))
        for s in ev.get("spans", []):
            out[s["span_id"]] = ("member", s)
    return out


def emitted_events(rec: Path, tmp: Path) -> list[dict[str, Any]]:
    meta = recording_meta(rec)
    out = tmp / f"{rec.name}.emit.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "emit",
            str(capture_path(rec)),
            "--style",
            "exporter",
            "--jsonl",
            str(out),
            "-q",
            "--now",
            str(int(meta["recorded_at"]) + 1),
        ],
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def compare_emit(rec: Path, tmp: Path) -> tuple[list[str], dict[str, int]]:
    """Field-by-field differences between ``emit --style exporter`` and the real payloads, beyond the
    documented deviations; and counts of what was compared."""
    sent = read_envelopes(rec)
    emitted = emitted_events(rec, tmp)
    em_tx = [e for e in emitted if e.get("type") == "transaction"]
    em_err = [e for e in emitted if e.get("type") != "transaction"]
    problems: list[str] = []
    counts = Counter[str]()
    # whole transactions rooted at the same span: every field but event_id and the members
    em_by_root = {e["contexts"]["trace"]["span_id"]: e for e in em_tx}
    for root, real in sent.transactions.items():
        em = em_by_root.get(root)
        if em is None:
            continue
        counts["same_root_transactions"] += 1
        r = {k: v for k, v in real.items() if k not in ("event_id", "spans", "tags", *EMPTY_IN_REAL_ONLY)}
        e = {k: v for k, v in em.items() if k not in ("event_id", "spans", "tags")}
        for k, v in EMPTY_IN_REAL_ONLY.items():
            if real.get(k, v) != v:
                problems.append(f"transaction {root}.{k}: real {real[k]!r}, expected {v!r}")
        problems += diff_values(f"transaction {root}", r, e)
        problems += _event_tags(f"transaction {root}.tags", real.get("tags", {}), em.get("tags", {}))
    # every span, whatever transaction each side put it in
    real_spans, em_spans = _spans_by_id(sent.transactions.values()), _spans_by_id(em_tx)
    for sid, (_, real) in real_spans.items():
        if sid not in em_spans:
            problems.append(f"span {sid}: sent, never emitted")
            continue
        em_role, em = em_spans[sid]
        counts["spans"] += 1
        if em_role == "root":  # emitted as a transaction root: its tags are event-level tags
            problems += _event_tags(f"span {sid}.tags", real["tags"], em["tags"])
            real, em = (
                {k: v for k, v in real.items() if k != "tags"},
                {k: v for k, v in em.items() if k != "tags"},
            )
        problems += diff_values(f"span {sid}", real, em)

    # error events, keyed by span, type and message
    def key(ev: dict[str, Any]) -> tuple[str, str, str]:
        return ev["contexts"]["trace"]["span_id"], ev["exception"][0]["type"], ev["exception"][0]["value"]

    em_err_by = {key(e): e for e in em_err}
    for real in sent.errors:
        em = em_err_by.get(key(real))
        if em is None:
            problems.append(f"error event {key(real)}: sent, not emitted")
            continue
        counts["errors"] += 1
        r = {k: v for k, v in real.items() if k not in ("event_id", "tags", *EMPTY_IN_REAL_ONLY)}
        e = {k: v for k, v in em.items() if k not in ("event_id", "tags")}
        problems += diff_values(f"error {key(real)[0]}", r, e)
        problems += _event_tags(f"error {key(real)[0]}.tags", real.get("tags", {}), em.get("tags", {}))
    headers = {json.dumps(h.get("sdk"), sort_keys=True) for h in sent.envelope_headers}
    if headers != {json.dumps({"name": "sentry.opentelemetry", "version": "0.0.2"}, sort_keys=True)}:
        problems.append(f"envelope header sdk: {sorted(headers)}")
    return problems, dict(counts)


# -------------------------------------------------------------------------------------- pipeline model

#: Recordings whose mis-grouped share the default model misses by more than the tolerance because of the
#: batch timer's phase (docs/collector.md, "Pipeline model"): checked against the phase sweep instead.
TIMER_PHASE_LIMITED: set[str] = set()  # none in the current recordings; see docs for earlier ones
PHASE_STEP_MS = 20
PROBE_SERVICE = "tracegroup-phase-probe"


def cli_options(options: list[str]) -> list[str]:
    """``recording.json``'s model options for this CLI: the routes option is ``--routes`` (a recording
    made before the rename says ``--routing``, which ``analyze`` still takes with a warning)."""
    return ["--routes" if o == "--routing" else o for o in options]


def model_numbers(rec: Path) -> dict[str, dict[str, float]]:
    """Exporter calls and mis-grouped shares of the real capture and of the pipeline model replaying its
    spans with the configuration's settings (``recording.json``: ``model_options``)."""
    meta = recording_meta(rec)
    out = {}
    for label, options in (("real", ["--batches", "captured"]), ("model", meta["model_options"])):
        if label == "real" and meta["config"] == "routing":
            options = [*options, "--routes", "none"]  # the capture is already one file per exporter
        result = CliRunner().invoke(
            cli, ["analyze", str(capture_path(rec)), *cli_options(options), "--format", "json", "-q"]
        )
        assert result.exit_code == 0, result.output
        s = json.loads(result.stdout)
        n = s["input"]["spans"]
        out[label] = {
            "calls": s["compared"]["exporter_calls"],
            "blamed": s["blamed"]["ratio"],  # mis-grouped or dropped: what --fail-on-misgrouped counts
            "misgrouped": s["misgrouped"]["ratio"],  # split, merged or orphaned
            "dropped": s["dropped"]["ratio"],
            "transactions": s["compared"]["transactions"],
            "spans": n,
        }
    return out


# ------------------------------------------------------------------- tier 1: committed recordings, no Go


def _ids(rec: Path) -> str:
    return rec.name


@pytest.mark.parametrize("rec", recordings(), ids=_ids)
def test_emulated_grouping_equals_what_the_real_exporter_sent(rec: Path) -> None:
    problems = compare_grouping(rec)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("rec", recordings(), ids=_ids)
def test_emit_exporter_style_equals_the_real_payloads_field_by_field(rec: Path, tmp_path: Path) -> None:
    problems, counts = compare_emit(rec, tmp_path)
    assert not problems, f"{len(problems)} differing fields:\n" + "\n".join(problems[:60])
    sent = read_envelopes(rec)
    assert counts["spans"] == sum(1 + len(ev.get("spans", [])) for ev in sent.transactions.values())
    assert counts["same_root_transactions"] >= 20 and counts["errors"] == len(sent.errors) >= 1


@pytest.mark.parametrize("rec", recordings(), ids=_ids)
def test_pipeline_model_lands_near_the_real_capture(rec: Path, tmp_path: Path) -> None:
    m = model_numbers(rec)
    real, model = m["real"], m["model"]
    assert abs(model["calls"] - real["calls"]) <= CALLS_TOLERANCE * real["calls"], m
    if rec.name not in TIMER_PHASE_LIMITED:
        assert abs(model["blamed"] - real["blamed"]) <= MISGROUPED_TOLERANCE, m
        return
    # The documented limit (docs/collector.md): the real batch timer ticks from the collector's start, the
    # model's from the first arrival. Over every timer phase the model brackets the real share.
    sweep = phase_sweep(rec, tmp_path)
    low, high = min(b for _, b in sweep), max(b for _, b in sweep)
    assert low - MISGROUPED_TOLERANCE <= real["blamed"] <= high + MISGROUPED_TOLERANCE, (m, sweep)
    assert abs(model["blamed"] - real["blamed"]) > MISGROUPED_TOLERANCE, "limit gone: drop it from the list"


@pytest.mark.parametrize("rec", recordings(), ids=_ids)
def test_real_share_lies_within_the_models_range_over_batch_timer_phases(rec: Path, tmp_path: Path) -> None:
    """The model's one documented limit, held for every recording: over every phase of the batch timer the
    model brackets the real mis-grouped-or-dropped share (within the tolerance)."""
    real = model_numbers(rec)["real"]["blamed"]
    sweep = phase_sweep(rec, tmp_path)
    low, high = min(b for _, b in sweep), max(b for _, b in sweep)
    assert low - MISGROUPED_TOLERANCE <= real <= high + MISGROUPED_TOLERANCE, (real, sweep)


def test_every_configuration_is_recorded_with_the_traffic_the_issue_asks_for() -> None:
    assert [r.name for r in recordings()] == sorted(CONFIGS)
    gomod = (COLLECTOR / "go.mod").read_text()
    for rec in recordings():
        meta = recording_meta(rec)
        assert meta["config"] == rec.name
        assert (
            meta["sentry_requests"] == meta["sentry_go_sent"] > 0
        )  # nothing lost between exporter and Sentry
        v = meta["versions"]
        assert f"sentryexporter {v['collector_contrib']}" in gomod
        assert f"otelcol {v['collector_core']}" in gomod
        table = tg.load([capture_path(rec)])
        an = tg.analyze(table)
        kinds = Counter(int(k) for k in table.kind.tolist())
        assert kinds[4] >= 1 and kinds[5] >= 1  # PRODUCER, CONSUMER (a message through a queue)
        assert an.forest.counts().get("missing_parent", 0) >= 1
        assert max(Counter(table.trace_code.tolist()).values()) >= 1000  # the background job
        assert {"storefront", "inventory", "notifier", "worker"} <= set(table.services)
        rows = range(len(table))
        by_id = {int(table.span_id[r]): r for r in rows}
        nested_server = [
            r
            for r in rows
            if table.kind[r] == 2
            and int(table.parent_id[r]) in by_id
            and table.kind[by_id[int(table.parent_id[r])]] == 2
            and table.service[by_id[int(table.parent_id[r])]] == table.service[r]
        ]
        assert nested_server, "no SERVER span directly under a SERVER span of the same service"
        notify = [r for r in rows if table.service_name(r) == "notifier" and table.parent_id[r] in by_id]
        assert any(
            table.kind[r] == 1 and table.service_name(by_id[int(table.parent_id[r])]) != "notifier"
            for r in notify
        )  # an INTERNAL entry span


# ---------------------------------------------------------------------------- tier 2: live, needs Go


def _go() -> str:
    return require_executable("go", "install Go 1.24 or newer (https://go.dev/dl/) to build the collector")


def _download_or_skip() -> None:
    try:
        collector_build.download()
    except collector_build.RegistryError as err:
        registry_unreachable(str(err))
    except collector_build.GoMissing as err:
        missing(str(err))


def _binary() -> Path:
    _go()
    _download_or_skip()
    return collector_build.build()


def record_live(
    tmp: Path, configs: list[str], seconds: float, *extra: str
) -> subprocess.CompletedProcess[str]:
    binary = _binary()
    args = [sys.executable, str(RECORDER), str(tmp)]
    for c in configs:
        args += ["--config", c]
    return subprocess.run(
        [*args, "--seconds", str(seconds), "--collector", str(binary), *extra],
        capture_output=True,
        text=True,
        timeout=120 + 60 * len(configs) + seconds * len(configs),
        cwd=ROOT,
    )


def test_pinned_exporter_builds_transactions() -> None:
    """The pinned exporter is the legacy one: its source holds the span→transaction conversion."""
    go = _go()
    _download_or_skip()
    module = "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/sentryexporter"
    proc = subprocess.run(
        [go, "mod", "download", "-json", module],
        cwd=COLLECTOR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads(proc.stdout)
    assert info["Version"] == collector_build.CONTRIB_VERSION
    source = (Path(info["Dir"]) / "sentry_exporter.go").read_text()
    assert "func generateTransactions(" in source
    assert "func classifyAsOrphanSpans(" in source
    assert "transactionFromSpan" in source


def test_live_smoke_this_runs_capture_emulated_equals_this_runs_envelopes(tmp_path: Path) -> None:
    """A fresh recording (batch-timer: also through `tracegroup capture`, which the recorder checks byte for
    byte against the file exporter) groups as the real exporter did and emits what it sent."""
    proc = record_live(tmp_path, ["batch-timer"], 20.0)
    assert proc.returncode == 0, proc.stderr
    rec = tmp_path / "batch-timer"
    assert tg.load([capture_path(rec)]).sources[0].capture is not None  # the arrival sidecar was kept
    problems = compare_grouping(rec)
    assert not problems, "\n".join(problems[:40])
    emit_problems, counts = compare_emit(rec, tmp_path)
    assert not emit_problems, "\n".join(emit_problems[:60])
    assert counts["spans"] >= 1000


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        proc = record_live(tmp_path, ["batch-small"], 1.0, "--otlp-port", str(s.getsockname()[1]))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "in use" in proc.stderr, proc.stderr


def test_go_missing_is_a_one_line_error(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(COLLECTOR / "build.py")], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "go not found" in proc.stderr, proc.stderr


def test_a_module_the_proxy_does_not_serve_is_a_registry_error(tmp_path: Path) -> None:
    go = _go()
    work = tmp_path / "collector"
    work.mkdir()
    for name in ("build.py", "main.go", "go.sum"):
        (work / name).write_bytes((COLLECTOR / name).read_bytes())
    (work / "go.mod").write_text(
        (COLLECTOR / "go.mod").read_text().replace("sentryexporter v0.141.0", "sentryexporter v0.144.0")
    )
    env = {**os.environ, "GOPROXY": "off", "GOMODCACHE": str(tmp_path / "modcache"), "GOFLAGS": ""}
    proc = subprocess.run(
        [sys.executable, str(work / "build.py"), "--download-only"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    subprocess.run([go, "clean", "-modcache"], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "RegistryError" in proc.stderr, proc.stderr


# ------------------------------------------------------------------------ tier 3: on demand, everything


@pytest.mark.collector_full
def test_full_every_configuration_and_sdk(tmp_path: Path) -> None:
    require_executable("node", "install Node.js 20 (the frontend service)")
    require_executable("npm", "install npm (the frontend's packages come from the npm registry)")
    proc = record_live(tmp_path, CONFIGS, 10.0, "--node", "--go")
    assert proc.returncode == 0, proc.stderr
    failures = []
    for name in CONFIGS:
        rec = tmp_path / name
        failures += [f"{name}: {p}" for p in compare_grouping(rec)]
        failures += [f"{name}: {p}" for p in compare_emit(rec, tmp_path)[0]]
        assert {"frontend", "pricing"} <= set(tg.load([capture_path(rec)]).services)
    assert not failures, "\n".join(failures[:60])


def _probe_dump(path: Path, end_ns: int) -> None:
    """One message: one INTERNAL span with an absent parent, ending at ``end_ns``, in a service of its own."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

    td = TracesData()
    rs = td.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", PROBE_SERVICE
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.parent_span_id = b"\x7f" * 16, b"\x7e" * 8, b"\x7d" * 8
    span.name, span.kind = "phase-probe", Span.SPAN_KIND_INTERNAL
    span.start_time_unix_nano, span.end_time_unix_nano = end_ns - 1000, end_ns
    body = td.SerializeToString()
    path.write_bytes(len(body).to_bytes(4, "big") + body)


def phase_sweep(rec: Path, tmp: Path) -> list[tuple[int, float]]:
    """The model's mis-grouped-or-dropped share at every batch-timer phase (step :data:`PHASE_STEP_MS`).

    The model starts the batch timer at the first arrival (pipeline.py's contract). A probe span in a service
    of its own, arriving alone ten seconds before the traffic, starts it earlier; moving the probe moves the
    timer's phase. The probe's own call (one span, no root: dropped) is taken out of the numbers."""
    meta = recording_meta(rec)
    table = tg.load([capture_path(rec)])
    first = int(table.end_ns.min())
    out = []
    for offset in range(0, 200, PHASE_STEP_MS):
        probe = tmp / f"probe-{offset}.pb"
        _probe_dump(probe, first - 10_000_000_000 - offset * 1_000_000)
        result = CliRunner().invoke(
            cli,
            [
                "analyze",
                str(probe),
                str(capture_path(rec)),
                *cli_options(meta["model_options"]),
                "--format",
                "json",
                "-q",
            ],
        )
        assert result.exit_code == 0, result.output
        s = json.loads(result.stdout)
        n, blamed = s["input"]["spans"], s["blamed"]["spans"]
        probe_blamed = next(p["blamed"] for p in s["per_service"] if p["name"] == PROBE_SERVICE)
        out.append((offset, round((blamed - probe_blamed) / (n - 1), 6)))
    return out
