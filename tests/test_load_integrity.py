"""Input integrity (issue 18): non-UTF-8 strings, zero-filled tails, memory exhaustion, odd paths and file
types, held-versus-loaded accounting, and ``check --update`` refusing a dump that loaded with warnings.
Inputs are real recorded dumps (fixtures/recorded) damaged the way real files get damaged."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.check import check_fixture
from tracegroup.load import LoadError, LoadMemoryError, expand_paths, load
from tracegroup.load import lenient as lenient_mod
from tracegroup.load.lenient import count_spans, parse_message

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "fixtures" / "recorded"


def frames(data: bytes) -> list[bytes]:
    """The messages of a file exporter stream."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def framed(*messages: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(m)) + m for m in messages)


STREAM = (RECORDED / "sdk-python.pb").read_bytes()
MESSAGES = frames(STREAM)
TOTAL = load([RECORDED / "sdk-python.pb"])


def with_bad_utf8(message: bytes, every: int = 1) -> tuple[bytes, int]:
    """The message with the first byte of every ``every``-th span name replaced by 0xFF (invalid UTF-8,
    same length, so framing holds); returns it and how many names were damaged."""
    td = TracesData.FromString(message)
    marks = 0
    for rs in td.resource_spans:
        for ss in rs.scope_spans:
            for k, sp in enumerate(ss.spans):
                if k % every == 0 and sp.name:
                    sp.name = "\x01" * 3 + sp.name[1:]  # a marker we can find in the bytes
                    marks += 1
    raw = td.SerializeToString().replace(b"\x01\x01\x01", b"\xff\x01\x01")
    return raw, marks


# ------------------------------------------------------------------------------------- lenient strings


def test_invalid_utf8_in_the_first_message_keeps_every_span(tmp_path: Path) -> None:
    bad, marks = with_bad_utf8(MESSAGES[0])
    path = tmp_path / "dump.pb"
    path.write_bytes(framed(bad, *MESSAGES[1:]))
    t = load([path])
    source = t.sources[0]
    assert len(t) == len(TOTAL) and len(t.batches) == len(MESSAGES)
    assert t.span_id.tolist() == TOTAL.span_id.tolist()
    assert source.notes["invalid_utf8_strings"] == marks == source.notes["invalid_utf8_spans"]
    assert any("not valid UTF-8" in w and "every span kept" in w for w in source.warnings)
    names = t.names(list(range(len(t))))
    assert sum("\ufffd" in n for n in names) == marks  # details decode from the repaired message


def test_invalid_utf8_in_every_message_and_in_a_bare_body(tmp_path: Path) -> None:
    damaged = [with_bad_utf8(m, every=3)[0] for m in MESSAGES]
    (tmp_path / "all.pb").write_bytes(framed(*damaged))
    (tmp_path / "body.pb").write_bytes(damaged[0])
    (tmp_path / "body.pb.gz").write_bytes(gzip.compress(damaged[0]))
    t = load([tmp_path / "all.pb"])
    assert len(t) == len(TOTAL) and t.sources[0].format == "otlp-proto-stream"
    for name in ("body.pb", "body.pb.gz"):
        one = load([tmp_path / name])
        assert len(one) == TOTAL.batches[0].spans and one.sources[0].notes["invalid_utf8_strings"] > 0


def test_invalid_utf8_in_resource_attributes_and_events() -> None:
    td = TracesData.FromString(MESSAGES[0])
    td.resource_spans[0].resource.attributes[0].value.string_value = "\x02svc"
    raw = td.SerializeToString().replace(b"\x02svc", b"\xc3svc")
    parsed, strings, spans = parse_message(raw)
    assert parsed is not None and (strings, spans) == (1, 0)
    assert parsed.resource_spans[0].resource.attributes[0].value.string_value == "\ufffdsvc"


def test_corrupt_message_is_not_mistaken_for_bad_utf8() -> None:
    assert parse_message(b"\x0a\xff\xff") == (None, 0, 0)
    assert parse_message(MESSAGES[0][:-7])[0] is None


