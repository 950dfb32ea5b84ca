"""The library call behind ``tracegroup emit``: a span table -> Sentry events, envelope headers, a report.

Contract: :func:`emit` groups the table by application boundary (the ``service`` grouping: a span opens a
transaction when its parent is absent or in another service), converts every span once in the chosen
style (:mod:`tracegroup.sentry.convert`), builds one transaction event per transaction (cut into
continuation transactions above ``max_item_bytes``, :func:`tracegroup.sentry.events.plan_pieces`) and one
error event per ``exception`` span event (``errors``: ``all``, ``dedup`` or ``none``), and returns an
:class:`EmitResult`. Nothing is dropped silently: every span is either in exactly one written transaction
or in a not-written record with a reason from :data:`NOT_WRITTEN`, and the same holds for exception
events. Routing (``routes``): each service's route gives the DSN of its events; a trace's dynamic
sampling context (envelope header ``trace``) carries the public key and ``sample_rate`` of the route of
the trace's head, and a trace whose ``sample_rand`` (from its trace id) is not below that rate is
reported as ``sampled_out``. Time: ``now`` (ns) is when Relay is assumed to receive the events (default:
the clock); ``rebase_time`` shifts every timestamp so the newest span ends at ``now`` (default: the start
of the current UTC hour, :func:`rebase_target`, so replays are reproducible within the hour).
Deterministic: same table and options, byte-identical payloads and headers. Memory: span bytes wait
for their transaction in a temporary file, not in memory; with ``on_written`` each written event is handed
over as soon as it is built and its payload is not kept.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup import tree
from tracegroup.batching import deliver
from tracegroup.grouping import Context, Options, group
from tracegroup.model import KIND_SERVER, SpanTable, span_hex
from tracegroup.routes import RenameRule, Route, Routes, redact_dsn
from tracegroup.sentry.convert import (
    EXPORTER_SDK,
    STYLES,
    ResourceInfo,
    exporter_span,
    go_times,
    iso_times,
    resource_info,
    sentry_span,
    sentry_transaction_name,
    valid_environment,
)
from tracegroup.sentry.events import (
    ERROR_MAX_PAST_S,
    MAX_FUTURE_S,
    MAX_ITEM_BYTES,
    TX_MAX_PAST_S,
    EventIds,
    ExceptionRecord,
    TxName,
    dedup_exceptions,
    dumps,
    error_event,
    plan_pieces,
    sentry_sdk_info,
    splice,
    spliced_size,
    transaction_header,
)
from tracegroup.sentry.rename import Renamer

ERRORS = ("all", "dedup", "none")
NS = 1_000_000_000
HOUR_NS = 3600 * NS

#: Why an event (and the spans it holds) was not written, in precedence order for transactions.
NOT_WRITTEN: dict[str, str] = {
    "invalid_ids": "a span of it has an empty or malformed trace or span id: Relay rejects the transaction",
    "unrouted": "its service has no route in the routes file, which has no [default]",
    "sampled_out": "its trace is not kept at the sample_rate of the route of the trace's head span",
    "span_ends_before_start": "a span of it ends before it starts: Relay drops the whole transaction",
    "too_old": "it ended more than 5 days before now: Relay drops it "
    "(--rebase-time replays a capture as if it just happened)",
    "in_future": "it ends more than 60 s after now: Relay drops it",
    "too_large": "this span (or error event) alone exceeds Sentry's 1 MiB item limit",
    "errors_none": "exception events are not emitted (--errors none)",
    "duplicate_exception": "the same exception is reported on a span nested inside this one, in the same "
    "transaction (--errors dedup)",
}
_TX_REASONS = ["", "invalid_ids", "unrouted", "sampled_out", "span_ends_before_start", "too_old", "in_future"]


@dataclass
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


@dataclass
class EmitResult:
    """Every event, written or not, in output order, with the options and counts of the run."""

    records: list[EmittedEvent]
    options: dict[str, Any]
    spans_in: int
    services: list[str]
    routes: Routes | None = None
    notes: dict[str, int] = field(default_factory=dict)
    exception_events: int = 0

    @property
    def events(self) -> list[EmittedEvent]:
        """Written events only."""
        return [r for r in self.records if r.written]

    @property
    def not_written(self) -> list[EmittedEvent]:
        return [r for r in self.records if not r.written]

    def summary(self) -> dict[str, Any]:
        """JSON-ready totals: spans in/written/not written by reason, events by kind, per service, routes."""
        spans_written = sum(r.spans for r in self.records if r.kind == "transaction" and r.written)
        spans_nw: dict[str, int] = {}
        tx_nw: dict[str, int] = {}
        err_nw: dict[str, int] = {}
        per: dict[str, dict[str, Any]] = {}
        for r in self.records:
            p = per.setdefault(
                r.service,
                {"service": r.service, "route": r.route, "transactions": 0, "spans": 0, "errors": 0},
            )
            p.setdefault("not_written_spans", 0)
            if r.kind == "transaction":
                if r.written:
                    p["transactions"] += 1 if r.part == 1 else 0
                    p["spans"] += r.spans
                else:
                    tx_nw[r.reason] = tx_nw.get(r.reason, 0) + 1
                    spans_nw[r.reason] = spans_nw.get(r.reason, 0) + r.spans
                    p["not_written_spans"] += r.spans
            elif r.written:
                p["errors"] += 1
            else:
                err_nw[r.reason] = err_nw.get(r.reason, 0) + 1
        tx = [r for r in self.records if r.kind == "transaction" and r.written]
        routes: list[dict[str, Any]] = []
        unrouted: list[str] = []
        if self.routes is not None:
            for rt in [*self.routes.routes, *([self.routes.default] if self.routes.default else [])]:
                routes.append(
                    {
                        "name": rt.name,
                        "dsn": redact_dsn(rt.dsn),
                        "sample_rate": rt.sample_rate,
                        "services": sorted(s for s in self.services if self.routes.route_of(s) is rt),
                    }
                )
            unrouted = sorted(s for s in self.services if self.routes.route_of(s) is None)
        return {
            "tool": "tracegroup emit",
            "options": self.options,
            "spans": {
                "in": self.spans_in,
                "written": spans_written,
                "not_written": dict(sorted(spans_nw.items())),
            },
            "transactions": {
                "written": sum(1 for r in tx if r.part == 1),
                "events": len(tx),
                "split": sum(1 for r in tx if r.parts > 1 and r.part == 1),
                "continuations": sum(1 for r in tx if r.part > 1),
                "not_written": dict(sorted(tx_nw.items())),
            },
            "errors": {
                "exception_events": self.exception_events,
                "written": sum(1 for r in self.records if r.kind == "error" and r.written),
                "not_written": dict(sorted(err_nw.items())),
            },
            "per_service": sorted(
                per.values(), key=lambda p: (-p["spans"] - p["not_written_spans"], p["service"])
            ),
            "routes": routes,
            "unrouted_services": unrouted,
            "notes": dict(sorted(self.notes.items())),
        }


def rebase_target(now: int | None) -> int:
    """Where ``rebase_time`` puts the newest span's end: ``now`` when given, else the start of the current
    UTC hour, so repeated replays within the hour give byte-identical files (pin ``now`` for more)."""
    if now is not None:
        return int(now)
    return (time.time_ns() // HOUR_NS) * HOUR_NS


def sample_rand(trace_hex: str) -> float:
    """A trace's ``sample_rand`` in [0, 1): its 56 low bits (random by W3C Trace Context level 2), six
    decimals, as Sentry's SDKs send it."""
    try:
        x = int(trace_hex[-14:], 16) / float(1 << 56)
    except ValueError:
        x = 0.0
    return math.floor(x * 1_000_000) / 1_000_000


