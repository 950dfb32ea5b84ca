"""``tracegroup spans`` past the memory budget: the per-span frames of a dump through the on-disk spill.

Contract: :func:`spans_frames_spilled` yields frames that, concatenated, equal those of
:func:`tracegroup.frames.spans_frames` for the same dumps, grouping options and an analysis — the same rows
in the same order, the same columns, dtypes, values and index (global rows) — so the writers of
:mod:`tracegroup.render.tables` write the same bytes (CSV, JSON Lines) and the same Parquet values. It
never holds the dump: at most one partition's groupings, or one chunk of whole input messages (about
half the budget by :func:`tracegroup.spill.memory_needed`'s estimate) with its rows' analysis columns.

1. The streaming pass of :func:`tracegroup.spill.spilled` (the compared exporter per captured call).
2. Per partition (whole traces): the forest, both groupings and the diff
   (:func:`tracegroup.spill.partition_groupings`); each row's analysis columns — both transactions'
   root span ids, verdict, incomplete, reason, depth, missing parent — are appended to the file of its
   row chunk (:data:`ROW`, raw numpy records).
3. The input again, in order, a chunk of whole messages at a time: the chunk's table as the loader
   builds it (redacted when asked), :func:`~tracegroup.frames.spans_frames` of it with the whole
   dump's depth and missing-parent flags, the analysis columns put in before ``flags``, the batch
   numbers and the index shifted to the dump's.

What the spill cannot do refuses as :func:`tracegroup.spill.spilled` does (``ValueError``, one line).
Input is read twice (standard input is copied to the spill directory once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup import tree
from tracegroup.diff import VERDICTS
from tracegroup.frames import DIFF_COLUMNS, categorical, hex_array, reasons, spans_frames
from tracegroup.load.columns import Columns
from tracegroup.model import Batch, Source, SpanTable
from tracegroup.redact import Policy, redact_table
from tracegroup.routes import Routes
from tracegroup.spill import Spilled, _parsed, partition_groupings, spilled

if TYPE_CHECKING:
    import pandas as pd

#: One row's analysis columns as spilled by row chunk: global row, reference and compared transaction
#: root span ids, depth, verdict, reason, and bits (1: no reference root, 2: no compared root,
#: 4: incomplete, 8: missing parent).
ROW = np.dtype(
    [
        ("row", "<i8"),
        ("tx", "<u8"),
        ("ctx", "<u8"),
        ("depth", "<i8"),
        ("verdict", "i1"),
        ("reason", "i1"),
        ("bits", "u1"),
    ]
)


class _Known(tree.Forest):
    """A forest whose depths and missing-parent flags were computed on the whole traces elsewhere."""

    def __init__(self, depth: np.ndarray, missing_parent: np.ndarray) -> None:
        super().__init__(np.zeros(0, dtype=np.int64), missing_parent)
        self._depth = depth

    def depth(self) -> np.ndarray:
        return self._depth


def spans_frames_spilled(
    paths: list[str] | tuple[str, ...],
    *,
    budget: int,
    service_attribute: str = "service.name",
    compare: str = "sentryexporter",
    reference: str = "service",
    batches: str | None = None,
    routes: str | Routes = "none",
    boundary: str = "service",
    details: bool = True,
    redaction: Policy | None = None,
    partitions: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_pass: Callable[[Spilled], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The frames of ``tracegroup spans`` through the spill (see the module docstring); ``on_pass`` is
    called with the streaming pass's result (sources, span count) before the first frame. Consume the
    frames to the end (or close the generator): the spill directory goes with it."""
    with spilled(
        paths,
        budget=budget,
        service_attribute=service_attribute,
        compare=compare,
        reference=reference,
        batches=batches,
        routes=routes,
        boundary=boundary,
        partitions=partitions,
        progress=progress,
    ) as sp:
        if on_pass is not None:
            on_pass(sp)
        for part in partition_groupings(sp, compare, reference, routes, boundary, {}, progress):
            _spill_rows(sp, part.table, part.forest, part.ref.root, part.cmp, part.diff, part.rows)
        yield from _chunks(sp, service_attribute, details, redaction)


def _row_file(sp: Spilled, c: int) -> str:
    return os.path.join(sp.work, f"rows-{c:05d}.bin")


