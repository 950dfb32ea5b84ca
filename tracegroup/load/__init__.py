"""Load dump files into a :class:`~tracegroup.model.SpanTable`.

Contract: :func:`load` accepts files and directories (every regular, non-hidden file under a directory,
in name order, which is the file exporter's rotation order), detects each file's format from its content
(:mod:`tracegroup.load.proto`, which hands JSON to :mod:`tracegroup.load.jsonfmt`), keeps each input
message as one batch, and extracts the hot columns in one pass per message (:mod:`tracegroup.load.columns`).
A bad file raises :class:`LoadError` (one line, naming it) unless ``keep_going`` is set, in which case it
becomes a warning on the table and the other files still load. A file written by ``tracegroup capture``
gets each batch's arrival time and its source a ``capture`` summary from its sidecar
(:mod:`tracegroup.load.sidecar`).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, TracesData

from tracegroup.load.base import Decoded, LoadError, LoadMemoryError
from tracegroup.load.columns import Columns, table_from_messages
from tracegroup.load.lenient import count_spans, parse_message
from tracegroup.load.proto import decode_binary
from tracegroup.load.sidecar import read_sidecar
from tracegroup.model import Batch, Source, SpanTable, gc_paused

__all__ = ["LoadError", "LoadMemoryError", "Decoded", "load", "expand_paths", "table_from_messages"]


def _kind_of(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO", ...), None for a regular file."""
    for test, what in (
        (stat.S_ISREG, None),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return what
    return "not a regular file"


#: The path that means standard input (read whole, then detected like any file).
STDIN = "-"


def expand_paths(paths: Iterable[str | Path], problems: list[str] | None = None) -> list[Path]:
    """Files named (``-``: standard input), plus every regular non-hidden file under named directories
    (sorted).

    Hidden means a name starting with ``.`` below the named directory (the directory's own path may hold
    ``..`` or dot-folders). A named file that is not a regular file (a FIFO, ``/dev/zero``) is refused
    before anything reads it; non-regular files under a directory are left out. A subdirectory that cannot
    be listed is a ``LoadError``, or, when ``problems`` is given, a line appended to it.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if str(p) == STDIN:
            out.append(p)
            continue
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise LoadError(f"{p}: no such file or directory") from None
        except OSError as err:
            raise LoadError(f"{p}: cannot read ({err.strerror or err})") from None
        if stat.S_ISDIR(mode):
            found = _walk(p, problems)
            if not found:
                raise LoadError(f"{p}: directory holds no files")
            out.extend(found)
        elif (what := _kind_of(mode)) is not None:
            raise LoadError(f"{p}: is {what}, not a regular file; save the dump to a file first")
        else:
            out.append(p)
    return out


def _walk(top: Path, problems: list[str] | None) -> list[Path]:
    """Regular non-hidden files under ``top`` (sorted); an unlistable subdirectory is reported."""
    found: list[Path] = []

    def failed(err: OSError) -> None:
        line = f"{err.filename or top}: cannot list directory ({err.strerror or err})"
        if problems is None:
            raise LoadError(line)
        problems.append(line)

    for folder, dirs, files in os.walk(top, onerror=failed):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in files:
            if f.startswith("."):
                continue
            path = Path(folder, f)
            try:
                if stat.S_ISREG(path.stat().st_mode):
                    found.append(path)
            except OSError:
                continue
    return sorted(found)


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
    warm: bool | str = False,
) -> SpanTable:
    """Load every file (see the module docstring). ``progress(path, spans_so_far, n_files)`` is called
    every 64 messages and after each file. ``warm`` also reads flags, start and end of every span in the
    same pass (for callers that will need them: cheaper than the table's own pass later); ``warm="start"``
    reads only the start times (the clock-skew check of ``info``)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    problems: list[str] | None = [] if keep_going else None
    paths = list(paths)
    files = expand_paths(paths, problems)
    with gc_paused():
        try:
            table = _load(files, service_attribute, keep_going, progress, warm)
        except LoadError as err:
            name = Path(str(err).split(": ", 1)[0])
            if isinstance(err, LoadMemoryError) or name in {Path(p) for p in paths} | {Path("<stdin>")}:
                raise
            raise LoadError(f"{err} (found in a directory argument: --keep-going skips such files)") from None
    table.sources.extend(
        Source(line.split(": ", 1)[0], "unreadable", warnings=[line]) for line in problems or ()
    )
    return table


def _memory(name: str, size: int) -> LoadMemoryError:
    return LoadMemoryError(
        f"{name}: out of memory while reading it ({size / 1e6:,.0f} MB as read): load fewer files at once, "
        "close other programs or use a machine with more memory"
    )


def _load(
    files: list[Path],
    service_attribute: str,
    keep_going: bool,
    progress: Callable[[str, int, int], None] | None,
    warm: bool | str = False,
) -> SpanTable:
    cols = Columns(service_attribute, warm)
    batches: list[Batch] = []
    sources: list[Source] = []
    total = 0
    for path in files:
        name = str(path)
        size = 0
        try:
            try:
                if name == STDIN:
                    name, data = "<stdin>", sys.stdin.buffer.read()
                elif (what := _kind_of(path.stat().st_mode)) is not None:  # it may have changed since
                    raise LoadError(f"{name}: is {what}, not a regular file")
                else:
                    data = path.read_bytes()
                size = len(data)
                decoded = decode_binary(data, name)
            except OSError as err:
                raise LoadError(f"{name}: cannot read ({err.strerror or err})") from None
            except MemoryError:
                raise _memory(name, size) from None
            del data
            source = Source(
                name,
                decoded.format,
                warnings=decoded.warnings,
                notes=decoded.notes,
                bytes_skipped=decoded.bytes_skipped,
            )
        except LoadError as err:
            if not keep_going or isinstance(err, LoadMemoryError):
                raise
            sources.append(Source(name, "unreadable", warnings=[str(err)]))
            continue
        src_index = len(sources)
        sources.append(source)
        first_batch = len(batches)
        bad_strings = bad_spans = 0
        messages = decoded.messages
        for k, raw in enumerate(messages):
            try:
                td, strings, spans = parse_message(raw)
            except MemoryError:
                raise _memory(name, size) from None
            if td is None:  # a frame that passed framing but is not TracesData: keep what came before
                rest = messages[k:]
                source.warnings.append(
                    f"{name}: message {k + 1} is not an OTLP TracesData message; kept the {k} before it"
                    + (f" ({len(rest) - 1} after it not read)" if len(rest) > 1 else "")
                )
                decoded.spans_unread += sum(map(count_spans, rest))
                source.bytes_skipped += sum(map(len, rest))
                break
            if strings:  # keep the repaired message, so details decode from the same structure
                bad_strings += strings
                bad_spans += spans
                raw = td.SerializeToString()
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
        source.note_invalid_utf8(bad_strings, bad_spans, name)
        source.messages_held = len(messages) if decoded.messages_held is None else decoded.messages_held
        if name != "<stdin>" and (sidecar := read_sidecar(path, source.batches)) is not None:
            for batch, arrival in zip(batches[first_batch:], sidecar.arrival_ns, strict=True):
                batch.arrival_ns = arrival
            source.capture = sidecar.summary()
            source.warnings.extend(sidecar.warnings)
        source.spans_held = source.spans + decoded.spans_unread
        messages.clear()
        total += source.spans
        if progress:
            progress(name, total, len(files))
    return cols.table(batches, sources)
