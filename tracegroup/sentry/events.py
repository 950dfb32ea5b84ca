"""Transaction and error event payloads: headers, the 1 MiB split, exception events, ids, time rules.

Contract:
- Payloads are compact JSON bytes exactly as ``sentry_sdk.utils.json_dumps`` writes them (:func:`dumps`).
  A transaction is its header object with ``"spans": [...]`` spliced in from the spans' own bytes, so each
  span is serialized once and sizes are known without re-serializing.
- :func:`plan_pieces` is the size rule: a transaction whose payload exceeds ``limit`` bytes is cut into
  pieces, spans taken in (start time, input order); the first piece keeps the transaction root; every
  later piece is a *continuation transaction* of the same trace whose root (``contexts.trace``) is the
  first span of that piece, keeping its real parent id. Every span lands in exactly one piece; a span too
  big to fit even alone is returned as not written.
- Event ids are uuid5 of the trace id, root span id and part (or span id and exception index), preceded
  by the replay's salt (:func:`replay_salt`: the rebase shift and ``--replay-id``): the same input and
  options give the same ids, hence byte-identical files; another replay gives other ids.
- Time rules (Relay; the window is written once, :func:`relay_late`): a transaction (each piece of a
  split one on its own) is dropped when its end (``timestamp``, its root span's end) lies more than
  :data:`TX_MAX_PAST_S` before ``now`` or :data:`MAX_FUTURE_S` or more after it (the metrics
  aggregator's window), and when any of its spans ends before it starts; an error event out of
  [now - :data:`ERROR_MAX_PAST_S`, now + :data:`MAX_FUTURE_S`] is kept with its timestamp rewritten.
- Exception dedup (:func:`dedup_exceptions`): within one transaction, the same (type, message) recorded
  on a span and on spans enclosing it is reported once, on the innermost span. Walks go up parent arrays
  (no recursion) and stop at spans already visited.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from tracegroup.sentry.convert import EXPORTER_SDK, relay_event_tags, valid_environment

#: Sentry's limit on one event or transaction item (Relay ``max_event_size``).
MAX_ITEM_BYTES = 1024 * 1024
#: Relay drops transactions that ended more than this before it receives them: ``validate_transaction``
#: checks the event's end only against ``transaction_timestamp_range``, the transaction aggregator's
#: ``timestamp_range()`` (``max_secs_in_past`` default: 5 days). getsentry/relay
#: ``relay-event-normalization/src/validation.rs`` @05f52912e0632008cfa7868a1ae382ed94f839a2,
#: ``relay-server/src/processing/utils/event.rs`` @8dc46523a81514c2a957faa63108a42b784650d1 ...
TX_MAX_PAST_S = 5 * 24 * 3600
#: ... or more than this after (``max_secs_in_future``: 1 minute).
MAX_FUTURE_S = 60
#: Error events older than this get their timestamp replaced by the receive time (``max_secs_in_past`` of
#: event validation: the project's retention in days, ``DEFAULT_EVENT_RETENTION`` = 90 when unset).
ERROR_MAX_PAST_S = 90 * 24 * 3600
#: Nanoseconds per second.
NS = 1_000_000_000
#: Room left in each piece for the ``part`` marker added after the cut.
PART_SLACK = 96


@overload
def relay_late(end_ns: int, now_ns: int, max_past_s: int) -> tuple[bool, bool]: ...
@overload
def relay_late(end_ns: np.ndarray, now_ns: int, max_past_s: int) -> tuple[np.ndarray, np.ndarray]: ...
def relay_late(end_ns: Any, now_ns: int, max_past_s: int) -> tuple[Any, Any]:
    """Relay's time window for events ending at ``end_ns`` (ns; an int or an array) received at ``now_ns``:
    (too old: more than ``max_past_s`` seconds before now, in the future: :data:`MAX_FUTURE_S` or more
    after it)."""
    return end_ns < now_ns - max_past_s * NS, end_ns >= now_ns + MAX_FUTURE_S * NS


_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/tracegroup/emit")  # fixed: ids never change


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Compact JSON exactly as ``sentry_sdk.utils.json_dumps`` (the envelope's own serializer):
    ``json.dumps(obj, allow_nan=False, separators=(",", ":"))``, one encoder reused."""
    return _ENCODER.encode(obj).encode("utf-8")


