"""``tracegroup capture`` against real senders: the OpenTelemetry Python SDK's OTLP/HTTP and OTLP/gRPC
exporters, raw HTTP requests for every error answer, a capture process stopped by SIGTERM or by a file
size limit, and (where it is built) the real collector exporting one pipeline both to its file exporter
and, over otlphttp, to a capture.

Every comparison is against what the sender itself produced: the SDK's batches are recorded by a tee on
the same BatchSpanProcessor and encoded with the SDK's own encoder, so the capture must hold exactly
those bytes, message for message, and the same spans.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracegroup as tg
import tracegroup.capture as capture_mod
from tracegroup.capture import Capture, CaptureOptions
from tracegroup.cli import main
from tracegroup.info import info
from tracegroup.load.sidecar import sidecar_path
from tracegroup.otlp_out import to_json
from tracegroup.tree import build

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------ helpers


class Tee(SpanExporter):
    """The SDK's batches, kept in an InMemorySpanExporter (with each batch's bounds), then exported."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.memory = InMemorySpanExporter()
        self.bounds: list[tuple[int, int]] = []
        self.exporter = exporter
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        start = len(self.memory.get_finished_spans())
        self.memory.export(spans)
        self.bounds.append((start, start + len(spans)))
        result = self.exporter.export(spans)
        self.results.append(result)
        return result

    def batches(self) -> list[tuple[ReadableSpan, ...]]:
        spans = self.memory.get_finished_spans()
        return [tuple(spans[a:b]) for a, b in self.bounds]

    def shutdown(self) -> None:
        self.exporter.shutdown()


