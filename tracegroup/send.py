"""Send what ``tracegroup emit`` wrote (envelopes) or corrected OTLP, and account for every item durably.

Contract (the guarantees are spelled out in docs/send.md):
- :func:`envelope_requests` turns every envelope ``tracegroup emit`` wrote under a directory into a request
  to its DSN's envelope endpoint (the DSN comes from the envelope header; ``sent_at`` is set at sending,
  nothing else in the envelope changes): each ``*.envelope`` file, and in the packed layout each manifest
  line's ``offset``/``length`` slice of its ``<service>.envelopes`` pack (read with ``os.pread``), keyed
  ``<service>/<event_id>.envelope`` as the files layout would hold it, all in key order. Envelopes
  without a DSN cannot be sent and are reported as such. Every item carries the sha256 of its envelope's
  bytes. A pack cut short, or a slice that is not the envelope the manifest names, is a ``LoadError``.
- :func:`otlp_requests` turns corrected OTLP batches into one gzip-compressed OTLP/HTTP protobuf request
  per (batch, route) to the route's Sentry OTLP traces endpoint, with ``x-sentry-auth: sentry
  sentry_key=…``; spans of unrouted services are reported, never posted nowhere. Given a directory, each
  request is also written there (``.otlp/<route>/batch-N.otlp``: a JSON header line, then the body) so
  ``--resume`` can send it again; :func:`otlp_file_requests` reads them back.
- :func:`send` runs them through :func:`tracegroup.transport.send_all`. With a directory it first appends
  a ``pending`` line per item to the journal ``send-journal.jsonl`` (append-only, one JSON object per line,
  each write fsync'd), then one line per outcome as it happens; at the end (or on SIGINT/SIGTERM) it
  writes the items not accepted to ``not-sent.jsonl`` (removed when everything went through). The latest
  line of a key is its state. ``resume`` sends exactly the journal's items whose state is not ``sent``,
  and refuses (``LoadError``, one line) when an item changed, vanished or appeared since the journal.
  :func:`clear_state` forgets a directory's journal, not-sent list and OTLP requests (a re-emit).
  ``dry_run`` sends and writes nothing and reports what would go where.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load.base import LoadError
from tracegroup.otlp_out import per_route
from tracegroup.routes import Dsn, Routes, redact_dsn
from tracegroup.sentry.envelope import MANIFEST, PACK, service_dir
from tracegroup.transport import Outcome, Request, report, send_all

CLIENT = "tracegroup/0.1.0"
NOT_SENT = "not-sent.jsonl"
JOURNAL = "send-journal.jsonl"
OTLP_DIR = ".otlp"
IN_FLIGHT = "interrupted before an answer (may have been in flight: --resume sends it again)"


@dataclass
class SendResult:
    outcomes: list[Outcome]
    per_service: dict[str, dict[str, int]]
    not_sent_file: str | None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.status == "sent" for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "per_service": self.per_service,
            "not_sent": [asdict(o) for o in self.outcomes if o.status != "sent"],
            "not_sent_file": self.not_sent_file,
            "interrupted": self.interrupted,
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _category(item_type: str) -> str:
    return {"transaction": "transaction", "event": "error"}.get(item_type, item_type or "default")


def envelope_requests(
    directory: Path, now: dt.datetime | None = None, *, required: bool = True
) -> tuple[list[Request], list[Outcome]]:
    """Requests for every envelope under ``directory`` (either layout of ``tracegroup emit``, in key
    order), and outcomes for those that cannot be sent (``required``: no envelope at all is a
    ``LoadError``)."""
    # in path order (part by part, as the files layout always was), whichever the layout
    items = sorted(
        [*_envelope_files(directory), *_packed_envelopes(directory)], key=lambda x: x[0].split("/")
    )
    if not items and required:
        raise LoadError(
            f"{directory}: no envelopes (no .envelope files nor packs; write some with "
            "`tracegroup emit --out DIR`)"
        )
    sent_at = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    requests, unsendable = [], []
    packs: dict[Path, tuple[int, int]] = {}  # open pack -> (fd, size)
    try:
        for key, service, path, event_id, offset, length in items:
            if length < 0:
                data, where = path.read_bytes(), str(path)
            else:
                data = _cut(packs, path, event_id, offset, length)
                where = f"{path}: envelope {event_id} at offset {offset}"
            head, _, rest = data.partition(b"\n")
            try:
                header = json.loads(head)
                item_type = json.loads(rest.partition(b"\n")[0] or b"{}").get("type", "")
            except (ValueError, AttributeError):
                raise LoadError(f"{where}: not an envelope (its header line is not JSON)") from None
            if event_id and (not isinstance(header, dict) or header.get("event_id") != event_id):
                raise LoadError(f"{where}: holds another envelope than {MANIFEST} says")
            if not isinstance(header, dict) or not header.get("dsn"):
                why = "no DSN in the envelope header (unrouted)"
                unsendable.append(Outcome(key, service, "rejected", None, why, 0, sha256(data)))
                continue
            try:
                dsn = Dsn.parse(header["dsn"])
            except ValueError as err:
                raise LoadError(f"{where}: {err}") from None
            header["sent_at"] = sent_at
            body = json.dumps(header, separators=(",", ":")).encode() + b"\n" + rest
            headers = {
                "Content-Type": "application/x-sentry-envelope",
                "X-Sentry-Auth": dsn.auth_header(CLIENT),
            }
            category = _category(item_type)
            requests.append(Request(key, dsn.envelope_url(), headers, body, service, category, sha256(data)))
    finally:
        for fd, _ in packs.values():
            os.close(fd)
    return requests, unsendable


#: One envelope to read: (key, service directory, file, event id, offset, length); a whole ``.envelope``
#: file has event id "" and length -1.
_Item = tuple[str, str, Path, str, int, int]


def _envelope_files(directory: Path) -> list[_Item]:
    """The files layout: every ``*.envelope`` file, keyed by its path relative to ``directory``."""
    out = []
    for path in directory.rglob("*.envelope"):
        service = path.parent.name if path.parent != directory else ""
        out.append((path.relative_to(directory).as_posix(), service, path, "", 0, -1))
    return out


def _packed_envelopes(directory: Path) -> list[_Item]:
    """The packed layout: every manifest line with ``offset`` and ``length``, keyed as the files layout
    would hold it (``<service>/<event_id>.envelope``), when ``directory`` holds packs."""
    if not any(p.is_file() for p in directory.glob("*" + PACK)):
        return []
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise LoadError(f"{manifest}: missing (it says where each envelope of the packs is)")
    out = []
    with open(manifest, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = json.loads(raw)
                if "offset" not in line:
                    continue
                file, event_id = line["file"], line["event_id"]
                offset, length = line["offset"], line["length"]
                ok = isinstance(offset, int) and isinstance(length, int) and offset >= 0 and length > 0
                if not ok or not isinstance(event_id, str) or not _is_pack_name(file):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise LoadError(f"{manifest}: line {n} is not a manifest line of a packed envelope") from None
            service = file[: -len(PACK)]
            key = f"{service}/{event_id}.envelope"
            out.append((key, service, directory / file, event_id, offset, length))
    return out


def _is_pack_name(name: object) -> bool:
    return isinstance(name, str) and name.endswith(PACK) and "/" not in name and not name.startswith(".")


def _cut(packs: dict[Path, tuple[int, int]], path: Path, event_id: str, offset: int, length: int) -> bytes:
    """The bytes of one envelope of a pack (``os.pread``; the pack stays open for the next one)."""
    if path not in packs:
        fd = os.open(path, os.O_RDONLY)
        packs[path] = (fd, os.fstat(fd).st_size)
    fd, size = packs[path]
    if offset + length > size:
        raise LoadError(
            f"{path}: truncated: envelope {event_id} is bytes {offset:,}-{offset + length:,} "
            f"({MANIFEST}), the file has {size:,}"
        )
    return os.pread(fd, length, offset)


def _otlp_request(key: str, data: bytes) -> Request:
    """The request an OTLP request file (a JSON header line, then the gzip body) stands for."""
    head, _, body = data.partition(b"\n")
    header = json.loads(head)
    dsn = Dsn.parse(header["dsn"])
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip",
        "x-sentry-auth": f"sentry sentry_key={dsn.public_key}",
    }
    return Request(key, dsn.otlp_traces_url(), headers, body, header["service"], "span", sha256(data))


def otlp_requests(
    messages: Iterator[TracesData],
    routes: Routes,
    attribute: str = "service.name",
    directory: Path | None = None,
) -> tuple[list[Request], list[Outcome]]:
    """One request per (batch, route), written under ``directory`` when given; outcomes for the parts of
    batches no route takes."""
    requests, unsendable = [], []
    for b, td in enumerate(messages):
        for route, part in per_route(td, routes, attribute).items():
            spans = sum(len(ss.spans) for rs in part.resource_spans for ss in rs.scope_spans)
            dsn_text = _dsn_of(routes, route)
            if not dsn_text:
                why = f"{spans} spans of services without a route or DSN"
                unsendable.append(
                    Outcome(f"batch-{b}/{route or '(unrouted)'}", route or "", "rejected", None, why)
                )
                continue
            key = f"{OTLP_DIR}/{service_dir(route or '')}/batch-{b:06d}.otlp"
            header = {"dsn": dsn_text, "service": route or "", "spans": spans}
            body = gzip.compress(part.SerializeToString(), mtime=0)
            data = json.dumps(header, separators=(",", ":")).encode() + b"\n" + body
            if directory is not None:
                (directory / key).parent.mkdir(parents=True, exist_ok=True)
                (directory / key).write_bytes(data)
            requests.append(_otlp_request(key, data))
    return requests, unsendable


def otlp_file_requests(directory: Path) -> list[Request]:
    """The OTLP requests :func:`otlp_requests` wrote under ``directory`` (name order)."""
    out = []
    for path in sorted((directory / OTLP_DIR).rglob("*.otlp")):
        try:
            out.append(_otlp_request(path.relative_to(directory).as_posix(), path.read_bytes()))
        except (ValueError, KeyError, TypeError):
            raise LoadError(f"{path}: not an OTLP request file written by tracegroup") from None
    return out


def _dsn_of(routes: Routes, name: str | None) -> str:
    for r in [*routes.routes, *([routes.default] if routes.default else [])]:
        if r.name == name:
            return r.dsn
    return ""


def clear_state(directory: Path) -> None:
    """Forget earlier deliveries from ``directory``: its journal, not-sent list and OTLP requests."""
    (directory / JOURNAL).unlink(missing_ok=True)
    (directory / NOT_SENT).unlink(missing_ok=True)
    shutil.rmtree(directory / OTLP_DIR, ignore_errors=True)


class Journal:
    """``send-journal.jsonl``: append-only, one JSON object per line (an outcome or ``pending``), each
    write flushed and fsync'd before the next item is reported; a torn last line is ignored."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.closed = False

    def read(self) -> dict[str, dict[str, Any]]:
        """The latest line of every key."""
        state: dict[str, dict[str, Any]] = {}
        for line in self.path.read_bytes().splitlines():
            try:
                record = json.loads(line)
                state[str(record["key"])] = record
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill
        return state

    def append(self, outcomes: list[Outcome]) -> bool:
        """Write and fsync; False once closed (an answer arriving after an interruption is not recorded,
        so the journal and the not-sent list agree)."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        data = b"".join(
            json.dumps({**asdict(o), "time": stamp}, sort_keys=True).encode() + b"\n" for o in outcomes
        )
        with self.lock:
            if self.closed:
                return False
            if self.fd is None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if os.fstat(self.fd).st_size and not self.path.read_bytes().endswith(b"\n"):
                    data = b"\n" + data  # after a torn line: start a fresh one
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            os.fsync(self.fd)
            return True

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


def _changed(state: dict[str, dict[str, Any]], current: dict[str, str]) -> str | None:
    """Why the items of a directory no longer match its journal (None when they do)."""
    for key, record in state.items():
        if record.get("sha256") and key not in current:
            return f"{key} is gone"
        if record.get("sha256") and current[key] != record["sha256"]:
            return f"{key} changed"
    if any(k.endswith(".envelope") for k in state):
        new = [k for k in current if k.endswith(".envelope") and k not in state]
        if new:
            return f"{new[0]} is new"
    return None


def send(
    requests: list[Request],
    unsendable: list[Outcome],
    directory: Path | None,
    *,
    resume: bool = False,
    dry_run: bool = False,
    **options: Any,
) -> SendResult:
    """Send (see the module docstring); ``directory`` holds the journal and the not-sent list (None: no
    files, no resume); ``options`` go to :func:`tracegroup.transport.send_all`."""
    journal = Journal(directory) if directory is not None else None
    earlier: list[Outcome] = []
    if resume:
        if journal is None or not journal.path.exists():
            where = journal.path if journal else "(no directory)"
            raise LoadError(f"{where}: nothing to resume (no journal: send without --resume first)")
        state = journal.read()
        items: list[Request | Outcome] = [*requests, *unsendable]
        why = _changed(state, {x.key: x.sha256 for x in items})
        if why:
            raise LoadError(f"{directory}: {why} since {JOURNAL} was written; send without --resume")
        pending = {k for k, r in state.items() if r.get("status") != "sent"}
        requests = [r for r in requests if r.key in pending]
        unsendable = [o for o in unsendable if o.key in pending]
        known = {x.key for x in items}
        fields = set(Outcome.__dataclass_fields__)
        earlier = [
            Outcome(**{k: v for k, v in state[k].items() if k in fields}) for k in sorted(pending - known)
        ]  # items without a source here (spans no route takes): their last outcome stands
    if dry_run:
        outcomes = [
            Outcome(r.key, r.service, "would-send", None, f"POST {redact_dsn(r.url)}") for r in requests
        ]
        everything = outcomes + unsendable + earlier
        return SendResult(everything, report(everything), None)
    if journal is None:
        outcomes = send_all(requests, **options) + unsendable
        return SendResult(outcomes, report(outcomes), None)
    not_sent_file = journal.path.with_name(NOT_SENT)
    not_sent_file.unlink(missing_ok=True)
    journal.append([Outcome(r.key, r.service, "pending", sha256=r.sha256) for r in requests] + unsendable)
    done: dict[str, Outcome] = {}
    done_lock = threading.Lock()

    def record(outcome: Outcome) -> None:
        with done_lock:
            if journal.append([outcome]):
                done[outcome.key] = outcome

    interrupted = False
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    try:
        outcomes = send_all(requests, on_outcome=record, **options)
    except KeyboardInterrupt:
        interrupted = True
        with done_lock:
            journal.close()  # what was in flight stays pending
        outcomes = [
            done.get(r.key) or Outcome(r.key, r.service, "failed", None, IN_FLIGHT, 0, r.sha256)
            for r in requests
        ]
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        journal.close()
    outcomes += unsendable + earlier
    failed = [o for o in outcomes if o.status != "sent"]
    if failed:
        not_sent_file.write_text("".join(json.dumps(asdict(o), sort_keys=True) + "\n" for o in failed))
    return SendResult(outcomes, report(outcomes), str(not_sent_file) if failed else None, interrupted)