_NS_BYTES = _NAMESPACE.bytes


def event_id(*parts: str) -> str:
    """A deterministic event id: ``uuid.uuid5`` of the parts joined by ``/``, 32 lowercase hex characters
    (computed as ``uuid5`` does, sha1 then the version and variant bits, without a ``UUID`` object)."""
    digest = hashlib.sha1(_NS_BYTES + "/".join(parts).encode("utf-8"), usedforsecurity=False).digest()
    out = bytearray(digest[:16])
    out[6] = out[6] & 0x0F | 0x50  # version 5
    out[8] = out[8] & 0x3F | 0x80  # RFC 4122 variant
    return out.hex()


def replay_salt(shift_ns: int, replay_id: str = "") -> tuple[str, ...]:
    """What a replay adds to every event id: the rebase shift (ns) when not zero and the replay id when
    given; nothing for a plain emit, whose ids stay those of the input alone. Another ``--now`` (another
    shift) or ``--replay-id`` gives other ids, so Sentry does not drop a second replay as duplicates; the
    same command with the same ``--now`` gives the same ids."""
    salt: tuple[str, ...] = ()
    if shift_ns:
        salt += (f"shift={shift_ns}",)
    if replay_id:
        salt += (f"replay={replay_id}",)
    return salt


class EventIds:
    """Hands out event ids, disambiguating the rare repeats (duplicate span ids in a trace) by a counter
    in input order, so ids stay unique and deterministic; ``salt`` (:func:`replay_salt`) is prepended to
    every id's parts."""

    def __init__(self, salt: tuple[str, ...] = ()) -> None:
        self.seen: set[str] = set()
        self.salt = salt

    def new(self, *parts: str) -> str:
        parts = (*self.salt, *parts)
        eid = event_id(*parts)
        k = 1
        while eid in self.seen:
            k += 1
            eid = event_id(*parts, f"#{k}")
        self.seen.add(eid)
        return eid


def splice(header: bytes, spans: Sequence[bytes], sep: bytes = b",") -> bytes:
    """``header`` (a JSON object) with ``"spans": [spans…]`` added as its last key (``sep``: b"" when the
    parts already hold their commas)."""
    if sep:
        return b"".join((header[:-1], b',"spans":[', sep.join(spans), b"]}"))
    return b"".join((header[:-1], b',"spans":[', *spans, b"]}"))


def spliced_size(header_len: int, span_lens: Iterable[int], n: int) -> int:
    """Length of :func:`splice` output without building it."""
    return header_len + len(b',"spans":[]') + sum(span_lens) + max(n - 1, 0)


# --------------------------------------------------------------------------------------------- headers
def trace_context(item: Mapping[str, Any], style: str) -> dict[str, Any]:
    """``contexts.trace`` of a transaction rooted at (or an error recorded on) the span ``item``."""
    if style == "exporter":
        ctx = {"trace_id": item["trace_id"], "span_id": item["span_id"]}
        for key in ("parent_span_id", "op", "description", "status"):
            if key in item:
                ctx[key] = item[key]
        return dict(sorted(ctx.items()))  # sentry-go marshals TraceContext.Map(): sorted keys
    ctx = {"trace_id": item["trace_id"], "span_id": item["span_id"]}
    for key in ("parent_span_id", "op", "description", "status", "origin", "data"):
        if key in item:
            ctx[key] = item[key]
    return ctx


@dataclass
class TxName:
    """Transaction name, its source (sentry style) and the resource-level fields of the root."""

    name: str
    source: str = "custom"
    release: str = ""
    environment: str = ""
    platform: str = "other"
    resource: dict[str, Any] | None = None