class _SpanStore:
    """The item bytes of the spans still to be placed in a transaction, kept out of memory: appended to
    an unnamed temporary file (written in large chunks), read back with ``os.pread``; only two int64
    columns (offset, length) per span stay in memory. A span never stored reads as ``b""``."""

    CHUNK = 8 << 20

    def __init__(self, n: int) -> None:
        self.file = tempfile.TemporaryFile(prefix="tracegroup-emit-")  # noqa: SIM115 - closed by close()
        self.fd = self.file.fileno()
        self.off = np.zeros(n, dtype=np.int64)
        self.len = np.zeros(n, dtype=np.int64)
        self.pos = 0
        self.buf: list[bytes] = []
        self.buffered = 0

    def put(self, i: int, data: bytes) -> None:
        self.off[i] = self.pos
        self.len[i] = k = len(data)
        self.pos += k
        self.buf.append(data)
        self.buffered += k
        if self.buffered >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.file.write(b"".join(self.buf))
            self.buf, self.buffered = [], 0
        self.file.flush()

    def size(self, i: int) -> int:
        return int(self.len[i])

    def get(self, i: int) -> bytes:
        k = int(self.len[i])
        return os.pread(self.fd, k, int(self.off[i])) if k else b""

    def close(self) -> None:
        self.file.close()


