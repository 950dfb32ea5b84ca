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