def transaction_header(
    item: Mapping[str, Any],
    style: str,
    eid: str,
    name: TxName,
    environment: str,
    part: str = "",
    continues: str = "",
) -> tuple[dict[str, Any], list[str]]:
    """A transaction event without its ``spans`` (added by :func:`splice`) for the root span ``item``;
    ``part`` ("2/3") and ``continues`` (the original root span id) mark the pieces of a split one.
    Returns (header, notes on what was changed for Relay)."""
    notes: list[str] = []
    if style == "exporter":
        tags, notes, env_tag = relay_event_tags(item.get("tags", {}))
        if part:
            tags["tracegroup.part"] = part
            tags = dict(sorted(tags.items()))
        ctx: dict[str, Any] = {"trace": trace_context(item, style)}
        if "links" in item:
            ctx["trace"]["links"] = item["links"]
        ev: dict[str, Any] = {"contexts": ctx}
        env = environment or (env_tag if valid_environment(env_tag) else "")
        if env:
            ev["environment"] = env
        ev["event_id"] = eid
        ev["sdk"] = dict(EXPORTER_SDK)
        if tags:
            ev["tags"] = tags
        ev["timestamp"] = item["timestamp"]
        title = name.name + (" (continued)" if continues else "")
        if title:
            ev["transaction"] = title
        ev["type"] = "transaction"
        ev["start_timestamp"] = item["start_timestamp"]
        return ev, notes
    trace = trace_context(item, style)
    if part:
        trace["data"] = {**trace.get("data", {}), "tracegroup.part": part}
        if continues:
            trace["data"]["tracegroup.continues"] = continues
    if "links" in item:
        trace["links"] = item["links"]
    ev = {
        "event_id": eid,
        "type": "transaction",
        "platform": name.platform,
        "transaction": name.name + (" (continued)" if continues else ""),
        "transaction_info": {"source": name.source},
        "start_timestamp": item["start_timestamp"],
        "timestamp": item["timestamp"],
    }
    if name.release:
        ev["release"] = name.release
    env = environment or name.environment
    if env:
        ev["environment"] = env
    contexts: dict[str, Any] = {"trace": trace}
    if name.resource:
        contexts["otel"] = {"resource": name.resource}
    status = response_status(item)
    if status is not None:
        contexts["response"] = {"status_code": status}
    ev["contexts"] = contexts
    ev["sdk"] = sentry_sdk_info()
    return ev, notes


def response_status(item: Mapping[str, Any]) -> int | None:
    """The HTTP status code of an ``http.server`` span (``http.response.status_code``, else
    ``http.status_code``), which the SDKs put in ``contexts.response.status_code``; else None."""
    if item.get("op") != "http.server":
        return None
    data = item.get("data", {})
    code = data.get("http.response.status_code", data.get("http.status_code"))
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) and 100 <= code < 600 else None


def sentry_sdk_info() -> dict[str, str]:
    """The ``sdk`` of ``sentry`` style payloads: this tool, honestly named."""
    return {"name": "tracegroup.opentelemetry", "version": _version()}


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tracegroup")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


# --------------------------------------------------------------------------------------------- splitting
@dataclass
class Piece:
    """One transaction event of a (possibly split) transaction: its root row and its other rows."""

    root: int
    rows: list[int]


def plan_pieces(
    root: int,
    members: Sequence[int],
    span_len: Mapping[int, int] | Sequence[int],
    header_len: Callable[[int], int],
    limit: int,
) -> tuple[list[Piece], list[int]]:
    """Cut a transaction into pieces of at most ``limit`` bytes (see the module docstring).

    ``members`` are the non-root rows in the order they are taken; ``span_len[row]`` the byte length of a
    row's span item; ``header_len(row)`` the length of the header a piece rooted at ``row`` gets. Returns
    the pieces and the rows that fit nowhere (a header or a single span over the limit)."""
    budget = limit - PART_SLACK
    pieces: list[Piece] = []
    too_big: list[int] = []
    todo = list(members)
    cur_root: int | None = root
    pos = 0
    while True:
        if cur_root is None:
            if pos >= len(todo):
                break
            cur_root = todo[pos]
            pos += 1
        size = header_len(cur_root) + len(b',"spans":[]')
        if size > budget:
            too_big.append(cur_root)
            cur_root = None
            continue
        rows: list[int] = []
        while pos < len(todo):
            r = todo[pos]
            add = span_len[r] + (1 if rows else 0)
            if size + add > budget:
                break
            rows.append(r)
            size += add
            pos += 1
        pieces.append(Piece(cur_root, rows))
        cur_root = None  # the next span did not fit: it roots the next piece (or is too big alone)
        if pos >= len(todo):
            break
    return pieces, too_big