class _Pieces:
    """The span items of one oversized transaction, parsed back from their bytes when a piece needs one
    as its root, and the header length each candidate root would give."""

    def __init__(
        self,
        items_bytes: _SpanStore,
        root: int,
        item: dict[str, Any],
        header: bytes,
        style: str,
        name: TxName,
        environment: str,
        eid: str,
        root_hex: str,
    ) -> None:
        self.items_bytes, self.root, self.header = items_bytes, root, header
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
            self.cache[x] = json.loads(self.items_bytes.get(x) or b"{}")
        return self.cache[x]

    def header_len(self, x: int) -> int:
        if x == self.root:
            return len(self.header)
        h, _ = transaction_header(
            self.item(x), self.style, self.eid, self.name, self.environment, continues=self.root_hex
        )
        return len(dumps(h))


class _RowAccess:
    """Random access to (resource, scope, span) of a row, the last few batch messages cached."""

    def __init__(self, table: SpanTable) -> None:
        self.table = table
        self.cache: dict[int, TracesData] = {}

    def get(self, i: int) -> tuple[Any, Any, Any]:
        t = self.table
        b = int(t.batch[i])
        td = self.cache.get(b)
        if td is None:
            if len(self.cache) >= 8:
                del self.cache[next(iter(self.cache))]
            td = self.cache[b] = TracesData.FromString(t.batches[b].raw)
        rs = td.resource_spans[int(t.res[i])]
        ss = rs.scope_spans[int(t.scope[i])]
        return rs, ss, ss.spans[int(t.idx[i])]


def _window(end_ns: int, now_ns: int) -> str:
    """Relay's time rule for a transaction ending at ``end_ns``: "" when kept, else the reason."""
    if end_ns < now_ns - TX_MAX_PAST_S * NS:
        return "too_old"
    if end_ns >= now_ns + MAX_FUTURE_S * NS:
        return "in_future"
    return ""


def _trace_codes(table: SpanTable) -> np.ndarray:
    """Trace code of every row (``SpanTable.trace_code``; older tables named it ``trace``)."""
    codes = getattr(table, "trace_code", None)
    if codes is None or callable(codes):
        codes = table.trace
    return np.asarray(codes)


def _exceptions(sp: Any, row: int) -> list[ExceptionRecord]:
    out: list[ExceptionRecord] = []
    for k, ev in enumerate(sp.events):
        if ev.name != "exception":
            continue
        msg = typ = stack = ""
        for kv in ev.attributes:
            key = kv.key
            if key == "exception.message":
                msg = kv.value.string_value
            elif key == "exception.type":
                typ = kv.value.string_value
            elif key == "exception.stacktrace":
                stack = kv.value.string_value
        if msg or typ:
            out.append(ExceptionRecord(row, k, typ, msg, stack, int(ev.time_unix_nano)))
    return out


