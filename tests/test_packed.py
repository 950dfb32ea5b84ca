"""The packed envelope layout (``emit --layout packed``): the same envelopes as the files layout, byte for
byte, cut out of one file per service by the manifest's ``offset``/``length``; the same in memory,
unstreamed and spilled; sent exactly as the files layout is (same keys, outcomes, journal, resume), and a
damaged pack is one line and exit 2."""

from __future__ import annotations

import datetime
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_sentry import fake_sentry
from sentry_sdk.envelope import Envelope
from test_send import routes_file

import tracegroup as tg
from tracegroup.cli import main
from tracegroup.routes import load_routes
from tracegroup.send import JOURNAL, NOT_SENT
from tracegroup.sentry import envelope as files
from tracegroup.sentry.emit import emit
from tracegroup.sentry.envelope import DirWriter, envelope_bytes, service_dir, write_dir
from tracegroup.spill_emit import emit_spilled

DUMPS = [
    "fixtures/polyglot.pb",
    "fixtures/polyglot-groupbytrace.pb",
    "fixtures/polyglot-routed",
    "fixtures/recorded/sdk-node-python.jsonl",
    "fixtures/recorded/sdk-python.pb",
    "fixtures/external/getTrace-response.json",
    "fixtures/external/yelp.json",
    "tests/data/zipkin-v1-frontend-backend.json",
]
NOW = "2026-01-01T00:00:00Z"
NOW_NS = 1_767_225_600 * 10**9
ROUTES = "fixtures/routes-example.toml"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def cut(out: Path, line: dict[str, Any]) -> bytes:
    with open(out / line["file"], "rb") as f:
        f.seek(line["offset"])
        return f.read(line["length"])


def assert_same_envelopes(files_out: Path, packed_out: Path) -> int:
    """Every packed slice is the files layout's envelope byte for byte; manifests agree but for file,
    offset and length; each pack is its service's transactions then error events, in manifest order, back
    to back and nothing else; every slice parses with sentry_sdk. Returns the envelope count."""
    by_files, by_packs = manifest(files_out), manifest(packed_out)
    assert len(by_files) == len(by_packs)
    packs: dict[str, list[dict[str, Any]]] = {}
    for a, b in zip(by_files, by_packs, strict=True):
        assert {k: v for k, v in a.items() if k != "file"} == {
            k: v for k, v in b.items() if k not in ("file", "offset", "length")
        }
        assert ("offset" in b) == (a["file"] is not None)
        if a["file"] is None:
            assert b["file"] is None
            continue
        assert list(b)[list(b).index("file") : list(b).index("file") + 3] == ["file", "offset", "length"]
        assert a["file"] == f"{b['file'].removesuffix('.envelopes')}/{a['event_id']}.envelope"
        assert b["file"] == service_dir(a["service"]) + ".envelopes"
        data = cut(packed_out, b)
        assert data == (files_out / a["file"]).read_bytes()
        env = Envelope.deserialize(data)
        assert env.headers["event_id"] == a["event_id"]
        packs.setdefault(b["file"], []).append(b)
    for name, lines in packs.items():
        ordered = [x for x in lines if x["type"] == "transaction"] + [
            x for x in lines if x["type"] != "transaction"
        ]
        at = 0
        for x in ordered:
            assert x["offset"] == at
            at += x["length"]
        assert (packed_out / name).stat().st_size == at
    on_disk = {p.name for p in packed_out.iterdir()}
    assert on_disk == {*packs, "manifest.jsonl", "summary.json"}
    assert not list(packed_out.rglob("*.envelope"))
    return sum(len(v) for v in packs.values())


@pytest.mark.parametrize("dump", DUMPS)
def test_packed_slices_are_the_files_layout_envelopes(dump: str, tmp_path: Path) -> None:
    args = ["emit", dump, "--rebase-time", "--now", NOW, "--routes", ROUTES, "--errors", "all", "-q"]
    outs = {}
    for layout in ("files", "packed"):
        outs[layout] = tmp_path / layout
        code, text = run(*args, "--out", str(outs[layout]), "--layout", layout)
        assert code == 0, text
        summary = json.loads((outs[layout] / "summary.json").read_text())
        assert summary["out"]["layout"] == layout
    n = assert_same_envelopes(outs["files"], outs["packed"])
    assert n == len(list(outs["files"].rglob("*.envelope"))) > 0
    summaries = [json.loads((outs[x] / "summary.json").read_text()) for x in ("files", "packed")]
    assert summaries[0]["out"] == {**summaries[1]["out"], "layout": "files"}
    assert {k: v for k, v in summaries[0].items() if k != "out"} == {
        k: v for k, v in summaries[1].items() if k != "out"
    }


