"""``analyze`` of dumps larger than memory: one streaming pass into an on-disk Parquet spill partitioned
by trace id, then the groupings, the diff and the summary partition by partition, merged.

Contract: :func:`analyze_spilled` returns exactly :meth:`tracegroup.analysis.Analysis.summary` of the
same dumps and options analysed in memory, while holding at once one input message, the spill's write
buffers and one partition's columns (never the dump's bytes):

1. One pass reads every message (a file exporter stream is read frame by frame; other files, and files
   that fit in the budget, are read whole as :func:`tracegroup.load.load` reads them, with the same
   notes and warnings), extracts the hot columns, runs a per-call compared strategy
   (``sentryexporter``) on each message's exporter calls (``--batches captured``: a call never spans
   two messages), and appends each span's columns (global row, ids, kind, service, batch, flags, name,
   compared root and reason) to the Parquet file of its partition (a hash of the trace id).
2. Each partition holds whole traces, so the forest, the reference grouping, a whole-trace (or
   ``--batches trace``) compared grouping and the diff run on it alone, as
   :func:`tracegroup.analysis.analyze` would on the whole table; counts add up, per-service arrays add
   up, the worst traces are the best candidates of every partition, cause records merge by key.

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
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from tracegroup import tree
from tracegroup.analysis import _ratio, worst_first
from tracegroup.batching import route
from tracegroup.diff import VERDICTS, diff
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
#: Bytes a buffered span may take (its columns and its name), to keep every buffer within the budget.
BUFFERED_SPAN_BYTES = 256
_NAME = attrgetter("name")


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
    """Per-partition Parquet writers with buffered rows."""

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
        names = cols["name"]
        for k in range(self.n):
            sel = order[bounds[k] : bounds[k + 1]]
            if not len(sel):
                continue
            chunk = {c: v[sel] for c, v in cols.items() if c != "name"}
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
            self.writers[k] = pq.ParquetWriter(self.path(k), batch.schema)
        self.writers[k].write_table(batch)
        self.buf[k], self.rows[k] = [], 0

    def close(self) -> list[str]:
        out = []
        for k in range(self.n):
            self.flush(k)
            if self.writers[k] is not None:
                self.writers[k].close()
                out.append(self.path(k))
        return out


def _frames(path: Path, name: str, src: Source) -> Iterator[bytes | memoryview]:
    """The messages of a clean file exporter stream, read frame by frame (the format named on ``src``)."""
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


def _messages(path: Path, budget: int) -> tuple[Source, Iterator[bytes | memoryview]]:
    name = str(path)
    if name != "-" and path.stat().st_size * MEMORY_PER_INPUT_BYTE > budget and _streamable(path):
        src = Source(name, "otlp-proto-stream")
        return src, _frames(path, name, src)
    data = path.read_bytes() if name != "-" else __import__("sys").stdin.buffer.read()
    decoded = decode_binary(data, "<stdin>" if name == "-" else name)
    src = Source(
        "<stdin>" if name == "-" else name,
        decoded.format,
        warnings=decoded.warnings,
        notes=decoded.notes,
        bytes_skipped=decoded.bytes_skipped,
    )
    src.messages_held = len(decoded.messages) if decoded.messages_held is None else decoded.messages_held
    src.spans_held = decoded.spans_unread
    return src, iter(decoded.messages)


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
    files = expand_paths(paths)
    needed = memory_needed(files)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError(
            f"the dumps need about {needed / 1e6:,.0f} MB, over the --memory budget of {budget / 1e6:,.0f} "
            "MB, and streaming them needs pyarrow: pip install pyarrow (or raise --memory)"
        ) from None
    for name in (compare, reference):
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r} (choose from {', '.join(sorted(STRATEGIES))})")
    if batches not in (None, "captured", "trace"):
        raise refuse(f"--batches {batches}", needed, budget)
    if reference in PER_CALL and batches != "trace":
        raise refuse(f"--reference {reference}", needed, budget)
    n_parts = partitions or max(1, min(256, -(-needed // max(budget // 2, 1))))
    work = tempfile.mkdtemp(prefix="tracegroup-spill-")
    try:
        with gc_paused():
            return _run(
                files,
                work,
                n_parts,
                budget,
                needed,
                service_attribute,
                compare,
                reference,
                batches,
                routes,
                boundary,
                top,
                progress,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    files: list[Path],
    work: str,
    n_parts: int,
    budget: int,
    needed: int,
    service_attribute: str,
    compare: str,
    reference: str,
    batches: str | None,
    routes: str | Routes,
    boundary: str,
    top: int,
    progress: Callable[[str, int, int], None] | None,
) -> tuple[dict[str, Any], list[Source]]:
    per_call = compare in PER_CALL and batches != "trace"  # per message; unused if the dump has one
    names = ["row", "trace_id", "span_id", "parent_id", "kind", "service", "batch", "flags", "bad", "name"]
    if per_call:
        names += ["croot", "creason"]
    names_seen: dict[str, str] = {}
    flush_rows = max(1024, min(FLUSH_ROWS, budget // 4 // (n_parts * BUFFERED_SPAN_BYTES)))
    spill = _Spill(work, n_parts, names, flush_rows)
    services: dict[str, int] = {}
    sources: list[Source] = []
    row = n_batches = n_calls = 0
    call_notes: dict[str, int] = {}
    options = Options(boundary=boundary)
    for path in files:
        src, messages = _messages(path, budget)
        sources.append(src)
        bad_strings = bad_spans = 0
        for k, raw in enumerate(messages):
            td, strings, spans = parse_message(raw)
            if td is None:
                raise LoadError(
                    f"{src.path}: message {k + 1} is not an OTLP TracesData message: too large "
                    "to repair in streaming mode, raise --memory"
                )
            bad_strings += strings
            bad_spans += spans if strings else 0
            moved = upgrade_legacy(td)
            if moved:
                src.notes["legacy_instrumentation_library_spans"] = (
                    src.notes.get("legacy_instrumentation_library_spans", 0) + moved
                )
            cols = Columns(service_attribute, warm=True)
            cols.services = services  # one service numbering for the whole dump
            n = cols.add_message(td, n_batches)
            mini = cols.table([Batch(len(sources) - 1, b"", n)], [])
            mini.services = list(services)
            span_names: list[str] = []
            for rs in td.resource_spans:
                for ss in rs.scope_spans:
                    span_names.extend(map(_NAME, ss.spans))
            del td
            rows = np.arange(row, row + n, dtype=np.int64)
            out: dict[str, Any] = {
                "row": rows,
                "trace_id": mini.trace_id,
                "span_id": mini.span_id,
                "parent_id": mini.parent_id,
                "kind": mini.kind,
                "service": mini.service,
                "batch": np.full(n, n_batches, dtype=np.int32),
                "flags": mini.flags,
                "bad": mini.bad_ids,
                "name": span_names,
            }
            if n:
                d = route(mini, np.zeros(n, dtype=np.int64), "captured", routes)
                n_calls += d.n_calls
            if per_call and n:
                g = group(Context(mini, tree.build(mini, timing=False), d, options, lossy=True), compare)
                names_seen["compare"] = g.strategy
                out["croot"] = np.where(g.root >= 0, g.root + row, -1)
                out["creason"] = g.reason
                for key, v in g.notes.items():
                    if key != "exporter_calls" and isinstance(v, int):
                        call_notes[key] = call_notes.get(key, 0) + v
            if n:
                low = mini.trace_id.view(np.uint64).reshape(-1, 2)[:, 1]
                spill.add(out, ((low * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) % np.uint64(n_parts))
            row += n
            n_batches += 1
            src.spans += n
            src.batches += 1
            if progress and src.batches % 64 == 0:
                progress(src.path, row, len(files))
        if bad_strings:
            src.notes["invalid_utf8_strings"] = bad_strings
            src.notes["invalid_utf8_spans"] = bad_spans
            src.warnings.append(
                f"{src.path}: {bad_strings:,} strings ({bad_spans:,} spans) were not valid UTF-8; "
                "decoded with U+FFFD replacement characters, every span kept"
            )
        if src.messages_held == 0:
            src.messages_held = src.batches
        src.spans_held += src.spans
        if progress:
            progress(src.path, row, len(files))
    if batches is None:  # as tracegroup.batching.default_batches
        batches = "captured" if n_batches > 1 else "trace"
    per_call = per_call and batches == "captured"
    parts = spill.close()
    service_list = list(services)
    if isinstance(routes, Routes):
        options.project_of_service = {
            s: r.name for s in service_list if (r := routes.route_of(s)) is not None
        }
    acc = _Partial(names=names_seen)
    for k, part in enumerate(parts):
        _partition(k, part, service_list, acc, per_call, compare, reference, batches, routes, options, top)
        if progress:
            progress(f"partition {k + 1}/{len(parts)}", row, len(files))
    return _summary(
        acc,
        sources,
        service_list,
        n_batches,
        n_calls,
        call_notes,
        compare,
        reference,
        batches,
        routes,
        boundary,
        top,
        parts,
        per_call,
    ), sources


def _partition(
    k: int,
    part: str,
    services: list[str],
    acc: _Partial,
    per_call: bool,
    compare: str,
    reference: str,
    batches: str,
    routes: str | Routes,
    options: Options,
    top: int,
) -> None:
    import pyarrow.parquet as pq

    data = pq.read_table(part, columns=[c for c in pq.read_schema(part).names if c != "name"])
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
        services=services,
        batches=[],
        sources=[],
        bad_ids=col["bad"].to_numpy(zero_copy_only=False),
    )
    t.__dict__["_warm"] = (col["flags"].to_numpy(), zeros.astype(np.int64), zeros.astype(np.int64))
    grow = col["row"].to_numpy()
    forest = tree.build(t, timing=False)
    base = t.batch.astype(np.int64) if batches == "captured" else t.trace_code
    delivery = route(t, base, batches, routes)
    ref = group(Context(t, forest, delivery, options), reference)
    acc.names.setdefault("reference", ref.strategy)
    if per_call:
        croot = col["croot"].to_numpy()
        local = np.searchsorted(grow, croot)
        local = np.minimum(local, max(n - 1, 0))
        ok = croot < 0
        found = ~ok & (grow[local] == croot) if n else ok
        if not np.all(ok | found):
            raise ValueError(
                "span ids shared across traces inside one exporter call put a compared transaction in two "
                "partitions: analyze this dump in memory (raise --memory)"
            )
        cmp = Grouping(
            compare, np.where(ok, -1, local).astype(np.int64), col["creason"].to_numpy().astype(np.int8)
        )
    else:
        cmp = group(Context(t, forest, delivery, options, lossy=True), compare)
        acc.names.setdefault("compare", cmp.strategy)
        for key, v in cmp.notes.items():
            if key != "exporter_calls" and isinstance(v, int):
                acc.notes[key] = acc.notes.get(key, 0) + v
        acc.notes["exporter_calls"] = acc.notes.get("exporter_calls", 0) + delivery.n_calls
    d = diff(t, ref, cmp)
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
        from tracegroup.analysis import head_rows

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
            acc.worst.append(
                (int(not_ok[c]), int(per_trace["spans"][c]), int(grow[first[c]]), rec, int(head[c]), k)
            )
            h = int(head[c])
            rec["_head"] = (services[int(t.service[h])], int(t.kind[h]), span_hex(t.span_id[h]))


def _summary(
    acc: _Partial,
    sources: list[Source],
    services: list[str],
    n_batches: int,
    n_calls: int,
    call_notes: dict[str, int],
    compare: str,
    reference: str,
    batches: str,
    routes: str | Routes,
    boundary: str,
    top: int,
    parts: list[str],
    per_call: bool,
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    n = acc.spans
    counts = {v: int(acc.counts[i]) for i, v in enumerate(VERDICTS)}
    misgrouped = counts["split"] + counts["merged"] + counts["orphaned"]
    acc.worst.sort(key=lambda w: (-w[0], -w[1], w[2]))
    chosen = acc.worst[: min(top, acc.with_not_ok)]
    by_part: dict[int, list[int]] = {}
    for w in chosen:
        by_part.setdefault(w[5], []).append(w[4])
    names: dict[tuple[int, int], str] = {}
    for k, rows in by_part.items():
        column = pq.read_table(parts[k], columns=["name"]).column("name")
        for r in rows:
            names[(k, r)] = column[r].as_py()
    worst = []
    for not_ok, _, _, rec, h, k in chosen:
        svc, kind, sid = rec.pop("_head")
        head = f"{svc or '(no service)'}: {names[(k, h)]} ({kind_name(kind)}, {sid})"
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
    notes = call_notes if per_call else {k: v for k, v in acc.notes.items() if k != "exporter_calls"}
    exporter_calls = n_calls if batches == "captured" else acc.notes.get("exporter_calls", 0)
    ref_name = acc.names.get("reference", reference)
    cmp_name = acc.names.get("compare", compare)
    records = [
        {"verdict": key[0], "cause": key[1], "service": key[2], "spans": c[0], "in_incomplete": c[1]}
        for key, c in acc.causes.items()
    ]
    return {
        "input": {
            "files": [s.as_dict() for s in sources],
            "spans": n,
            "traces": acc.traces,
            "services": len(services),
            "batches": n_batches,
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
