"""Building ``tracegroup emit``'s events from a :class:`~tracegroup.sentry.plan.Plan`: span conversion,
transaction and error payloads, envelope headers, one :class:`EmittedEvent` per event, written or not.

Contract: :func:`build` converts every span the plan needs in one pass over the table's batches
(:func:`convert_spans`: each span once, in the chosen style, renamed by the :class:`Renamer`; a batch is read
as its spans' keys, :func:`tracegroup.frames.span_keys`, and a span whose key was seen before in its resource
and scope is not parsed again; its item bytes go to a temporary file, :class:`SpanStore`, not memory;
exception span events are collected on the way), then builds the transactions in the plan's output order — a
transaction above ``max_item_bytes`` is cut into continuation transactions
(:func:`tracegroup.sentry.events.plan_pieces`), each piece under the plan's time rule on its own, a span too
big alone is ``too_large`` — then one error event per exception (``--errors dedup`` drops the enclosing
duplicates; an error event above ``max_item_bytes`` is ``too_large``). Event ids are handed out in that order,
so they are deterministic. Records come back in output order (by trace, transaction root, transactions before
errors); a replay (a rebase shift or a replay id, :func:`tracegroup.sentry.events.replay_salt`) enters every
id; with ``on_written`` each written event is handed over as soon as it is built and keeps no payload nor
headers afterwards. Headers: the event id, the route's DSN when routed, the SDK, the trace's dynamic sampling
context when it has one. Exporter-style transaction headers are filled from templates
(:class:`HeaderTemplates`) without parsing the root's item back: the same bytes as
:func:`tracegroup.sentry.events.transaction_header`'s (tested).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, overload

import numpy as np

from tracegroup.frames import detail_messages, span_keys
from tracegroup.model import SpanTable, hex_ids, span_hex
from tracegroup.redact import Policy
from tracegroup.routes import Route
from tracegroup.sentry.convert import (
    EXPORTER_SDK,
    RESERVED_TAG_KEYS,
    ResourceInfo,
    go_times,
    iso_times,
    relay_event_tags,
    sentry_transaction_name,
    valid_environment,
)
from tracegroup.sentry.encode import KEY_FIELDS, MEMO, Context, Fields, SpanEncoder, span_item
from tracegroup.sentry.events import (
    EventIds,
    ExceptionRecord,
    Piece,
    TxName,
    dedup_exceptions,
    dumps,
    error_event,
    plan_pieces,
    replay_salt,
    sentry_sdk_info,
    splice,
    transaction_header,
)
from tracegroup.sentry.plan import NOT_WRITTEN, TX_REASONS, Plan
from tracegroup.sentry.rename import Renamer


@dataclass(slots=True)
class EmittedEvent:
    """One transaction or error event: written (``reason`` empty, ``payload`` set) or not (``reason``)."""

    kind: str  # "transaction" | "error"
    event_id: str
    service: str
    trace_id: str
    root_span_id: str  # transaction: its root (contexts.trace) span; error: the span that recorded it
    spans: int  # spans carried (root included); 0 for error events
    route: str = ""
    dsn: str = field(default="", repr=False)
    part: int = 1
    parts: int = 1
    notes: list[str] = field(default_factory=list)
    reason: str = ""
    payload: bytes = field(default=b"", repr=False)
    headers: dict[str, Any] = field(default_factory=dict, repr=False)
    head: bytes = field(default=b"", repr=False)  # streamed: ``headers`` as JSON, made when built
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    @property
    def written(self) -> bool:
        return not self.reason

    def event(self) -> dict[str, Any]:
        """The payload as a dict (what Relay receives)."""
        data: dict[str, Any] = json.loads(self.payload)
        return data

    def manifest(self, file: str | None = None) -> dict[str, Any]:
        """The manifest line of this event (the DSN is never included)."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.kind,
            "service": self.service,
            "trace_id": self.trace_id,
            "root_span_id": self.root_span_id,
            "spans": self.spans,
            "route": self.route,
            "part": f"{self.part}/{self.parts}",
            "written": self.written,
            "file": file,
        }
        if self.reason:
            out["reason"] = self.reason
        out["notes"] = self.notes
        return out


_NO_HEADERS: dict[str, Any] = {}  # shared by the records that keep no headers: never mutated
#: Reason codes of :class:`Records` ("" = written).
_REASONS = ["", *NOT_WRITTEN]
_KINDS = ("transaction", "error")
_WIDTH = 9  # integers per record in Records.cols