def _spill_rows(
    sp: Spilled,
    t: SpanTable,
    forest: tree.Forest,
    ref_root: np.ndarray,
    cmp: Any,
    d: Any,
    rows: np.ndarray,
) -> None:
    """Append one partition's analysis columns to the files of their row chunks."""
    n = len(rows)
    rec = np.empty(n, dtype=ROW)
    rec["row"] = rows
    rec["tx"] = t.span_id[np.maximum(ref_root, 0)]
    rec["ctx"] = t.span_id[np.maximum(cmp.root, 0)]
    rec["depth"] = forest.depth()
    rec["verdict"] = d.verdict
    rec["reason"] = cmp.reason
    rec["bits"] = (
        (ref_root < 0).astype(np.uint8)
        | ((cmp.root < 0).astype(np.uint8) << 1)
        | (np.asarray(d.incomplete, dtype=np.uint8) << 2)
        | (np.asarray(forest.missing_parent, dtype=np.uint8) << 3)
    )
    chunk = sp.chunk_of[t.batch.astype(np.int64)]
    order = np.argsort(chunk, kind="stable")
    ordered = chunk[order]
    cuts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        with open(_row_file(sp, int(ordered[a])), "ab") as f:
            f.write(rec[order[a:b]].tobytes())


def _chunks(
    sp: Spilled, service_attribute: str, details: bool, redaction: Policy | None
) -> Iterator[pd.DataFrame]:
    """The second pass over the input, a chunk of whole messages at a time."""
    codes = {s: i for i, s in enumerate(sp.services)}
    cols: Columns | None = None
    held: list[Batch] = []
    chunk = -1
    for b, (fi, src, k, raw) in enumerate(sp.messages()):
        c = int(sp.chunk_of[b])
        if c != chunk:
            if cols is not None:
                yield from _chunk_frames(sp, chunk, cols, held, details, redaction)
            chunk, held = c, []
            cols = Columns(service_attribute, warm=True)
            cols.services = codes
        assert cols is not None
        td, kept, _, _ = _parsed(raw, Source(src.path, src.format), k)
        n = cols.add_message(td, len(held))
        held.append(Batch(fi, bytes(kept), n))
    if cols is not None:
        yield from _chunk_frames(sp, chunk, cols, held, details, redaction)


def _chunk_frames(
    sp: Spilled, c: int, cols: Columns, held: list[Batch], details: bool, redaction: Policy | None
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    table = cols.table(held, sp.sources)
    table.services = list(sp.services)
    if redaction is not None:
        table = redact_table(table, redaction)
    start, stop = int(sp.chunk_start[c]), int(sp.chunk_start[c + 1])
    assert len(table) == stop - start
    rec = np.empty(stop - start, dtype=ROW)
    path = _row_file(sp, c)
    if stop > start:
        got = np.fromfile(path, dtype=ROW)
        os.unlink(path)
        rec[got["row"] - start] = got
        if len(got) != stop - start:  # pragma: no cover - every row is in exactly one partition
            raise AssertionError(f"row chunk {c}: {len(got)} rows spilled, {stop - start} expected")
    bits = rec["bits"]
    forest = _Known(rec["depth"], (bits & 8) > 0)
    first_batch = int(np.searchsorted(sp.chunk_of, c))
    flags_at = None
    for frame in spans_frames(table, None, details=details, forest=forest):
        sel = slice(frame.index.start, frame.index.stop) if len(frame) else slice(0, 0)
        r = rec[sel]
        b = bits[sel]
        if flags_at is None:
            flags_at = frame.columns.get_loc("flags")
        extra = {
            "transaction": hex_array(r["tx"], 16, (b & 1) > 0),
            "compared_transaction": hex_array(r["ctx"], 16, (b & 2) > 0),
            "verdict": categorical(r["verdict"], VERDICTS),
            "incomplete": (b & 4) > 0,
            "reason": reasons(r["reason"]),
        }
        for j, name in enumerate(DIFF_COLUMNS):
            frame.insert(int(flags_at) + j, name, extra[name])
        frame["batch"] += first_batch
        frame.index = pd.RangeIndex(start + sel.start, start + sel.stop, name="row")
        yield frame
