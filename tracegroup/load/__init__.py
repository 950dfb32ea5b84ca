"""Load dump files into a :class:`~tracegroup.model.SpanTable`.

Contract: :func:`load` accepts files and directories (every regular, non-hidden file under a directory,
in name order, which is the file exporter's rotation order), detects each file's format from its content
(:mod:`tracegroup.load.proto`, which hands JSON to :mod:`tracegroup.load.jsonfmt`), keeps each input
message as one batch, and extracts the hot columns in one pass per message (:mod:`tracegroup.load.columns`).
A bad file raises :class:`LoadError` (one line, naming it) unless ``keep_going`` is set, in which case it
becomes a warning on the table and the other files still load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.columns import Columns, table_from_messages
from tracegroup.load.proto import decode_binary, parse_traces
from tracegroup.model import Batch, Source, SpanTable, gc_paused

__all__ = ["LoadError", "Decoded", "load", "expand_paths", "table_from_messages"]


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
    cols = Columns(service_attribute)
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
