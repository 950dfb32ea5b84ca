"""``tracegroup spans`` files: the column-by-column writer (SpanColumns) writes exactly what the pandas
frames of the same rows give (CSV and JSON Lines byte for byte, Parquet equal tables with the same
pandas metadata), however the rows are cut into chunks; and the detail decoding matches a plain decode of
every span with the OTLP classes."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

import tracegroup as tg
from tracegroup.frames import decode_details, span_columns, spans_frames
from tracegroup.model import STATUS_NAMES
from tracegroup.otlp import attributes
from tracegroup.render.tables import write_frames

pq = pytest.importorskip("pyarrow.parquet")

DUMPS = [
    "fixtures/polyglot.pb",  # events, links, errors, many services
    "fixtures/recorded/sdk-node-python.pb",  # real SDKs
    "fixtures/collector/batch-small/collector-batch-small.pb.zst",  # real collector, many messages
    "fixtures/external/traces-1695947455229.json",  # Jaeger
    "tests/data/zipkin-v1-frontend-backend.json",  # Zipkin v1: shared spans split
]


def _written(frames: object, fmt: str, path: Path) -> bytes | object:
    write_frames(frames, fmt, str(path))  # type: ignore[arg-type]
    return pq.read_table(path) if fmt == "parquet" else path.read_bytes()


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_columns_write_what_the_frames_write(tmp_path: Path, dump: str, fmt: str) -> None:
    table = tg.load(dump, warm=True)
    an = tg.analyze(table)
    for details, analysis, chunk in ((True, an, 50), (True, None, 1 << 20), (False, an, 50)):
        want = _written(spans_frames(table, analysis, details=details, chunk=chunk), fmt, tmp_path / "a")
        got = _written(span_columns(table, analysis, details=details, chunk=chunk), fmt, tmp_path / "b")
        whole = _written(span_columns(table, analysis, details=details), fmt, tmp_path / "c")
        if fmt == "parquet":
            assert got.num_rows == len(table)
            for other in (got, whole):
                assert other.equals(want) and other.schema.equals(want.schema, check_metadata=True)
        else:
            assert got == want and whole == want and len(got) > 0


def test_details_match_a_plain_decode_of_every_span() -> None:
    table = tg.load("fixtures/polyglot.pb")
    want: dict[str, list[object]] = {k: [] for k in decode_details(table, range(0))}
    for batch in table.batches:
        for rs in TracesData.FromString(batch.raw).resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    want["name"].append(sp.name)
                    want["status_code"].append(STATUS_NAMES[sp.status.code])
                    want["status_message"].append(sp.status.message)
                    want["scope_name"].append(ss.scope.name)
                    want["scope_version"].append(ss.scope.version)
                    want["attributes"].append(attributes(sp.attributes))
                    want["resource_attributes"].append(attributes(rs.resource.attributes))
                    want["events"].append(
                        [
                            {
                                "name": e.name,
                                "time_ns": e.time_unix_nano,
                                "attributes": attributes(e.attributes),
                            }
                            for e in sp.events
                        ]
                    )
                    want["links"].append(
                        [
                            {
                                "trace_id": ln.trace_id.hex(),
                                "span_id": ln.span_id.hex(),
                                "flags": ln.flags,
                                "attributes": attributes(ln.attributes),
                            }
                            for ln in sp.links
                        ]
                    )
    got = decode_details(table)
    assert got == want
    assert any(got["events"]) and "ERROR" in got["status_code"]
    # chunks of batches decode the same rows
    halves = [decode_details(table, range(0, 3)), decode_details(table, range(3, len(table.batches)))]
    assert {k: halves[0][k] + halves[1][k] for k in got} == got


def test_text_columns_built_in_place_equal_python_text() -> None:
    import numpy as np
    import pyarrow as pa

    from tracegroup.render.tables import _affix, _ints, _rfc3339

    rng = np.random.default_rng(7)
    for ints in (
        rng.integers(10**18, 2 * 10**18, 1000),  # one length: digit by digit
        rng.integers(0, 10**12, 1000),  # lengths differ: Arrow
        rng.integers(-5, 3, 1000),  # few values, negative ones
        np.array([0, 1, 9, 10, 2**63 - 1] * 3),
    ):
        assert _ints(ints, "<", ">").to_pylist() == [f"<{v}>" for v in ints.tolist()]
    ids = ["", "00ff", "abcd", "", "0123"]
    for values in (ids, ids[1:3], ["", ""], ["x", "yz"], ["é", "ab"]):
        got = _affix(pa.array(values, type=pa.large_string()), '"k":"', '"')
        assert got.to_pylist() == [f'"k":"{v}"' for v in values]
    ns = np.concatenate([rng.integers(0, 2**63 - 1, 1000), [0, 1, 86_400 * 10**9 - 1, -1]]).astype(np.int64)
    want = np.datetime_as_string(ns.view("M8[ns]"), unit="ns", timezone="UTC").astype("S30")
    assert _rfc3339(ns.view("M8[ns]")).tobytes() == want.tobytes()


def test_a_dump_without_spans_writes_what_it_always_wrote(tmp_path: Path) -> None:
    from tracegroup.cli import main

    dump = tmp_path / "empty.json"
    dump.write_text('{"resourceSpans": []}')
    out = tmp_path / "spans.parquet"
    with pytest.raises(SystemExit) as done:
        main(["spans", str(dump), "--format", "parquet", "-o", str(out), "-q"])
    assert done.value.code == 0
    table = tg.load(str(dump))
    want = _written(spans_frames(table, tg.analyze(table)), "parquet", tmp_path / "want")
    got = pq.read_table(out)
    assert got.num_rows == 0 and got.schema.equals(want.schema, check_metadata=True)
