"""Dumps larger than memory: one streaming pass into an on-disk Parquet spill partitioned by trace id,
then the groupings and the diff partition by partition; ``analyze``'s summary merged from them.

Contract: :func:`spilled` (a context manager) runs the pass and yields a :class:`Spilled`;
:func:`partition_groupings` then yields each partition's table, forest, groupings and diff, exactly
what :func:`tracegroup.analysis.analyze` computes for those traces on the whole table (``check``,
``spans`` and :func:`analyze_spilled` build on them). :func:`analyze_spilled` returns exactly
:meth:`tracegroup.analysis.Analysis.summary` of the same dumps and options analysed in memory. At once
they hold one input message, the spill's write buffers (within half the budget) and one partition's
columns, never the dump's bytes:

1. One pass reads every message (a file exporter stream is read frame by frame; other files, and files
   that fit in the budget, are read whole as :func:`tracegroup.load.load` reads them, with the same
   notes and warnings), extracts the hot columns (flags only when a rule reads them), runs a per-call
   compared strategy (``sentryexporter``) on each message's exporter calls (``--batches captured``: a
   call never spans two messages), and appends each span's columns (global row, ids, kind, service,
   batch, flags, compared root and reason; the name when asked) to the Parquet file of its partition (a
   hash of the trace id), uncompressed. It records where each message came from, so
   :meth:`Spilled.span_names` reads a few names back and :meth:`Spilled.messages` reads the input again.
2. Each partition holds whole traces, so the forest, the reference grouping, a whole-trace (or
   ``--batches trace``) compared grouping and the diff run on it alone; for the summary counts add up,
   per-service arrays add up, the worst traces are the best candidates of every partition, cause
   records merge by key, and only the worst traces' head names are read back from the input.

Supported: every strategy, ``--batches captured`` or ``trace``, every ``--routes``, both boundaries.
``--batches all|simulate|groupbytrace`` and ``--heal`` need every span at once: ``ValueError`` (one
line, naming the memory the in-memory path needs). A per-call compared transaction whose root lies in
another trace's partition (span ids shared across traces in one call) is a ``ValueError`` too, as is a
damaged stream too large to read whole. The spill lives in a temporary directory removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup import tree
from tracegroup.analysis import _ratio, head_rows, worst_first
from tracegroup.batching import route
from tracegroup.diff import VERDICTS, Diff, diff
from tracegroup.grouping import PER_CALL, STRATEGIES, Context, Grouping, Options, group
from tracegroup.load import LoadError, expand_paths, upgrade_legacy
from tracegroup.load.columns import Columns
from tracegroup.load.lenient import parse_message
from tracegroup.load.proto import GZIP_MAGIC, ZSTD_MAGIC, _frame_payload, decode_binary
from tracegroup.model import Batch, Source, SpanTable, gc_paused, kind_name, span_hex
from tracegroup.routes import Routes

#: Bytes of memory the in-memory ``analyze`` needs per byte of input (measured: ~2x, with margin).
MEMORY_PER_INPUT_BYTE = 4
#: Most spans buffered per partition before a row group is written (fewer when the budget is small).
FLUSH_ROWS = 1 << 16
#: Bytes a buffered span may take (its columns, ~70 bytes, and a name), to keep the buffers within the budget.
BUFFERED_SPAN_BYTES = 128
_NAME = attrgetter("name")
#: Strategies that read span flags (the parent-remote bits); the ``service+remote`` boundary does too.
FLAG_STRATEGIES = {"remote-parent", "sentry-otlp"}


def memory_needed(paths: list[Path]) -> int:
    """Estimated peak memory of the in-memory path for these files (bytes)."""
    return MEMORY_PER_INPUT_BYTE * sum(p.stat().st_size for p in paths if str(p) != "-")


def default_memory() -> int:
    """Half of the machine's physical memory (the default ``--memory``)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 4 << 30