def emit(
    table: SpanTable,
    *,
    routes: Routes | None = None,
    renames: Sequence[RenameRule] = (),
    style: str = "exporter",
    errors: str = "all",
    environment: str = "",
    rebase_time: bool = False,
    now: int | None = None,
    boundary: str = "service",
    max_item_bytes: int = MAX_ITEM_BYTES,
    forest: tree.Forest | None = None,
    on_written: Callable[[EmittedEvent], None] | None = None,
) -> EmitResult:
    """Build every Sentry event of ``table`` (see the module docstring). ``renames`` run after the routes
    file's own rules; ``now`` is in ns since the epoch.

    ``on_written`` streams: it is called with each written event as soon as it is built (transactions in
    output order, then error events), after which the record keeps no ``payload`` nor ``headers`` (so
    memory does not grow with the output); the returned records are otherwise the same."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r} (choose from {', '.join(STYLES)})")
    if errors not in ERRORS:
        raise ValueError(f"unknown errors mode {errors!r} (choose from {', '.join(ERRORS)})")
    if environment and not valid_environment(environment):
        raise ValueError(
            f"--environment {environment[:70]!r}: not a valid Sentry environment "
            "(1-64 characters, no '/', '\\', newline or tab, not 'none')"
        )
    now_ns = time.time_ns() if now is None else int(now)
    n = len(table)
    rows_all = np.arange(n, dtype=np.int64)
    forest = forest if forest is not None else tree.build(table, timing=False)
    g = group(Context(table, forest, deliver(table, "all", "none"), Options(boundary=boundary)), "service")
    root = g.root.astype(np.int64)
    if n and (root < 0).any():  # pragma: no cover - the service grouping never drops a span
        raise AssertionError("service grouping dropped spans")
    start = table.start_ns.astype(np.int64)
    end = table.end_ns.astype(np.int64)
    shift = 0
    target = rebase_target(now) if rebase_time else 0
    if rebase_time and n:
        shift = target - int(end.max())
        start, end = start + shift, end + shift
    notes: dict[str, int] = {}
    services = table.services
    svc = table.service.astype(np.int64)

    # ----------------------------------------------------------------- routes, heads, sampling
    svc_route: list[Route | None] = [routes.route_of(s) if routes else None for s in services]
    unrouted_svc = np.array([routes is not None and r is None for r in svc_route], dtype=bool)
    unrouted_row = unrouted_svc[svc] if n else np.zeros(0, dtype=bool)
    tr = _trace_codes(table)
    n_tr = table.n_traces
    trace_hex = table.trace_hex
    pri = np.where(table.parent_id == 0, 0, np.where(forest.parent < 0, 1, 2))
    order = np.lexsort((rows_all, pri, tr))
    first = np.ones(n, dtype=bool)
    first[1:] = tr[order][1:] != tr[order][:-1]
    head = order[first]
    keep_trace = np.ones(n_tr, dtype=bool)
    dsc: list[dict[str, str] | None] = [None] * n_tr
    for t in range(n_tr):
        rt = svc_route[int(svc[head[t]])]
        if rt is None or not rt.public_key:
            continue
        rand = sample_rand(trace_hex[t])
        keep_trace[t] = rand < rt.sample_rate
        d = {
            "trace_id": trace_hex[t],
            "public_key": rt.public_key,
            "sample_rate": repr(float(rt.sample_rate)),
            "sample_rand": f"{rand:.6f}",
            "sampled": "true" if keep_trace[t] else "false",
        }
        if environment:
            d["environment"] = environment
        dsc[t] = d
    keep_row = keep_trace[tr] if n else np.zeros(0, dtype=bool)

    # ----------------------------------------------------------------- transactions and their fate
    roots = g.roots()
    ntx = len(roots)
    txi = np.searchsorted(roots, root)
    by_tx = np.argsort(txi, kind="stable")
    counts = np.bincount(txi, minlength=ntx)
    off = np.zeros(ntx + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    reason_tx = np.zeros(ntx, dtype=np.int8)
    tid = table.trace_id.view(np.uint64).reshape(-1, 2)
    bad_row = (table.span_id == 0) | ((tid[:, 0] == 0) & (tid[:, 1] == 0))
    if len(table.bad_ids) == n:
        bad_row |= table.bad_ids
    if ntx:
        seg = off[:-1]
        bad = np.add.reduceat(bad_row[by_tx].astype(np.int64), seg) > 0
        neg = np.add.reduceat((end < start)[by_tx].astype(np.int64), seg) > 0
        conds = [
            bad,
            unrouted_row[roots],
            ~keep_row[roots],
            neg,
            end[roots] < now_ns - TX_MAX_PAST_S * NS,
            end[roots] >= now_ns + MAX_FUTURE_S * NS,
        ]
        for code in range(len(conds), 0, -1):  # lowest code wins: assign in reverse precedence
            reason_tx[conds[code - 1]] = code
    candidate = reason_tx == 0
    need = candidate[txi] if n else np.zeros(0, dtype=bool)
    eligible = (~unrouted_row & keep_row) if n else np.zeros(0, dtype=bool)

    # ----------------------------------------------------------------- one pass: convert, find exceptions
    fmt = go_times if style == "exporter" else iso_times
    need_idx = np.flatnonzero(need)
    pos = np.full(n, -1, dtype=np.int64)
    pos[need_idx] = np.arange(len(need_idx))
    st_txt, en_txt = fmt(start[need_idx]), fmt(end[need_idx])
    renamer = Renamer([*(routes.renames if routes else []), *renames], services)
    is_root = (root == rows_all).tolist()
    need_l, elig_l, svc_l, pos_l = need.tolist(), eligible.tolist(), svc.tolist(), pos.tolist()
    want_errors = errors != "none"
    items_bytes = _SpanStore(n)
    items: dict[int, dict[str, Any]] = {}
    names: dict[int, str] = {}
    res_of: dict[int, ResourceInfo] = {}
    records: list[ExceptionRecord] = []
    res_notes: set[str] = set()
    root_l = root.tolist()
    # sentry style: transaction root -> "METHOD route" of an inner SERVER span of the same transaction
    nested_route: dict[int, str] = {}

    def convert(i: int, sp: Any, rinfo: ResourceInfo, sname: str, sver: str) -> dict[str, Any]:
        name = renamer.apply(sp.name, svc_l[i], sp.attributes) if renamer else sp.name
        p = pos_l[i]
        if p >= 0:
            st, en = st_txt[p], en_txt[p]
        else:
            st, en = fmt(start[i : i + 1])[0], fmt(end[i : i + 1])[0]
        names[i] = name
        if style == "exporter":
            return exporter_span(sp, name, rinfo.tags, sname, sver, st, en)
        return sentry_span(sp, name, sname, sver, st, en)

    row = 0
    for batch in table.batches:
        td = TracesData.FromString(batch.raw)
        for rs in td.resource_spans:
            rinfo: ResourceInfo | None = None
            for ss in rs.scope_spans:
                sname, sver = ss.scope.name, ss.scope.version
                for sp in ss.spans:
                    i = row
                    row += 1
                    exc = _exceptions(sp, i) if len(sp.events) else None
                    if exc:
                        records.extend(exc)
                    if not (need_l[i] or (exc and want_errors and elig_l[i])):
                        continue
                    if rinfo is None:
                        rinfo = resource_info(rs.resource.attributes, style)
                        res_notes.update(rinfo.notes)
                    item = convert(i, sp, rinfo, sname, sver)
                    if need_l[i]:
                        items_bytes.put(i, dumps(item))
                        if style == "sentry" and not is_root[i] and sp.kind == KIND_SERVER:
                            data = item["data"]
                            if data.get("http.route"):
                                nested_route.setdefault(
                                    root_l[i], sentry_transaction_name("", KIND_SERVER, data)[0]
                                )
                    if is_root[i] or exc:
                        items[i] = item
                        res_of[i] = rinfo
    items_bytes.flush()
    if row != n:  # pragma: no cover - the table contract
        raise AssertionError(f"table has {n} rows but its batches hold {row} spans")
    if renamer:
        notes["spans renamed"] = renamer.renamed
    for note in res_notes:
        notes[note] = notes.get(note, 0) + 1

    access = _RowAccess(table)

    def tx_name(r: int) -> TxName:
        """Name and resource fields of the transaction rooted at row ``r`` (converting it if needed)."""
        if r not in items:
            rs, ss, sp = access.get(r)
            rinfo = resource_info(rs.resource.attributes, style)
            items[r] = convert(r, sp, rinfo, ss.scope.name, ss.scope.version)
            res_of[r] = rinfo
        item, rinfo = items[r], res_of[r]
        if style == "exporter":
            return TxName(item.get("description", ""))
        nm, source = sentry_transaction_name(names[r], int(table.kind[r]), item.get("data", {}))
        if source != "route" and r in nested_route:  # e.g. Phoenix: the route is on the inner SERVER span
            nm, source = nested_route[r], "route"
        return TxName(nm, source, rinfo.release, rinfo.environment, rinfo.platform, rinfo.json)

    # ----------------------------------------------------------------- build events
    ids = EventIds()
    out: list[tuple[tuple[int, ...], EmittedEvent]] = []
    sdk = dict(EXPORTER_SDK) if style == "exporter" else sentry_sdk_info()

    def headers(eid: str, rt: Route | None, t: int) -> dict[str, Any]:
        h: dict[str, Any] = {"event_id": eid}
        if rt is not None and rt.dsn:
            h["dsn"] = rt.dsn
        h["sdk"] = dict(sdk)
        if dsc[t] is not None:
            h["trace"] = dict(dsc[t] or {})
        return h

    def written_event(key: tuple[int, ...], ev: EmittedEvent) -> None:
        if on_written is not None:
            on_written(ev)
            ev.payload, ev.headers = b"", {}
        out.append((key, ev))

    tx_order = np.lexsort((roots, tr[roots])) if ntx else np.zeros(0, dtype=np.int64)
    for k in tx_order.tolist():
        r = int(roots[k])
        t = int(tr[r])
        rows_k = by_tx[off[k] : off[k + 1]]
        service = services[svc_l[r]]
        rt = svc_route[svc_l[r]]
        route_name = rt.name if rt else ""
        root_hex = span_hex(table.span_id[r])
        eid = ids.new("transaction", trace_hex[t], root_hex)
        key = (t, r, 0)
        if reason_tx[k]:
            rec = EmittedEvent(
                "transaction",
                eid,
                service,
                trace_hex[t],
                root_hex,
                int(counts[k]),
                route_name,
                reason=_TX_REASONS[int(reason_tx[k])],
                rows=rows_k,
            )
            out.append(((*key, 0, 0), rec))
            continue
        name = tx_name(r)
        item = items[r]
        header, hnotes = transaction_header(item, style, eid, name, environment)
        hb = dumps(header)
        members = [int(x) for x in rows_k.tolist() if x != r]
        size = spliced_size(len(hb), (items_bytes.size(x) for x in members), len(members))
        if size <= max_item_bytes:
            payload = splice(hb, [items_bytes.get(x) for x in members])
            ev = EmittedEvent(
                "transaction",
                eid,
                service,
                trace_hex[t],
                root_hex,
                len(members) + 1,
                route_name,
                rt.dsn if rt else "",
                notes=hnotes,
                payload=payload,
                headers=headers(eid, rt, t),
                rows=rows_k,
            )
            written_event((*key, 1, 0), ev)
            continue
        # ------------------------------------------------------------- the size rule
        mem = np.array(members, dtype=np.int64)
        taken = mem[np.lexsort((mem, start[mem]))].tolist()
        lens = {x: items_bytes.size(x) for x in members}
        pz = _Pieces(items_bytes, r, item, hb, style, name, environment, eid, root_hex)
        pieces, too_big = plan_pieces(r, taken, lens, pz.header_len, max_item_bytes)
        nparts = len(pieces)
        for j, pc in enumerate(pieces, start=1):
            proot = pc.root
            phex = root_hex if proot == r else span_hex(table.span_id[proot])
            late = _window(int(end[proot]), now_ns)
            if late:  # a continuation's own end decides, as for any transaction
                rec = EmittedEvent(
                    "transaction",
                    ids.new("transaction", trace_hex[t], root_hex, f"part{j}"),
                    service,
                    trace_hex[t],
                    phex,
                    len(pc.rows) + 1,
                    route_name,
                    part=j,
                    parts=nparts,
                    reason=late,
                    rows=np.array([proot, *pc.rows], dtype=np.int64),
                    notes=[f"part {j}/{nparts} of transaction {root_hex}"],
                )
                out.append(((*key, 1, j), rec))
                continue
            peid = eid if j == 1 else ids.new("transaction", trace_hex[t], root_hex, f"part{j}")
            cont = "" if proot == r else root_hex
            h, pnotes = transaction_header(
                pz.item(proot), style, peid, name, environment, part=f"{j}/{nparts}", continues=cont
            )
            payload = splice(dumps(h), [items_bytes.get(x) for x in pc.rows])
            pn = [
                f"part {j}/{nparts} of transaction {root_hex}: over the 1 MiB item limit, cut by start time"
            ]
            if cont:
                parent = pz.item(proot).get("parent_span_id", "")
                pn.append(f"continuation transaction rooted at span {phex} (parent {parent})")
            ev = EmittedEvent(
                "transaction",
                peid,
                service,
                trace_hex[t],
                phex,
                len(pc.rows) + 1,
                route_name,
                rt.dsn if rt else "",
                part=j,
                parts=nparts,
                notes=pn + pnotes,
                payload=payload,
                headers=headers(peid, rt, t),
                rows=np.array([proot, *pc.rows], dtype=np.int64),
            )
            written_event((*key, 1, j), ev)
        for x in too_big:
            xhex = span_hex(table.span_id[x])
            rec = EmittedEvent(
                "transaction",
                ids.new("transaction", trace_hex[t], xhex, "too-large"),
                service,
                trace_hex[t],
                xhex,
                1,
                route_name,
                reason="too_large",
                rows=np.array([x], dtype=np.int64),
                notes=[f"span of transaction {root_hex}"],
            )
            out.append(((*key, 2, x), rec))

    items_bytes.close()

    # ----------------------------------------------------------------- error events
    dups: dict[int, str] = {}
    if errors == "dedup" and records:
        dups = dedup_exceptions(records, root, forest.parent, lambda x: span_hex(table.span_id[x]))
    efmt = go_times if style == "exporter" else iso_times
    for k, exc_rec in enumerate(records):
        i = exc_rec.row
        t = int(tr[i])
        service = services[svc_l[i]]
        rt = svc_route[svc_l[i]]
        shex = span_hex(table.span_id[i])
        eid = ids.new("exception", trace_hex[t], shex, str(exc_rec.index))
        ekey = (t, int(root[i]), 1, i, exc_rec.index)
        reason = ""
        if bad_row[i]:
            reason = "invalid_ids"
        elif unrouted_row[i]:
            reason = "unrouted"
        elif not keep_row[i]:
            reason = "sampled_out"
        elif errors == "none":
            reason = "errors_none"
        elif k in dups:
            reason = "duplicate_exception"
        if reason:
            enotes = [dups[k]] if k in dups else []
            rec_ev = EmittedEvent(
                "error",
                eid,
                service,
                trace_hex[t],
                shex,
                0,
                rt.name if rt else "",
                reason=reason,
                notes=enotes,
                rows=np.array([i], dtype=np.int64),
            )
            out.append((ekey, rec_ev))
            continue
        item = items[i]
        if style == "exporter":
            ts_ns, ts = int(end[i]), item["timestamp"]
            txn = None
        else:
            ts_ns = exc_rec.time_ns + shift if exc_rec.time_ns else int(end[i])
            ts = efmt(np.array([ts_ns], dtype=np.int64))[0]
            txn = tx_name(int(root[i]))
        ev_dict, enotes = error_event(item, exc_rec, style, eid, txn, environment, ts)
        if ts_ns < now_ns - ERROR_MAX_PAST_S * NS or ts_ns >= now_ns + MAX_FUTURE_S * NS:
            enotes.append("outside Relay's window (30 days back, 60 s ahead): Relay replaces its timestamp")
        payload = dumps(ev_dict)
        if len(payload) > max_item_bytes:
            rec_ev = EmittedEvent(
                "error",
                eid,
                service,
                trace_hex[t],
                shex,
                0,
                rt.name if rt else "",
                reason="too_large",
                notes=[f"{len(payload):,} bytes"],
                rows=np.array([i], dtype=np.int64),
            )
            out.append((ekey, rec_ev))
            continue
        ev = EmittedEvent(
            "error",
            eid,
            service,
            trace_hex[t],
            shex,
            0,
            rt.name if rt else "",
            rt.dsn if rt else "",
            notes=enotes,
            payload=payload,
            headers=headers(eid, rt, t),
            rows=np.array([i], dtype=np.int64),
        )
        written_event(ekey, ev)

    out.sort(key=lambda kv: kv[0])
    options = {
        "style": style,
        "errors": errors,
        "environment": environment,
        "rebase_time": rebase_time,
        "now": fmt(np.array([now_ns], dtype=np.int64))[0] if now is not None else "",
        "rebased_to": fmt(np.array([target], dtype=np.int64))[0] if rebase_time else "",
        "shift_ns": shift,
        "routes": routes.path if routes else "",
        "renames": len(renamer.rules),
        "boundary": boundary,
        "max_item_bytes": max_item_bytes,
    }
    return EmitResult(
        [ev for _, ev in out], options, n, list(services), routes, notes, exception_events=len(records)
    )