def test_invalid_utf8_in_json_and_jsonl(tmp_path: Path) -> None:
    lines = (RECORDED / "sdk-python.jsonl").read_bytes()
    damaged = lines.replace(b'"name":"', b'"name":"\xff', 5)
    (tmp_path / "d.jsonl").write_bytes(damaged)
    t = load([tmp_path / "d.jsonl"])
    reference = load([RECORDED / "sdk-python.jsonl"])
    assert len(t) == len(reference)
    assert t.sources[0].notes == {"invalid_utf8_sequences": 5}
    assert "U+FFFD" in t.sources[0].warnings[0]


# ------------------------------------------------------------------------------------ zero-filled data


def test_zero_filled_tail_is_damage_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "crashed.pb"
    path.write_bytes(STREAM + bytes(1 << 20))  # a crashed writer's preallocated tail
    t = load([path])
    source = t.sources[0]
    assert len(t) == len(TOTAL) and len(t.batches) == len(MESSAGES)
    assert len(source.warnings) == 1 and "zero bytes" in source.warnings[0]
    assert source.bytes_skipped == 1 << 20 == source.notes["zero_bytes_skipped"]


def test_zero_run_in_the_middle_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "appended.pb"
    path.write_bytes(framed(*MESSAGES[:2]) + bytes(4096 + 3) + framed(*MESSAGES[2:]))
    t = load([path])
    assert t.span_id.tolist() == TOTAL.span_id.tolist()
    assert t.sources[0].bytes_skipped == 4099  # not a whole number of empty frames: found the next one


def test_one_empty_message_is_still_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "empty-batch.pb"
    path.write_bytes(framed(MESSAGES[0], b"", MESSAGES[1]))
    t = load([path])
    assert len(t.batches) == 3 and not t.sources[0].warnings