def refuse(what: str, needed: int, budget: int) -> ValueError:
    return ValueError(
        f"{what} needs every span in memory: about {needed / 1e6:,.0f} MB, over the --memory budget of "
        f"{budget / 1e6:,.0f} MB (raise --memory)"
    )


@dataclass
class _Partial:
    """What the partitions add up to."""

    spans: int = 0
    traces: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(VERDICTS), dtype=np.int64))
    blamed: int = 0
    ref_tx: int = 0
    ref_incomplete: int = 0
    intact: int = 0
    cut_into_max: int = 0
    compared_tx: int = 0
    one_span: int = 0
    in_incomplete: int = 0
    causes: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    per_service: dict[str, np.ndarray] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    with_not_ok: int = 0
    names: dict[str, str] = field(default_factory=dict)  # strategy names as the groupings give them
    # worst-trace candidates: (not_ok, spans, first global row, record, head partition row, partition)
    worst: list[tuple[int, int, int, dict[str, Any], int, int]] = field(default_factory=list)


class _Spill:
    """Per-partition Parquet writers with buffered rows (uncompressed, no dictionary, no statistics: the
    spill is read once, soon, from a local disk, so encoding it is the cost to cut)."""

    def __init__(self, directory: str, partitions: int, names: list[str], flush_rows: int) -> None:
        self.dir, self.n, self.columns, self.flush_rows = directory, partitions, names, flush_rows
        self.buf: list[list[dict[str, np.ndarray | list[str]]]] = [[] for _ in range(partitions)]
        self.rows = [0] * partitions
        self.writers: list[Any] = [None] * partitions

    def path(self, k: int) -> str:
        return os.path.join(self.dir, f"part-{k:04d}.parquet")

    def add(self, cols: dict[str, Any], part: np.ndarray) -> None:
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.n + 1))
        names = cols.get("name")
        for k in range(self.n):
            sel = order[bounds[k] : bounds[k + 1]]
            if not len(sel):
                continue
            chunk = {c: v[sel] for c, v in cols.items() if c != "name"}
            if names is not None:
                chunk["name"] = [names[i] for i in sel.tolist()]
            self.buf[k].append(chunk)
            self.rows[k] += len(sel)
            if self.rows[k] >= self.flush_rows:
                self.flush(k)

    def flush(self, k: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buf[k]:
            return
        arrays = {}
        for c in self.columns:
            if c == "name":
                arrays[c] = pa.array([s for b in self.buf[k] for s in b[c]], type=pa.string())
            elif c == "trace_id":
                raw = np.concatenate([b[c] for b in self.buf[k]]).tobytes()
                arrays[c] = pa.FixedSizeBinaryArray.from_buffers(
                    pa.binary(16), len(raw) // 16, [None, pa.py_buffer(raw)]
                )
            else:
                arrays[c] = pa.array(np.concatenate([b[c] for b in self.buf[k]]))
        batch = pa.table(arrays)
        if self.writers[k] is None:
            self.writers[k] = pq.ParquetWriter(
                self.path(k), batch.schema, compression="none", use_dictionary=False, write_statistics=False
            )
        self.writers[k].write_table(batch, row_group_size=max(len(batch), 1))
        self.buf[k], self.rows[k] = [], 0

    def close(self) -> list[str]:
        out = []
        for k in range(self.n):
            self.flush(k)
            if self.writers[k] is not None:
                self.writers[k].close()
                out.append(self.path(k))
        return out


def _frames(
    path: Path, name: str, src: Source, offsets: list[int] | None = None
) -> Iterator[bytes | memoryview]:
    """The messages of a clean file exporter stream, read frame by frame (the format named on ``src``);
    each frame's payload offset is appended to ``offsets`` when given."""
    with open(path, "rb") as f:
        k = 0
        while head := f.read(4):
            k += 1
            if len(head) < 4:
                raise LoadError(
                    f"{name}: damaged stream ({len(head)} stray bytes at the end): too large "
                    "to repair in streaming mode, raise --memory"
                )
            length = int.from_bytes(head, "big")
            if offsets is not None:
                offsets.append(f.tell())
            payload = f.read(length)
            if len(payload) < length or (length == 0 and k > 1):
                raise LoadError(
                    f"{name}: damaged stream at message {k}: too large to repair in streaming "
                    "mode, raise --memory"
                )
            data, kind = _frame_payload(payload, name, k)
            if k == 1 and kind != "proto":
                src.format = {
                    "zstd": "otlp-proto-stream+zstd-messages",
                    "proto+json": "otlp-json-stream",
                }.get(kind, "otlp-json-stream+zstd-messages")
            if data is None:
                raise LoadError(
                    f"{name}: message {k} is not an OTLP TracesData message: too large to "
                    "repair in streaming mode, raise --memory"
                )
            yield data


def _streamable(path: Path) -> bool:
    """Whether ``path`` starts like a file exporter proto stream (length prefix, then a message)."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 5 or head[:2] == GZIP_MAGIC or head[:4] == ZSTD_MAGIC or head[:1] in (b"{", b"["):
        return False
    return head[4:5] in (b"\x0a", b"\x28")  # TracesData field 1, or a zstd frame inside


def _messages(
    path: Path, budget: int, offsets: list[int] | None = None, shown: str | None = None
) -> tuple[Source, Iterator[bytes | memoryview]]:
    """A file's source record and its messages: frame by frame when it is a stream too large for the
    budget (each frame's offset appended to ``offsets``), else decoded whole as the loader does.
    ``shown``: the name to report (standard input copied to ``path``)."""
    name = shown or str(path)
    if path.stat().st_size * MEMORY_PER_INPUT_BYTE > budget and _streamable(path):
        src = Source(name, "otlp-proto-stream")
        return src, _frames(path, name, src, offsets)
    decoded = decode_binary(path.read_bytes(), name)
    src = Source(
        name,
        decoded.format,
        warnings=decoded.warnings,
        notes=decoded.notes,
        bytes_skipped=decoded.bytes_skipped,
    )
    src.messages_held = len(decoded.messages) if decoded.messages_held is None else decoded.messages_held
    src.spans_held = decoded.spans_unread
    return src, iter(decoded.messages)


def _parsed(raw: bytes | memoryview, src: Source, k: int) -> tuple[TracesData, bytes | memoryview, int, int]:
    """A message parsed as the loader parses it: (message, the bytes it keeps as the batch — repaired or
    upgraded messages re-encoded —, invalid strings, their spans); legacy groups counted on ``src``."""
    td, strings, spans = parse_message(raw)
    if td is None:
        raise LoadError(
            f"{src.path}: message {k + 1} is not an OTLP TracesData message: too large "
            "to repair in streaming mode, raise --memory"
        )
    if strings:
        raw = td.SerializeToString()
    moved = upgrade_legacy(td)
    if moved:
        raw = td.SerializeToString()
        src.notes["legacy_instrumentation_library_spans"] = (
            src.notes.get("legacy_instrumentation_library_spans", 0) + moved
        )
    return td, raw, strings, spans if strings else 0


def _partition_of(trace_id: np.ndarray, n_parts: int) -> np.ndarray:
    """The partition of each span: a hash of its trace id's low 64 bits."""
    low = trace_id.view(np.uint64).reshape(-1, 2)[:, 1]
    return ((low * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) % np.uint64(n_parts)


@dataclass
class Spilled:
    """What the streaming pass leaves: the partition files and what the merge needs of the whole dump.

    ``locators``: per batch (global batch number) the input file index and the offset of its frame
    payload (-1 when the file is decoded whole: then ``message`` is its index in the file);
    ``batch_start``: the first global row of each batch; ``chunk_of``: per batch the row chunk it belongs
    to (whole batches of about half the budget), ``chunk_start``: the first row of each chunk and the end.
    """

    work: str
    budget: int
    files: list[Path]
    shown: list[str]
    parts: list[str]
    sources: list[Source]
    services: list[str]
    spans: int
    batches: str
    per_call: bool
    n_calls: int
    call_notes: dict[str, int]
    names_seen: dict[str, str]
    locators: list[tuple[int, int, int]]
    batch_start: np.ndarray
    chunk_of: np.ndarray
    chunk_start: np.ndarray

    @property
    def n_batches(self) -> int:
        return len(self.locators)

    def messages(self) -> Iterator[tuple[int, Source, int, bytes | memoryview]]:
        """Every message again, in input order: (file index, its source, index in the file, bytes)."""
        for i, path in enumerate(self.files):
            src, messages = _messages(path, self.budget, shown=self.shown[i])
            for k, raw in enumerate(messages):
                yield i, src, k, raw

    def span_names(self, rows: list[int]) -> dict[int, str]:
        """Span names of a few global rows, read back from their input messages."""
        import sys

        out: dict[int, str] = {}
        want: dict[int, list[int]] = {}
        for r in rows:
            b = int(np.searchsorted(self.batch_start, r, side="right")) - 1
            want.setdefault(b, []).append(r)
        whole: dict[int, list[bytes | memoryview]] = {}
        for b, rs in sorted(want.items()):
            fi, offset, k = self.locators[b]
            if offset >= 0:
                with open(self.files[fi], "rb") as f:
                    f.seek(offset - 4)
                    payload = f.read(int.from_bytes(f.read(4), "big"))
                raw = _frame_payload(payload, self.shown[fi], k + 1)[0]
            else:
                if fi not in whole:
                    whole[fi] = list(_messages(self.files[fi], sys.maxsize, shown=self.shown[fi])[1])
                raw = whole[fi][k]
            assert raw is not None
            td = _parsed(raw, Source("", ""), k)[0]
            names = [sp.name for rs_ in td.resource_spans for ss in rs_.scope_spans for sp in ss.spans]
            for r in rs:
                out[r] = names[r - int(self.batch_start[b])]
        return out


def check_spill(files: list[Path], budget: int) -> int:
    """The memory the in-memory path needs for ``files``; ``ValueError`` when pyarrow (the spill's file
    format) is missing."""
    needed = memory_needed(files)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError(
            f"the dumps need about {needed / 1e6:,.0f} MB, over the --memory budget of {budget / 1e6:,.0f} "
            "MB, and streaming them needs pyarrow: pip install pyarrow (or raise --memory)"
        ) from None
    return needed


def check_options(needed: int, budget: int, compare: str, reference: str, batches: str | None) -> None:
    """``ValueError`` (one line) for an unknown strategy or what the spill cannot do (module docstring)."""
    for name in (compare, reference):
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r} (choose from {', '.join(sorted(STRATEGIES))})")
    if batches not in (None, "captured", "trace"):
        raise refuse(f"--batches {batches}", needed, budget)
    if reference in PER_CALL and batches != "trace":
        raise refuse(f"--reference {reference}", needed, budget)


@contextmanager
def spilled(
    paths: list[str] | tuple[str, ...] | list[Path],
    *,
    budget: int,
    service_attribute: str = "service.name",
    compare: str = "sentryexporter",
    reference: str = "service",
    batches: str | None = None,
    routes: str | Routes = "none",
    boundary: str = "service",
    partitions: int | None = None,
    names: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[Spilled]:
    """The streaming pass into a spill in a temporary directory (removed on exit): every span's columns
    (``names``: its name too) in the Parquet file of its partition (see the module docstring)."""
    files = expand_paths(paths)
    needed = check_spill(files, budget)
    check_options(needed, budget, compare, reference, batches)
    n_parts = partitions or max(1, min(256, -(-needed // max(budget // 2, 1))))
    work = tempfile.mkdtemp(prefix="tracegroup-spill-")
    try:
        with gc_paused():
            yield _spill_pass(
                files,
                work,
                n_parts,
                budget,
                service_attribute,
                compare,
                reference,
                batches,
                routes,
                boundary,
                names,
                progress,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def analyze_spilled(
    paths: list[str] | tuple[str, ...],
    *,
    budget: int,
    service_attribute: str = "service.name",
    compare: str = "sentryexporter",
    reference: str = "service",
    batches: str | None = None,
    routes: str | Routes = "none",
    boundary: str = "service",
    top: int = 10,
    partitions: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, Any], list[Source]]:
    """The summary of ``analyze`` computed through a spill (see the module docstring), and the sources."""
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
        acc = _Partial(names=dict(sp.names_seen))
        for part in partition_groupings(sp, compare, reference, routes, boundary, acc.notes, progress):
            _add(part, sp.services, acc, top)
            acc.names.setdefault("reference", part.ref.strategy)
            acc.names.setdefault("compare", part.cmp.strategy)
        return _summary(acc, sp, compare, reference, routes, boundary, top), sp.sources


def _spill_pass(
    files: list[Path],
    work: str,
    n_parts: int,
    budget: int,
    service_attribute: str,
    compare: str,
    reference: str,
    batches: str | None,
    routes: str | Routes,
    boundary: str,
    names: bool,
    progress: Callable[[str, int, int], None] | None,
) -> Spilled:
    import sys

    # span flags are read (with the times: half again the extraction's cost) only when a rule uses them
    warm = boundary != "service" or bool({compare, reference} & FLAG_STRATEGIES)
    per_call = compare in PER_CALL and batches != "trace"  # per message; unused if the dump has one
    columns = ["row", "trace_id", "span_id", "parent_id", "kind", "service", "batch", "flags", "bad"]
    if per_call:
        columns += ["croot", "creason"]
    if names:
        columns.append("name")
    names_seen: dict[str, str] = {}
    flush_rows = max(4096, min(FLUSH_ROWS, budget // 2 // (n_parts * BUFFERED_SPAN_BYTES)))
    spill = _Spill(work, n_parts, columns, flush_rows)
    services: dict[str, int] = {}
    sources: list[Source] = []
    shown: list[str] = []
    paths: list[Path] = []
    locators: list[tuple[int, int, int]] = []
    batch_start: list[int] = []
    chunk_of: list[int] = []
    chunk_start = [0]
    chunk_bytes = 0
    row = n_calls = 0
    call_notes: dict[str, int] = {}
    options = Options(boundary=boundary)
    for fi, path in enumerate(files):
        name = str(path)
        if name == "-":  # read once here, then again from a copy (head names, later passes)
            name, path = "<stdin>", Path(work) / "stdin"
            path.write_bytes(sys.stdin.buffer.read())
        paths.append(path)
        shown.append(name)
        offsets: list[int] = []
        src, messages = _messages(path, budget, offsets, shown=name)
        sources.append(src)
        bad_strings = bad_spans = 0
        for k, raw in enumerate(messages):
            td, raw, strings, spans = _parsed(raw, src, k)
            bad_strings += strings
            bad_spans += spans
            cols = Columns(service_attribute, warm=warm)
            cols.services = services  # one service numbering for the whole dump
            b = len(locators)
            n = cols.add_message(td, b)
            locators.append((fi, offsets[k] if offsets else -1, k))
            batch_start.append(row)
            if chunk_bytes and chunk_bytes + len(raw) * MEMORY_PER_INPUT_BYTE > budget // 2:
                chunk_start.append(row)
                chunk_bytes = 0
            chunk_bytes += len(raw) * MEMORY_PER_INPUT_BYTE
            chunk_of.append(len(chunk_start) - 1)
            mini = cols.table([Batch(fi, b"", n)], [])
            mini.services = list(services)
            out: dict[str, Any] = {
                "row": np.arange(row, row + n, dtype=np.int64),
                "trace_id": mini.trace_id,
                "span_id": mini.span_id,
                "parent_id": mini.parent_id,
                "kind": mini.kind,
                "service": mini.service,
                "batch": np.full(n, b, dtype=np.int32),
                "flags": mini.flags if warm else np.zeros(n, dtype=np.uint32),
                "bad": mini.bad_ids,
            }
            if names:
                span_names: list[str] = []
                for rs in td.resource_spans:
                    for ss in rs.scope_spans:
                        span_names.extend(map(_NAME, ss.spans))
                out["name"] = span_names
            del td
            if n:
                d = route(mini, np.zeros(n, dtype=np.int64), "captured", routes)
                n_calls += d.n_calls
            if per_call and n:
                # the per-call strategies look up parents by span id inside each call, not in the forest
                flat = tree.Forest(np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool))
                g = group(Context(mini, flat, d, options, lossy=True), compare)
                names_seen["compare"] = g.strategy
                out["croot"] = np.where(g.root >= 0, g.root + row, -1)
                out["creason"] = g.reason
                for key, v in g.notes.items():
                    if key != "exporter_calls" and isinstance(v, int):
                        call_notes[key] = call_notes.get(key, 0) + v
            if n:
                spill.add(out, _partition_of(mini.trace_id, n_parts))
            row += n
            src.spans += n
            src.batches += 1
            if progress and src.batches % 64 == 0:
                progress(src.path, row, len(files))
        src.note_invalid_utf8(bad_strings, bad_spans)
        if src.messages_held == 0:
            src.messages_held = src.batches
        src.spans_held += src.spans
        if progress:
            progress(src.path, row, len(files))
    chunk_start.append(row)
    n_batches = len(locators)
    if batches is None:  # as tracegroup.batching.default_batches
        batches = "captured" if n_batches > 1 else "trace"
    return Spilled(
        work=work,
        budget=budget,
        files=paths,
        shown=shown,
        parts=spill.close(),
        sources=sources,
        services=list(services),
        spans=row,
        batches=batches,
        per_call=per_call and batches == "captured",
        n_calls=n_calls,
        call_notes=call_notes,
        names_seen=names_seen,
        locators=locators,
        batch_start=np.array(batch_start + [row], dtype=np.int64),
        chunk_of=np.array(chunk_of, dtype=np.int64),
        chunk_start=np.array(chunk_start, dtype=np.int64),
    )


@dataclass
class Part:
    """One partition's spans and groupings, as the in-memory analysis would compute them for its traces:
    ``rows``: the global row of each partition row (increasing); ``names``: the span names when spilled."""

    k: int
    table: SpanTable
    forest: tree.Forest
    delivery: Any
    ref: Grouping
    cmp: Grouping
    diff: Diff
    rows: np.ndarray
    names: list[str] | None


def partition_groupings(
    sp: Spilled,
    compare: str,
    reference: str,
    routes: str | Routes,
    boundary: str,
    notes: dict[str, int],
    progress: Callable[[str, int, int], None] | None = None,
) -> Iterator[Part]:
    """Each partition's groupings and diff, in partition order; the whole-trace compared grouping's notes
    (and ``exporter_calls``) are added to ``notes``."""
    import pyarrow.parquet as pq

    options = Options(boundary=boundary)
    if isinstance(routes, Routes):
        options.project_of_service = {s: r.name for s in sp.services if (r := routes.route_of(s)) is not None}
    for k, path in enumerate(sp.parts):
        data = pq.read_table(path)
        col = {c: data.column(c).combine_chunks() for c in data.column_names}
        n = len(data)
        tid = np.frombuffer(
            col["trace_id"].buffers()[1], dtype="V16", count=n, offset=16 * col["trace_id"].offset
        )
        zeros = np.zeros(n, dtype=np.int32)
        t = SpanTable(
            trace_id=tid,
            span_id=col["span_id"].to_numpy(),
            parent_id=col["parent_id"].to_numpy(),
            kind=col["kind"].to_numpy(),
            service=col["service"].to_numpy(),
            batch=col["batch"].to_numpy(),
            res=zeros,
            scope=zeros,
            idx=zeros,
            services=sp.services,
            batches=[],
            sources=[],
            bad_ids=col["bad"].to_numpy(zero_copy_only=False),
        )
        t.__dict__["_warm"] = (col["flags"].to_numpy(), zeros.astype(np.int64), zeros.astype(np.int64))
        grow = col["row"].to_numpy()
        names = col["name"].to_pylist() if "name" in col else None
        forest = tree.build(t, timing=False)
        base = t.batch.astype(np.int64) if sp.batches == "captured" else t.trace_code
        delivery = route(t, base, sp.batches, routes)
        ref = group(Context(t, forest, delivery, options), reference)
        if sp.per_call:
            croot = col["croot"].to_numpy()
            local = np.minimum(np.searchsorted(grow, croot), max(n - 1, 0))
            ok = croot < 0
            found = ~ok & (grow[local] == croot) if n else ok
            if not np.all(ok | found):
                raise ValueError(
                    "span ids shared across traces inside one exporter call put a compared transaction in "
                    "two partitions: analyze this dump in memory (raise --memory)"
                )
            cmp = Grouping(
                sp.names_seen.get("compare", compare),
                np.where(ok, -1, local).astype(np.int64),
                col["creason"].to_numpy().astype(np.int8),
            )
        else:
            cmp = group(Context(t, forest, delivery, options, lossy=True), compare)
            for key, v in cmp.notes.items():
                if key != "exporter_calls" and isinstance(v, int):
                    notes[key] = notes.get(key, 0) + v
            notes["exporter_calls"] = notes.get("exporter_calls", 0) + delivery.n_calls
        del data, col
        yield Part(k, t, forest, delivery, ref, cmp, diff(t, ref, cmp), grow, names)
        if progress:
            progress(f"partition {k + 1}/{len(sp.parts)}", sp.spans, len(sp.files))


def _add(part: Part, services: list[str], acc: _Partial, top: int) -> None:
    """Add one partition's numbers to ``acc``."""
    t, forest, cmp, d, grow, n = part.table, part.forest, part.cmp, part.diff, part.rows, len(part.rows)
    acc.spans += n
    acc.traces += t.n_traces
    acc.counts += np.bincount(d.verdict, minlength=len(VERDICTS))
    acc.blamed += int(d.blamed.sum())
    tx = d.transaction_arrays()
    acc.ref_tx += len(tx["root"])
    acc.ref_incomplete += int(tx["incomplete"].sum())
    acc.intact += int(tx["intact"].sum())
    acc.cut_into_max = max(acc.cut_into_max, int(tx["cut_into"].max()) if len(tx["root"]) else 0)
    acc.compared_tx += len(cmp.roots())
    acc.one_span += int(((cmp.sizes() == 1) & (cmp.root == np.arange(n))).sum())
    acc.in_incomplete += int((d.incomplete & (d.verdict != 0)).sum())
    for rec in d.cause_records():
        c = acc.causes.setdefault((rec["verdict"], rec["cause"], rec["service"]), [0, 0])
        c[0] += rec["spans"]
        c[1] += rec["in_incomplete"]
    for key, arr in d.by_arrays("service").items():
        acc.per_service[key] = acc.per_service.get(key, 0) + arr
    for key, v in forest.counts().items():
        acc.anomalies[key] = acc.anomalies.get(key, 0) + v
    per_trace = d.by_arrays("trace")
    not_ok = per_trace["spans"] - per_trace["ok"]
    acc.with_not_ok += int((not_ok > 0).sum())
    first = np.full(t.n_traces, n, dtype=np.int64)
    np.minimum.at(first, t.trace_code, np.arange(n))
    worst = worst_first(d)[: min(top, int((not_ok > 0).sum()))]
    if len(worst):
        head = head_rows(t, forest)
        for c in worst.tolist():
            rec = {
                "trace_id": t.trace_hex[c],
                "not_ok": int(not_ok[c]),
                **{
                    key: int(per_trace[key][c])
                    for key in ("spans", *VERDICTS, "transactions", "compared_transactions")
                },
            }
            h = int(head[c])
            rec["_head"] = (services[int(t.service[h])], int(t.kind[h]), span_hex(t.span_id[h]))
            acc.worst.append(
                (int(not_ok[c]), int(per_trace["spans"][c]), int(grow[first[c]]), rec, int(grow[h]), part.k)
            )


def _summary(
    acc: _Partial,
    sp: Spilled,
    compare: str,
    reference: str,
    routes: str | Routes,
    boundary: str,
    top: int,
) -> dict[str, Any]:
    services, batches = sp.services, sp.batches
    n = acc.spans
    counts = {v: int(acc.counts[i]) for i, v in enumerate(VERDICTS)}
    misgrouped = counts["split"] + counts["merged"] + counts["orphaned"]
    acc.worst.sort(key=lambda w: (-w[0], -w[1], w[2]))
    chosen = acc.worst[: min(top, acc.with_not_ok)]
    names = sp.span_names([w[4] for w in chosen])
    worst = []
    for not_ok, _, _, rec, h, _ in chosen:
        svc, kind, sid = rec.pop("_head")
        head = f"{svc or '(no service)'}: {names[h]} ({kind_name(kind)}, {sid})"
        worst.append(
            {
                "trace_id": rec["trace_id"],
                "head": head,
                "not_ok": not_ok,
                **{key: rec[key] for key in ("spans", *VERDICTS, "transactions", "compared_transactions")},
            }
        )
    svc = {key: np.asarray(v) for key, v in acc.per_service.items()}
    if not svc:
        svc = {key: np.zeros(len(services), dtype=np.int64) for key in ("spans", "blamed")}
    order = np.lexsort((-svc["spans"], -svc["blamed"]))
    routes_name = f"file:{routes.path}" if isinstance(routes, Routes) else routes
    notes = sp.call_notes if sp.per_call else {k: v for k, v in acc.notes.items() if k != "exporter_calls"}
    exporter_calls = sp.n_calls if batches == "captured" else acc.notes.get("exporter_calls", 0)
    ref_name = acc.names.get("reference", reference)
    cmp_name = acc.names.get("compare", compare)
    records = [
        {"verdict": key[0], "cause": key[1], "service": key[2], "spans": c[0], "in_incomplete": c[1]}
        for key, c in acc.causes.items()
    ]
    return {
        "input": {
            "files": [s.as_dict() for s in sp.sources],
            "spans": n,
            "traces": acc.traces,
            "services": len(services),
            "batches": sp.n_batches,
        },
        "options": {
            "reference": ref_name,
            "compare": cmp_name,
            "batches": batches,
            "routes": routes_name,
            "boundary": boundary,
            "heal": False,
        },
        "reference": {
            "strategy": ref_name,
            "transactions": acc.ref_tx,
            "incomplete_transactions": acc.ref_incomplete,
        },
        "compared": {
            "strategy": cmp_name,
            "transactions": acc.compared_tx,
            "sentry_events": acc.compared_tx,
            "one_span_transactions": acc.one_span,
            "exporter_calls": exporter_calls,
            "per_exporter_call": compare in PER_CALL,
            **notes,
        },
        "verdicts": counts,
        "misgrouped": {"spans": misgrouped, "ratio": _ratio(n, misgrouped)},
        "dropped": {"spans": counts["dropped"], "ratio": _ratio(n, counts["dropped"])},
        "blamed": {"spans": acc.blamed, "ratio": _ratio(n, acc.blamed)},
        "in_incomplete_transactions": acc.in_incomplete,
        "transactions": {
            "total": acc.ref_tx,
            "intact": acc.intact,
            "broken": acc.ref_tx - acc.intact,
            "cut_into_max": acc.cut_into_max,
        },
        "causes": sorted(records, key=lambda r: (-r["spans"], r["verdict"], r["cause"], r["service"])),
        "per_service": [
            {"name": services[i], **{key: int(v[i]) for key, v in svc.items()}} for i in order.tolist()
        ],
        "worst_traces": worst,
        "anomalies": acc.anomalies,
        "repairs": [],
    }
