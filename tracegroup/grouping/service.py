"""``service``: one transaction per application boundary — the deterministic, correct grouping.

Contract: a span opens a transaction when it has no parent in the dump (no parent id: NO_PARENT; parent
id not found: MISSING_PARENT, the transaction is *incomplete*) or its parent belongs to another service
(OTHER_SERVICE); with ``boundary="service+remote"`` also when its OTLP flags say the parent is remote
(REMOTE_PARENT). Otherwise it joins its parent's transaction. Batching and span order play no part.
"""

from __future__ import annotations

import numpy as np

from tracegroup.grouping import Context, Grouping, Reason, opened_by_parent, register
from tracegroup.model import FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE

REMOTE = FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE


@register("service")
def service(ctx: Context) -> Grouping:
    t, parent = ctx.table, ctx.forest.parent
    has = parent >= 0
    other = np.zeros(len(t), dtype=bool)
    other[has] = t.service[parent[has]] != t.service[has]
    cut = other.copy()
    reason = np.where(other, Reason.OTHER_SERVICE, Reason.JOINED)
    if ctx.options.boundary == "service+remote":
        remote = has & ~other & ((t.flags & REMOTE) == REMOTE)
        cut |= remote
        reason = np.where(remote, Reason.REMOTE_PARENT, reason)
    g = opened_by_parent(ctx, cut, reason)
    g.strategy = "service" if ctx.options.boundary == "service" else "service+remote"
    return g
