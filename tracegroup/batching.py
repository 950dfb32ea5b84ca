"""Delivery: which exporter call saw which span, in what order.

Contract: :func:`deliver` turns a table into a :class:`Delivery` for the per-call strategies:

- batching ``captured`` (each input message is one pipeline batch), ``trace`` (one batch per trace: what
  the groupbytrace processor aims at) or ``all`` (the whole dump at once);
- then routing: ``none`` (one exporter sees each batch whole), ``service`` (a routing processor gives each
  service its own exporter, so each exporter call holds one service's part of a batch) or a
  :class:`~tracegroup.routes.Routes` file (services sharing a route share the exporter; services without a
  route, and no default, never reach Sentry: ``lost`` says so).

Each exporter call gets an integer id; inside a call the exporter walks spans in input order unless
``order`` says otherwise (:meth:`Delivery.rows_of_call`). Deterministic: same table and options, same
delivery.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracegroup.model import SpanTable
from tracegroup.routes import Routes

BATCHINGS = ("captured", "trace", "all")


@dataclass
class Delivery:
    call: np.ndarray  # int64 per span: exporter call id, -1 = never reached a Sentry exporter
    unrouted: np.ndarray  # bool per span: lost because its service has no route
    n_calls: int
    batching: str
    routing: str
    exporters: list[str]  # exporter name per exporter index
    order: np.ndarray | None = None  # delivered rows in walk order when that is not input order

    def rows_of_call(self, c: int) -> np.ndarray:
        """Rows of exporter call ``c`` in the order the exporter walks them."""
        if self.order is None:
            return np.flatnonzero(self.call == c)
        return self.order[self.call[self.order] == c]

    @property
    def delivered(self) -> np.ndarray:
        return self.call >= 0


def default_batching(table: SpanTable) -> str:
    """``captured`` when the dump holds more than one message, else ``trace``."""
    return "captured" if len(table.batches) > 1 else "trace"


def deliver(table: SpanTable, batching: str = "captured", routing: str | Routes = "none") -> Delivery:
    """Build the delivery (see the module docstring)."""
    n = len(table)
    if batching == "captured":
        base = table.batch.astype(np.int64)
    elif batching == "trace":
        base = table.trace
    elif batching == "all":
        base = np.zeros(n, dtype=np.int64)
    else:
        raise ValueError(f"unknown batching {batching!r} (choose from {', '.join(BATCHINGS)})")
    return route(table, base, batching, routing)


def route(table: SpanTable, base: np.ndarray, batching: str, routing: str | Routes) -> Delivery:
    """Apply routing to pipeline batches ``base`` (batch id per span, batches ordered by id)."""
    n = len(table)
    if isinstance(routing, Routes):
        names = [r.name for r in routing.routes] + ([routing.default.name] if routing.default else [])
        exporter_of_service = np.array(
            [-1 if (r := routing.route_of(s)) is None else names.index(r.name) for s in table.services]
            or [-1],
            dtype=np.int64,
        )
        exporter = exporter_of_service[table.service] if n else np.zeros(0, dtype=np.int64)
        routing_name = f"file:{routing.path}"
    elif routing == "service":
        names = list(table.services)
        exporter = table.service.astype(np.int64)
        routing_name = "service"
    elif routing == "none":
        names = ["sentry"]
        exporter = np.zeros(n, dtype=np.int64)
        routing_name = "none"
    else:
        raise ValueError(f"unknown routing {routing!r} (none, service or a routes file)")
    unrouted = exporter < 0
    ok = ~unrouted
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
    return Delivery(call, unrouted, n_calls, batching, routing_name, names)
