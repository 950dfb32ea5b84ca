"""Planning ``tracegroup emit``: which transactions, which spans, routes and sampling, what is not written and
why — pure data, no payloads.

Contract: :func:`plan` reads only the table's columns (never a span's bytes) and returns a :class:`Plan`.
Transactions are the ``service`` grouping's (a span opens one when its parent is absent or in another
service); each gets its member rows and a fate: written, or the first of ``invalid_ids``, ``unrouted``,
``sampled_out``, ``span_ends_before_start``, ``too_old``, ``in_future`` (:data:`NOT_WRITTEN`, in that
precedence) that applies. Routing: a service's route (from ``routes``) gives the DSN of its events; a
trace's head is its first span without a parent id, else its first span whose parent is missing, else its
first span; the head's route gives the trace's dynamic sampling context (its public key and ``sample_rate``,
``org_id`` when the DSN's host names one, and ``environment`` when given; ``sentry`` style adds the head
transaction's release, name and environment when it builds the events), and the trace is kept when its
:func:`sample_rand` is below that rate. Time: timestamps are shifted so the newest span ends at
:func:`rebase_target` when ``rebase_time``; the time rule is Relay's
(:func:`tracegroup.sentry.events.relay_late`) against ``now``. :meth:`Plan.error_reason` is the fate of an
exception event, but for the size rule and ``--errors dedup``, which need payloads. Deterministic: same
table and options, same plan.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from tracegroup import tree
from tracegroup.batching import deliver
from tracegroup.grouping import Context, Options, group
from tracegroup.model import SpanTable
from tracegroup.routes import Route, Routes
from tracegroup.sentry.convert import STYLES, valid_environment
from tracegroup.sentry.events import ERROR_MAX_PAST_S, NS, TX_MAX_PAST_S, relay_late

ERRORS = ("all", "dedup", "none")
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
#: A transaction's fate code (``Transactions.reason``) -> its reason ("" = written).
TX_REASONS = ["", "invalid_ids", "unrouted", "sampled_out", "span_ends_before_start", "too_old", "in_future"]


def check_options(style: str, errors: str, environment: str) -> None:
    """Raise ``ValueError`` (one line) on an unknown style or errors mode or an invalid environment."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r} (choose from {', '.join(STYLES)})")
    if errors not in ERRORS:
        raise ValueError(f"unknown errors mode {errors!r} (choose from {', '.join(ERRORS)})")
    if environment and not valid_environment(environment):
        raise ValueError(
            f"--environment {environment[:70]!r}: not a valid Sentry environment "
            "(1-64 characters, no '/', '\\', newline or tab, not 'none')"
        )


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


@dataclass
class Times:
    """Span start/end (ns, shifted by ``shift``), the rebase target and Relay's ``now``."""

    start: np.ndarray
    end: np.ndarray
    shift: int
    target: int
    now_ns: int


def times(table: SpanTable, rebase_time: bool, now: int | None, newest_end_ns: int | None = None) -> Times:
    """The span times as emitted: shifted so the newest span ends at :func:`rebase_target` if asked; the
    newest end is the table's own unless ``newest_end_ns`` gives it (the whole dump's, for a part of it)."""
    now_ns = time.time_ns() if now is None else int(now)
    start = table.start_ns.astype(np.int64)
    end = table.end_ns.astype(np.int64)
    shift = 0
    target = rebase_target(now) if rebase_time else 0
    if rebase_time and len(table):
        shift = target - (int(end.max()) if newest_end_ns is None else int(newest_end_ns))
        start, end = start + shift, end + shift
    return Times(start, end, shift, target, now_ns)


@dataclass
class Sampling:
    """Per service its route; per row whether it is unrouted and whether its trace is kept; per trace its
    dynamic sampling context (None without a route or public key)."""

    svc_route: list[Route | None]
    unrouted_row: np.ndarray
    keep_row: np.ndarray
    dsc: list[dict[str, str] | None]
    heads: np.ndarray