def test_cli_text_json_jsonl_and_manifest_file(tmp_path: Path) -> None:
    """The report names the packs; with --jsonl the envelopes are written after emit (unstreamed): the same
    bytes; --manifest FILE is the directory's manifest; --layout packed alone is refused."""
    base = ["emit", "fixtures/polyglot.pb", "--rebase-time", "--now", NOW, "--errors", "dedup"]
    code, text = run(*base, "--out", str(tmp_path / "a"), "--layout", "packed")
    assert (
        code == 0 and f"wrote {tmp_path / 'a'}/ (<service>.envelopes, manifest.jsonl, summary.json)" in text
    )
    code, text = run(*base, "-q", "--out", str(tmp_path / "b"), "--layout", "packed", "--format", "json")
    assert code == 0 and json.loads(text)["output"]["layout"] == "packed"
    code, _ = run(
        *base, "-q", "--out", str(tmp_path / "c"), "--layout", "packed", "--jsonl", str(tmp_path / "e")
    )
    assert code == 0
    code, _ = run(
        *base, "-q", "--out", str(tmp_path / "d"), "--layout", "packed", "--manifest", str(tmp_path / "m")
    )
    assert code == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b") == tree(tmp_path / "c") == tree(tmp_path / "d")
    assert (tmp_path / "m").read_bytes() == (tmp_path / "d" / "manifest.jsonl").read_bytes()
    code, text = run("emit", "fixtures/polyglot.pb", "--layout", "packed")
    assert (
        code == 2
        and text == "tracegroup: error: --layout packed needs --out DIR (the directory it lays out)\n"
    )


