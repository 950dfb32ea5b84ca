"""Envelopes (built with ``sentry_sdk.envelope``) and the files ``tracegroup emit`` writes.

Contract:
- :func:`envelope` wraps one written event in an ``Envelope`` whose headers are the event's (``event_id``,
  ``dsn`` when routed, ``sdk``, ``trace``; never ``sent_at``: that belongs to sending) and whose single
  item is the payload bytes, typed ``transaction`` or ``event``; :func:`envelope_bytes` is its
  ``Envelope.serialize()``, written without building the objects (the same bytes, tested).
- :func:`write_dir` writes every written event's envelope under ``DIR`` in one of two layouts
  (``layout``): ``files`` (default), one file ``DIR/<service>/<event_id>.envelope`` per event;
  ``packed``, every envelope of a service appended to one file ``DIR/<service>.envelopes`` (the same
  bytes back to back: a service's transactions, then its error events, each in output order). Then
  ``DIR/manifest.jsonl`` (one JSON line per event, written or not, in output order: see
  :meth:`~tracegroup.sentry.build.EmittedEvent.manifest`; ``file`` is the envelope's file relative to
  ``DIR``, and in the packed layout ``offset`` and ``length`` give its bytes in that pack) and
  ``DIR/summary.json`` (its ``out`` names the ``layout``). ``DIR`` must be new, empty, or an earlier
  output of this command in either layout (recognized by its ``summary.json``), whose envelopes, packs,
  manifest and summary are replaced; anything else is refused, so user files are never overwritten.
- :class:`DirWriter` is the same, streamed: built before :func:`~tracegroup.sentry.emit.emit` runs (a
  foreign ``DIR`` is refused then, before anything is touched), passed as its ``on_written`` so each
  envelope is written as soon as its event is built (packed: appended to its service's pack, one open
  file per service), then :meth:`DirWriter.finish` puts any pack whose envelopes came in another order
  (partitions of a spilled emit) in the order above, and writes the manifest and summary. The files are
  byte-identical to :func:`write_dir`'s, whatever order the events came in. In the files layout the files
  are created on a thread of the writer's own (at most :data:`PENDING` waiting; creating a file waits on
  the disk with the GIL released, so building goes on meanwhile; the first error writing one is raised at
  the next write or at ``finish``). Memory stays flat: per written event the writer keeps nothing in the
  files layout and one integer in the packed layout; :meth:`DirWriter.place` tells where an event went
  (``write_dir`` returns the writer).
- :func:`write_jsonl` writes the bare payloads, one per line. Output is byte-identical for identical
  results. ``sentry_sdk`` is imported only inside these functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from tracegroup.sentry.build import EmittedEvent
from tracegroup.sentry.emit import EmitResult
from tracegroup.sentry.events import dumps

if TYPE_CHECKING:
    from sentry_sdk.envelope import Envelope

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
TOOL = "tracegroup emit"
LAYOUTS = ("files", "packed")
PACK = ".envelopes"  # DIR/<service>.envelopes: the packed layout's file of a service
MAX_OPEN = 256  # packs kept open at once (a dump with more services reopens them)
BUFFER = 1 << 16
PENDING = 64  # envelope files queued for the writing thread at most


def envelope(ev: EmittedEvent) -> Envelope:
    """The envelope of one written event."""
    from sentry_sdk.envelope import Envelope, Item, PayloadRef

    if not ev.written:
        raise ValueError(f"event {ev.event_id} was not written ({ev.reason}): it has no envelope")
    env = Envelope(headers=ev.headers)
    item_type = "transaction" if ev.kind == "transaction" else "event"
    env.add_item(Item(payload=PayloadRef(bytes=ev.payload), type=item_type, content_type="application/json"))
    return env


def envelope_bytes(ev: EmittedEvent) -> bytes:
    """``envelope(ev).serialize()``, without building the ``Envelope``: the same bytes (its header line as
    ``sentry_sdk.utils.json_dumps`` writes it, the item header ``type``, ``content_type``, ``length``, the
    payload), checked against ``Envelope.serialize`` by the test suite."""
    if not ev.written:
        raise ValueError(f"event {ev.event_id} was not written ({ev.reason}): it has no envelope")
    kind = b"transaction" if ev.kind == "transaction" else b"event"
    item = b'{"type":"%s","content_type":"application/json","length":%d}' % (kind, len(ev.payload))
    return b"".join((ev.head or dumps(ev.headers), b"\n", item, b"\n", ev.payload, b"\n"))


def read_envelope(data: bytes) -> Envelope:
    """Parse envelope bytes (``Envelope.deserialize``)."""
    from sentry_sdk.envelope import Envelope

    return Envelope.deserialize(data)


def service_dir(name: str) -> str:
    """A directory name for a service: the name itself when it is a safe file name, else a sanitized
    form plus a short hash of the original (so two services never share a directory)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if safe == name and name and not name.startswith("."):
        return name
    return f"{safe.lstrip('.') or '_'}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def _is_ours(out: Path) -> bool:
    try:
        data = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("tool") == TOOL


