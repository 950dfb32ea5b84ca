"""Load dump files into a :class:`~tracegroup.model.SpanTable`.

Contract: :func:`load` accepts files and directories (every regular, non-hidden file under a directory,
in name order, which is the file exporter's rotation order), detects each file's format from its content
(:mod:`tracegroup.load.proto`), keeps each input message as one batch, and extracts the hot columns in one
pass per message with no per-span Python objects beyond what protobuf creates. A bad file raises
:class:`LoadError` (one line, naming it) unless ``keep_going`` is set, in which case it becomes a warning
on the table and the other files still load.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from operator import attrgetter
from pathlib import Path

import numpy as np
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.proto import decode_binary, parse_traces
from tracegroup.model import Batch, Source, SpanTable, gc_paused

__all__ = ["LoadError", "Decoded", "load", "expand_paths", "table_from_messages"]

Z8 = b"\x00" * 8
_HOT = attrgetter("trace_id", "span_id", "parent_span_id", "kind")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named, plus every regular non-hidden file under named directories (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and not any(x.startswith(".") for x in f.parts)
            )
            if not found:
                raise LoadError(f"{p}: directory holds no files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise LoadError(f"{p}: no such file or directory")
    return out


class _Columns:
    """Accumulates hot columns scope by scope and builds the table at the end.

    Per span, one C-level ``attrgetter`` call reads the four hot fields (the floor's own field set); ids
    are joined into one bytes object per scope; per-scope constants (service, batch, position) are stored
    once per scope and expanded with ``np.repeat``.
    """

    def __init__(self, service_attribute: str) -> None:
        self.attr = service_attribute
        self.tid: list[bytes] = []
        self.sid: list[bytes] = []
        self.pid: list[bytes] = []
        self.kinds: list[tuple[int, ...]] = []
        self.scopes: list[tuple[int, int, int, int, int]] = []  # (n, service, batch, resource, scope)
        self.bad: dict[int, np.ndarray] = {}  # span offset of a scope -> bad-id mask of that scope
        self.count = 0
        self.services: dict[str, int] = {}

    def service_code(self, rs: ResourceSpans) -> int:
        """Code of the resource's service name (non-string values as text; "" when absent)."""
        name = ""
        for kv in rs.resource.attributes:
            if kv.key == self.attr:
                which = kv.value.WhichOneof("value")
                name = str(getattr(kv.value, which)) if which else ""
                break
        return self.services.setdefault(name, len(self.services))

    def add_message(self, td: TracesData, batch: int) -> int:
        before = self.count
        for ri, rs in enumerate(td.resource_spans):
            svc = self.service_code(rs)
            for si, ss in enumerate(rs.scope_spans):
                spans = ss.spans
                n = len(spans)
                if not n:
                    continue
                tids, sids, pids, kinds = zip(*map(_HOT, spans), strict=True)
                tid, sid, pid = b"".join(tids), b"".join(sids), b"".join([p or Z8 for p in pids])
                if len(tid) != 16 * n or len(sid) != 8 * n or len(pid) != 8 * n:
                    tid, sid, pid, self.bad[self.count] = _fix_ids(tids, sids, pids)
                self.tid.append(tid)
                self.sid.append(sid)
                self.pid.append(pid)
                self.kinds.append(kinds)
                self.scopes.append((n, svc, batch, ri, si))
                self.count += n
        return self.count - before

    def table(self, batches: list[Batch], sources: list[Source]) -> SpanTable:
        sizes = np.array([sc[0] for sc in self.scopes], dtype=np.int64)
        per_scope = np.array(self.scopes, dtype=np.int64).reshape(-1, 5)
        starts = np.cumsum(sizes) - sizes
        bad = np.zeros(self.count, dtype=bool)
        for offset, mask in self.bad.items():
            bad[offset : offset + len(mask)] = mask
        return SpanTable(
            trace_id=np.frombuffer(b"".join(self.tid), dtype="V16"),
            span_id=np.frombuffer(b"".join(self.sid), dtype=">u8").astype(np.uint64),
            parent_id=np.frombuffer(b"".join(self.pid), dtype=">u8").astype(np.uint64),
            kind=np.fromiter(itertools.chain.from_iterable(self.kinds), dtype=np.int32, count=self.count),
            service=np.repeat(per_scope[:, 1], sizes).astype(np.int32),
            batch=np.repeat(per_scope[:, 2], sizes).astype(np.int32),
            res=np.repeat(per_scope[:, 3], sizes).astype(np.int32),
            scope=np.repeat(per_scope[:, 4], sizes).astype(np.int32),
            idx=(np.arange(self.count) - np.repeat(starts, sizes)).astype(np.int32),
            services=list(self.services),
            batches=batches,
            sources=sources,
            service_attribute=self.attr,
            bad_ids=bad,
        )


def _fix_ids(
    tids: tuple[bytes, ...], sids: tuple[bytes, ...], pids: tuple[bytes, ...]
) -> tuple[bytes, bytes, bytes, np.ndarray]:
    """Slow path for a scope holding empty or wrong-length ids: zero them and flag the spans."""
    bad = np.zeros(len(tids), dtype=bool)
    t_out, s_out, p_out = [], [], []
    for i, (t, s, p) in enumerate(zip(tids, sids, pids, strict=True)):
        ok = len(t) == 16 and len(s) == 8 and len(p) in (0, 8)
        bad[i] = not ok
        t_out.append(t if len(t) == 16 else b"\x00" * 16)
        s_out.append(s if len(s) == 8 else Z8)
        p_out.append(p if len(p) == 8 else Z8)
    return b"".join(t_out), b"".join(s_out), b"".join(p_out), bad


def upgrade_legacy(td: TracesData) -> int:
    """Move spans that OTLP before 0.19 put in ``ResourceSpans.instrumentation_library_spans`` (field 1000,
    wire-compatible with ``ScopeSpans``, unknown to today's protobuf classes) into ``scope_spans``, in
    place; returns how many such groups moved."""
    moved = 0
    for rs in td.resource_spans:
        unknown = UnknownFieldSet(rs)
        if not len(unknown):
            continue
        for f in unknown:
            if f.field_number == 1000 and f.wire_type == 2:
                rs.scope_spans.append(ScopeSpans.FromString(f.data))
                moved += 1
    return moved


def table_from_messages(
    messages: Iterable[bytes], *, service_attribute: str = "service.name", fmt: str = "otlp-proto"
) -> SpanTable:
    """Build a table from serialized TracesData messages (one batch each); used by tests and simulations."""
    cols = _Columns(service_attribute)
    batches: list[Batch] = []
    source = Source("<memory>", fmt)
    for raw in messages:
        n = cols.add_message(TracesData.FromString(raw), len(batches))
        batches.append(Batch(0, raw, n))
        source.spans += n
    source.batches = len(batches)
    return cols.table(batches, [source])


def load(
    paths: str | Path | Iterable[str | Path],
    *,
    service_attribute: str = "service.name",
    keep_going: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> SpanTable:
    """Load every file (see the module docstring). ``progress(path, spans_so_far, n_files)`` is called
    every 64 messages and after each file."""
    if isinstance(paths, str | Path):
        paths = [paths]
    with gc_paused():
        return _load(expand_paths(paths), service_attribute, keep_going, progress)


def _load(
    files: list[Path],
    service_attribute: str,
    keep_going: bool,
    progress: Callable[[str, int, int], None] | None,
) -> SpanTable:
    cols = _Columns(service_attribute)
    batches: list[Batch] = []
    sources: list[Source] = []
    total = 0
    for path in files:
        name = str(path)
        try:
            try:
                data = path.read_bytes()
            except OSError as err:
                raise LoadError(f"{name}: cannot read ({err.strerror or err})") from None
            decoded = decode_binary(data, name)
            del data
            source = Source(name, decoded.format, warnings=decoded.warnings, notes=decoded.notes)
        except LoadError as err:
            if not keep_going:
                raise
            sources.append(Source(name, "unreadable", warnings=[str(err)]))
            continue
        src_index = len(sources)
        sources.append(source)
        for k, raw in enumerate(decoded.messages):
            td = parse_traces(raw)
            if td is None:  # a frame that passed framing but is not TracesData: keep what came before
                source.warnings.append(
                    f"{name}: message {k + 1} is not an OTLP TracesData message; kept the {k} before it"
                )
                break
            moved = upgrade_legacy(td)
            if moved:  # keep the upgraded message, so details decode from the same structure
                raw = td.SerializeToString()
                source.notes["legacy_instrumentation_library_spans"] = (
                    source.notes.get("legacy_instrumentation_library_spans", 0) + moved
                )
            n = cols.add_message(td, len(batches))
            batches.append(Batch(src_index, raw, n))
            source.spans += n
            source.batches += 1
            if progress and source.batches % 64 == 0:
                progress(name, total + source.spans, len(files))
        decoded.messages.clear()
        total += source.spans
        if progress:
            progress(name, total, len(files))
    return cols.table(batches, sources)
