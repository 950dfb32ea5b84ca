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
over as soon as it is built and its payload is not kept. Two steps: :func:`tracegroup.sentry.plan.plan`
decides (transactions, routes, sampling, fates: pure data), :func:`tracegroup.sentry.build.build` turns the
plan into events; this module checks the options, runs both and totals the result (:class:`EmitResult`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracegroup import tree
from tracegroup.model import SpanTable
from tracegroup.redact import Policy
from tracegroup.routes import RenameRule, Routes, redact_dsn
from tracegroup.sentry.build import EmittedEvent, build
from tracegroup.sentry.convert import go_times, iso_times
from tracegroup.sentry.events import MAX_ITEM_BYTES
from tracegroup.sentry.plan import ERRORS, NOT_WRITTEN, check_options, plan, rebase_target, sample_rand
from tracegroup.sentry.rename import Renamer

__all__ = [
    "ERRORS",
    "NOT_WRITTEN",
    "EmitResult",
    "EmittedEvent",
    "emit",
    "rebase_target",
    "sample_rand",
]


@dataclass
class EmitResult:
    """Every event, written or not, in output order, with the options and counts of the run."""

    records: Sequence[EmittedEvent]
    options: dict[str, Any]
    spans_in: int
    services: list[str]
    routes: Routes | None = None
    notes: dict[str, int] = field(default_factory=dict)
    exception_events: int = 0
    _summary: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def events(self) -> list[EmittedEvent]:
        """Written events only."""
        return [r for r in self.records if r.written]

    @property
    def not_written(self) -> list[EmittedEvent]:
        return [r for r in self.records if not r.written]

    def summary(self) -> dict[str, Any]:
        """JSON-ready totals: spans in/written/not written by reason, events by kind, per service, routes
        (computed once: a copy each call)."""
        if self._summary is None:
            self._summary = self._totals()
        return copy.deepcopy(self._summary)

    def _totals(self) -> dict[str, Any]:
        spans_written = tx_written = tx_events = tx_split = tx_cont = err_written = 0
        spans_nw: dict[str, int] = {}
        tx_nw: dict[str, int] = {}
        err_nw: dict[str, int] = {}
        per: dict[str, dict[str, Any]] = {}
        for r in self.records:  # one pass: records may be built on access (build.Records)
            p = per.get(r.service)
            if p is None:
                p = per[r.service] = {
                    "service": r.service,
                    "route": r.route,
                    "transactions": 0,
                    "spans": 0,
                    "errors": 0,
                    "not_written_spans": 0,
                }
            if r.kind == "transaction":
                if r.written:
                    p["transactions"] += 1 if r.part == 1 else 0
                    p["spans"] += r.spans
                    spans_written += r.spans
                    tx_events += 1
                    tx_written += r.part == 1
                    tx_split += r.parts > 1 and r.part == 1
                    tx_cont += r.part > 1
                else:
                    tx_nw[r.reason] = tx_nw.get(r.reason, 0) + 1
                    spans_nw[r.reason] = spans_nw.get(r.reason, 0) + r.spans
                    p["not_written_spans"] += r.spans
            elif r.written:
                p["errors"] += 1
                err_written += 1
            else:
                err_nw[r.reason] = err_nw.get(r.reason, 0) + 1
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
                "written": tx_written,
                "events": tx_events,
                "split": tx_split,
                "continuations": tx_cont,
                "not_written": dict(sorted(tx_nw.items())),
            },
            "errors": {
                "exception_events": self.exception_events,
                "written": err_written,
                "not_written": dict(sorted(err_nw.items())),
            },
            "per_service": sorted(
                per.values(), key=lambda p: (-p["spans"] - p["not_written_spans"], p["service"])
            ),
            "routes": routes,
            "unrouted_services": unrouted,
            "notes": dict(sorted(self.notes.items())),
        }


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
    redaction: Policy | None = None,
    replay_id: str = "",
    newest_end_ns: int | None = None,
) -> EmitResult:
    """Build every Sentry event of ``table`` (see the module docstring). ``renames`` run after the routes
    file's own rules; ``now`` is in ns since the epoch.

    ``on_written`` streams: it is called with each written event as soon as it is built (transactions in
    output order, then error events), after which the record keeps no ``payload`` nor ``headers`` (so
    memory does not grow with the output); the returned records are otherwise the same.

    ``redaction`` (default ``Policy()``: secrets) scrubs every span before conversion, the table's service
    attribute excepted; ``Policy(secrets=False)`` is ``--keep-secrets``. ``replay_id`` (and the rebase
    shift) enter every event id, so another replay of the same dump gets other ids. ``newest_end_ns``:
    with ``rebase_time``, the newest span end to rebase from when ``table`` is part of a dump (default:
    the table's own)."""
    check_options(style, errors, environment)
    policy = redaction if redaction is not None else Policy()
    policy = Policy(policy.secrets, policy.pii, policy.keys, policy.keep | {table.service_attribute})
    p = plan(
        table,
        routes=routes,
        environment=environment,
        rebase_time=rebase_time,
        now=now,
        boundary=boundary,
        forest=forest,
        newest_end_ns=newest_end_ns,
    )
    if forest is None:  # the parent lookups are done: their ranks are not needed while building
        table.drop_id_ranks()
    renamer = Renamer([*(routes.renames if routes else []), *renames], p.services)
    built = build(
        table,
        p,
        renamer,
        style=style,
        errors=errors,
        environment=environment,
        max_item_bytes=max_item_bytes,
        on_written=on_written,
        policy=policy,
        replay_id=replay_id,
    )
    fmt = go_times if style == "exporter" else iso_times
    options = {
        "style": style,
        "errors": errors,
        "environment": environment,
        "rebase_time": rebase_time,
        "now": fmt(np.array([p.times.now_ns], dtype=np.int64))[0] if now is not None else "",
        "rebased_to": fmt(np.array([p.times.target], dtype=np.int64))[0] if rebase_time else "",
        "shift_ns": p.times.shift,
        "routes": routes.path if routes else "",
        "renames": len(renamer.rules),
        "boundary": boundary,
        "max_item_bytes": max_item_bytes,
        "redact": "+".join(n for n, on in (("credentials", policy.secrets), ("pii", policy.pii)) if on)
        or "off",
        "redact_keys": list(policy.keys),
        "replay_id": replay_id,
    }
    return EmitResult(
        built.records,
        options,
        p.n,
        list(p.services),
        routes,
        built.notes,
        exception_events=built.exception_events,
    )