class Records(Sequence[EmittedEvent]):
    """The records of a run as compact columns — per record its kind, owner row, span row, rows (a
    transaction of the plan, that span alone, or a list), part, parts, reason, the owner's service and trace
    codes, its span id (``root_span_id``) and event id — and an :class:`EmittedEvent` built on access, so
    memory per record is ~100 bytes, not ~1 KB of objects. Payloads and headers are kept only for runs
    that do not stream them; ``order`` maps output positions to records."""

    def __init__(self, plan: Plan, span_id: np.ndarray, keep_payloads: bool) -> None:
        self.plan, self.span_id, self.keep = plan, span_id, keep_payloads
        # _WIDTH integers a record: kind, owner, span row, rows ref, part, parts, reason, service, trace
        self.cols = array("q")
        self.eids = bytearray()
        self.sids = bytearray()  # the span ids, 8 bytes each
        self.lists: list[np.ndarray] = []  # rows ref -2 - j: rows of pieces
        self.notes: dict[int, list[str]] = {}
        self.payloads: dict[int, tuple[bytes, dict[str, Any]]] = {}
        self.order: list[int] = []

    def add(
        self,
        kind: str,
        eid: str,
        owner: int,
        span_row: int,
        rows: int | np.ndarray,
        reason: str,
        notes: list[str],
        part: int,
        parts: int,
        payload: bytes,
        headers: dict[str, Any],
    ) -> None:
        """One record; ``rows``: transaction ``k`` of the plan, -1 for the span row alone, or the rows."""
        k = len(self.cols) // _WIDTH
        if not isinstance(rows, int):
            self.lists.append(rows)
            rows = -1 - len(self.lists)
        p, code = self.plan, _REASONS.index(reason)
        svc, tr = int(p.svc[owner]), int(p.tr[owner])
        self.cols.extend((_KINDS.index(kind), owner, span_row, rows, part, parts, code, svc, tr))
        self.eids += bytes.fromhex(eid)
        self.sids += int(self.span_id[span_row]).to_bytes(8, "big")
        if notes:
            self.notes[k] = notes
        if self.keep and not reason:
            self.payloads[k] = (payload, headers)

    def __len__(self) -> int:
        return len(self.order)

    @overload
    def __getitem__(self, i: int) -> EmittedEvent: ...
    @overload
    def __getitem__(self, i: slice) -> list[EmittedEvent]: ...
    def __getitem__(self, i: int | slice) -> EmittedEvent | list[EmittedEvent]:
        if isinstance(i, slice):
            return [self.event(k) for k in self.order[i]]
        return self.event(self.order[i])

    def __iter__(self) -> Iterator[EmittedEvent]:
        return map(self.event, self.order)

    def event(self, k: int) -> EmittedEvent:
        """Record ``k`` in insertion order."""
        p = self.plan
        kind, owner, span_row, ref, part, parts, code, svc, tr = self.cols[_WIDTH * k : _WIDTH * k + _WIDTH]
        rows = p.tx.rows(ref) if ref >= 0 else self.lists[-2 - ref] if ref < -1 else np.array([span_row])
        reason = _REASONS[code]
        rt = p.routing.svc_route[svc]
        payload, headers = self.payloads.get(k, (b"", _NO_HEADERS))
        return EmittedEvent(
            _KINDS[kind],
            self.eids[16 * k : 16 * k + 16].hex(),
            p.services[svc],
            p.trace_hex[tr],
            self.sids[8 * k : 8 * k + 8].hex(),
            len(rows) if kind == 0 else 0,
            rt.name if rt else "",
            rt.dsn if rt and not reason else "",
            part=part,
            parts=parts,
            notes=list(self.notes.get(k, ())),
            reason=reason,
            payload=payload,
            headers=headers,
            rows=rows,
        )


class SpanStore:
    """The item bytes of the spans still to be placed in a transaction, kept out of memory: appended to
    an unnamed temporary file a batch at a time, each item followed by a comma, the items of one batch
    grouped by ``group`` (the transaction of each row; rows in input order within a group), read back
    with ``os.pread``; only two int64 columns (offset, length) per span stay in memory. A span never
    stored reads as ``b""``. :meth:`runs` finds, for many transactions at once, the runs of items stored
    one after the other that hold each one's items (about one per batch it has spans in), and :meth:`read`
    reads them, comma-separated, one read per run."""

    def __init__(self, n: int, group: np.ndarray) -> None:
        self.file = tempfile.TemporaryFile(prefix="tracegroup-emit-")  # noqa: SIM115 - closed by close()
        self.fd = self.file.fileno()
        self.group = group
        self.off = np.zeros(n, dtype=np.int64)
        self.len = np.zeros(n, dtype=np.int64)  # with the comma
        self.pos = 0

    def put_batch(self, rows: list[int], items: list[str]) -> None:
        """Store the items (ASCII JSON) of ``rows`` (one batch's converted spans)."""
        if not rows:
            return
        r = np.array(rows, dtype=np.int64)
        order = np.lexsort((r, self.group[r]))
        r = r[order]
        items = [items[j] for j in order.tolist()]
        lens = np.fromiter(map(len, items), dtype=np.int64, count=len(items)) + 1
        ends = np.cumsum(lens) + self.pos
        self.off[r], self.len[r] = ends - lens, lens
        self.pos = int(ends[-1])
        items.append("")  # the comma after the last item
        self.file.write(",".join(items).encode("ascii"))

    def flush(self) -> None:
        self.file.flush()

    def size(self, i: int) -> int:
        return max(int(self.len[i]) - 1, 0)

    def get(self, i: int) -> bytes:
        k = int(self.len[i]) - 1
        return os.pread(self.fd, k, int(self.off[i])) if k > 0 else b""

    def items(self, rows: list[int]) -> list[bytes]:
        """The items of ``rows``, in that order: each run of them stored one after the other read at once."""
        r = np.array(rows, dtype=np.int64)
        order = np.argsort(self.off[r], kind="stable")
        offs, lens, at = self.off[r[order]].tolist(), self.len[r[order]].tolist(), order.tolist()
        out = [b""] * len(rows)
        j = 0
        while j < len(at):
            e = j + 1
            while e < len(at) and offs[e] == offs[e - 1] + lens[e - 1]:
                e += 1
            buf = memoryview(os.pread(self.fd, offs[e - 1] + lens[e - 1] - offs[j], offs[j]))
            for x in range(j, e):
                a = offs[x] - offs[j]
                out[at[x]] = bytes(buf[a : a + lens[x] - 1]) if lens[x] else b""
            j = e
        return out

    def runs(self, rows: np.ndarray, owner: np.ndarray, n: int) -> tuple[list[tuple[int, int]], list[int]]:
        """Where the items of ``rows`` lie, for ``n`` owners at once: ``rows`` all stored, grouped by
        ``owner`` (0 to ``n - 1``, ascending), each owner's in input order. Gives the (start, end) of
        every run of items stored one after the other, the comma after an owner's last item left out,
        and where each owner's runs begin (owner ``j``: ``runs[at[j] : at[j + 1]]``)."""
        if not len(rows):
            return [], [0] * (n + 1)
        off, ln = self.off[rows], self.len[rows]
        new = np.ones(len(rows), dtype=bool)
        new[1:] = (owner[1:] != owner[:-1]) | (off[1:] != off[:-1] + ln[:-1])
        first = np.flatnonzero(new)
        last = np.append(first[1:], len(rows)) - 1
        ends = off[last] + ln[last]
        ends[np.append(owner[first][1:] != owner[first][:-1], True)] -= 1
        at = np.searchsorted(owner[first], np.arange(n + 1)).tolist()
        return list(zip(off[first].tolist(), ends.tolist(), strict=True)), at

    def read(self, runs: list[tuple[int, int]]) -> list[bytes]:
        """The bytes of ``runs`` (:meth:`runs`), one read each."""
        fd = self.fd
        return [os.pread(fd, e - a, a) for a, e in runs]

    def close(self) -> None:
        self.file.close()