@pytest.mark.parametrize(
    "data", [bytes(16 << 20), gzip.compress(bytes(16 << 20)), bytes(10), bytes(4096) + b"\x05\x00"]
)
def test_zero_filled_file_is_one_error_with_bounded_memory(tmp_path: Path, data: bytes) -> None:
    import tracemalloc

    path = tmp_path / "zeros.bin"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(LoadError) as err:
            load([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert peak < 3 * max(len(data), 16 << 20 if data[:2] == b"\x1f\x8b" else 0) + (8 << 20)


# ----------------------------------------------------------------------------------- memory exhaustion


def test_arena_alloc_failure_is_a_memory_error_not_corrupt_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.protobuf.message import DecodeError

    class Exhausted:
        @staticmethod
        def FromString(payload: bytes) -> None:  # noqa: N802 (protobuf's name)
            raise DecodeError("Error parsing message with type 'TracesData': Arena alloc failed")

    monkeypatch.setattr(lenient_mod, "TracesData", Exhausted)
    path = tmp_path / "big.pb"
    path.write_bytes(STREAM)
    with pytest.raises(LoadMemoryError, match="out of memory.*more memory") as err:
        load([path], keep_going=True)  # not skipped like a bad file
    assert "corrupt" not in str(err.value) and "\n" not in str(err.value)
    from click.testing import CliRunner

    from tracegroup.cli import main

    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2 and "out of memory" in result.output and "Traceback" not in result.output


# ---------------------------------------------------------------------------------- paths, file types


def test_directory_paths_with_dot_dot_and_dot_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / ".cache" / "dumps"
    target.mkdir(parents=True)
    shutil.copy(RECORDED / "sdk-python.pb", target / "a.pb")
    (target / ".partial.pb").write_bytes(b"garbage")
    (target / ".tmp").mkdir()
    (target / ".tmp" / "b.pb").write_bytes(b"garbage")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for arg in ("../.cache/dumps", str(target), "../.cache/../.cache/dumps/"):
        t = load([arg])
        assert len(t) == len(TOTAL) and [Path(s.path).name for s in t.sources] == ["a.pb"]


def test_unreadable_subdirectory_is_an_error_or_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "dumps"
    (top / "locked").mkdir(parents=True)
    shutil.copy(RECORDED / "sdk-python.pb", top / "a.pb")
    real_walk = os.walk

    def walk(path: str, onerror: object = None, **kw: object) -> object:  # root cannot lose permissions
        for entry in real_walk(path, onerror=onerror, **kw):  # type: ignore[arg-type]
            if entry[0].endswith("locked"):
                err = PermissionError(13, "Permission denied", entry[0])
                onerror(err)  # type: ignore[operator]
                continue
            yield entry

    monkeypatch.setattr(os, "walk", walk)
    with pytest.raises(LoadError, match="locked: cannot list directory .Permission denied"):
        load([top])
    t = load([top], keep_going=True)
    assert len(t) == len(TOTAL)
    assert t.sources[-1].format == "unreadable" and "cannot list directory" in t.sources[-1].warnings[0]


def test_fifo_and_character_device_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(LoadError, match="is a FIFO"):  # would block forever if it were opened
        load([fifo])
    with pytest.raises(LoadError, match="is a character device"):
        load(["/dev/zero"])
    shutil.copy(RECORDED / "sdk-python.pb", tmp_path / "a.pb")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.pb"]  # the FIFO under a directory is left out


# ---------------------------------------------------------------------------------- held versus loaded


def test_truncated_stream_accounts_for_the_lost_message(tmp_path: Path) -> None:
    cut = len(STREAM) - len(MESSAGES[-1]) // 2
    path = tmp_path / "cut.pb"
    path.write_bytes(STREAM[:cut])
    t = load([path])
    s = t.sources[0]
    assert (s.batches, s.messages_held) == (len(MESSAGES) - 1, len(MESSAGES))
    assert s.spans < s.spans_held <= len(TOTAL)
    assert s.bytes_skipped == cut - sum(4 + len(m) for m in MESSAGES[:-1])
    info = s.as_dict()
    assert {"messages_held", "spans_held", "bytes_skipped"} <= set(info)


def test_bad_message_accounts_for_every_message_after_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.pb"
    path.write_bytes(framed(MESSAGES[0], b"\xff\xff\xff\xff", *MESSAGES[1:]))
    s = load([path]).sources[0]
    assert (s.batches, s.messages_held) == (1, len(MESSAGES) + 1)
    assert s.spans_held == len(TOTAL)  # the spans after the bad message are counted, not loaded
    assert "not read" in s.warnings[0]


def test_clean_dumps_hold_what_they_loaded() -> None:
    for file in sorted(RECORDED.iterdir()):
        s = load([file]).sources[0]
        assert (s.messages_held, s.spans_held, s.bytes_skipped) == (s.batches, s.spans, 0), file


def test_count_spans_is_a_lower_bound_on_damaged_messages() -> None:
    message = MESSAGES[0]
    n = TracesData.FromString(message).resource_spans[0].scope_spans[0].spans
    assert count_spans(message) == sum(
        len(ss.spans) for rs in TracesData.FromString(message).resource_spans for ss in rs.scope_spans
    )
    assert 0 < count_spans(message[: len(message) // 2]) <= count_spans(message) and len(n)
    assert count_spans(b"\xff" * 10) == 0


# ------------------------------------------------------------------------------------- check --update


def test_check_update_refuses_a_dump_with_load_warnings(tmp_path: Path) -> None:
    dump = tmp_path / "crashed.pb"
    dump.write_bytes(STREAM + bytes(64))
    expected = tmp_path / "expected"
    res = check_fixture(dump, expected, update=True)
    assert res.status == "error" and "--accept-warnings" in res.message and res.warnings
    assert not expected.exists()
    res = check_fixture(dump, expected, update=True, accept_warnings=True)
    assert res.status == "created" and res.warnings
    golden = (expected / "crashed.pb.golden.jsonl").read_text().splitlines()
    assert json.loads(golden[0])["notes"] == {"zero_bytes_skipped": 64}
    res = check_fixture(dump, expected)  # comparing is allowed, and says what the loader noticed
    assert res.status == "ok" and "zero bytes" in res.warnings[0]
