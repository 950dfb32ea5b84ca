"""Wall time and peak memory of ``tracegroup emit`` on a big dump, in both styles.

Usage::

    python benchmarks/bench_emit.py [DUMP] [--spans N] [--styles exporter,sentry] [--repeat N]
                                    [--now 2026-01-01T00:00:00Z] [--keep-out] [--json FILE]

``DUMP`` defaults to ``benchmarks/out/dump-1m.pb`` (generated with ``gen_dump.py --spans 1000000`` when
missing). ``--spans N`` instead uses (and generates when missing) ``benchmarks/out/dump-<N>.pb``.

Contract: each measurement is one fresh child process running
``tracegroup emit DUMP --out DIR --rebase-time --now NOW [--style sentry] --quiet --format json`` from this
source tree (repository root first on ``PYTHONPATH``), waited for with ``os.wait4`` so the reported peak
resident set size (``ru_maxrss``) is that child's alone. ``DIR`` is a fresh temporary directory, deleted
afterwards unless ``--keep-out``. Reported per style: the best wall time and the highest peak RSS over the
runs, the spans in/written and the number of envelopes (from the command's JSON summary). A failing
command is reported with the tail of its stderr instead of numbers (exit code 1 at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_analyze import run_once  # noqa: E402  (one child-process runner for every benchmark)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(HERE, "out")
DEFAULT_DUMP = os.path.join(OUT_DIR, "dump-1m.pb")
CLI = "import sys; from tracegroup.cli import main; sys.argv[0] = 'tracegroup'; sys.exit(main())"


def ensure_dump(path: str, spans: int) -> None:
    """Generate ``path`` with ``gen_dump.py --spans spans`` unless it exists."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    print(f"generating {path} ({spans:,} spans)...", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, os.path.join(HERE, "gen_dump.py"), path, "--spans", str(spans)], check=True
    )


def measure(dump: str, style: str, now: str, repeat: int, keep_out: bool) -> dict[str, Any]:
    """Run ``emit`` ``repeat`` times for one style; best wall, highest peak, summary counts (or error)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    row: dict[str, Any] = {"style": style, "runs": []}
    for _ in range(repeat):
        out_dir = tempfile.mkdtemp(prefix=f"bench-emit-{style}-", dir=OUT_DIR)
        cmd = [sys.executable, "-c", CLI, "emit", dump, "--out", out_dir, "--rebase-time", "--now", now]
        cmd += ["--style", style, "--quiet", "--format", "json"]
        try:
            wall, peak, code, stdout, stderr = run_once(cmd, env)
        finally:
            if not keep_out:
                shutil.rmtree(out_dir, ignore_errors=True)
        if code != 0:
            row["error"] = f"exit {code}: " + "\n".join(stderr.strip().splitlines()[-6:])
            return row
        row["runs"].append({"wall_s": round(wall, 2), "peak_mib": round(peak, 1)})
        summary = json.loads(stdout)
        row["spans_in"] = summary["spans"]["in"]
        row["spans_written"] = summary["spans"]["written"]
        row["spans_not_written"] = sum(summary["spans"]["not_written"].values())
        row["transaction_events"] = summary["transactions"]["events"]
        row["error_events"] = summary["errors"]["written"]
        if keep_out:
            row["out"] = out_dir
    row["wall_s"] = min(r["wall_s"] for r in row["runs"])
    row["peak_mib"] = max(r["peak_mib"] for r in row["runs"])
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", nargs="?", help=f"dump file (default {os.path.relpath(DEFAULT_DUMP, ROOT)})")
    ap.add_argument("--spans", type=int, help="use/generate benchmarks/out/dump-<N>.pb instead")
    ap.add_argument("--styles", default="exporter,sentry", help="comma-separated: exporter,sentry")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--now", default="2026-01-01T00:00:00Z")
    ap.add_argument("--keep-out", action="store_true", help="keep the output directories")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON to this file")
    args = ap.parse_args(argv)
    if args.dump and args.spans:
        ap.error("give a DUMP or --spans N, not both")
    if args.spans:
        dump = os.path.join(OUT_DIR, f"dump-{args.spans}.pb")
        ensure_dump(dump, args.spans)
    elif args.dump:
        dump = args.dump
        if not os.path.exists(dump):
            ap.error(f"{dump}: no such file")
    else:
        dump = DEFAULT_DUMP
        ensure_dump(dump, 1_000_000)
    os.makedirs(OUT_DIR, exist_ok=True)
    dump = os.path.abspath(dump)
    print(f"dump: {dump} ({os.path.getsize(dump) / 1e6:.1f} MB)")
    print(f"{'style':<10} {'wall s':>8} {'peak MiB':>9} {'spans in':>10} {'written':>10} {'tx events':>10}")
    rows = []
    failed = False
    for style in [s.strip() for s in args.styles.split(",") if s.strip()]:
        row = measure(dump, style, args.now, args.repeat, args.keep_out)
        rows.append(row)
        if "error" in row:
            failed = True
            print(f"{style:<10} error: {row['error']}")
            continue
        print(
            f"{style:<10} {row['wall_s']:8.2f} {row['peak_mib']:9.0f} {row['spans_in']:>10,} "
            f"{row['spans_written']:>10,} {row['transaction_events']:>10,}",
            flush=True,
        )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"dump": dump, "python": sys.version.split()[0], "results": rows}, f, indent=2)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