class _Pieces:
    """The span items of one oversized transaction, parsed back from their bytes when a piece needs one
    as its root, and the header length each candidate root would give."""

    def __init__(
        self,
        store: SpanStore,
        root: int,
        item: dict[str, Any],
        header: bytes,
        style: str,
        name: TxName,
        environment: str,
        eid: str,
        root_hex: str,
    ) -> None:
        self.store, self.root, self.header = store, root, header
        self.style, self.name, self.environment, self.eid, self.root_hex = (
            style,
            name,
            environment,
            eid,
            root_hex,
        )
        self.cache: dict[int, dict[str, Any]] = {root: item}

    def item(self, x: int) -> dict[str, Any]:
        if x not in self.cache:
            self.cache[x] = json.loads(self.store.get(x) or b"{}")
        return self.cache[x]

    def header_len(self, x: int) -> int:
        if x == self.root:
            return len(self.header)
        h, _ = transaction_header(
            self.item(x), self.style, self.eid, self.name, self.environment, continues=self.root_hex
        )
        return len(dumps(h))


#: An exporter-style span item in its plain layout (no links): ids, the members between them and the
#: times (greedy: the last ``start_timestamp`` member is the item's own), times.
_PLAIN = re.compile(
    rb'\{"trace_id":"([0-9a-f]{32})","span_id":"([0-9a-f]{16})"(?:,"parent_span_id":"([0-9a-f]{16})")?,'
    rb'(.*),"start_timestamp":"([^"\\]*)","timestamp":"([^"\\]*)"\}',
    re.S,
)
#: Stand-ins of a template's per-transaction values (trace, span, parent, event id, start, end, tags) and
#: how they read once JSON-encoded.
_HOLES = tuple(f"\0tg{k}\0" for k in range(7))
_HOLE = re.compile(rb"\\u0000tg([0-6])\\u0000")
_TAGS_HOLE = b'{"tg":"\\u0000tg6\\u0000"}'
#: A root's middle members as its header takes them: (template parts, slots, tags' JSON, notes).
_Filled = tuple[list[bytes], list[int], memoryview, tuple[str, ...]]
MIDS, MIDS_BYTES = 1 << 15, 16 << 20  # the middles remembered: the first MIDS within MIDS_BYTES
_SPLICE = len(b',"spans":[]')
#: Transactions planned at once (:meth:`Builder.transactions`).
TX_CHUNK = 1 << 12


#: One tag Relay keeps as it is: a key of its characters but the space, neither reserved nor ``environment``,
#: and a value of printable ASCII that needs no escape, without leading or trailing space (Relay strips
#: them), both of 1 to 200 characters (:func:`tracegroup.sentry.convert.relay_event_tags`).
_KEPT_TAG = rb'"(?!(?:%s)")[A-Za-z0-9_.:-]{1,200}":"[!#-\[\]-~](?:[ !#-\[\]-~]{0,198}[!#-\[\]-~])?"' % (
    "|".join(sorted(RESERVED_TAG_KEYS | {"environment"})).encode("ascii")
)
_KEPT_TAGS = re.compile(rb"\{(?:%s(?:,%s)*)?\}" % (_KEPT_TAG, _KEPT_TAG))


def clean_tags(raw: bytes) -> bool:
    """Whether Relay keeps the tags of ``raw`` (a JSON object of strings, as ``dumps`` writes it) exactly as
    they are, in that order (sorted keys): then they need no parsing."""
    if not _KEPT_TAGS.fullmatch(raw):
        return False
    keys = [pair.split(b'":"', 1)[0] for pair in raw[2:-2].split(b'","')]  # values hold no quote
    return all(a < b for a, b in zip(keys, keys[1:], strict=False))