_ORG_ID = re.compile(r"^o(\d+)\.")


def org_id(dsn: str) -> str:
    """The organization id of a DSN whose host is ``o<id>.…`` (sentry-python's ``Dsn.ORG_ID_REGEX``),
    else ""."""
    try:
        host = urlsplit(dsn).hostname or ""
    except ValueError:
        return ""
    m = _ORG_ID.match(host)
    return m.group(1) if m else ""


def trace_heads(table: SpanTable, parent: np.ndarray) -> np.ndarray:
    """The head row of every trace (by trace code): its first span without a parent id, else its first
    span whose parent is not in the table (``parent`` < 0), else its first span."""
    n = len(table)
    tr = table.trace_code
    pri = np.where(table.parent_id == 0, 0, np.where(parent < 0, 1, 2))
    order = np.lexsort((np.arange(n, dtype=np.int64), pri, tr))
    first = np.ones(n, dtype=bool)
    first[1:] = tr[order][1:] != tr[order][:-1]
    return order[first]


def sampling(table: SpanTable, routes: Routes | None, heads: np.ndarray, environment: str) -> Sampling:
    """Routes, trace keep/drop and dynamic sampling contexts (see the module docstring)."""
    n = len(table)
    svc = table.service
    tr = table.trace_code
    trace_hex = table.trace_hex
    svc_route: list[Route | None] = [routes.route_of(s) if routes else None for s in table.services]
    unrouted_svc = np.array([routes is not None and r is None for r in svc_route], dtype=bool)
    unrouted_row = unrouted_svc[svc] if n else np.zeros(0, dtype=bool)
    n_tr = table.n_traces
    keep_trace = np.ones(n_tr, dtype=bool)
    dsc: list[dict[str, str] | None] = [None] * n_tr
    for t in range(n_tr):
        rt = svc_route[int(svc[heads[t]])]
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
        org = org_id(rt.dsn)
        if org:
            d["org_id"] = org
        dsc[t] = d
    keep_row = keep_trace[tr] if n else np.zeros(0, dtype=bool)
    return Sampling(svc_route, unrouted_row, keep_row, dsc, heads)


def bad_id_rows(table: SpanTable) -> np.ndarray:
    """Rows whose span id or trace id is empty (zero) or was malformed in the input."""
    tid = table.trace_id.view(np.uint64).reshape(-1, 2)
    bad_row = (table.span_id == 0) | ((tid[:, 0] == 0) & (tid[:, 1] == 0))
    if len(table.bad_ids) == len(table):
        bad_row |= table.bad_ids
    return bad_row


@dataclass
class Transactions:
    """The transactions, by index ``k`` in root-row order: their root rows, each row's ``k``
    (``of_row``), member rows (root included, grouped by transaction through ``by_tx``/``off``) and fate
    codes (:data:`TX_REASONS`); ``order`` is the output order (by trace code, then root row)."""

    roots: np.ndarray
    of_row: np.ndarray
    by_tx: np.ndarray
    off: np.ndarray
    reason: np.ndarray
    order: np.ndarray

    def rows(self, k: int) -> np.ndarray:
        """Member rows of transaction ``k`` (root included), in input order."""
        return self.by_tx[self.off[k] : self.off[k + 1]]


