"""Binary inputs: bare OTLP bodies, file exporter streams (plain, per-message zstd, whole-file zstd),
gzip copies, directories of rotated files, truncated and corrupt streams, bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import zstandard
from builders import S, batch
from click.testing import CliRunner

from tracegroup.cli import main
from tracegroup.load import LoadError, load

B1 = batch(S(1, service="web", kind="SERVER"), S(2, 1, "web"), S(3, 2, "db", kind="SERVER", trace=1))
B2 = batch(S(4, 3, "db"), S(5, None, "worker", trace=2, kind="CONSUMER"))
B3 = batch(S(6, 5, "worker", trace=2))


def framed(*messages: bytes, per_message_zstd: bool = False) -> bytes:
    out = b""
    for m in messages:
        if per_message_zstd:
            m = zstandard.ZstdCompressor().compress(m)
        out += struct.pack(">I", len(m)) + m
    return out


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def ids(t: object) -> list[int]:
    return [int(x) for x in t.span_id]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (framed(B1, B2, B3), "otlp-proto-stream"),
        (framed(B1, B2, B3, per_message_zstd=True), "otlp-proto-stream+zstd-messages"),
        (
            zstandard.ZstdCompressor(write_content_size=False).compress(framed(B1, B2, B3)),
            "zstd+otlp-proto-stream",
        ),
        (gzip.compress(framed(B1, B2, B3)), "gzip+otlp-proto-stream"),
        (gzip.compress(framed(B1, B2, B3, per_message_zstd=True)), "gzip+otlp-proto-stream+zstd-messages"),
    ],
)
def test_streams_keep_each_message_as_a_batch(tmp_path: Path, data: bytes, fmt: str) -> None:
    t = load([write(tmp_path, "dump.bin", data)])
    assert t.sources[0].format == fmt
    assert len(t.batches) == 3
    assert ids(t) == [1, 2, 3, 4, 5, 6]
    assert t.batch.tolist() == [0, 0, 0, 1, 1, 2]
    assert t.services == ["web", "db", "worker"]
    assert [t.services[c] for c in t.service] == ["web", "web", "db", "db", "worker", "worker"]
    assert t.n_traces == 2 and t.trace_code.tolist() == [0, 0, 0, 0, 1, 1]
    assert t.kind.tolist() == [2, 1, 2, 1, 5, 1]
    assert t.parent_id.tolist() == [0, 1, 2, 3, 0, 5]


def test_bare_request_body_and_its_gzip_copy(tmp_path: Path) -> None:
    for name, data in (("body.pb", B1), ("body.gz", gzip.compress(B1))):
        t = load([write(tmp_path, name, data)])
        assert len(t.batches) == 1 and ids(t) == [1, 2, 3]
    assert load([tmp_path / "body.pb"]).sources[0].format == "otlp-proto"


def test_zstd_frames_without_content_size(tmp_path: Path) -> None:
    c = zstandard.ZstdCompressor(write_content_size=False)
    t = load(
        [write(tmp_path, "d", b"".join(struct.pack(">I", len(x)) + x for x in map(c.compress, (B1, B2))))]
    )
    assert ids(t) == [1, 2, 3, 4, 5]


def test_directory_of_rotated_files_loads_in_name_order(tmp_path: Path) -> None:
    d = tmp_path / "rotated"
    d.mkdir()
    write(d, "traces.pb", framed(B3))
    write(d, "traces-2024-01-01T00-00-00.000.pb", framed(B1, B2))
    write(d, ".hidden", b"garbage")
    t = load([d])
    assert [Path(s.path).name for s in t.sources] == ["traces-2024-01-01T00-00-00.000.pb", "traces.pb"]
    assert ids(t) == [1, 2, 3, 4, 5, 6] and len(t.batches) == 3


def test_truncated_stream_keeps_complete_messages(tmp_path: Path) -> None:
    data = framed(B1, B2, B3)
    t = load([write(tmp_path, "cut.pb", data[:-5])])
    assert ids(t) == [1, 2, 3, 4, 5]
    assert "message 3 is truncated" in t.sources[0].warnings[0]


def test_corrupt_message_in_the_middle_keeps_what_came_before(tmp_path: Path) -> None:
    bad = b"\xff\xff\xff\xff"
    t = load([write(tmp_path, "c.pb", framed(B1, bad, B3))])
    assert ids(t) == [1, 2, 3]
    assert "message 2" in t.sources[0].warnings[0]


def test_truncated_gzip_keeps_what_it_held(tmp_path: Path) -> None:
    data = gzip.compress(framed(B1, B2, B3) * 50)
    t = load([write(tmp_path, "g.gz", data[: len(data) * 3 // 4])])
    assert len(t) > 0 and any("truncated" in w for w in t.sources[0].warnings)


def test_empty_ids_are_reported_not_fatal(tmp_path: Path) -> None:
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    td = TracesData.FromString(B1)
    td.resource_spans[0].scope_spans[0].spans[1].span_id = b""
    td.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01\x02"
    t = load([write(tmp_path, "e.pb", td.SerializeToString())])
    assert len(t) == 3
    assert t.bad_ids.tolist() == [True, True, False]
    from tracegroup.tree import build

    assert build(t).anomalies["empty_id"].tolist() == [0, 1]


BAD_INPUTS = {
    "empty.pb": (b"", "file is empty"),
    "random.bin": (
        bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
        "not a trace dump",
    ),
    "notes.json": (b'{"hello": "world"}', "empty.pb"),
    "list.json": (b"[1, 2, 3]", ""),
    "broken.json": (b'{"resourceSpans": [', ""),
    "empty.gz": (gzip.compress(b""), "holds no data"),
    "bad.zst": (b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2(tmp_path: Path, name: str) -> None:
    data, expect = BAD_INPUTS[name]
    path = write(tmp_path, name, data)
    with pytest.raises(LoadError) as err:
        load([path])
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    if expect and expect != "empty.pb":
        assert expect in message
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and str(path) in result.output
    assert "Traceback" not in result.output


def test_missing_file_and_keep_going(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", str(tmp_path / "nope.pb")])
    assert result.exit_code == 2 and "no such file" in result.output
    good = write(tmp_path, "good.pb", framed(B1))
    bad = write(tmp_path, "bad.pb", b"\x00\x01garbage")
    t = load([good, bad], keep_going=True)
    assert ids(t) == [1, 2, 3] and t.sources[1].format == "unreadable"
    result = CliRunner().invoke(main, ["info", str(good), str(bad)])
    assert result.exit_code == 2 and "bad.pb" in result.output


def test_service_attribute_option(tmp_path: Path) -> None:
    t = load([write(tmp_path, "a.pb", framed(B1))], service_attribute="team")
    assert t.services == [""]


def test_bare_protobuf_whose_length_byte_is_a_brace(tmp_path: Path) -> None:
    # 0x0a (a newline) then a length of 123 (0x7b, "{"): must not be mistaken for JSON.
    for size in range(1, 120):
        data = batch(S(1, None, "svc", name="x" * size))
        if data[1:2] == b"{":
            t = load([write(tmp_path, "b.pb", data)])
            assert len(t) == 1 and t.sources[0].format == "otlp-proto"
            break
    else:  # pragma: no cover
        pytest.fail("no name length made the first length byte a brace")


def test_file_exporter_json_with_per_message_zstd(tmp_path: Path) -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    def as_json(m: bytes) -> bytes:
        d = json_format.MessageToDict(TracesData.FromString(m))
        for rs in d["resourceSpans"]:  # OTLP/JSON wants hex ids, not protobuf's base64
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    for k in ("traceId", "spanId", "parentSpanId"):
                        if k in sp:
                            sp[k] = __import__("base64").b64decode(sp[k]).hex()
        return json.dumps(d).encode()

    import json

    t = load([write(tmp_path, "j.zst", framed(as_json(B1), as_json(B2), per_message_zstd=True))])
    assert t.sources[0].format == "otlp-json-stream+zstd-messages"
    assert ids(t) == [1, 2, 3, 4, 5] and len(t.batches) == 2


def test_load_accepts_one_path_or_many(tmp_path: Path) -> None:
    p = write(tmp_path, "one.pb", framed(B1))
    assert ids(load(p)) == ids(load(str(p))) == ids(load([p])) == [1, 2, 3]


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def test_pre_0_19_binary_instrumentation_library_spans(tmp_path: Path) -> None:
    """OTLP before 0.19 kept spans in ResourceSpans field 1000 (instrumentation_library_spans)."""
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, TracesData

    new = TracesData.FromString(B1)
    rs_new = new.resource_spans[0]
    ss: ScopeSpans = rs_new.scope_spans[0]
    old_rs = ResourceSpans()
    old_rs.resource.CopyFrom(rs_new.resource)
    body = ss.SerializeToString()
    rs_bytes = old_rs.SerializeToString() + _varint((1000 << 3) | 2) + _varint(len(body)) + body
    old = _varint((1 << 3) | 2) + _varint(len(rs_bytes)) + rs_bytes
    t = load([write(tmp_path, "old.pb", framed(old))])
    assert ids(t) == [1, 2] and t.services == ["web"]
    assert t.sources[0].notes == {"legacy_instrumentation_library_spans": 1}
    assert t.span(1).name == "span-2"


@pytest.mark.parametrize(
    "dump", ["fixtures/polyglot.pb", "fixtures/polyglot-routed", "fixtures/external/yelp.json"]
)
def test_loading_start_times_alone_gives_the_same_columns(dump: str) -> None:
    """``warm="start"`` (info's clock-skew check) reads the start times in the loader's pass; flags and end
    times, if asked for later, come from the table's own pass and equal a full warm load's."""
    alone, full = load([dump], warm="start"), load([dump], warm=True)
    assert np.array_equal(alone.start_ns, full.start_ns) and "_warm" not in alone.__dict__
    assert np.array_equal(alone.flags, full.flags) and np.array_equal(alone.end_ns, full.end_ns)
    assert np.array_equal(alone.start_ns, load([dump]).start_ns)
