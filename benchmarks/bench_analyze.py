"""Wall time and peak memory of ``tracegroup analyze``, ``info``, ``spans`` and ``emit`` on a big dump,
against the parsing floor.

Usage::

    python benchmarks/bench_analyze.py [--spans 1000000] [--seed 1] [--batch 8192] [--zstd]
                                       [--keep FILE] [--repeat N] [--only floor,analyze,info,...]

Without ``--keep`` a dump is generated with ``gen_dump.py`` into ``benchmarks/out/`` (git-ignored) and
deleted afterwards. ``--keep FILE`` uses FILE if it exists (any file-exporter proto stream, e.g. a real
capture) or generates it there and keeps it.

Each measurement runs in its own fresh child process, waited for with ``os.wait4`` so that its peak resident
set size (``ru_maxrss``) is that child's alone and peaks never mix:

(a) ``floor``: read the file, parse each length-prefixed message with ``TracesData.FromString`` and, in a
    plain loop, read each span's trace_id, span_id, parent_span_id, kind and its resource's service.name,
    then drop the message. No analysis can do less work than this.
(b) ``analyze``: ``tracegroup analyze FILE --format json --quiet`` end to end.
(c) ``info``: ``tracegroup info FILE``.
(d) ``spans-parquet``, ``spans-csv``, ``spans-jsonl``: ``tracegroup spans FILE --format F -o OUT`` (with
    details), into a temporary directory under ``benchmarks/out/`` removed at the end.
(e) ``emit``: ``tracegroup emit FILE --out DIR --rebase-time --now 2026-01-01T00:00:00Z --format json``.
(e2) ``emit-packed``: (e) with ``--layout packed`` (one file per service instead of one per envelope).
(f) ``analyze-spill``: ``analyze`` as (b) with ``--memory 64MB``, so that it streams through the spill.

The CLI is run from this source tree (``tracegroup.cli:main`` with the repository root on ``PYTHONPATH``),
not from whatever version is installed; its modules are compiled to bytecode once before the first step
(into ``benchmarks/out/pycache``, as an installed package has them), so that no step pays for compiling
them, even where ``PYTHONDONTWRITEBYTECODE`` is set. A failing command is reported with its error instead
of numbers. Prints a table (wall s, peak MiB, ratios to the floor) and writes the same as JSON to
``benchmarks/out/results.json``. Target: (b) within 2.0x the floor's wall time and 2.5x its peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(HERE, "out")
TARGET_WALL = 2.0
TARGET_PEAK = 2.5
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CLI = "import sys; from tracegroup.cli import main; sys.argv[0] = 'tracegroup'; sys.exit(main())"


@dataclass
class Step:
    """One measured step: the best wall time and the highest peak RSS over its runs, or its error."""

    name: str
    label: str
    command: list[str]
    wall_s: float | None = None
    peak_mib: float | None = None
    runs: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None
    output: dict[str, Any] | None = None  # the floor's counts; the head of other commands' stdout

    def ratio(self, floor: Step) -> tuple[float | None, float | None]:
        if self.error or floor.error or not floor.wall_s or not floor.peak_mib:
            return None, None
        assert self.wall_s is not None and self.peak_mib is not None
        return self.wall_s / floor.wall_s, self.peak_mib / floor.peak_mib


def floor(path: str) -> dict[str, int]:
    """The floor: parse every message and touch the grouping columns of every span; return counts."""
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    decompress: Callable[[bytes], bytes] | None = None
    with open(path, "rb") as f:
        data = f.read()
    size = len(data)
    off = messages = spans = 0
    services: set[str] = set()
    while off + 4 <= size:
        n = int.from_bytes(data[off : off + 4], "big")
        raw = data[off + 4 : off + 4 + n]
        off += 4 + n
        if raw[:4] == ZSTD_MAGIC:
            if decompress is None:
                decompress = _zstd_decompressor()
            raw = decompress(raw)
        msg = TracesData.FromString(raw)
        messages += 1
        for rs in msg.resource_spans:
            service = ""
            for kv in rs.resource.attributes:
                if kv.key == "service.name":
                    service = kv.value.string_value
                    break
            services.add(service)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    _ = (span.trace_id, span.span_id, span.parent_span_id, span.kind)
                    spans += 1
        del msg, raw
    return {"messages": messages, "spans": spans, "services": len(services), "bytes": size}


def _zstd_decompressor() -> Callable[[bytes], bytes]:
    """Streaming decompression of one frame (file exporter frames may not record their content size)."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()

    def decompress(frame: bytes) -> bytes:
        return dctx.decompressobj().decompress(frame)

    return decompress