class HeaderTemplates:
    """Exporter-style transaction headers without parsing the root's item back: besides its ids, times,
    event id and tags, the header of a root depends only on the members before its tags (op,
    description, status) and the environment, so each distinct combination is made into a template once
    (:func:`transaction_header` on an item with stand-ins, its JSON cut at them) and filled per
    transaction; the tags are Relay's (:func:`relay_event_tags`), their JSON the item's own when Relay
    keeps them as they are. What a root's members between its ids and times give (the template, the
    tags' JSON, the notes) is remembered per distinct members (:meth:`middle`; roots repeat theirs: 13k
    distinct for 95k transactions in the 1M-span benchmark dump), the first :data:`MIDS` within
    :data:`MIDS_BYTES`. The same bytes as ``dumps(transaction_header(...))``. An item with links, or whose
    members could hold a stand-in's text, gets None (the caller parses it)."""

    def __init__(self, environment: str) -> None:
        self.environment = environment
        self.memo: dict[tuple[bytes, bool, str, bool], tuple[list[bytes], list[int]] | None] = {}
        self.mids: dict[tuple[bytes, bool], _Filled | None] = {}  # the first MIDS within MIDS_BYTES
        self.mid_bytes = 0

    def header(self, item: bytes, eid: str) -> tuple[bytes, list[str]] | None:
        """(the header's JSON, the notes) of the transaction ``eid`` rooted at the span ``item``."""
        m = _PLAIN.fullmatch(item)
        if m is None:
            return None
        tid, sid, par, mid, st, en = m.groups()
        key = (mid, par is not None)
        try:
            hit = self.mids[key]
        except KeyError:
            hit = self.middle(*key)
            size = len(mid) + (len(hit[2]) if hit is not None and hit[2].obj is not mid else 0)
            if len(self.mids) < MIDS and self.mid_bytes + size <= MIDS_BYTES:
                self.mids[key] = hit
                self.mid_bytes += size
        if hit is None:
            return None
        parts, slots, tags_json, notes = hit
        vals = (tid, sid, par, eid.encode("ascii"), st, en, tags_json)
        out: list[bytes | memoryview] = [parts[0]]
        for j, slot in enumerate(slots, start=1):
            out.append(vals[slot])
            out.append(parts[j])
        return b"".join(out), list(notes)

    def middle(self, mid: bytes, parent: bool) -> _Filled | None:
        """What an item's members between its ids and times give its header: the template, the tags'
        JSON as Relay keeps them, the notes (None: no template). Tags Relay keeps as they are
        (:func:`clean_tags`) are not parsed."""
        k = mid.rfind(b'"tags":{')  # the last member of an exporter middle
        if k < 0:
            return None
        pre, tags_json = mid[:k], memoryview(mid)[k + 7 :]  # the tags: the middle's own bytes
        raw = bytes(tags_json)
        notes: list[str] = []
        if clean_tags(raw):
            kept, env = raw != b"{}", self.environment
        else:
            tags = json.loads(raw)
            kept_tags, notes, env_tag = relay_event_tags(tags)
            kept, env = bool(kept_tags), self.environment or (env_tag if valid_environment(env_tag) else "")
            if kept_tags and list(kept_tags.items()) != list(tags.items()):
                tags_json = memoryview(dumps(kept_tags))
        key = (pre, parent, env, kept)
        try:
            t = self.memo[key]
        except KeyError:
            t = self.template(*key)
            if len(self.memo) >= MEMO:
                self.memo.clear()
            self.memo[key] = t
        if t is None:
            return None
        return t[0], t[1], tags_json, tuple(notes)

    def template(
        self, pre: bytes, parent: bool, env: str, tags: bool
    ) -> tuple[list[bytes], list[int]] | None:
        if b"\\u0000tg" in pre or "\0tg" in env:
            return None
        item: dict[str, Any] = {"trace_id": _HOLES[0], "span_id": _HOLES[1]}
        if parent:
            item["parent_span_id"] = _HOLES[2]
        item.update(json.loads(b"{" + pre + b'"tags":{}}'))
        item["tags"] = {"tg": _HOLES[6]} if tags else {}
        item["start_timestamp"], item["timestamp"] = _HOLES[4], _HOLES[5]
        name = TxName(item.get("description", ""))
        head = dumps(transaction_header(item, "exporter", _HOLES[3], name, env)[0])
        if tags:
            if head.count(_TAGS_HOLE) != 1:  # pragma: no cover - transaction_header keeps such a tag
                return None
            head = head.replace(_TAGS_HOLE, b"\\u0000tg6\\u0000")
        cut = _HOLE.split(head)
        return cut[0::2], [int(x) for x in cut[1::2]]


class _RowAccess:
    """Random access to (resource, scope, span) of a row (parsed as :func:`detail_messages`, not yet
    scrubbed: the :class:`SpanEncoder` scrubs), the last few batch messages cached."""

    def __init__(self, table: SpanTable) -> None:
        self.table = table
        self.parse = detail_messages()
        self.cache: dict[int, Any] = {}

    def get(self, i: int) -> tuple[Any, Any, Any]:
        t = self.table
        b = int(t.batch[i])
        td = self.cache.get(b)
        if td is None:
            if len(self.cache) >= 8:
                del self.cache[next(iter(self.cache))]
            td = self.cache[b] = self.parse(t.batches[b].raw)
        rs = td.resource_spans[int(t.res[i])]
        ss = rs.scope_spans[int(t.scope[i])]
        return rs, ss, ss.spans[int(t.idx[i])]


class Converter:
    """One OTLP span (parsed as :func:`detail_messages`) -> its Sentry span item's JSON bytes in ``style``,
    scrubbed and renamed (:class:`SpanEncoder`), with its emitted times (formatted a column at a time for
    the rows of the current batch, :meth:`window`, one by one for any other); remembers the names of the
    spans whose items are kept."""

    def __init__(self, plan: Plan, style: str, renamer: Renamer, policy: Policy | None = None) -> None:
        self.style, self.renamer = style, renamer
        self.policy = policy if policy is not None else Policy()
        self.enc = SpanEncoder(style, self.policy)
        self.fmt = go_times if style == "exporter" else iso_times
        self.start, self.end, self.svc = plan.times.start, plan.times.end, plan.svc
        self.lo = 0
        self.st: list[str] = []
        self.en: list[str] = []
        self.names: dict[int, str] = {}

    def window(self, lo: int, hi: int) -> None:
        """Format the times of rows ``lo``..``hi`` (the batch about to be converted)."""
        self.lo, self.st, self.en = lo, self.fmt(self.start[lo:hi]), self.fmt(self.end[lo:hi])

    def __call__(self, i: int, sp: Any, ctx: Context) -> tuple[bytes, str, str | None]:
        """(item bytes, name after renames, the route an inner SERVER span names: sentry style)."""
        p = i - self.lo
        if 0 <= p < len(self.st):
            st, en = self.st[p], self.en[p]
        else:
            st, en = self.fmt(self.start[i : i + 1])[0], self.fmt(self.end[i : i + 1])[0]
        if self.renamer:
            return self.enc.encode(sp, ctx, st, en, self.renamer, int(self.svc[i]))
        return self.enc.encode(sp, ctx, st, en)