def make_traffic(exporter: SpanExporter, service: str, traces: int = 30, fanout: int = 12) -> Tee:
    """Real SDK spans (nested, with attributes and events) through a BatchSpanProcessor into ``exporter``."""
    tee = Tee(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment": "test"}))
    provider.add_span_processor(BatchSpanProcessor(tee, max_export_batch_size=64, schedule_delay_millis=30))
    tracer = provider.get_tracer("tests.capture", "1.0")
    for t in range(traces):
        with tracer.start_as_current_span(f"GET /orders/{t}", attributes={"http.route": "/orders/<id>"}):
            for k in range(fanout):
                with tracer.start_as_current_span(f"db query {k}") as span:
                    span.add_event("row", {"n": k})
                    span.set_attribute("db.statement", "SELECT ✓ FROM orders")
        if t % 7 == 0:
            time.sleep(0.05)  # let the schedule delay cut a few short batches too
    provider.shutdown()
    return tee


@pytest.fixture
def cap(tmp_path: Path) -> Iterator[Capture]:
    with Capture(CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0", grpc="127.0.0.1:0")) as c:
        yield c


def url(c: Capture) -> str:
    host, port = c.http_address  # type: ignore[misc]
    return f"http://{host}:{port}/v1/traces"


def post(
    c: Capture, body: bytes, ctype: str = "application/x-protobuf", path: str = "/v1/traces", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = c.http_address  # type: ignore[misc]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": ctype, **headers})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def request_body(spans: int = 3, service: str = "svc") -> bytes:
    td = TracesData()
    rs = td.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    for k in range(spans):
        sp = ss.spans.add()
        sp.trace_id, sp.span_id, sp.name = b"\x01" * 16, (k + 1).to_bytes(8, "big"), f"span {k}"
        sp.start_time_unix_nano, sp.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_000_100_000_000
    return td.SerializeToString()


def captured(c: Capture) -> tg.SpanTable:
    return tg.load([c.options.out])


def assert_equal_to_sdk(table: tg.SpanTable, tee: Tee) -> None:
    """Message for message the SDK's own encoding of each batch; span for span its ids and names."""
    batches = tee.batches()
    assert all(r == SpanExportResult.SUCCESS for r in tee.results)
    assert len(table.batches) == len(batches) > 3
    for b, spans in zip(table.batches, batches, strict=True):
        assert bytes(b.raw) == encode_spans(spans).SerializeToString()
    sdk = [s for batch in batches for s in batch]
    assert len(table) == len(sdk)
    for row, span in enumerate(sdk):
        ctx = span.get_span_context()
        assert table.trace_hex[int(table.trace_code[row])] == f"{ctx.trace_id:032x}"
        assert int(table.span_id[row]) == ctx.span_id
        assert int(table.parent_id[row]) == (span.parent.span_id if span.parent else 0)
        assert table.span(row).name == span.name


# --------------------------------------------------------------------------------- real SDK senders


def test_sdk_http_exporter_capture_equals_what_it_exported(cap: Capture) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    plain = make_traffic(OTLPSpanExporter(endpoint=url(cap)), "http-plain")
    zipped = make_traffic(OTLPSpanExporter(endpoint=url(cap), compression=Compression.Gzip), "http-gzip")
    stats = cap.close()
    table = captured(cap)
    assert stats.transports == {"http": len(plain.bounds) + len(zipped.bounds)} and not stats.refused
    first = len(plain.bounds)
    plain_part = [b for b in table.batches[:first]]
    assert [bytes(b.raw) for b in plain_part] == [
        encode_spans(s).SerializeToString() for s in plain.batches()
    ]
    assert [bytes(b.raw) for b in table.batches[first:]] == [
        encode_spans(s).SerializeToString() for s in zipped.batches()
    ]
    assert len(table) == sum(len(s) for s in plain.batches() + zipped.batches()) == stats.spans
    lines = [json.loads(x) for x in sidecar_path(Path(stats.files[0])).read_text().splitlines()[1:]]
    assert [x["encoding"] for x in lines] == [None] * first + ["gzip"] * len(zipped.bounds)
    assert {x["sender"].split("/")[0] for x in lines} == {"OTel-OTLP-Exporter-Python"}


def test_sdk_http_exporter_span_for_span(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    with Capture(CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0")) as c:
        tee = make_traffic(OTLPSpanExporter(endpoint=url(c)), "storefront")
    assert_equal_to_sdk(captured(c), tee)


def test_sdk_grpc_exporter_capture_equals_what_it_exported(cap: Capture) -> None:
    from grpc import Compression
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    host, port = cap.grpc_address  # type: ignore[misc]
    plain = make_traffic(OTLPSpanExporter(endpoint=f"{host}:{port}", insecure=True), "grpc-plain")
    zipped = make_traffic(
        OTLPSpanExporter(endpoint=f"{host}:{port}", insecure=True, compression=Compression.Gzip), "grpc-gzip"
    )
    stats = cap.close()
    table = captured(cap)
    assert stats.transports == {"grpc": len(plain.bounds) + len(zipped.bounds)} and not stats.refused
    expected = [encode_spans(s).SerializeToString() for s in plain.batches() + zipped.batches()]
    assert [bytes(b.raw) for b in table.batches] == expected
    facts = info(table, build(table))["capture"]
    assert facts["position"] == "sdk" and facts["transports"] == {"grpc": len(expected)}
    assert all("grpc-python" in s for s in facts["senders"])


def test_json_bodies_are_converted_to_the_same_protobuf(cap: Capture) -> None:
    raw = request_body(5)
    doc = to_json(TracesData.FromString(raw))
    status, headers, body = post(cap, doc.encode(), "application/json")
    assert status == 200 and headers["content-type"] == "application/json" and json.loads(body) == {}
    status, _, _ = post(
        cap, gzip.compress(doc.encode()), "application/json; charset=utf-8", **{"Content-Encoding": "gzip"}
    )
    assert status == 200
    cap.close()
    table = captured(cap)
    assert [TracesData.FromString(bytes(b.raw)) for b in table.batches] == [TracesData.FromString(raw)] * 2


def test_protobuf_answer_is_an_export_response_and_other_encodings_decode(cap: Capture) -> None:
    raw = request_body(4)
    status, headers, body = post(cap, raw)
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(body) == ExportTraceServiceResponse()
    assert post(cap, zlib.compress(raw), **{"Content-Encoding": "deflate"})[0] == 200
    import zstandard

    assert post(cap, zstandard.ZstdCompressor().compress(raw), **{"Content-Encoding": "zstd"})[0] == 200
    # chunked transfer encoding, as a streaming client sends it
    host, port = cap.http_address  # type: ignore[misc]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request(
        "POST",
        "/v1/traces",
        body=iter([raw[:10], raw[10:]]),
        encode_chunked=True,
        headers={"Content-Type": "application/x-protobuf", "Transfer-Encoding": "chunked"},
    )
    assert conn.getresponse().status == 200
    conn.close()
    stats = cap.close()
    assert stats.messages == 4 and [bytes(b.raw) for b in captured(cap).batches] == [raw] * 4


def test_invalid_utf8_is_kept_as_sent_with_a_partial_success_warning(cap: Capture) -> None:
    raw = request_body(2).replace(b"span 1", b"span\xff1")
    status, _, body = post(cap, raw)
    answer = ExportTraceServiceResponse.FromString(body)
    assert status == 200 and answer.partial_success.rejected_spans == 0
    assert "not valid UTF-8" in answer.partial_success.error_message
    stats = cap.close()
    assert stats.warned == 1 and Path(stats.files[0]).read_bytes()[4:] == raw  # as sent
    table = captured(cap)  # the loader repairs it, as it would a file exporter's dump
    assert table.span(1).name == "span\ufffd1" and "not valid UTF-8" in table.sources[0].warnings[0]


# ------------------------------------------------------------------------------------ error answers


def test_error_answers_write_nothing_and_are_counted(tmp_path: Path) -> None:
    opts = CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0", max_request_bytes=10_000)
    with Capture(opts) as c:
        status, headers, body = post(c, b"\x0a\xff\xff\xff garbage")
        assert status == 400 and headers["content-type"] == "application/x-protobuf"
        err = status_pb2.Status.FromString(body)
        assert err.code == 3 and "not an OTLP ExportTraceServiceRequest" in err.message
        status, headers, body = post(c, b"\x1f\x8b\x08\x00garbage", **{"Content-Encoding": "gzip"})
        assert status == 400 and "not valid gzip" in status_pb2.Status.FromString(body).message
        status, headers, body = post(
            c, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', "application/json"
        )
        assert status == 400 and headers["content-type"] == "application/json"
        assert json.loads(body)["code"] == 3 and "traceId" in json.loads(body)["message"]
        assert post(c, b"{not json", "application/json")[0] == 400
        status, _, body = post(c, b"\0" * 10_001)
        assert status == 413 and "exceeds" in status_pb2.Status.FromString(body).message
        bomb = gzip.compress(request_body(400))  # small on the wire, over the limit decoded
        assert len(bomb) < 10_000 < len(gzip.decompress(bomb))
        assert post(c, bomb, **{"Content-Encoding": "gzip"})[0] == 413
        status, headers, body = post(c, request_body(), "text/plain")
        assert status == 415 and headers["content-type"] == "text/plain" and b"application/x-protobuf" in body
        assert post(c, request_body(), **{"Content-Encoding": "br"})[0] == 415
        assert post(c, request_body(), path="/v1/metrics")[0] == 404
        host, port = c.http_address  # type: ignore[misc]
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", "/v1/traces")
        resp = conn.getresponse()
        assert resp.status == 405 and resp.getheader("Allow") == "POST"
        conn.close()
        assert post(c, request_body(2))[0] == 200  # still serving
    stats = c.stats()
    assert stats.messages == 1 and stats.spans == 2
    assert stats.refused == {
        "400 bad protobuf": 1,
        "400 bad gzip": 1,
        "400 bad OTLP/JSON": 1,
        "400 bad JSON": 1,
        "413 too large": 2,
        "415 content type": 1,
        "415 encoding": 1,
        "404 not found": 1,
        "405 method": 1,
    }
    assert len(captured(c).batches) == 1


def stall_writer(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make the capture's writer stop before writing a dump message until ``gate`` is set; ``writing`` is
    set once it is stopped there (so the queue fills behind it)."""
    gate, writing = threading.Event(), threading.Event()
    real = capture_mod._write_all

    def slow_write(fd: int, parts: list[Any], path: Path) -> None:
        if path.suffix == ".pb":
            writing.set()
            gate.wait(30)
        real(fd, parts, path)

    monkeypatch.setattr(capture_mod, "_write_all", slow_write)
    return gate, writing


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate, writing = stall_writer(monkeypatch)
    raw = request_body(50)
    opts = CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0", queue_bytes=len(raw) + 10)
    with Capture(opts) as c:
        first: list[int] = []
        sender = threading.Thread(target=lambda: first.append(post(c, raw)[0]))
        sender.start()
        assert writing.wait(30)  # the first request holds the queue while it is written
        status, headers, body = post(c, raw)
        assert status == 503 and headers["retry-after"] == "1"
        assert "queue is full" in status_pb2.Status.FromString(body).message
        gate.set()
        sender.join(30)
        assert first == [200]
        assert post(c, raw)[0] == 200
    assert c.stats().refused == {"503 queue full": 1} and len(captured(c).batches) == 2


def test_grpc_errors_are_invalid_argument(cap: Capture) -> None:
    import grpc

    host, port = cap.grpc_address  # type: ignore[misc]
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a\xff\xff\xff garbage", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not an OTLP ExportTraceServiceRequest" in err.value.details()
        assert ExportTraceServiceResponse.FromString(export(request_body(), timeout=10)) == (
            ExportTraceServiceResponse()
        )
    assert cap.close().refused == {"400 bad protobuf": 1} and len(captured(cap)) == 3


# ------------------------------------------------------------------------------ files and stopping


def test_rotation_names_files_in_arrival_order_and_sidecars_match(tmp_path: Path) -> None:
    bodies = [request_body(k % 7 + 1, f"svc{k % 3}") for k in range(40)]
    out = tmp_path / "cap"
    with Capture(CaptureOptions(out, listen="127.0.0.1:0", rotate_bytes=2_000)) as c:
        for body in bodies:
            assert post(c, body)[0] == 200
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert len(files) > 3 and files == [Path(f).name for f in c.stats().files]
    assert files[0] == "capture-000001.pb"
    for name in files:
        assert (out / name).stat().st_size <= 2_000
    table = tg.load([out])
    assert [bytes(b.raw) for b in table.batches] == bodies
    arrivals = [b.arrival_ns for b in table.batches]
    assert arrivals == sorted(arrivals) and min(arrivals) > 0
    for name in files:
        data = (out / name).read_bytes()
        for line in sidecar_path(out / name).read_text().splitlines()[1:]:
            entry = json.loads(line)
            assert int.from_bytes(data[entry["offset"] : entry["offset"] + 4], "big") == entry["bytes"]
    # a second capture into the same directory numbers on
    with Capture(CaptureOptions(out, listen="127.0.0.1:0")) as c2:
        assert post(c2, bodies[0])[0] == 200
    assert Path(c2.stats().files[0]).name == f"capture-{len(files) + 1:06d}.pb"


def test_the_loader_reads_arrival_times_and_info_reports_them(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    before = time.time_ns()
    with Capture(CaptureOptions(out, listen="127.0.0.1:0")) as c:
        for k in range(5):
            time.sleep(0.02 * k)
            post(
                c, request_body(2), **{"User-Agent": "OpenTelemetry Collector Contrib/0.141.0 (linux/amd64)"}
            )
    after = time.time_ns()
    table = tg.load([out])
    arrivals = [b.arrival_ns for b in table.batches]
    assert before < arrivals[0] < arrivals[-1] < after and arrivals == sorted(arrivals)
    facts = info(table, build(table))["capture"]
    assert facts["position"] == "collector" and facts["messages"] == 5
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert facts["first_arrival_ns"] == arrivals[0] and facts["max_gap_s"] == max(gaps) / 1e9 >= 0.08
    result = CliRunner().invoke(main, ["info", str(out)])
    assert result.exit_code == 0
    assert "position: a collector exporter" in result.output and "5 messages arrived" in result.output
    # a dump without its sidecar loads as before; a damaged sidecar is a warning, never an error
    side = sidecar_path(Path(c.stats().files[0]))
    lines = side.read_text().splitlines()
    side.write_text("\n".join(lines[:3]) + "\n")
    table = tg.load([out])
    assert [b.arrival_ns for b in table.batches][2:] == [-1] * 3
    assert any("lists 2 messages" in w for w in table.sources[0].warnings)
    side.unlink()
    table = tg.load([out])
    assert table.sources[0].capture is None and "capture" not in info(table, build(table))


def test_max_spans_keeps_the_request_that_reaches_it_whole(tmp_path: Path) -> None:
    with Capture(CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0", max_spans=10)) as c:
        assert post(c, request_body(6))[0] == 200
        assert post(c, request_body(6))[0] == 200  # reaches 12 >= 10: kept whole, then the capture stops
        assert c.wait(5)
        status, headers, _ = post(c, request_body(6))
        assert status == 503 and headers["retry-after"] == "1"
    stats = c.stats()
    assert stats.spans == 12 and stats.stopped_by == "--max-spans 10" and stats.refused == {"503 stopping": 1}


def test_for_stops_after_the_duration(tmp_path: Path) -> None:
    t0 = time.monotonic()
    stats = capture_mod.capture(CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0", duration_s=0.3))
    assert stats.stopped_by == "--for 0.3s" and time.monotonic() - t0 >= 0.3 and stats.files == []


def start_cli(out: Path, *args: str, **popen: Any) -> tuple[subprocess.Popen[str], str]:
    """``tracegroup capture`` in a child process; (process, its HTTP address) once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracegroup.cli", "capture", "-o", str(out), "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        **popen,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "listening on http://" in line, line + proc.stderr.read()
    return proc, line.split("http://", 1)[1].split("/", 1)[0]


def blast(address: str, body: bytes, stop: threading.Event, codes: list[int]) -> None:
    """POST ``body`` over one keep-alive connection until ``stop`` or the connection fails."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        while not stop.is_set():
            conn.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            codes.append(resp.status)
            if resp.getheader("Connection") == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly_with_every_accepted_request_on_disk(
    tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "cap"
    proc, address = start_cli(out, "--rotate-mb", "0.05")
    stop = threading.Event()
    codes: list[list[int]] = [[] for _ in range(3)]
    senders = [threading.Thread(target=blast, args=(address, request_body(40), stop, c)) for c in codes]
    for s in senders:
        s.start()
    deadline = time.monotonic() + 30
    while sum(map(len, codes)) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    stop.set()
    for s in senders:
        s.join(30)
    assert proc.returncode == 0, stderr
    assert f"stopped by {sig.name}" in stdout
    accepted = sum(c.count(200) for c in codes)
    table = tg.load([out])
    assert all(not s.warnings for s in table.sources) and len(table.sources) > 1
    assert len(table.batches) == accepted >= 60  # every request answered 200 is on disk, nothing else
    assert all(b.arrival_ns > 0 for b in table.batches)
    assert f"{accepted:,} messages" in stdout


def test_a_full_disk_stops_the_capture_with_whole_files(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    limit = 60_000

    def small_files() -> None:  # the child may write no file bigger than this: EFBIG, as a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc, address = start_cli(out, preexec_fn=small_files)
    codes: list[int] = []
    blast(address, request_body(40), threading.Event(), codes)  # until the capture stops and hangs up
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    assert stderr.count("tracegroup: error:") == 1 and "File too large" in stderr
    assert "stopped by a failed write" in stdout
    assert codes.count(200) > 10 and codes[-1] == 503 and set(codes) == {200, 503}
    table = tg.load([out])
    assert not table.sources[0].warnings  # whole messages only, sidecar in step
    assert len(table.batches) == codes.count(200)
    assert (out / "capture-000001.pb").stat().st_size <= limit


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(
            main, ["capture", "-o", str(tmp_path / "x"), "--listen", f"127.0.0.1:{port}"]
        )
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"--listen 127.0.0.1:{port}:" in result.output and "in use" in result.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "tracegroup.cli", "capture", "-o", str(tmp_path / "x")]
            + ["--listen", "127.0.0.1:0", "--grpc", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == f"tracegroup: error: --grpc 127.0.0.1:{port}: Address already in use\n"
    result = CliRunner().invoke(main, ["capture", "-o", str(tmp_path / "x"), "--listen", "nowhere"])
    assert result.exit_code == 2 and "expected HOST:PORT" in result.output
    result = CliRunner().invoke(main, ["capture", "-o", str(tmp_path / "x"), "--listen", "none"])
    assert result.exit_code == 2 and "needs --grpc" in result.output
    result = CliRunner().invoke(main, ["capture", "-o", str(tmp_path / "x"), "--for", "5"])
    assert result.exit_code == 2 and "needs a unit" in result.output


def test_cli_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["capture", "-o", str(tmp_path / "cap"), "--listen", "127.0.0.1:0", "--for", "200ms"]
    )
    assert result.exit_code == 0, result.output
    assert "Captured 0 spans in 0 messages" in result.output and "stopped by --for 0.2s" in result.output
    assert os.listdir(tmp_path / "cap") == []


# ------------------------------------------------------------------- the real collector, where built


def _collector_binary() -> Path:
    """The repository's collector (collector/build.py: cached, else built), or skip/fail as
    tests/test_collector.py does: Go missing skips locally and fails in CI; an unreachable registry skips."""
    import importlib.util

    from tools import missing, registry_unreachable, require_executable

    spec = importlib.util.spec_from_file_location(
        "tracegroup_collector_build", ROOT / "collector" / "build.py"
    )
    assert spec is not None and spec.loader is not None
    build_mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build_mod
    spec.loader.exec_module(build_mod)
    if build_mod.binary_path().exists():
        return Path(build_mod.binary_path())
    require_executable("go", "install Go 1.24 or newer (https://go.dev/dl/) to build the collector")
    try:
        build_mod.download()
    except build_mod.RegistryError as err:
        registry_unreachable(str(err))
    except build_mod.GoMissing as err:
        missing(str(err))
    return Path(build_mod.build())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _collector_config(topology: str, otlp_port: int, capture: Capture, files: Path) -> dict[str, Any]:
    """docs/capture.md's snippets: the capture exporter next to each file exporter (standing in for the
    Sentry exporter), after the same processors; ``batch-grpc``: the otlp exporter to ``--grpc``."""
    off = {"sending_queue": {"enabled": False}, "retry_on_failure": {"enabled": False}}
    if topology == "batch-grpc":
        host, port = capture.grpc_address  # type: ignore[misc]
        tracegroup = {"endpoint": f"{host}:{port}", "tls": {"insecure": True}, **off}
    else:
        host, port = capture.http_address  # type: ignore[misc]
        tracegroup = {"endpoint": f"http://{host}:{port}", **off}
    cfg: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{otlp_port}"}}}},
        "processors": {"batch": {"send_batch_size": 64, "timeout": "200ms"}},
        "exporters": {"otlp/tracegroup" if topology == "batch-grpc" else "otlphttp/tracegroup": tracegroup},
        "service": {
            "telemetry": {"logs": {"level": "info"}, "metrics": {"level": "none"}},
            "pipelines": {},
        },
    }
    if topology != "routing":
        cfg["exporters"]["file"] = {"path": str(files / "file.pb"), "format": "proto"}
        cfg["service"]["pipelines"]["traces"] = {
            "receivers": ["otlp"],
            "processors": ["batch"],
            "exporters": ["file", *(k for k in cfg["exporters"] if k.endswith("/tracegroup"))],
        }
        return cfg
    table = []  # otlp -> batch -> routing -> one exporter per service
    for svc in ("storefront", "inventory", "default"):
        cfg["exporters"][f"file/{svc}"] = {"path": str(files / f"{svc}.pb"), "format": "proto"}
        cfg["service"]["pipelines"][f"traces/{svc}"] = {
            "receivers": ["routing"],
            "exporters": [f"file/{svc}", "otlphttp/tracegroup"],
        }
        if svc != "default":
            cond = f'attributes["service.name"] == "{svc}"'
            table.append({"context": "resource", "condition": cond, "pipelines": [f"traces/{svc}"]})
    cfg["connectors"] = {"routing": {"default_pipelines": ["traces/default"], "table": table}}
    cfg["service"]["pipelines"]["traces/in"] = {
        "receivers": ["otlp"],
        "processors": ["batch"],
        "exporters": ["routing"],
    }
    return cfg


@pytest.mark.parametrize("topology", ["batch", "batch-grpc", "routing"])
def test_collector_otlphttp_capture_equals_its_file_exporter(tmp_path: Path, topology: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    binary = _collector_binary()
    files = tmp_path / "file"
    files.mkdir()
    otlp_port = _free_port()
    with Capture(CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0", grpc="127.0.0.1:0")) as c:
        config = tmp_path / "config.json"  # JSON is YAML
        config.write_text(json.dumps(_collector_config(topology, otlp_port, c, files)))
        log = tmp_path / "collector.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(binary), "--config", f"file:{config}"], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            deadline = time.monotonic() + 60
            while "Everything is ready" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.1)
            endpoint = f"http://127.0.0.1:{otlp_port}/v1/traces"
            sent = [
                make_traffic(OTLPSpanExporter(endpoint=endpoint), svc) for svc in ("storefront", "inventory")
            ]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        text = log.read_text()
        assert proc.returncode == 0 and "\terror\t" not in text, text[-3000:]
    stats = c.stats()
    spans = sum(len(s) for tee in sent for s in tee.batches())
    assert stats.spans == spans and not stats.refused
    ours = tg.load([c.options.out])
    assert stats.transports == {"grpc" if topology == "batch-grpc" else "http": len(ours.batches)}
    if topology != "routing":
        theirs = tg.load([files / "file.pb"])
        assert len(ours.batches) > 3 and len(ours) == len(theirs) == spans
        assert [bytes(b.raw) for b in ours.batches] == [bytes(b.raw) for b in theirs.batches]
    else:  # every per-service exporter call went to the same capture: split it back by service
        per_service: dict[str, list[bytes]] = {}
        for k, b in enumerate(ours.batches):
            per_service.setdefault(ours.service_name(int(np.flatnonzero(ours.batch == k)[0])), []).append(
                bytes(b.raw)
            )
        assert set(per_service) == {"storefront", "inventory"} and len(ours) == spans
        for svc, messages in per_service.items():
            assert messages == [bytes(b.raw) for b in tg.load([files / f"{svc}.pb"]).batches]
    facts = info(ours, build(ours))["capture"]
    assert facts["position"] == "collector"
    assert all("OpenTelemetry Collector" in s for s in facts["senders"]), facts["senders"]


def test_close_is_prompt_with_an_idle_keep_alive_connection(tmp_path: Path) -> None:
    c = Capture(CaptureOptions(tmp_path / "cap", listen="127.0.0.1:0"))
    c.start()
    host, port = c.http_address  # type: ignore[misc]
    conn = http.client.HTTPConnection(host, port, timeout=30)  # a collector keeps its connection open
    conn.request(
        "POST", "/v1/traces", body=request_body(), headers={"Content-Type": "application/x-protobuf"}
    )
    assert conn.getresponse().read() == b""
    t0 = time.monotonic()
    stats = c.close()
    assert time.monotonic() - t0 < capture_mod.CLOSE_TIMEOUT_S / 2 and stats.messages == 1
    conn.close()


def test_grpc_full_queue_is_resource_exhausted_with_retry_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grpc
    from google.rpc import error_details_pb2

    gate, writing = stall_writer(monkeypatch)
    raw = request_body(50)
    opts = CaptureOptions(tmp_path / "cap", listen=None, grpc="127.0.0.1:0", queue_bytes=len(raw) + 10)
    with Capture(opts) as c, grpc.insecure_channel(":".join(map(str, c.grpc_address or ()))) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        first = export.future(raw, timeout=30)
        assert writing.wait(30)
        with pytest.raises(grpc.RpcError) as err:
            export(raw, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = dict(err.value.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(details)
        retry = error_details_pb2.RetryInfo()
        assert status.code == 8 and status.details[0].Unpack(retry) and retry.retry_delay.seconds == 1
        gate.set()
        assert ExportTraceServiceResponse.FromString(first.result()) == ExportTraceServiceResponse()
    assert c.stats().refused == {"503 queue full": 1} and c.stats().messages == 1


def test_a_terminal_gets_a_status_line(tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracegroup.cli", "capture", "-o", str(tmp_path / "cap")]
        + ["--listen", "127.0.0.1:0", "--for", "1500ms"],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        cwd=ROOT,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    text = seen.decode()
    assert "listening on http://127.0.0.1:" in text
    assert "\rcapturing to " in text and "0 spans in 0 messages" in text and "0 refused" in text
    assert "stopped by --for 1.5s" in stdout


def test_grpc_without_grpcio_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if the capture extra were not installed
    result = CliRunner().invoke(
        main, ["capture", "-o", str(tmp_path / "x"), "--listen", "127.0.0.1:0", "--grpc", "127.0.0.1:0"]
    )
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "--grpc needs grpcio: pip install 'tracegroup[capture]'" in result.output


def test_a_write_failing_in_a_new_file_leaves_no_empty_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real = capture_mod._write_all
    writes: list[Path] = []

    def full_after_one(fd: int, parts: list[Any], path: Path) -> None:
        if path.suffix == ".pb":
            writes.append(path)
            if len(writes) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(fd, parts, path)

    monkeypatch.setattr(capture_mod, "_write_all", full_after_one)
    out = tmp_path / "cap"
    with Capture(CaptureOptions(out, listen="127.0.0.1:0", rotate_bytes=100)) as c:
        assert post(c, request_body(3))[0] == 200
        status, _, body = post(c, request_body(3))  # needs a new file: the disk is full
        assert status == 503 and "No space left on device" in status_pb2.Status.FromString(body).message
        assert c.wait(5)
    stats = c.stats()
    assert stats.error is not None and stats.error.endswith("capture-000002.pb: No space left on device")
    assert stats.stopped_by == "write failed" and stats.messages == 1
    assert sorted(p.name for p in out.iterdir()) == [".capture-000001.pb.arrivals.jsonl", "capture-000001.pb"]
    assert stats.files == [str(out / "capture-000001.pb")] and len(tg.load([out]).batches) == 1


def test_the_collector_snippets_of_the_docs_validate() -> None:
    """Every collector configuration in docs/capture.md is accepted by the real collector (``validate``);
    the gRPC exporter fragment is checked inside the first configuration."""
    import re
    import tempfile

    import yaml

    binary = _collector_binary()
    blocks = [
        yaml.safe_load(b)
        for b in re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "capture.md").read_text(), re.S)
    ]
    full = [b for b in blocks if "service" in b]
    fragment = next(b for b in blocks if "service" not in b)
    merged = json.loads(json.dumps(full[0]))
    merged["exporters"].update(fragment["exporters"])
    merged["service"]["pipelines"]["traces"]["exporters"].append(next(iter(fragment["exporters"])))
    assert len(full) == 2
    for cfg in [*full, merged]:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(yaml.safe_dump(cfg))
            f.flush()
            proc = subprocess.run(
                [str(binary), "validate", "--config", f"file:{f.name}"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert proc.returncode == 0, proc.stderr


def test_cli_summary_as_json(tmp_path: Path) -> None:
    proc, address = start_cli(tmp_path / "cap", "--format", "json")
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}
    conn.request("POST", "/v1/traces", body=request_body(5), headers=headers)
    assert conn.getresponse().status == 200
    conn.close()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["spans"] == 5 and summary["messages"] == 1 and len(summary["files"]) == 1
    assert summary["stopped_by"] and summary["refused"] == {} and summary["error"] is None


def test_redact_carries_the_arrivals_with_the_peer_scrubbed(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    with Capture(CaptureOptions(out, listen="127.0.0.1:0")) as c:
        for _ in range(3):
            post(c, request_body(2), **{"User-Agent": "OpenTelemetry Collector Contrib/0.141.0"})
    shared = tmp_path / "shared"
    r = CliRunner().invoke(main, ["redact", str(out), "-o", str(shared), "--format", "json", "-q"])
    assert r.exit_code == 0, r.output
    [entry] = json.loads(r.output)["files"]
    copy = Path(entry["output"])
    assert entry["arrivals"] == str(sidecar_path(copy))
    before, after = tg.load([out]), tg.load([shared])
    assert [b.arrival_ns for b in after.batches] == [b.arrival_ns for b in before.batches]
    assert not after.sources[0].warnings  # offsets and sizes are the copy's own
    text = sidecar_path(copy).read_text()
    assert "127.0.0.1" not in text and '"peer":"[ip]:' in text
    kept = tmp_path / "kept"
    assert CliRunner().invoke(main, ["redact", str(out), "-o", str(kept), "--keep-pii", "-q"]).exit_code == 0
    assert "127.0.0.1" in sidecar_path(kept / copy.name).read_text()
