"""``remote-parent``: the Sentry SDKs' rule — a transaction starts where there is no parent or the OTLP
flags say the parent is remote (bits 0x100 and 0x200 both set); a parent missing from the dump also
starts one (MISSING_PARENT). Whole traces, independent of batching.
"""

from __future__ import annotations

import numpy as np

from tracegroup.grouping.base import Context, Grouping, Reason, opened_by_parent, register
from tracegroup.grouping.service import REMOTE


@register("remote-parent")
def remote_parent(ctx: Context) -> Grouping:
    remote = (ctx.table.flags & REMOTE) == REMOTE
    g = opened_by_parent(ctx, remote, np.where(remote, Reason.REMOTE_PARENT, Reason.JOINED))
    g.strategy = "remote-parent"
    return g