@dataclass
class Converted:
    """What the conversion pass leaves: the stored item bytes of every converted span (each span a written
    transaction needs, and the spans with exceptions; parsed back from the store by :meth:`item`), every
    exception, the resource notes, and in ``sentry`` style the resources of transaction roots and spans
    with exceptions and the route name of an inner SERVER span per transaction root."""

    store: SpanStore
    res_of: dict[int, ResourceInfo] = field(default_factory=dict)
    records: list[ExceptionRecord] = field(default_factory=list)
    res_notes: set[str] = field(default_factory=set)
    nested_route: dict[int, str] = field(default_factory=dict)
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)  # items converted after the pass
    cache: dict[int, dict[str, Any]] = field(default_factory=dict)

    def seed(self, i: int, item: dict[str, Any]) -> None:
        """Remember the parsed item of row ``i`` (read with others)."""
        if len(self.cache) >= 256:
            self.cache.clear()
        self.cache[i] = item

    def item(self, i: int) -> dict[str, Any]:
        """The parsed item of a converted span (treat as read-only)."""
        hit = self.extra.get(i) or self.cache.get(i)
        if hit is None:
            if len(self.cache) >= 256:
                self.cache.clear()
            hit = self.cache[i] = json.loads(self.store.get(i))
        return hit


def convert_spans(table: SpanTable, plan: Plan, convert: Converter, want_errors: bool) -> Converted:
    """One pass over the table's batches: convert each span needed by a written transaction or carrying
    an exception event that may be written, store its bytes, collect the exceptions. Each batch is read
    as the keys of its spans (:func:`tracegroup.frames.span_keys`): a span whose key was seen in its
    resource and scope takes the fields remembered for it, only the others are parsed; ids and times
    come from the table's columns."""
    enc, read = convert.enc, span_keys(KEY_FIELDS)
    renamer, svc = convert.renamer or None, plan.svc
    out = Converted(SpanStore(plan.n, plan.tx.of_row))
    names = convert.style == "sentry"
    row = 0
    for batch in table.batches:
        lo, hi = row, row + batch.spans
        convert.window(lo, hi)  # the times of this batch, formatted at once
        st_l, en_l = convert.st, convert.en
        need_l, elig_l = plan.need[lo:hi].tolist(), plan.eligible[lo:hi].tolist()
        is_root = (plan.root[lo:hi] == np.arange(lo, hi, dtype=np.int64)).tolist()
        tids, sids, pars = _id_members(table, lo, hi)
        rows: list[int] = []
        items: list[str] = []
        td, span = read(batch.raw)
        for rs in td.resource_spans:
            res: tuple[int, ResourceInfo] | None = None
            for ss in rs.scope_spans:
                keys = ss.spans
                k = len(keys)
                if not k:
                    continue
                j0 = row - lo
                row += k
                ctx: Context | None = None
                need_s = need_l[j0 : j0 + k]
                if any(need_s):
                    res = res or enc.resource(rs)
                    ctx = enc.context(res, ss.scope.name, ss.scope.version)
                    out.res_notes.update(res[1].notes)
                hits: list[Fields | None] = enc.known(keys, ctx) if ctx is not None else [None] * k
                parsed: dict[int, bool] = {}  # misses converted here -> whether they carry exceptions
                for j in [j for j, h in enumerate(hits) if h is None]:
                    if ctx is not None and (seen := enc.recall(ctx, keys[j])) is not None:
                        hits[j] = seen  # remembered from earlier in this scope
                        continue
                    sp = span(keys[j])
                    jj = j0 + j
                    evs = sp.events
                    exc = enc.exceptions(evs, lo + jj) if len(evs) else None
                    if exc:
                        out.records.extend(exc)
                    if not (need_s[j] or (exc and want_errors and elig_l[jj])):
                        continue
                    if ctx is None:
                        res = res or enc.resource(rs)
                        ctx = enc.context(res, ss.scope.name, ss.scope.version)
                        out.res_notes.update(res[1].notes)
                    got = hits[j] = enc.fields(sp, ctx, renamer, int(svc[lo + jj]) if renamer else 0)
                    parsed[j] = bool(exc)
                    if not len(evs) and not got.links:
                        enc.remember(ctx, keys[j], got)
                sel = range(k) if all(need_s) else [j for j in range(k) if need_s[j] or j in parsed]
                extra = renamer or names  # (only sentry style names nested routes)
                if not extra and len(sel) == k and None not in hits:  # every span, nothing more: at C speed
                    j1 = j0 + k
                    mids, links = map(_MID, hits), map(_LINKS, hits)
                    items += map(
                        span_item,
                        tids[j0:j1],
                        sids[j0:j1],
                        pars[j0:j1],
                        mids,
                        st_l[j0:j1],
                        en_l[j0:j1],
                        links,
                    )
                    rows += range(lo + j0, lo + j1)
                    continue
                for j in sel:
                    f = hits[j]
                    if f is None:  # pragma: no cover - sel holds converted spans only
                        continue
                    jj = j0 + j
                    items.append(span_item(tids[jj], sids[jj], pars[jj], f.mid, st_l[jj], en_l[jj], f.links))
                    rows.append(lo + jj)
                    if not extra:
                        continue
                    if renamer and f.renamed and j not in parsed:  # the others counted themselves
                        renamer.renamed += 1
                    if f.nested is not None and need_s[j] and not is_root[jj]:
                        out.nested_route.setdefault(int(plan.root[lo + jj]), f.nested)
                    if names and ctx is not None and (is_root[jj] or parsed.get(j)):  # sentry style only
                        out.res_of[lo + jj] = ctx.info
                        convert.names[lo + jj] = f.name
        out.store.put_batch(rows, items)
        if row != hi:  # pragma: no cover - the table contract
            raise AssertionError(f"batch of {batch.spans} spans holds {row - lo}")
    out.store.flush()
    enc.forget()
    if row != plan.n:  # pragma: no cover - the table contract
        raise AssertionError(f"table has {plan.n} rows but its batches hold {row} spans")
    return out