# --------------------------------------------------------------------------------------------- errors
@dataclass
class ExceptionRecord:
    """One ``exception`` span event: where it was recorded and what it says."""

    row: int
    index: int  # position among the span's events
    type: str
    message: str
    stacktrace: str
    time_ns: int


def error_event(
    item: Mapping[str, Any],
    rec: ExceptionRecord,
    style: str,
    eid: str,
    tx: TxName | None,
    environment: str,
    timestamp: str,
) -> tuple[dict[str, Any], list[str]]:
    """The error event of one exception record on the span ``item`` (the exporter's
    ``sentryEventFromError``; ``sentry`` style adds what an SDK would: platform, release, environment,
    the containing transaction's name, the event's own time, the resource and the stack trace text)."""
    exc: dict[str, str] = {}
    if rec.type:
        exc["type"] = rec.type
    if rec.message:
        exc["value"] = rec.message
    if style == "exporter":
        tags, notes, env_tag = relay_event_tags(item.get("tags", {}))
        ev: dict[str, Any] = {"contexts": {"trace": trace_context(item, style)}}
        env = environment or (env_tag if valid_environment(env_tag) else "")
        if env:  # as for its transaction: Relay moves an environment tag to the event
            ev["environment"] = env
        ev["event_id"] = eid
        ev["exception"] = [exc]
        ev["level"] = "error"
        if rec.message:
            ev["message"] = rec.message
        ev["sdk"] = dict(EXPORTER_SDK)
        if tags:
            ev["tags"] = tags
        ev["timestamp"] = timestamp
        if item.get("description"):
            ev["transaction"] = item["description"]
        return ev, notes
    trace = trace_context(item, style)
    trace.pop("data", None)
    trace.pop("description", None)
    ev = {
        "event_id": eid,
        "level": "error",
        "platform": tx.platform if tx else "other",
        "timestamp": timestamp,
    }
    if tx is not None and tx.name:
        ev["transaction"] = tx.name
    if tx is not None and tx.release:
        ev["release"] = tx.release
    env = environment or (tx.environment if tx else "")
    if env:
        ev["environment"] = env
    if rec.message:
        ev["message"] = rec.message
    ev["exception"] = {"values": [exc]}
    contexts: dict[str, Any] = {"trace": trace}
    if tx is not None and tx.resource:
        contexts["otel"] = {"resource": tx.resource}
    ev["contexts"] = contexts
    if rec.stacktrace:
        ev["extra"] = {"exception.stacktrace": rec.stacktrace}
    ev["sdk"] = sentry_sdk_info()
    return ev, []


def dedup_exceptions(
    records: Sequence[ExceptionRecord], tx_root: np.ndarray, parent: np.ndarray, span_id: Callable[[int], str]
) -> dict[int, str]:
    """Records (by index) that repeat, on an enclosing span of the same transaction, an exception recorded
    on a span nested inside it, mapped to the explanation for the report. The innermost copy is kept."""
    groups: dict[tuple[int, str, str], list[int]] = {}
    for k, rec in enumerate(records):
        groups.setdefault((int(tx_root[rec.row]), rec.type, rec.message), []).append(k)
    dup: dict[int, str] = {}
    for (tx, _, _), ks in groups.items():
        if len(ks) < 2:
            continue
        by_row: dict[int, list[int]] = {}
        for k in ks:
            by_row.setdefault(records[k].row, []).append(k)
        if len(by_row) < 2:
            continue
        visited: set[int] = set()
        for r in sorted(by_row):
            p = int(parent[r])
            while p >= 0 and int(tx_root[p]) == tx and p not in visited:
                visited.add(p)
                if p in by_row:
                    for k in by_row[p]:
                        dup.setdefault(k, f"same exception recorded on nested span {span_id(r)}")
                p = int(parent[p])
    return dup