@pytest.mark.parametrize("dump", ["fixtures/polyglot.pb", "fixtures/recorded/sdk-node-python.jsonl"])
def test_streamed_unstreamed_shuffled_and_spilled_packs_are_the_same_bytes(
    dump: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In memory (streamed and not), in any order the events come in, with only two packs open at once,
    and through 1, 4 and 16 spilled partitions: the same directory, byte for byte."""
    opts: dict[str, Any] = {
        "routes": load_routes(ROUTES),
        "rebase_time": True,
        "now": NOW_NS,
        "errors": "all",
    }
    table = tg.load([dump])
    result = emit(table, **opts)
    write_dir(result, tmp_path / "whole", "packed")
    expected = tree(tmp_path / "whole")
    w = DirWriter(tmp_path / "streamed", layout="packed")
    w.finish(emit(table, on_written=w.write, **opts))
    assert tree(tmp_path / "streamed") == expected
    written = result.events
    for seed in range(3):
        order = random.Random(seed).sample(written, len(written))
        w = DirWriter(tmp_path / f"shuffled-{seed}", layout="packed")
        for ev in order:
            w.write(ev)
        w.finish(result)
        assert tree(tmp_path / f"shuffled-{seed}") == expected
    monkeypatch.setattr(files, "MAX_OPEN", 2)
    write_dir(result, tmp_path / "few-open", "packed")
    assert tree(tmp_path / "few-open") == expected
    for partitions in (1, 4, 16):
        w = DirWriter(tmp_path / f"spilled-{partitions}", layout="packed")
        w.finish(emit_spilled([dump], budget=1, partitions=partitions, on_written=w.write, **opts))
        assert tree(tmp_path / f"spilled-{partitions}") == expected
    write_dir(result, tmp_path / "files")
    assert_same_envelopes(tmp_path / "files", tmp_path / "whole")
    by_id = {x["event_id"]: x for x in manifest(tmp_path / "whole")}
    for ev in written:
        assert envelope_bytes(ev) == cut(tmp_path / "whole", by_id[ev.event_id])


def test_cli_spilled_packed_equals_in_memory_packed(generated: Path, tmp_path: Path) -> None:
    runs = {}
    for name, extra in (("memory", []), ("spilled", ["--memory", "16MB"])):
        out = tmp_path / name
        args = [
            "emit",
            str(generated),
            "--out",
            str(out),
            "--layout",
            "packed",
            "--rebase-time",
            "--now",
            NOW,
        ]
        code, text = run(*args, "--routes", ROUTES, "-q", *extra)
        assert code == 0, text
        runs[name] = tree(out)
    assert runs["spilled"] == runs["memory"]
    assert len(runs["memory"]) > 3 and sum(map(len, runs["memory"].values())) > 10_000_000


def test_re_emit_replaces_the_other_layout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = ["emit", "fixtures/polyglot.pb", "-q", "--out", str(out), "--now", NOW, "--rebase-time"]
    assert run(*base)[0] == 0
    assert run(*base, "--layout", "packed")[0] == 0
    assert not list(out.rglob("*.envelope")) and not [p for p in out.iterdir() if p.is_dir()]
    packed = tree(out)
    assert run(*base, "--layout", "files")[0] == 0
    assert not list(out.glob("*.envelopes")) and list(out.rglob("*.envelope"))
    assert run(*base, "--layout", "packed")[0] == 0
    assert tree(out) == packed
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    code, text = run("emit", "fixtures/polyglot.pb", "-q", "--out", str(foreign), "--layout", "packed")
    assert code == 2 and "is not an earlier 'tracegroup emit' output" in text
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def journal(out: Path) -> list[tuple[str, str, str, str]]:
    lines = [json.loads(x) for x in (out / JOURNAL).read_text().splitlines()]
    return sorted((x["key"], x["service"], x["status"], x["sha256"]) for x in lines)


def test_send_packed_as_files_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both layouts of one emit sent to a fake Sentry whose project 22 fails: the same dry run, outcomes,
    not-sent list, journal keys and sha256s; then --resume delivers what was left, each event once per
    layout; Relay's normalizer accepts everything."""
    monkeypatch.setattr("tracegroup.transport.wait", lambda stop, seconds: None)
    now = str(int(time.time()))
    results = {}
    with fake_sentry({"11": "k11", "22": "k22"}) as fake:
        routes = str(routes_file(tmp_path, fake))
        args = ["emit", "fixtures/polyglot.pb", "--routes", routes, "--rebase-time", "--now", now, "-q"]
        for layout in ("files", "packed"):
            code, text = run(*args, "--out", str(tmp_path / layout), "--layout", layout)
            assert code == 0, text
        for layout in ("files", "packed"):
            out = tmp_path / layout
            fake.script["22"] = [(503, {})] * 100_000
            code, dry = run("send", str(out), "--dry-run", "--format", "json")
            assert code == 0, dry
            code, first = run("send", str(out), "--retries", "1", "--format", "json")
            assert code == 1, first
            not_sent = (out / NOT_SENT).read_text()
            after_first = journal(out)
            fake.script["22"] = []
            code, second = run("send", str(out), "--resume", "--format", "json")
            assert code == 0, second
            reports = [json.loads(x.replace(str(out), "DIR")) for x in (dry, first, second)]
            results[layout] = (*reports, not_sent, after_first)
            results[layout] += (journal(out),)
        assert fake.problems == [] and sum(len(v) for v in fake.events.values()) == 2 * 204
        assert set(fake.accepted.values()) == {2}  # each event once per layout
    assert results["files"] == results["packed"]
    assert {k for k, _, _, _ in results["packed"][-1]} == {
        p.relative_to(tmp_path / "files").as_posix() for p in (tmp_path / "files").rglob("*.envelope")
    }


def test_emit_send_packed(tmp_path: Path) -> None:
    with fake_sentry({"11": "k11", "22": "k22"}) as fake:
        out = tmp_path / "out"
        routes = str(routes_file(tmp_path, fake))
        args = ["emit", "fixtures/polyglot.pb", "--routes", routes, "--rebase-time", "-q"]
        code, text = run(*args, "--out", str(out), "--layout", "packed", "--send")
        assert code == 0, text
        assert sum(len(v) for v in fake.events.values()) == 204 and fake.problems == []
        assert run("send", str(out), "--resume")[0] == 0  # nothing left


@pytest.fixture()
def packed(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    args = ["emit", "fixtures/polyglot.pb", "-q", "--out", str(out), "--layout", "packed", "--rebase-time"]
    code, text = run(*args)
    assert code == 0, text
    return out


def damaged(out: Path) -> tuple[int, str]:
    code, text = run("send", str(out), "--dry-run")
    assert code == 2 and text.count("\n") == 1 and text.startswith("tracegroup: error: "), text
    return code, text


def test_truncated_pack_is_one_line(packed: Path) -> None:
    pack = packed / "reports.envelopes"
    data = pack.read_bytes()
    pack.write_bytes(data[:-10])
    _, text = damaged(packed)
    assert f"{pack}: truncated: envelope " in text and f"the file has {len(data) - 10:,}" in text


def test_offset_past_the_end_is_one_line(packed: Path) -> None:
    lines = manifest(packed)
    line = next(x for x in lines if x["file"])
    line["offset"] = 10**9
    (packed / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    _, text = damaged(packed)
    assert f"{packed / line['file']}: truncated: envelope {line['event_id']}" in text


def test_pack_header_not_json_is_one_line(packed: Path) -> None:
    pack = packed / "mailer.envelopes"
    data = pack.read_bytes()
    pack.write_bytes(b"<" + data[1:])
    _, text = damaged(packed)
    assert (
        f"{pack}: envelope " in text and "at offset 0: not an envelope (its header line is not JSON)" in text
    )


def test_slice_of_another_envelope_is_one_line(packed: Path) -> None:
    lines = manifest(packed)
    a, b = [x for x in lines if x["file"] == "inventory.envelopes"][:2]
    a["offset"], a["length"] = b["offset"], b["length"]
    (packed / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    _, text = damaged(packed)
    assert "holds another envelope than manifest.jsonl says" in text


def test_bad_manifest_is_one_line(packed: Path) -> None:
    text = (packed / "manifest.jsonl").read_text()
    (packed / "manifest.jsonl").write_text(
        text.replace('"file":"inventory.envelopes"', '"file":"../x.envelopes"', 1)
    )
    _, out = damaged(packed)
    assert "manifest.jsonl: line " in out and "is not a manifest line of a packed envelope" in out
    (packed / "manifest.jsonl").unlink()
    _, out = damaged(packed)
    assert "manifest.jsonl: missing" in out


def test_resume_refuses_a_changed_pack(packed: Path) -> None:
    code, _ = run("send", str(packed))  # emitted without routes: nothing has a DSN, all is rejected
    assert code == 1
    lines = manifest(packed)
    line = next(x for x in lines if x["file"])
    pack = packed / line["file"]
    data = bytearray(pack.read_bytes())
    i = line["offset"] + line["length"] - 3
    data[i] = ord("x") if data[i] != ord("x") else ord("y")
    pack.write_bytes(bytes(data))
    code, text = run("send", str(packed), "--resume")
    assert (
        code == 2 and f"{line['file'].removesuffix('.envelopes')}/{line['event_id']}.envelope changed" in text
    )


def test_send_order_and_keys_are_the_files_layout_ones(tmp_path: Path) -> None:
    """Services whose names sort differently as strings and as paths ("a", "a-b", "a.b"): both layouts give
    the same requests in the same order, the files layout's path order, keyed by its file names."""
    from types import SimpleNamespace

    from tracegroup.send import envelope_requests
    from tracegroup.sentry.build import EmittedEvent

    events = [
        EmittedEvent("transaction", f"{k:032x}", service, "ab" * 16, f"{k:016x}", 1, payload=b'{"k":%d}' % k)
        for k, service in enumerate(["a-b", "a", "a.b", "a", "a-b", "b", "a.b"])
    ]
    for ev in events:
        ev.headers = {"event_id": ev.event_id, "dsn": "http://key@127.0.0.1:9/1"}
    writers = {layout: DirWriter(tmp_path / layout, layout) for layout in ("files", "packed")}
    for w in writers.values():
        for ev in events:
            w.write(ev)
        w.close()
        files.write_manifest(SimpleNamespace(records=events), w.base / "manifest.jsonl", w)
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    got = {layout: envelope_requests(tmp_path / layout, at)[0] for layout in writers}
    assert [(r.key, r.service, r.body, r.sha256) for r in got["files"]] == [
        (r.key, r.service, r.body, r.sha256) for r in got["packed"]
    ]
    assert [r.key for r in got["files"]] == [
        p.relative_to(tmp_path / "files").as_posix() for p in sorted((tmp_path / "files").rglob("*.envelope"))
    ]
    assert [r.key.split("/")[0] for r in got["packed"]][:4] == ["a", "a", "a-b", "a-b"]