_MID, _LINKS = attrgetter("mid"), attrgetter("links")


def _id_members(table: SpanTable, lo: int, hi: int) -> tuple[list[str], list[str], list[str]]:
    """The trace id, span id and parent member (``,"parent_span_id":"…"`` or "") of rows ``lo``..``hi`` as
    their items write them, from the table's columns (a span whose ids the table zeroed is never
    written: :func:`tracegroup.sentry.plan.bad_id_rows`)."""
    pid = table.parent_id[lo:hi]
    pars = [
        f',"parent_span_id":"{h}"' if p else "" for h, p in zip(hex_ids(pid, 16), pid.tolist(), strict=True)
    ]
    return hex_ids(table.trace_id[lo:hi], 32), hex_ids(table.span_id[lo:hi], 16), pars


class Builder:
    """Builds the events of a plan from converted spans, in order, handing out event ids."""

    def __init__(
        self,
        table: SpanTable,
        plan: Plan,
        convert: Converter,
        spans: Converted,
        environment: str,
        max_item_bytes: int,
        on_written: Callable[[EmittedEvent], None] | None,
    ) -> None:
        self.table, self.plan, self.convert, self.spans = table, plan, convert, spans
        self.style, self.environment, self.max_item_bytes = convert.style, environment, max_item_bytes
        self.on_written = on_written
        self.access = _RowAccess(table)
        self.ids = EventIds()
        self.out = Records(plan, table.span_id, on_written is None)
        self.keys = array("q")  # the output-order key of each record, five integers each
        self.sdk = dict(EXPORTER_SDK) if self.style == "exporter" else sentry_sdk_info()
        self.dsc: dict[int, dict[str, str]] = {}
        self.heads: dict[tuple[int, str | None], bytes] = {}  # (trace, DSN) -> headers but the event id
        self.templates = HeaderTemplates(environment) if self.style == "exporter" else None
        tx, lens = plan.tx, spans.store.len
        self.stored = (
            np.add.reduceat(lens[tx.by_tx], tx.off[:-1]) if len(tx.roots) else lens[:0]
        )  # bytes a tx

    # ----------------------------------------------------------------- shared pieces
    def span_hex(self, row: int) -> str:
        return span_hex(self.table.span_id[row])

    def tx_name(self, r: int) -> TxName:
        """Name and resource fields of the transaction rooted at row ``r`` (converting it if needed)."""
        res_of = self.spans.res_of
        stored = self.style == "exporter" and (self.spans.store.len[r] > 0 or r in self.spans.extra)
        if r not in res_of and not stored:  # exporter style keeps no resources: its item is enough
            rs, ss, sp = self.access.get(r)
            enc = self.convert.enc
            res = enc.resource(rs)
            ctx = enc.context(res, ss.scope.name, ss.scope.version)
            data, self.convert.names[r], _ = self.convert(r, sp, ctx)
            self.spans.extra[r] = json.loads(data)
            res_of[r] = res[1]
        item = self.spans.item(r)
        if self.style == "exporter":
            return TxName(item.get("description", ""))
        rinfo = res_of[r]
        nm, source = sentry_transaction_name(
            self.convert.names[r], int(self.table.kind[r]), item.get("data", {})
        )
        nested = self.spans.nested_route
        if source != "route" and r in nested:  # e.g. Phoenix: the route is on the inner SERVER span
            nm, source = nested[r], "route"
        return TxName(nm, source, rinfo.release, rinfo.environment, rinfo.platform, rinfo.json)

    def headers(self, eid: str, rt: Route | None, t: int) -> dict[str, Any]:
        h: dict[str, Any] = {"event_id": eid}
        if rt is not None and rt.dsn:
            h["dsn"] = rt.dsn
        h["sdk"] = dict(self.sdk)
        dsc = self.plan.routing.dsc[t]
        if dsc is not None:
            h["trace"] = self.trace_dsc(t, dsc)
        return h

    def trace_dsc(self, t: int, dsc: dict[str, str]) -> dict[str, str]:
        """The trace's dynamic sampling context; ``sentry`` style fills it as sentry-python's
        ``Baggage.populate_from_transaction`` does from the head's transaction: ``release``,
        ``environment`` (unless ``--environment`` set it) and ``transaction`` (unless its source is
        ``url``)."""
        if self.style != "sentry":
            return dict(dsc)
        if t not in self.dsc:
            d = dict(dsc)
            head = self.tx_name(int(self.plan.root[int(self.plan.routing.heads[t])]))
            if head.environment and "environment" not in d:
                d["environment"] = head.environment
            if head.release:
                d["release"] = head.release
            if head.name and head.source != "url":
                d["transaction"] = head.name
            self.dsc[t] = d
        return dict(self.dsc[t])

    def record(
        self,
        key: tuple[int, ...],
        kind: str,
        eid: str,
        owner: int,
        span_row: int,
        rows: int | np.ndarray,
        *,
        reason: str = "",
        payload: bytes = b"",
        notes: list[str] | None = None,
        part: int = 1,
        parts: int = 1,
    ) -> None:
        """Add the event ``eid`` of the service and trace of row ``owner``, rooted at (transaction) or
        recorded on (error) the span of row ``span_row``, carrying ``rows`` (transaction ``k`` of the plan,
        -1 for ``span_row`` alone, or the rows): not written when ``reason``, else written with
        ``payload`` (and handed to ``on_written``)."""
        headers = _NO_HEADERS
        if not reason:
            rt = self.plan.route(owner)
            headers = self.headers(eid, rt, int(self.plan.tr[owner]))
        self.out.add(kind, eid, owner, span_row, rows, reason, notes or [], part, parts, payload, headers)
        self.keys.extend(key)
        if not reason and self.on_written is not None:
            ev = self.out.event(len(self.out.cols) // _WIDTH - 1)
            ev.payload, ev.headers = payload, headers
            ev.head = self.head(headers, int(self.plan.tr[owner]))
            self.on_written(ev)

    def head(self, headers: dict[str, Any], t: int) -> bytes:
        """``dumps(headers)`` of an event of trace ``t``: all but the event id is the same for the events of
        one trace and DSN, so serialized once for them."""
        key = (t, headers.get("dsn"))
        rest = self.heads.get(key)
        if rest is None:
            if len(self.heads) >= 64:  # events come trace by trace
                self.heads.clear()
            rest = self.heads[key] = dumps({k: v for k, v in headers.items() if k != "event_id"})
        eid = headers["event_id"].encode("ascii")
        return b'{"event_id":"%s"%s%s' % (eid, b"," if len(rest) > 2 else b"", rest[1:])

    # ----------------------------------------------------------------- transactions
    def transactions(self, ks: np.ndarray) -> None:
        """Transactions ``ks`` of the plan, in that order (a stretch of the output order): what each needs
        — root, trace, root span id, the room its spans leave under the item limit, the runs of stored
        bytes its spans are read as — worked out for all at once, then each built (:meth:`transaction`)."""
        p, store = self.plan, self.spans.store
        tx = p.tx
        roots = tx.roots[ks]
        room = self.max_item_bytes - _SPLICE - np.maximum(self.stored[ks] - store.len[roots] - 1, 0)
        room[tx.reason[ks] != 0] = -1  # not written: nothing read
        # the rows of each transaction but its root, in input order, as the runs they are stored in
        n = tx.off[ks + 1] - tx.off[ks]
        pos = np.repeat(tx.off[ks] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        mem, owner = tx.by_tx[pos], np.repeat(np.arange(len(ks)), n)
        keep = (mem != roots[owner]) & (room[owner] >= 0)
        pairs, at = store.runs(mem[keep], owner[keep], len(ks))
        root_hex = hex_ids(self.table.span_id[roots], 16)
        rows = zip(ks.tolist(), roots.tolist(), p.tr[roots].tolist(), root_hex, room.tolist(), strict=True)
        for j, (k, r, t, rhex, rm) in enumerate(rows):
            self.transaction(k, r, t, rhex, rm, pairs[at[j] : at[j + 1]])

    def transaction(
        self, k: int, r: int, t: int, root_hex: str, room: int, runs: list[tuple[int, int]]
    ) -> None:
        """Transaction ``k`` of the plan, rooted at row ``r`` of trace ``t``: one record, or its pieces when
        over the item limit (``room``: what its spans leave under it, negative when they do not fit or it
        is not written; ``runs``: the (start, end) of the stored bytes of its spans but the root's)."""
        p, store = self.plan, self.spans.store
        eid = self.ids.new("transaction", p.trace_hex[t], root_hex)
        key = (t, r, 0)
        if p.tx.reason[k]:
            reason = TX_REASONS[int(p.tx.reason[k])]
            self.record((*key, 0, 0), "transaction", eid, r, r, k, reason=reason)
            return
        root_item = store.get(r)
        spans: list[bytes] = []
        if room >= 0:  # its spans may fit in one item
            spans = store.read(runs)
            fast = self.templates.header(root_item, eid) if self.templates is not None else None
            if fast is not None and len(fast[0]) <= room:
                payload = splice(fast[0], spans, b"")
                self.record((*key, 1, 0), "transaction", eid, r, r, k, payload=payload, notes=fast[1])
                return
        self.spans.seed(r, json.loads(root_item))
        name = self.tx_name(r)
        item = self.spans.item(r)
        header, hnotes = transaction_header(item, self.style, eid, name, self.environment)
        hb = dumps(header)
        if len(hb) <= room:
            payload = splice(hb, spans, b"")
            self.record((*key, 1, 0), "transaction", eid, r, r, k, payload=payload, notes=hnotes)
            return
        rows_k = p.tx.rows(k)
        self.split(
            key,
            r,
            rows_k[rows_k != r].tolist(),
            _Pieces(store, r, item, hb, self.style, name, self.environment, eid, root_hex),
        )

    def split(self, key: tuple[int, ...], r: int, members: list[int], pz: _Pieces) -> None:
        """The size rule: transaction ``r`` as pieces cut by start time (:meth:`piece`); spans too big
        alone are ``too_large``."""
        store, start = self.spans.store, self.plan.times.start
        mem = np.array(members, dtype=np.int64)
        taken = mem[np.lexsort((mem, start[mem]))].tolist()
        lens = {x: store.size(x) for x in members}
        pieces, too_big = plan_pieces(r, taken, lens, pz.header_len, self.max_item_bytes)
        for j, pc in enumerate(pieces, start=1):
            self.piece((*key, 1, j), r, j, len(pieces), pc, pz)
        trace = self.plan.trace_hex[int(self.plan.tr[r])]
        for x in too_big:
            xhex = self.span_hex(x)
            eid = self.ids.new("transaction", trace, xhex, "too-large")
            notes = [f"span of transaction {pz.root_hex}"]
            self.record((*key, 2, x), "transaction", eid, r, x, -1, reason="too_large", notes=notes)

    def piece(self, key: tuple[int, ...], r: int, j: int, nparts: int, pc: Piece, pz: _Pieces) -> None:
        """Piece ``j`` of ``nparts`` of transaction ``r``, under the time rule on its own (a continuation's
        own end decides, as for any transaction)."""
        trace, root_hex, proot = self.plan.trace_hex[int(self.plan.tr[r])], pz.root_hex, pc.root
        phex = root_hex if proot == r else self.span_hex(proot)
        rows = np.array([proot, *pc.rows], dtype=np.int64)
        late = self.plan.tx_late(proot)
        if late:
            eid = self.ids.new("transaction", trace, root_hex, f"part{j}")
            notes = [f"part {j}/{nparts} of transaction {root_hex}"]
            self.record(
                key, "transaction", eid, r, proot, rows, reason=late, notes=notes, part=j, parts=nparts
            )
            return
        eid = pz.eid if j == 1 else self.ids.new("transaction", trace, root_hex, f"part{j}")
        cont = "" if proot == r else root_hex
        h, hnotes = transaction_header(
            pz.item(proot), self.style, eid, pz.name, self.environment, part=f"{j}/{nparts}", continues=cont
        )
        payload = splice(dumps(h), self.spans.store.items(pc.rows))
        notes = [f"part {j}/{nparts} of transaction {root_hex}: over the 1 MiB item limit, cut by start time"]
        if cont:
            parent = pz.item(proot).get("parent_span_id", "")
            notes.append(f"continuation transaction rooted at span {phex} (parent {parent})")
        notes += hnotes
        self.record(
            key, "transaction", eid, r, proot, rows, payload=payload, notes=notes, part=j, parts=nparts
        )

    # ----------------------------------------------------------------- error events
    def error(self, rec: ExceptionRecord, errors: str, dup: str | None) -> None:
        """The error event of one exception (``dup``: the dedup note when it is a duplicate)."""
        p = self.plan
        i = rec.row
        t = int(p.tr[i])
        shex = self.span_hex(i)
        eid = self.ids.new("exception", p.trace_hex[t], shex, str(rec.index))
        key = (t, int(p.root[i]), 1, i, rec.index)
        reason = p.error_reason(i, errors) or ("duplicate_exception" if dup is not None else "")
        if reason:
            notes = [dup] if dup is not None else []
            self.record(key, "error", eid, i, i, -1, reason=reason, notes=notes)
            return
        item = self.spans.item(i)
        if self.style == "exporter":
            ts_ns, ts = int(p.times.end[i]), item["timestamp"]
            txn = None
        else:
            ts_ns = rec.time_ns + p.times.shift if rec.time_ns else int(p.times.end[i])
            ts = self.convert.fmt(np.array([ts_ns], dtype=np.int64))[0]
            txn = self.tx_name(int(p.root[i]))
        ev_dict, notes = error_event(item, rec, self.style, eid, txn, self.environment, ts)
        if p.error_late(ts_ns):
            notes.append("outside Relay's window (90 days back, 60 s ahead): Relay replaces its timestamp")
        payload = dumps(ev_dict)
        if len(payload) > self.max_item_bytes:
            self.record(key, "error", eid, i, i, -1, reason="too_large", notes=[f"{len(payload):,} bytes"])
            return
        self.record(key, "error", eid, i, i, -1, payload=payload, notes=notes)

    def events(self) -> Records:
        """Every record, in output order."""
        keys = np.frombuffer(self.keys, dtype=np.int64).reshape(-1, 5)
        self.out.order = np.lexsort(keys.T[::-1]).tolist() if len(keys) else []
        return self.out


@dataclass
class Built:
    """The records in output order, the run's notes (counts) and the number of exception span events."""

    records: Sequence[EmittedEvent]
    notes: dict[str, int]
    exception_events: int


def build(
    table: SpanTable,
    plan: Plan,
    renamer: Renamer,
    *,
    style: str,
    errors: str,
    environment: str,
    max_item_bytes: int,
    on_written: Callable[[EmittedEvent], None] | None = None,
    policy: Policy | None = None,
    replay_id: str = "",
) -> Built:
    """Every event of ``plan`` (see the module docstring); spans are scrubbed by ``policy`` (default: the
    secrets of :class:`tracegroup.redact.Policy`) before anything reads them."""
    convert = Converter(plan, style, renamer, policy)
    spans = convert_spans(table, plan, convert, errors != "none")
    notes: dict[str, int] = {}
    if renamer:  # counted now: naming a transaction later may convert (and rename) its root again
        notes["spans renamed"] = renamer.renamed
    for note in spans.res_notes:
        notes[note] = notes.get(note, 0) + 1
    b = Builder(table, plan, convert, spans, environment, max_item_bytes, on_written)
    b.ids = EventIds(replay_salt(plan.times.shift, replay_id))
    try:
        for at in range(0, len(plan.tx.order), TX_CHUNK):
            b.transactions(plan.tx.order[at : at + TX_CHUNK])
        dups: dict[int, str] = {}
        if errors == "dedup" and spans.records:
            dups = dedup_exceptions(spans.records, plan.root, plan.parent, b.span_hex)
        for k, rec in enumerate(spans.records):
            b.error(rec, errors, dups.get(k))
    finally:
        spans.store.close()
    return Built(b.events(), notes, len(spans.records))
