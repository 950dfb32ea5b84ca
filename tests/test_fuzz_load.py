"""Byte-mutation fuzzing of every loader family over real fixtures (issue 18).

Each target takes a real dump (fixtures/**, tests/data), applies a few random mutations of the kinds real
damage takes (flipped and overwritten bytes, zero-filled and cut ranges, duplicated and inserted slices,
invalid UTF-8) and loads it. Asserted: nothing but a one-line ``LoadError`` escapes; what loads is
conserved (table rows = spans per source = spans per batch, every batch re-decodes to its span count, the
details of every span decode, held >= loaded); the tracemalloc peak stays under a small multiple of the
input (decompressed) size plus a constant.

Brief in the normal suite (``FUZZ_EXAMPLES`` examples per target, default 25); longer on demand:
``TRACEGROUP_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_load.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
import zlib
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load import LoadError, load

ROOT = Path(__file__).resolve().parent.parent
FUZZ_EXAMPLES = int(os.environ.get("TRACEGROUP_FUZZ_EXAMPLES", "25"))


def _small_jaeger() -> bytes:
    whole = json.loads((ROOT / "fixtures/external/traces-1695947455229.json").read_text())
    return json.dumps({"data": whole["data"][:1]}).encode()


def _small_zipkin() -> bytes:
    records = json.loads((ROOT / "fixtures/external/smartthings-mobile-web-install.json").read_text())
    flat = [r for t in records for r in t] if records and isinstance(records[0], list) else records
    return json.dumps(flat[:60]).encode()


#: loader family -> the real dump its mutations start from
SEEDS: dict[str, bytes] = {
    "proto-stream": (ROOT / "fixtures/recorded/sdk-python.pb").read_bytes(),
    "proto-body": (ROOT / "fixtures/polyglot-routed/payments.pb").read_bytes(),
    "zstd-messages": (ROOT / "fixtures/collector/batch-small/collector-batch-small.pb.zst").read_bytes(),
    "gzip": gzip.compress((ROOT / "fixtures/recorded/sdk-python.pb").read_bytes()),
    "otlp-jsonl": (ROOT / "fixtures/recorded/sdk-python.jsonl").read_bytes(),
    "otlp-json": (ROOT / "fixtures/external/trace.json").read_bytes(),
    "jaeger-v3": (ROOT / "fixtures/external/getTrace-response.json").read_bytes(),
    "jaeger": _small_jaeger(),
    "zipkin": (ROOT / "fixtures/external/yelp.json").read_bytes(),
    "zipkin-shared": _small_zipkin(),
    "zipkin-v1": (Path(__file__).parent / "data/zipkin-v1-frontend-backend.json").read_bytes(),
}


def _inflated(data: bytes) -> int:
    """Size of the seed once decompressed (the memory bound's base)."""
    if data[:2] == b"\x1f\x8b":
        return len(zlib.decompressobj(wbits=31).decompress(data))
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return len(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    return len(data)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        at = draw(st.integers(0, max(n - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "zero", "cut", "truncate", "dup", "insert", "utf8"]))
        size = draw(st.integers(1, 64))
        if op == "flip" and n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            data[at] = draw(st.integers(0, 255))
        elif op == "zero":
            data[at : at + size] = bytes(min(size, n - at) if draw(st.booleans()) else size * 64)
        elif op == "cut":
            del data[at : at + size]
        elif op == "truncate":
            del data[at:]
        elif op == "dup":
            data[at:at] = data[at : at + size]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=size))
        elif op == "utf8" and n:
            data[at] = draw(st.sampled_from([0xFF, 0xC3, 0xE2, 0x80]))
    return bytes(data)


def check_one(tmp: Path, data: bytes, base: int) -> None:
    path = tmp / "dump.bin"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        try:
            t = load([path])
        except LoadError as err:
            message = str(err)
            assert "\n" not in message and message.startswith(str(path)), message
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * max(len(data), base) + (32 << 20), (peak, len(data))
    (source,) = t.sources
    assert len(t) == source.spans == sum(b.spans for b in t.batches)
    assert source.batches == len(t.batches) <= source.messages_held
    assert source.spans <= source.spans_held and source.bytes_skipped >= 0
    for b in t.batches:
        td = TracesData.FromString(b.raw)
        assert sum(len(ss.spans) for rs in td.resource_spans for ss in rs.scope_spans) == b.spans
    assert len(t.names(list(range(len(t))))) == len(t)


@pytest.mark.parametrize("family", sorted(SEEDS))
def test_fuzz_loader(family: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    seed = SEEDS[family]
    base = _inflated(seed)
    tmp = tmp_path_factory.mktemp(family)
    check_one(tmp, seed, base)

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=FUZZ_EXAMPLES <= 25,  # the brief run is reproducible; long runs explore
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(mutated(seed))
    def run(data: bytes) -> None:
        check_one(tmp, data, base)

    run()