def _maxrss_mib(ru_maxrss: int) -> float:
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024  # bytes vs KiB


def _tail(text: str, lines: int = 6, chars: int = 800) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(kept)[-chars:]


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str, str]:
    """Run ``cmd`` in a fresh child; return (wall s, peak MiB of that child, exit code, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (
            wall,
            _maxrss_mib(usage.ru_maxrss),
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def measure(steps: list[Step], repeat: int, env: dict[str, str], work: str | None = None) -> None:
    """Run every step once per round, ``repeat`` rounds (interleaved: a machine whose speed drifts over
    minutes slows every step of a round alike, so the ratios of the best runs stay comparable)."""
    for k in range(repeat):
        for step in steps:
            if step.error:
                continue
            print(f"running {step.name} (round {k + 1} of {repeat}) ...", file=sys.stderr)
            if work:  # each run writes into an empty directory (emit refuses to mix runs)
                shutil.rmtree(work, ignore_errors=True)
                os.makedirs(work)
            # the disk quiet first: the last run's writes and deletes (emit: ~97,000 files, 0.9 GB) are
            # flushed now, not while this run is timed (they cost one step 10-20 s of creating files)
            os.sync()
            wall, peak, code, out, err = run_once(step.command, env)
            if code != 0:
                step.error = f"exit {code}: " + (_tail(err) or _tail(out) or "(no output)")
                continue
            step.runs.append({"wall_s": round(wall, 3), "peak_mib": round(peak, 1)})
            if step.name == "floor":
                step.output = json.loads(out)
            elif out.strip():
                step.output = {"stdout_bytes": len(out.encode()), "stdout_head": out.strip()[:200]}
    for step in steps:
        if step.runs and not step.error:
            step.wall_s = min(r["wall_s"] for r in step.runs)
            step.peak_mib = max(r["peak_mib"] for r in step.runs)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(steps: list[Step], dump: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The table as text, and the same as a JSON-able dict."""
    base = next((s for s in steps if s.name == "floor"), None)
    lines = [
        f"dump: {dump['path']} ({dump['bytes'] / 1e6:.1f} MB"
        + (f", {dump['spans']} spans)" if "spans" in dump else ")")
    ]
    lines.append(f"{'step':<44} {'wall s':>8} {'peak MiB':>9} {'wall/floor':>10} {'peak/floor':>10}")
    rows = []
    for s in steps:
        rw, rp = s.ratio(base) if base else (None, None)
        rows.append({**asdict(s), "wall_ratio": rw, "peak_ratio": rp})
        if s.error:
            lines.append(f"{s.label:<44} error: {s.error.splitlines()[0]}")
            lines.extend(f"{'':<44}   {line}" for line in s.error.splitlines()[1:])
            continue
        lines.append(
            f"{s.label:<44} {_fmt(s.wall_s, '8.2f')} {_fmt(s.peak_mib, '9.0f')} "
            f"{_fmt(rw, '9.2f')}x {_fmt(rp, '9.2f')}x"
        )
    target: dict[str, Any] = {"wall_ratio_max": TARGET_WALL, "peak_ratio_max": TARGET_PEAK, "met": None}
    analyze = next((r for r in rows if r["name"] == "analyze"), None)
    verdict = "not measured"
    if analyze is not None and analyze["wall_ratio"] is not None:
        met = analyze["wall_ratio"] <= TARGET_WALL and analyze["peak_ratio"] <= TARGET_PEAK
        target["met"] = met
        verdict = "MET" if met else "NOT MET"
    elif analyze is not None:
        verdict = "no number (analyze failed)" if analyze["error"] else "no floor to compare with"
    lines.append(
        f"target: (b) analyze <= {TARGET_WALL}x floor wall and <= {TARGET_PEAK}x floor peak memory: {verdict}"
    )
    result = {
        "dump": dump,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "protobuf": _protobuf_impl(),
        "steps": rows,
        "target": target,
    }
    return "\n".join(lines), result


