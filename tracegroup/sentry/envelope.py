"""Envelopes (built with ``sentry_sdk.envelope``) and the files ``tracegroup emit`` writes.

Contract:
- :func:`envelope` wraps one written event in an ``Envelope`` whose headers are the event's (``event_id``,
  ``dsn`` when routed, ``sdk``, ``trace``; never ``sent_at``: that belongs to sending) and whose single
  item is the payload bytes, typed ``transaction`` or ``event``; :func:`envelope_bytes` is its
  ``Envelope.serialize()``, written without building the objects (the same bytes, tested).
- :func:`write_dir` writes ``DIR/<service>/<event_id>.envelope`` for every written event, then
  ``DIR/manifest.jsonl`` (one JSON line per event, written or not, in output order: see
  :meth:`~tracegroup.sentry.build.EmittedEvent.manifest`) and ``DIR/summary.json``. ``DIR`` must be new,
  empty, or an earlier output of this command (recognized by its ``summary.json``), whose envelopes,
  manifest and summary are replaced; anything else is refused, so user files are never overwritten.
- :class:`DirWriter` is the same, streamed: built before :func:`~tracegroup.sentry.emit.emit` runs (a
  foreign ``DIR`` is refused then, before anything is touched), passed as its ``on_written`` so each
  envelope is written as soon as its event is built, then :meth:`DirWriter.finish` writes the manifest
  and summary. The files are byte-identical to :func:`write_dir`'s.
- :func:`write_jsonl` writes the bare payloads, one per line. Output is byte-identical for identical
  results. ``sentry_sdk`` is imported only inside these functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracegroup.sentry.build import EmittedEvent
from tracegroup.sentry.emit import EmitResult
from tracegroup.sentry.events import dumps

if TYPE_CHECKING:
    from sentry_sdk.envelope import Envelope

MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"
TOOL = "tracegroup emit"


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
    return b"".join((dumps(ev.headers), b"\n", item, b"\n", ev.payload, b"\n"))


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
        (out / MANIFEST).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    # the marker first: an interrupted run can be replaced by the next one
    (out / SUMMARY).write_text(json.dumps({"tool": TOOL, "complete": False}) + "\n", encoding="utf-8")


def _json_line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8") + b"\n"


def _write_file(path: str, data: bytes) -> None:
    view = memoryview(data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class DirWriter:
    """Streamed :func:`write_dir`: ``write`` each written event (``emit(..., on_written=w.write)``), then
    ``finish`` with the result. The directory is checked at construction and prepared at the first
    write (or at ``finish``)."""

    def __init__(self, out: str | Path) -> None:
        self.base = Path(out)
        self.root = os.fspath(self.base)
        _check(self.base)
        self.prepared = False
        self.files: dict[str, str] = {}
        self.dirs: dict[str, str] = {}

    def _prepare(self) -> None:
        if not self.prepared:
            _prepare(self.base)
            self.prepared = True

    def write(self, ev: EmittedEvent) -> None:
        """Write the envelope of one written event."""
        self._prepare()
        d = self.dirs.get(ev.service)
        if d is None:
            d = self.dirs[ev.service] = service_dir(ev.service)
            (self.base / d).mkdir(exist_ok=True)
        rel = f"{d}/{ev.event_id}.envelope"
        _write_file(os.path.join(self.root, rel), envelope_bytes(ev))
        self.files[ev.event_id] = rel

    def finish(self, result: EmitResult) -> dict[str, str]:
        """Manifest and summary; returns event id -> file (relative path)."""
        self._prepare()
        write_manifest(result, self.base / MANIFEST, self.files)
        summary = {**result.summary(), "out": {"envelopes": len(self.files), "manifest": MANIFEST}}
        (self.base / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return self.files


def write_dir(result: EmitResult, out: str | Path) -> dict[str, str]:
    """Write envelopes, manifest and summary under ``out``; returns event id -> file (relative path)."""
    w = DirWriter(out)
    for ev in result.records:
        if ev.written:
            w.write(ev)
    return w.finish(result)


def write_manifest(result: EmitResult, path: str | Path, files: dict[str, str] | None = None) -> None:
    """One JSON line per event, written or not (``file``: its envelope relative to the output dir)."""
    files = files or {}
    with open(path, "wb") as f:
        for ev in result.records:
            f.write(_json_line(ev.manifest(files.get(ev.event_id))))


def write_jsonl(result: EmitResult, path: str | Path) -> int:
    """The bare payload of every written event, one per line; returns how many."""
    k = 0
    with open(path, "wb") as f:
        for ev in result.records:
            if ev.written:
                f.write(ev.payload + b"\n")
                k += 1
    return k
