"""``service``: one transaction per application boundary — the deterministic, correct grouping.

Contract: a span opens a transaction when it has no parent in the dump (no parent id: NO_PARENT; parent
id not found: MISSING_PARENT, the transaction is *incomplete*) or its parent belongs to another service
(OTHER_SERVICE); with ``boundary="service+remote"`` also when its OTLP flags say the parent is remote
(REMOTE_PARENT). Otherwise it joins its parent's transaction. Batching and span order play no part.
:func:`heal` is the opt-in repair of incomplete transactions (``--heal``).
"""

from __future__ import annotations

import numpy as np

from tracegroup.grouping.base import Context, Grouping, Reason, opened_by_parent, register
from tracegroup.model import FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE, SpanTable, span_hex
from tracegroup.tree import jump_to_roots

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


def heal(table: SpanTable, g: Grouping) -> list[dict[str, str]]:
    """Opt-in repair of incomplete transactions, in place: a transaction whose root's parent is missing
    joins the transaction of the same service and trace whose root span encloses it in time, when exactly
    one does. Returns one record per repair (trace id, healed root, new root)."""
    roots = g.roots()
    incomplete = roots[g.reason[roots] == Reason.MISSING_PARENT]
    if not len(incomplete):
        return []
    start, end = table.start_ns, table.end_ns
    groups: dict[tuple[int, int], list[int]] = {}
    for r, tr, sv in zip(
        roots.tolist(), table.trace_code[roots].tolist(), table.service[roots].tolist(), strict=True
    ):
        groups.setdefault((tr, sv), []).append(r)
    up = np.arange(len(g.root))
    repairs: list[dict[str, str]] = []
    for r in incomplete.tolist():
        cands = np.array(groups[(int(table.trace_code[r]), int(table.service[r]))])
        fits = cands[(cands != r) & (start[cands] <= start[r]) & (end[cands] >= end[r])]
        if len(fits) == 1:
            up[r] = int(fits[0])
            repairs.append(
                {
                    "trace_id": table.trace_hex[int(table.trace_code[r])],
                    "root": span_hex(table.span_id[r]),
                    "joined": span_hex(table.span_id[fits[0]]),
                }
            )
    final = jump_to_roots(up)
    healed = up != np.arange(len(up))
    sent = g.root >= 0
    g.root[sent] = final[g.root[sent]]
    g.reason[healed] = Reason.HEALED
    g.notes["healed"] = len(repairs)
    return repairs
