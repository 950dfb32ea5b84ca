"""Throughput and memory of ``tracegroup capture`` under sustained OTLP/HTTP protobuf load.

Usage::

    python benchmarks/bench_capture.py [--seconds 120] [--clients 4] [--spans 512] [--grpc] [--keep DIR]

Starts ``tracegroup capture`` as its own process (``--listen 127.0.0.1:0``), then ``--clients`` client
processes that each POST one pre-encoded ``--spans``-span request (realistic spans: 8 attributes, an event
on some) over one keep-alive connection, back to back, for ``--seconds`` (``--grpc``: the same requests as
OTLP/gRPC ``Export`` calls over one channel each, to ``--grpc 127.0.0.1:0``). It samples the capture's
resident memory (``VmRSS``) every second, stops it with SIGTERM, checks that the files hold exactly the
requests answered 200, and prints one JSON object: accepted spans per second over the run, requests answered
200/503, the memory samples' first/median/max after a 10 s warm-up, the capture's own summary line, and
the **floor** measured in the same run: how long parsing one request body with protobuf takes (what the
capture must do at least to validate it), as spans per second of one core. So that a long run does not
fill the disk (~100 MB/s), closed capture files are measured and deleted while it runs (their sizes
still count in the check); ``--keep DIR`` keeps every file there instead.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

ROOT = Path(__file__).resolve().parent.parent


def body(spans: int, seed: int = 1) -> bytes:
    """One export request of ``spans`` spans of one service, as an SDK's batch looks."""
    rng = random.Random(seed)
    td = TracesData()
    rs = td.resource_spans.add()
    for k, v in (
        ("service.name", "storefront"),
        ("service.version", "1.4.2"),
        ("telemetry.sdk.language", "go"),
    ):
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = k, v
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = (
        "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        "0.63.0",
    )
    t0 = 1_790_000_000_000_000_000
    for i in range(spans):
        sp = ss.spans.add()
        sp.trace_id = rng.randbytes(16)
        sp.span_id = rng.randbytes(8)
        sp.parent_span_id = rng.randbytes(8) if i % 8 else b""
        sp.name = rng.choice(["GET /products/{id}", "SELECT orders", "redis GET", "POST /checkout"])
        sp.kind = Span.SPAN_KIND_SERVER if i % 8 == 0 else Span.SPAN_KIND_CLIENT
        sp.start_time_unix_nano = t0 + i * 1_000_000
        sp.end_time_unix_nano = sp.start_time_unix_nano + rng.randrange(100_000, 50_000_000)
        for k, v in (
            ("http.request.method", "GET"),
            ("url.path", f"/products/{rng.randrange(10_000)}"),
            ("server.address", "storefront.internal"),
            ("network.peer.address", f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"),
            ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
            ("db.statement", "SELECT id, total FROM orders WHERE customer_id = ?"),
            ("thread.name", f"worker-{rng.randrange(32)}"),
        ):
            kv = sp.attributes.add()
            kv.key, kv.value.string_value = k, v
        kv = sp.attributes.add()
        kv.key, kv.value.int_value = "http.response.status_code", 200
        if i % 16 == 0:
            ev = sp.events.add()
            ev.name, ev.time_unix_nano = "cache miss", sp.start_time_unix_nano + 1000
    return td.SerializeToString()


def grpc_client(address: str, payload: bytes, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import grpc

    ok = refused = 0
    end = time.monotonic() + seconds
    with grpc.insecure_channel(address) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        while time.monotonic() < end:
            try:
                export(payload, timeout=60)
                ok += 1
            except grpc.RpcError:
                refused += 1
                time.sleep(0.01)
    out.put((ok, refused))


def client(address: str, payload: bytes, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Content-Type": "application/x-protobuf", "User-Agent": "bench_capture"}
    ok = refused = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("POST", "/v1/traces", body=payload, headers=headers)
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            ok += 1
        else:
            refused += 1
            time.sleep(0.01)
    conn.close()
    out.put((ok, refused))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def prune(out_dir: Path) -> dict[str, int]:
    """Delete every capture file but the newest (the one being written) and its sidecar; their sizes."""
    files = sorted(f for f in out_dir.iterdir() if f.name.startswith("capture-"))
    sizes = {}
    for f in files[:-1]:
        sizes[f.name] = f.stat().st_size
        f.unlink()
        f.with_name(f".{f.name}.arrivals.jsonl").unlink(missing_ok=True)
    return sizes


def floor(payload: bytes, spans: int, rounds: int = 200) -> float:
    """Spans per second of one core when all it does is parse each body with protobuf."""
    t = time.perf_counter()
    for _ in range(rounds):
        TracesData.FromString(payload)
    return spans * rounds / (time.perf_counter() - t)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--spans", type=int, default=512)
    p.add_argument("--grpc", action="store_true", help="send over OTLP/gRPC instead of OTLP/HTTP")
    p.add_argument("--keep", type=Path, help="leave the capture files in this directory")
    args = p.parse_args()
    payload = body(args.spans)
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="bench-capture-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracegroup.cli", "capture", "-o", str(out_dir), "--listen", "127.0.0.1:0"]
        + (["--grpc", "127.0.0.1:0"] if args.grpc else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stderr is not None
    ready = proc.stderr.readline()
    address = (
        ready.split("grpc ", 1)[1].split(";", 1)[0]
        if args.grpc
        else ready.split("http://", 1)[1].split("/", 1)[0]
    )
    results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    clients = [
        mp.Process(
            target=grpc_client if args.grpc else client, args=(address, payload, args.seconds, results)
        )
        for _ in range(args.clients)
    ]
    t0 = time.monotonic()
    for c in clients:
        c.start()
    samples: list[tuple[float, int]] = []
    pruned: dict[str, int] = {}
    while any(c.is_alive() for c in clients):
        time.sleep(1.0)
        samples.append((time.monotonic() - t0, rss_kib(proc.pid)))
        if args.keep is None:
            pruned.update(prune(out_dir))
    wall = time.monotonic() - t0
    counts = [results.get() for _ in clients]
    for c in clients:
        c.join()
    os.kill(proc.pid, signal.SIGTERM)
    summary, _ = proc.communicate(timeout=120)
    ok = sum(c[0] for c in counts)
    files = sorted(f for f in out_dir.iterdir() if not f.name.startswith("."))
    written = sum(f.stat().st_size for f in files) + sum(pruned.values())
    expected = ok * (4 + len(payload))
    warm = [kib for t, kib in samples if t >= 10.0] or [kib for _, kib in samples]
    report = {
        "seconds": round(wall, 1),
        "transport": "grpc" if args.grpc else "http",
        "clients": args.clients,
        "spans_per_request": args.spans,
        "request_bytes": len(payload),
        "requests_200": ok,
        "requests_refused": sum(c[1] for c in counts),
        "spans_per_s": round(ok * args.spans / wall),
        "files": len(files) + len(pruned),
        "bytes_written": written,
        "files_hold_exactly_the_200s": written == expected,
        "rss_mib_after_warmup": {
            "first": round(warm[0] / 1024, 1),
            "median": round(statistics.median(warm) / 1024, 1),
            "max": round(max(warm) / 1024, 1),
            "last": round(warm[-1] / 1024, 1),
        },
        "floor_parse_spans_per_s_one_core": round(floor(payload, args.spans)),
        "capture_summary": summary.splitlines()[0] if summary else "",
    }
    print(json.dumps(report, indent=2))
    if args.keep is None:
        shutil.rmtree(out_dir)
    return 0 if report["files_hold_exactly_the_200s"] else 1


if __name__ == "__main__":
    sys.exit(main())