def transactions(
    roots: np.ndarray,
    root: np.ndarray,
    tr: np.ndarray,
    tm: Times,
    bad_row: np.ndarray,
    routing: Sampling,
) -> Transactions:
    """Group rows by their transaction root and decide each transaction's fate (lowest code wins)."""
    ntx = len(roots)
    txi = np.searchsorted(roots, root)
    by_tx = np.argsort(txi, kind="stable")
    counts = np.bincount(txi, minlength=ntx)
    off = np.zeros(ntx + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    reason = np.zeros(ntx, dtype=np.int8)
    if ntx:
        seg = off[:-1]
        bad = np.add.reduceat(bad_row[by_tx].astype(np.int64), seg) > 0
        neg = np.add.reduceat((tm.end < tm.start)[by_tx].astype(np.int64), seg) > 0
        too_old, in_future = relay_late(tm.end[roots], tm.now_ns, TX_MAX_PAST_S)
        conds = [bad, routing.unrouted_row[roots], ~routing.keep_row[roots], neg, too_old, in_future]
        for code in range(len(conds), 0, -1):  # lowest code wins: assign in reverse precedence
            reason[conds[code - 1]] = code
    order = np.lexsort((roots, tr[roots])) if ntx else np.zeros(0, dtype=np.int64)
    return Transactions(roots, txi, by_tx, off, reason, order)


@dataclass
class Plan:
    """Everything :func:`tracegroup.sentry.build.build` needs besides the span bytes: per row its service
    code, trace code, transaction root and forest parent; the times; the routing; the transactions;
    ``need``: rows carried by a transaction to be written; ``eligible``: rows whose exception events may
    be written (routed and kept)."""

    n: int
    services: list[str]
    svc: np.ndarray
    tr: np.ndarray
    trace_hex: list[str]
    root: np.ndarray
    parent: np.ndarray
    times: Times
    routing: Sampling
    bad_row: np.ndarray
    tx: Transactions
    need: np.ndarray
    eligible: np.ndarray

    def route(self, row: int) -> Route | None:
        """The route of the row's service (None when unrouted or without routes)."""
        return self.routing.svc_route[int(self.svc[row])]

    def error_reason(self, row: int, errors: str) -> str:
        """Why an exception event recorded on ``row`` is not written ("" if it may be), before the size
        rule and exception dedup."""
        if self.bad_row[row]:
            return "invalid_ids"
        if self.routing.unrouted_row[row]:
            return "unrouted"
        if not self.routing.keep_row[row]:
            return "sampled_out"
        if errors == "none":
            return "errors_none"
        return ""

    def tx_late(self, row: int) -> str:
        """Relay's time rule for a transaction (or a piece of a split one) rooted at ``row``: "" when kept,
        else ``too_old`` or ``in_future``."""
        too_old, in_future = relay_late(int(self.times.end[row]), self.times.now_ns, TX_MAX_PAST_S)
        return "too_old" if too_old else "in_future" if in_future else ""

    def error_late(self, ts_ns: int) -> bool:
        """Whether Relay replaces the timestamp of an error event at ``ts_ns`` (outside its window)."""
        too_old, in_future = relay_late(ts_ns, self.times.now_ns, ERROR_MAX_PAST_S)
        return too_old or in_future


def plan(
    table: SpanTable,
    *,
    routes: Routes | None,
    environment: str,
    rebase_time: bool,
    now: int | None,
    boundary: str,
    forest: tree.Forest | None,
    newest_end_ns: int | None = None,
) -> Plan:
    """Group ``table`` into transactions and decide routes, sampling and the fate of each transaction."""
    n = len(table)
    forest = forest if forest is not None else tree.build(table, timing=False)
    g = group(Context(table, forest, deliver(table, "all", "none"), Options(boundary=boundary)), "service")
    root = g.root.astype(np.int64, copy=False)
    if n and (root < 0).any():  # pragma: no cover - the service grouping never drops a span
        raise AssertionError("service grouping dropped spans")
    tm = times(table, rebase_time, now, newest_end_ns)
    tr = table.trace_code
    routing = sampling(table, routes, trace_heads(table, forest.parent), environment)
    bad_row = bad_id_rows(table)
    tx = transactions(g.roots(), root, tr, tm, bad_row, routing)
    need = (tx.reason == 0)[tx.of_row] if n else np.zeros(0, dtype=bool)
    eligible = (~routing.unrouted_row & routing.keep_row) if n else np.zeros(0, dtype=bool)
    return Plan(
        n,
        table.services,
        table.service,
        tr,
        table.trace_hex,
        root,
        forest.parent,
        tm,
        routing,
        bad_row,
        tx,
        need,
        eligible,
    )
