"""Delivery: which exporter call saw which span, in what order.

Contract: :func:`deliver` turns a table into a :class:`Delivery` for the per-call strategies:

- batches ``captured`` (each input message is one pipeline batch), ``trace`` (one batch per trace: what
  the groupbytrace processor aims at), ``all`` (the whole dump at once), or ``simulate`` /
  ``groupbytrace``: the batches a modelled pipeline would cut (:mod:`tracegroup.pipeline`), where a full
  SDK queue can lose spans;
- then routing (``routes``): ``none`` (one exporter sees each batch whole), ``service`` (a routing
  processor gives each service its own exporter, so each exporter call holds one service's part of a
  batch) or a
  :class:`~tracegroup.routes.Routes` file (services sharing a route share the exporter; services without a
  route, and no default, never reach Sentry: ``lost`` says so).

Each exporter call gets an integer id; inside a call the exporter walks spans in input order unless
``order`` says otherwise (:meth:`Delivery.rows_of_call`). Deterministic: same table and options, same
delivery.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tracegroup.model import SpanTable
from tracegroup.pipeline import PipelineOptions, simulate
from tracegroup.reasons import Reason
from tracegroup.routes import Routes

#: The ``batches`` values (CLI ``--batches``): how the dump is cut into pipeline batches.
BATCHES = ("captured", "trace", "all", "simulate", "groupbytrace")
#: Why an undelivered span never reached an exporter (values of ``Delivery.lost``; 0 = delivered).
LOST_UNROUTED = int(Reason.DROPPED_UNROUTED)
LOST_QUEUE_FULL = int(Reason.DROPPED_QUEUE_FULL)


@dataclass
class Delivery:
    call: np.ndarray  # int64 per span: exporter call id, -1 = never reached a Sentry exporter
    lost: np.ndarray  # int8 per span: 0 delivered, else the Reason it was lost (unrouted, SDK queue full)
    n_calls: int
    batches: str  # the batches value used (``simulate`` with a wait becomes ``groupbytrace``)
    routes: str  # none | service | file:<path>
    exporters: list[str]  # exporter name per exporter index
    order: np.ndarray | None = None  # delivered rows in walk order when that is not input order
    notes: dict[str, int] = field(default_factory=dict)
    pipeline: PipelineOptions | None = None  # the simulation's effective settings, when simulated

    def rows_of_call(self, c: int) -> np.ndarray:
        """Rows of exporter call ``c`` in the order the exporter walks them."""
        if self.order is None:
            return np.flatnonzero(self.call == c)
        return self.order[self.call[self.order] == c]

    @property
    def delivered(self) -> np.ndarray:
        return self.call >= 0


def default_batches(table: SpanTable) -> str:
    """``captured`` when the dump holds more than one message, else ``trace``."""
    return "captured" if len(table.batches) > 1 else "trace"


def deliver(
    table: SpanTable,
    batches: str = "captured",
    routes: str | Routes = "none",
    pipeline: PipelineOptions | None = None,
) -> Delivery:
    """Build the delivery (see the module docstring)."""
    n = len(table)
    lost = np.zeros(n, dtype=np.int8)
    order = None
    notes: dict[str, int] = {}
    options = pipeline or PipelineOptions()
    if batches == "captured":
        base = table.batch.astype(np.int64)
    elif batches == "trace":
        base = table.trace_code
    elif batches == "all":
        base = np.zeros(n, dtype=np.int64)
    elif batches in ("simulate", "groupbytrace"):
        if batches == "groupbytrace" and options.wait_ms is None:
            options = dataclasses.replace(options, wait_ms=1000.0)
        if batches == "simulate" and options.wait_ms is not None:
            batches = "groupbytrace"
        sim = simulate(table, options)
        base, order = sim.batch, sim.order
        lost[base < 0] = LOST_QUEUE_FULL
        notes = {"sdk_exports": sim.sdk_exports, "sdk_dropped": sim.sdk_dropped, **sim.notes}
    else:
        raise ValueError(f"unknown batches {batches!r} (choose from {', '.join(BATCHES)})")
    d = route(table, base, batches, routes, lost)
    d.order, d.notes = order, notes
    if batches in ("simulate", "groupbytrace"):
        d.pipeline = options
    return d


def route(
    table: SpanTable, base: np.ndarray, batches: str, routes: str | Routes, lost: np.ndarray | None = None
) -> Delivery:
    """Apply the routing ``routes`` to pipeline batches ``base`` (batch id per span, -1 = lost upstream
    with ``lost``)."""
    n = len(table)
    if isinstance(routes, Routes):
        names = [r.name for r in routes.routes] + ([routes.default.name] if routes.default else [])
        exporter_of_service = np.array(
            [-1 if (r := routes.route_of(s)) is None else names.index(r.name) for s in table.services]
            or [-1],
            dtype=np.int64,
        )
        exporter = exporter_of_service[table.service] if n else np.zeros(0, dtype=np.int64)
        routes_name = f"file:{routes.path}"
    elif routes == "service":
        names = list(table.services)
        exporter = table.service.astype(np.int64)
        routes_name = "service"
    elif routes == "none":
        names = ["sentry"]
        exporter = np.zeros(n, dtype=np.int64)
        routes_name = "none"
    else:
        raise ValueError(f"unknown routes {routes!r} (none, service or a routes file)")
    lost = np.zeros(n, dtype=np.int8) if lost is None else lost.copy()
    lost[(exporter < 0) & (lost == 0)] = LOST_UNROUTED
    ok = lost == 0
    key = base[ok] * max(len(names), 1) + exporter[ok]
    call = np.full(n, -1, dtype=np.int64)
    if len(key) and int(key.max()) < 4 * n + 1024:  # dense keys: rank by a presence table, no sort
        present = np.zeros(int(key.max()) + 1, dtype=bool)
        present[key] = True
        call[ok] = (np.cumsum(present) - 1)[key]
        n_calls = int(present.sum())
    else:
        uniq, call[ok] = np.unique(key, return_inverse=True)
        n_calls = len(uniq)
    return Delivery(call, lost, n_calls, batches, routes_name, names)
