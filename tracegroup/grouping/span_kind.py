"""``span-kind``: Datadog's OTLP rule (``compute_top_level_by_span_kind``) over whole traces — a span
opens a transaction when it has no parent in the dump or is SERVER or CONSUMER kind.
"""

from __future__ import annotations

import numpy as np

from tracegroup.grouping.base import Context, Grouping, Reason, opened_by_parent, register
from tracegroup.model import KIND_CONSUMER, KIND_SERVER


@register("span-kind")
def span_kind(ctx: Context) -> Grouping:
    kind = ctx.table.kind
    reason = np.select(
        [kind == KIND_SERVER, kind == KIND_CONSUMER],
        [Reason.SERVER_KIND, Reason.CONSUMER_KIND],
        Reason.JOINED,
    )
    g = opened_by_parent(ctx, (kind == KIND_SERVER) | (kind == KIND_CONSUMER), reason)
    g.strategy = "span-kind"
    return g