def _check(out: Path) -> None:
    """Refuse a file or a foreign non-empty directory (touches nothing)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not _is_ours(out):
        raise ValueError(
            f"{out}: directory is not empty and is not an earlier 'tracegroup emit' output "
            "(no summary.json from it): choose a new or empty directory"
        )


def _prepare(out: Path) -> None:
    _check(out)
    if out.is_dir() and any(out.iterdir()):
        for sub in sorted(out.iterdir()):
            if sub.is_dir():
                for f in sub.glob("*.envelope"):
                    f.unlink()
                if not any(sub.iterdir()):
                    sub.rmdir()
            elif sub.name.endswith(PACK):
                sub.unlink()
        (out / MANIFEST).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    # the marker first: an interrupted run can be replaced by the next one
    (out / SUMMARY).write_text(json.dumps({"tool": TOOL, "complete": False}) + "\n", encoding="utf-8")


_LINE = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(separators=...), one encoder reused


def _write_file(path: str, data: bytes) -> None:
    view = memoryview(data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class _Files:
    """Creates envelope files on a thread of its own: creating a file waits on the disk (80–460 µs each
    here), with the GIL released, so the building goes on meanwhile. At most :data:`PENDING` files wait
    in the queue; the first error is raised at the next :meth:`put` or at :meth:`close`, which waits for
    every file."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(maxsize=PENDING)
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="tracegroup-envelopes", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.queue.get()) is not None:
            if self.error is None:
                try:
                    _write_file(*job)
                except Exception as err:  # raised in the building thread
                    self.error = err

    def put(self, path: str, data: bytes) -> None:
        if self.error is not None:
            self.close()  # the thread ends, the error is raised
        self.queue.put((path, data))

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error


class _Pack:
    """One service's pack: its path, its size so far, and its open file (None while closed)."""

    def __init__(self, rel: str, path: str) -> None:
        self.rel, self.path, self.size = rel, path, 0
        self.file: BinaryIO | None = None


