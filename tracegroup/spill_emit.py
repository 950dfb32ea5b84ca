"""``tracegroup emit`` past the memory budget: the dump cut into whole-trace sub-dumps, each emitted alone.

Contract: :func:`emit_spilled` returns the :class:`~tracegroup.sentry.emit.EmitResult` that
:func:`tracegroup.sentry.emit.emit` returns for the same dumps and options in memory — the same records
(event ids, services, traces, roots, spans, fates, notes, rows) in the same order, options, counts and
summary — and hands each written event to ``on_written`` as it is built (the envelope files of
:class:`tracegroup.sentry.envelope.DirWriter` are then the same bytes), while holding one partition:

1. One streaming pass (messages as :mod:`tracegroup.spill` reads them) writes every span into the
   file exporter stream of its partition (a hash of its trace id): per input message and partition, one
   message with the same resources and scopes holding that partition's spans, in input order. It
   records each partition's global rows, every trace's first row, the services in input order and the
   newest span end.
2. Each partition is loaded and emitted by :func:`~tracegroup.sentry.emit.emit` (the service grouping,
   sampling, event ids and ``--errors dedup`` see whole traces only). With ``rebase_time`` every
   partition gets the whole dump's shift (``emit(newest_end_ns=…)``: the dump's newest span end).
3. The records merge in the in-memory output order (by trace, in order of the trace's first span, then
   each partition's own order); rows are mapped back to the dump's; notes add up (resource notes, which
   a run counts once, are counted once).

``jsonl``: also write the bare payloads, one per line, in output order (as
:func:`tracegroup.sentry.envelope.write_jsonl`), the payloads waiting in a temporary file meanwhile.
What cannot stream (``--otlp``) is refused by the command. The partitions live in a temporary directory
removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load import expand_paths, load
from tracegroup.load.columns import Columns, table_from_messages
from tracegroup.model import Batch, Source, gc_paused
from tracegroup.redact import Policy
from tracegroup.routes import RenameRule, Routes
from tracegroup.sentry.build import EmittedEvent
from tracegroup.sentry.emit import EmitResult, emit
from tracegroup.sentry.events import MAX_ITEM_BYTES
from tracegroup.spill import _messages, _parsed, _partition_of, check_spill


def emit_spilled(
    paths: list[str] | tuple[str, ...],
    *,
    budget: int,
    service_attribute: str = "service.name",
    routes: Routes | None = None,
    renames: Sequence[RenameRule] = (),
    style: str = "exporter",
    errors: str = "all",
    environment: str = "",
    rebase_time: bool = False,
    now: int | None = None,
    boundary: str = "service",
    max_item_bytes: int = MAX_ITEM_BYTES,
    on_written: Callable[[EmittedEvent], None] | None = None,
    redaction: Policy | None = None,
    replay_id: str = "",
    jsonl: str | Path | None = None,
    partitions: int | None = None,
    on_pass: Callable[[list[Source]], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EmitResult:
    """:func:`tracegroup.sentry.emit.emit` of ``paths`` through partitions (see the module docstring);
    ``on_pass`` gets the sources after the streaming pass; ``progress(what, spans, files)`` is called
    every 64 messages, after each file and after each partition."""
    files = expand_paths(paths)
    needed = check_spill(files, budget)
    n_parts = partitions or max(1, min(256, -(-needed // max(budget // 2, 1))))
    work = tempfile.mkdtemp(prefix="tracegroup-emit-spill-")
    try:
        with gc_paused():
            p = _Pass(work, n_parts, budget, service_attribute)
            p.run(files, progress)
        if on_pass is not None:
            on_pass(p.sources)
        kwargs: dict[str, Any] = {
            "routes": routes,
            "renames": renames,
            "style": style,
            "errors": errors,
            "environment": environment,
            "rebase_time": rebase_time,
            "now": now,
            "boundary": boundary,
            "max_item_bytes": max_item_bytes,
            "redaction": redaction,
            "replay_id": replay_id,
        }
        return _merge(p, kwargs, on_written, jsonl, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Pass:
    """The streaming pass: partition streams, their global rows, first rows of traces, services."""

    def __init__(self, work: str, n_parts: int, budget: int, service_attribute: str) -> None:
        self.work, self.n, self.budget, self.attr = work, n_parts, budget, service_attribute
        self.sources: list[Source] = []
        self.services: dict[str, int] = {}
        self.spans = 0
        self.newest = np.iinfo(np.int64).min
        self.used = np.zeros(n_parts, dtype=bool)

    def stream(self, k: int) -> str:
        return os.path.join(self.work, f"part-{k:04d}.pb")

    def rows(self, k: int) -> str:
        return os.path.join(self.work, f"rows-{k:04d}.bin")

    def run(self, files: list[Path], progress: Callable[[str, int, int], None] | None) -> None:
        import sys

        for path in files:
            name = str(path)
            if name == "-":
                name, path = "<stdin>", Path(self.work) / "stdin"
                path.write_bytes(sys.stdin.buffer.read())
            src, messages = _messages(path, self.budget, shown=name)
            self.sources.append(src)
            bad_strings = bad_spans = 0
            for k, raw in enumerate(messages):
                td, _, strings, spans = _parsed(raw, src, k)
                bad_strings += strings
                bad_spans += spans
                n = self.message(td, len(self.sources) - 1)
                src.spans += n
                src.batches += 1
                if progress and src.batches % 64 == 0:
                    progress(src.path, self.spans, len(files))
            if progress:
                progress(src.path, self.spans, len(files))
            src.note_invalid_utf8(bad_strings, bad_spans)
            if src.messages_held == 0:
                src.messages_held = src.batches
            src.spans_held += src.spans

    def message(self, td: TracesData, source: int) -> int:
        """Cut one message into the partition streams; returns its span count."""
        cols = Columns(self.attr, warm=True)
        cols.services = self.services
        n = cols.add_message(td, 0)
        if not n:
            return 0
        mini = cols.table([Batch(source, b"", n)], [])
        part = _partition_of(mini.trace_id, self.n).astype(np.int64)
        end = mini.end_ns.astype(np.int64)
        self.newest = max(self.newest, int(end.max()))
        rows = np.arange(self.spans, self.spans + n, dtype=np.int64)
        self.spans += n
        present = np.unique(part)
        subs = {int(k): TracesData() for k in present}
        at = 0
        for rs in td.resource_spans:
            made: dict[int, Any] = {}
            for ss in rs.scope_spans:
                spans = ss.spans
                m = len(spans)
                if not m:
                    continue
                here = part[at : at + m]
                for k in np.unique(here).tolist():
                    rs_k = made.get(k)
                    if rs_k is None:
                        rs_k = made[k] = subs[k].resource_spans.add()
                        rs_k.resource.CopyFrom(rs.resource)
                        rs_k.schema_url = rs.schema_url
                    ss_k = rs_k.scope_spans.add()
                    ss_k.scope.CopyFrom(ss.scope)
                    ss_k.schema_url = ss.schema_url
                    ss_k.spans.extend([spans[i] for i in np.flatnonzero(here == k).tolist()])
                at += m
        for k, sub in subs.items():
            data = sub.SerializeToString()
            with open(self.stream(k), "ab") as f:
                f.write(len(data).to_bytes(4, "big") + data)
            with open(self.rows(k), "ab") as f:
                f.write(rows[part == k].tobytes())
            self.used[k] = True
        return n


def _merge(
    p: _Pass,
    kwargs: dict[str, Any],
    on_written: Callable[[EmittedEvent], None] | None,
    jsonl: str | Path | None,
    progress: Callable[[str, int, int], None] | None,
) -> EmitResult:
    payloads = open(os.path.join(p.work, "payloads"), "w+b") if jsonl else None  # noqa: SIM115
    where: dict[str, tuple[int, int]] = {}

    def written(ev: EmittedEvent) -> None:
        if payloads is not None:
            where[ev.event_id] = (payloads.tell(), len(ev.payload))
            payloads.write(ev.payload)
        if on_written is not None:
            on_written(ev)

    keyed: list[tuple[int, int, EmittedEvent]] = []
    notes: dict[str, int] = {}
    options: dict[str, Any] | None = None
    exceptions = 0
    parts = [k for k in range(p.n) if p.used[k]] or [-1]
    newest = p.newest if p.spans else None
    for k in parts:
        if k < 0:  # no span at all
            table = table_from_messages([], service_attribute=p.attr)
            grow = np.zeros(0, dtype=np.int64)
        else:
            table = load([p.stream(k)], service_attribute=p.attr, warm=True)
            grow = np.fromfile(p.rows(k), dtype=np.int64)
        sink = written if on_written or payloads else None
        result = emit(table, on_written=sink, newest_end_ns=newest, **kwargs)
        options = options or result.options
        first = np.full(table.n_traces, len(table), dtype=np.int64)
        np.minimum.at(first, table.trace_code, np.arange(len(table)))
        first_row = dict(zip(table.trace_hex, grow[first].tolist(), strict=True)) if len(table) else {}
        for seq, ev in enumerate(result.records):
            ev.rows = grow[ev.rows]
            keyed.append((first_row[ev.trace_id], seq, ev))
        for key, v in result.notes.items():
            notes[key] = notes.get(key, 0) + v if key == "spans renamed" else max(notes.get(key, 0), v)
        exceptions += result.exception_events
        del table, result
        if progress:
            progress(f"partition {parts.index(k) + 1}/{len(parts)}", p.spans, len(p.sources))
    keyed.sort(key=lambda t: (t[0], t[1]))
    records = [ev for _, _, ev in keyed]
    assert options is not None
    out = EmitResult(
        records,
        options,
        p.spans,
        list(p.services),
        kwargs["routes"],
        notes,
        exception_events=exceptions,
    )
    if payloads is not None and jsonl is not None:
        payloads.flush()
        with open(jsonl, "wb") as f:
            for ev in records:
                if ev.written:
                    offset, length = where[ev.event_id]
                    f.write(os.pread(payloads.fileno(), length, offset) + b"\n")
        payloads.close()
    return out
