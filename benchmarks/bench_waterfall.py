"""How long one big trace's waterfall and text tree take (docs/show.md): a generated dump's biggest trace.

    python benchmarks/bench_waterfall.py [--spans 200000] [--seed 1] [--keep benchmarks/out/dump-wf.pb]

Generates a dump with :func:`gen_dump.generate` (its ``reports`` jobs reach ~5k spans), picks its biggest
trace and times, each once after loading and analysing: ``TraceView.layout()`` (default: 200 rows,
alike siblings collapsed), the default waterfall saved as PNG, the waterfall of every span on its own row
(``max_spans=0, collapse=0``) saved as PNG, and ``TraceView.text()``. Prints one line per step with the
wall time and the peak resident set size of this process so far. Not a test: numbers go to the README.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import gen_dump  # noqa: E402

import tracegroup as tg  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="dump path to reuse (generated when missing)")
    args = ap.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "dump-wf.pb"
    if not path.exists():
        gen_dump.generate(str(path), args.spans, seed=args.seed)
    ex = tg.Explorer.load([str(path)])
    traces = ex.traces()
    big = traces.sort_values("spans", ascending=False).iloc[0]
    print(f"dump {path}: {len(ex.table):,} spans; biggest trace {big['trace_id']}: {big['spans']:,} spans")
    view = ex.trace(big["trace_id"])
    out = Path(tempfile.mkdtemp())
    steps = {
        "layout (default)": lambda: view.layout(),
        "waterfall (default) + png": lambda: view.waterfall().savefig(out / "a.png", dpi=110),
        "waterfall (every span) + png": lambda: view.waterfall(max_spans=0, collapse=0).savefig(
            out / "b.png", dpi=110
        ),
        "text (default)": lambda: view.text(),
    }
    for name, step in steps.items():
        t = time.perf_counter()
        step()
        print(f"{name:<32} {time.perf_counter() - t:6.2f} s   peak {peak_mb():6.0f} MB")
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