class DirWriter:
    """Streamed :func:`write_dir`: ``write`` each written event (``emit(..., on_written=w.write)``), then
    ``finish`` with the result. The directory is checked at construction and prepared at the first
    write (or at ``finish``). Per written event it keeps nothing in the files layout (a file's name is
    its service's directory and its event id) and one integer in the packed layout (its offset and length
    in its pack), so memory does not grow with the output; :meth:`place` tells where an event went."""

    def __init__(self, out: str | Path, layout: str = "files") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r}: not one of {', '.join(LAYOUTS)}")
        self.base = Path(out)
        self.root = os.fspath(self.base)
        self.layout = layout
        _check(self.base)
        self.prepared = False
        self.written = 0
        self.ids = bytearray()  # packed: the event ids written (16 bytes each) and, the same order,
        self.cuts = array("q")  # their offset << 32 | length; indexed by :meth:`_slices` at the end
        self.slices: dict[str, int] = {}
        self.dirs: dict[str, str] = {}
        self.packs: dict[str, _Pack] = {}
        self.open: dict[str, _Pack] = {}  # the packs with an open file, oldest first
        self.files: _Files | None = None  # the files layout's writing thread, started at the first file

    def _prepare(self) -> None:
        if not self.prepared:
            _prepare(self.base)
            self.prepared = True

    def write(self, ev: EmittedEvent) -> None:
        """Write the envelope of one written event."""
        self._prepare()
        if self.layout == "packed":
            self._append(ev)
            return
        d = self.dirs.get(ev.service)
        if d is None:
            d = self.dirs[ev.service] = service_dir(ev.service)
            (self.base / d).mkdir(exist_ok=True)
        if self.files is None:
            self.files = _Files()
        self.files.put(os.path.join(self.root, d, f"{ev.event_id}.envelope"), envelope_bytes(ev))
        self.written += 1

    def place(self, ev: EmittedEvent) -> tuple[str | None, int, int]:
        """(the file of a written event relative to the directory, its offset and length in that file:
        0, 0 in the files layout); (None, 0, 0) when it was not written here."""
        if self.layout == "packed":
            cut = self._slices().get(ev.event_id)
            if cut is None:
                return None, 0, 0
            return self.packs[ev.service].rel, cut >> 32, cut & 0xFFFFFFFF
        d = self.dirs.get(ev.service)
        return (f"{d}/{ev.event_id}.envelope", 0, 0) if d is not None and ev.written else (None, 0, 0)

    def _append(self, ev: EmittedEvent) -> None:
        pack = self.open.get(ev.service) or self._reopen(ev.service)
        assert pack.file is not None
        data = envelope_bytes(ev)
        pack.file.write(data)
        self.ids += bytes.fromhex(ev.event_id)
        self.cuts.append(pack.size << 32 | len(data))
        self.written += 1
        pack.size += len(data)

    def _reopen(self, service: str) -> _Pack:
        """The pack of ``service``, open (created at its first envelope); past ``MAX_OPEN`` open packs
        the oldest is closed first."""
        pack = self.packs.get(service)
        if pack is None:
            rel = service_dir(service) + PACK
            pack = self.packs[service] = _Pack(rel, os.path.join(self.root, rel))
        if len(self.open) >= MAX_OPEN:
            self._close(next(iter(self.open)))
        pack.file = open(pack.path, "r+b" if pack.size else "w+b", buffering=BUFFER)  # noqa: SIM115
        pack.file.seek(pack.size)
        self.open[service] = pack
        return pack

    def _close(self, service: str) -> None:
        pack = self.open.pop(service)
        assert pack.file is not None
        pack.file.close()
        pack.file = None

    def close(self) -> None:
        """Close every open pack and wait for every envelope file (``finish`` does); raises the first error
        writing a file met."""
        for service in list(self.open):
            self._close(service)
        if self.files is not None:
            files, self.files = self.files, None
            files.close()

    def write_all(self, result: EmitResult) -> None:
        """Write every written event of ``result`` (the unstreamed path)."""
        for ev in _pack_order(result) if self.layout == "packed" else result.records:
            if ev.written:
                self.write(ev)

    def finish(self, result: EmitResult) -> None:
        """Packs in order, manifest and summary."""
        self._prepare()
        self._order(result)
        self.close()
        write_manifest(result, self.base / MANIFEST, self)
        out = {"layout": self.layout, "envelopes": self.written, "manifest": MANIFEST}
        summary = {**result.summary(), "out": out}
        (self.base / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    def _slices(self) -> dict[str, int]:
        """Event id -> offset << 32 | length of every packed envelope, built once writing is done (while
        writing, two compact arrays hold them)."""
        if len(self.slices) < len(self.cuts):
            ids = self.ids
            self.slices = {ids[16 * k : 16 * k + 16].hex(): cut for k, cut in enumerate(self.cuts)}
        return self.slices

    def _order(self, result: EmitResult) -> None:
        """Put each pack in its order (a service's transactions, then its error events, each in output
        order): the envelopes past the longest part already in place are copied to an unnamed temporary
        file and written back in order (in memory and unstreamed, only the error events of a service, if
        any, can be out of place)."""
        if not self.packs:
            return
        slices = self._slices()
        placed: dict[str, int] = {}  # service -> the end of its envelopes in place
        rest: dict[str, list[str]] = {}  # service -> the envelopes after those, in pack order
        errors: list[tuple[str, str]] = []  # (service, event id): they follow the service's transactions

        def take(service: str, eid: str) -> None:
            tail = rest.get(service)
            cut = slices[eid]
            if tail is None and cut >> 32 == placed.get(service, 0):
                placed[service] = placed.get(service, 0) + (cut & 0xFFFFFFFF)
            elif tail is None:
                rest[service] = [eid]
            else:
                tail.append(eid)

        for ev in result.records:  # one pass; a service's error events after its transactions
            if ev.written and ev.event_id in slices:
                if ev.kind == "transaction":
                    take(ev.service, ev.event_id)
                else:
                    errors.append((ev.service, ev.event_id))
        for service, eid in errors:
            take(service, eid)
        for service, pack in self.packs.items():
            ids = rest.get(service, [])
            start = placed.get(service, 0)
            if not ids and start == pack.size:
                continue
            f = self.open.get(service) or self._reopen(service)
            assert f.file is not None
            f.file.flush()
            with tempfile.TemporaryFile(dir=self.root) as tail:
                f.file.seek(start)
                shutil.copyfileobj(f.file, tail, BUFFER)
                tail.flush()
                f.file.seek(start)
                at = start
                for eid in ids:
                    offset, length = self.slices[eid] >> 32, self.slices[eid] & 0xFFFFFFFF
                    f.file.write(os.pread(tail.fileno(), length, offset - start))
                    self.slices[eid] = at << 32 | length
                    at += length
                f.file.truncate(at)
            pack.size = at


def _pack_order(result: EmitResult) -> Iterator[EmittedEvent]:
    """The records in pack order: transactions, then error events, each in output order."""
    yield from (ev for ev in result.records if ev.kind == "transaction")
    yield from (ev for ev in result.records if ev.kind != "transaction")


def write_dir(result: EmitResult, out: str | Path, layout: str = "files") -> DirWriter:
    """Write envelopes (in ``layout``), manifest and summary under ``out``; returns the writer (its
    :meth:`DirWriter.place` tells where each event went)."""
    w = DirWriter(out, layout)
    w.write_all(result)
    w.finish(result)
    return w


def write_manifest(result: EmitResult, path: str | Path, writer: DirWriter | None = None) -> None:
    """One JSON line per event, written or not (``file``: its envelope relative to the output dir, as
    ``writer`` placed it; packed: ``offset`` and ``length`` of its bytes in that file, right after
    ``file``)."""
    quoted: dict[str | None, str] = {}  # services, routes and packs repeat: each quoted once
    with open(path, "wb") as f:
        for ev in result.records:
            file, offset, length = writer.place(ev) if writer is not None else (None, 0, 0)
            f.write(manifest_line(ev, file, offset, length, quoted))


def manifest_line(
    ev: EmittedEvent,
    file: str | None,
    offset: int = 0,
    length: int = 0,
    quoted: dict[str | None, str] | None = None,
) -> bytes:
    """``ev.manifest(file)`` as one JSON line, ``offset`` and ``length`` right after ``file`` when
    ``length``: the bytes ``json.dumps(..., separators=(",", ":"))`` gives, formatted directly (ids are
    hex; every other string is quoted by the JSON encoder, ``quoted`` remembering the repeated ones)."""
    q = quoted if quoted is not None else {}
    if len(q) > 4096:
        q.clear()
    where = _quote(file, q) if length or file is None else _LINE(file)
    if length:
        where += f',"offset":{offset},"length":{length}'
    reason = f',"reason":{_LINE(ev.reason)}' if ev.reason else ""
    return (
        f'{{"event_id":"{ev.event_id}","type":"{ev.kind}","service":{_quote(ev.service, q)},'
        f'"trace_id":"{ev.trace_id}","root_span_id":"{ev.root_span_id}","spans":{ev.spans},'
        f'"route":{_quote(ev.route, q)},"part":"{ev.part}/{ev.parts}",'
        f'"written":{"false" if ev.reason else "true"},'
        f'"file":{where}{reason},"notes":{_LINE(ev.notes) if ev.notes else "[]"}}}\n'
    ).encode("ascii")


def _quote(value: str | None, quoted: dict[str | None, str]) -> str:
    q = quoted.get(value)
    if q is None:
        q = quoted[value] = _LINE(value)
    return q


def write_jsonl(result: EmitResult, path: str | Path) -> int:
    """The bare payload of every written event, one per line; returns how many."""
    k = 0
    with open(path, "wb") as f:
        for ev in result.records:
            if ev.written:
                f.write(ev.payload + b"\n")
                k += 1
    return k