def _protobuf_impl() -> str:
    try:
        from google.protobuf import __version__
        from google.protobuf.internal import api_implementation

        return f"{__version__} ({api_implementation.Type()})"
    except ImportError:  # pragma: no cover
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--spans", type=int, default=1_000_000, help="spans to generate (default 1000000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=8192, help="collector batch size of the generated dump")
    p.add_argument("--zstd", action="store_true", help="generate per-message zstd frames")
    p.add_argument("--keep", metavar="FILE", help="use FILE if it exists, else generate it there and keep it")
    p.add_argument("--repeat", type=int, default=1, help="runs per step: best wall, highest peak (default 1)")
    p.add_argument(
        "--only",
        default="floor,analyze,info,spans-parquet,spans-csv,spans-jsonl,emit,emit-packed,analyze-spill",
        help="comma-separated steps to run",
    )
    p.add_argument("--json", default=os.path.join(OUT_DIR, "results.json"), help="where to write results")
    p.add_argument("--floor-child", metavar="FILE", help=argparse.SUPPRESS)  # internal: run the floor here
    args = p.parse_args(argv)

    if args.floor_child:
        json.dump(floor(args.floor_child), sys.stdout)
        return 0

    os.makedirs(OUT_DIR, exist_ok=True)
    path = (
        os.path.abspath(args.keep)
        if args.keep
        else os.path.join(OUT_DIR, f"dump-{args.spans}-seed{args.seed}{'-zstd' if args.zstd else ''}.pb")
    )
    generated = False
    dump: dict[str, Any] = {"path": os.path.relpath(path, ROOT) if path.startswith(ROOT) else path}
    if args.keep and os.path.exists(path):
        dump["generated"] = False
    else:
        sys.path.insert(0, HERE)
        from gen_dump import generate

        t0 = time.perf_counter()
        counts = generate(path, args.spans, seed=args.seed, batch=args.batch, zstd=args.zstd)
        dump.update(counts, generated=True, generate_s=round(time.perf_counter() - t0, 2), seed=args.seed)
        generated = True
        print(
            f"generated {counts['spans']} spans, {counts['traces']} traces, {counts['batches']} batches, "
            f"{counts['bytes'] / 1e6:.1f} MB in {dump['generate_s']} s",
            file=sys.stderr,
        )
    dump["bytes"] = os.path.getsize(path)

    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONPYCACHEPREFIX"] = os.path.join(OUT_DIR, "pycache")
    py = sys.executable
    subprocess.run([py, "-m", "compileall", "-q", os.path.join(ROOT, "tracegroup")], env=env, check=True)
    work = tempfile.mkdtemp(prefix="bench-", dir=OUT_DIR)  # outputs of spans and emit, deleted at the end
    all_steps = [
        Step(
            "floor",
            "(a) floor: parse + read ids, kind, service",
            [py, os.path.abspath(__file__), "--floor-child", path],
        ),
        Step(
            "analyze",
            "(b) tracegroup analyze --format json --quiet",
            [py, "-c", CLI, "analyze", path, "--format", "json", "--quiet"],
        ),
        Step("info", "(c) tracegroup info", [py, "-c", CLI, "info", path]),
        *[
            Step(
                f"spans-{fmt}",
                f"(d) tracegroup spans --format {fmt}",
                [
                    py,
                    "-c",
                    CLI,
                    "spans",
                    path,
                    "--format",
                    fmt,
                    "-q",
                    "-o",
                    os.path.join(work, f"spans.{fmt}"),
                ],
            )
            for fmt in ("parquet", "csv", "jsonl")
        ],
        Step(
            "analyze-spill",
            "(f) analyze --memory 64MB (spilled)",
            [py, "-c", CLI, "analyze", path, "--format", "json", "--quiet", "--memory", "64MB"],
        ),
        Step(
            "emit",
            "(e) tracegroup emit --rebase-time --out DIR",
            [py, "-c", CLI, "emit", path, "--out", os.path.join(work, "emit"), "--rebase-time", "-q"]
            + ["--now", "2026-01-01T00:00:00Z", "--format", "json"],
        ),
        Step(
            "emit-packed",
            "(e2) tracegroup emit ... --layout packed",
            [py, "-c", CLI, "emit", path, "--out", os.path.join(work, "emit"), "--rebase-time", "-q"]
            + ["--now", "2026-01-01T00:00:00Z", "--format", "json", "--layout", "packed"],
        ),
    ]
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    steps = [step for step in all_steps if step.name in wanted]
    try:
        measure(steps, max(1, args.repeat), env, work)
    finally:
        if generated and not args.keep:
            os.remove(path)
        shutil.rmtree(work, ignore_errors=True)
    text, result = report(steps, dump)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
