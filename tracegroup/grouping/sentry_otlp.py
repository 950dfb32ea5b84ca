"""``sentry-otlp``: what Sentry's OTLP ingestion makes of the spans.

A segment starts where there is no parent in the dump, where the parent-remote flags are set
(0x100|0x200), or where the parent belongs to another Sentry project (``Options.project_of_service``:
service -> route, from a routes file; without one every service is its own project). Services a routes
file leaves unrouted are dropped. Services that never set bit 0x100 give Sentry no remote bits at all:
spans of such services sharing a project merge (``notes["services_without_remote_bits"]``).
"""

from __future__ import annotations

import numpy as np

from tracegroup.grouping.base import Context, Grouping, Reason, opened_by_parent, register
from tracegroup.grouping.service import REMOTE
from tracegroup.model import FLAG_HAS_IS_REMOTE


@register("sentry-otlp")
def sentry_otlp(ctx: Context) -> Grouping:
    t, parent = ctx.table, ctx.forest.parent
    projects = ctx.options.project_of_service
    # Route names and unrouted services live in separate namespaces, so they can never collide.
    proj_names = [f"route:{projects[s]}" if s in projects else f"service:{s}" for s in t.services]
    _, proj_code = np.unique(np.array(proj_names or [""], dtype=object), return_inverse=True)
    project = proj_code[t.service] if len(t) else np.zeros(0, dtype=np.int64)
    has = parent >= 0
    other = np.zeros(len(t), dtype=bool)
    other[has] = project[parent[has]] != project[has]
    remote = (t.flags & REMOTE) == REMOTE
    reason = np.where(remote, Reason.REMOTE_PARENT, np.where(other, Reason.OTHER_PROJECT, Reason.JOINED))
    g = opened_by_parent(ctx, remote | other, reason)
    g.strategy = "sentry-otlp"
    with_bits = np.zeros(len(t.services), dtype=bool)
    with_bits[np.unique(t.service[(t.flags & FLAG_HAS_IS_REMOTE) != 0])] = True
    g.notes["services_without_remote_bits"] = sorted(
        s for s, b in zip(t.services, with_bits, strict=True) if not b
    )
    return g
