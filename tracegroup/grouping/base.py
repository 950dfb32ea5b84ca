"""What every grouping strategy shares: the context, the grouping result, the registry, a common core.

Contract:
- A strategy is a function ``(ctx: Context) -> Grouping`` registered in :data:`STRATEGIES` under its
  public name. ``Context`` carries the table, its resolved forest, the delivery (which exporter call saw
  which span, in what order) and the options; strategies hold no other state.
- ``Grouping.root[i]`` is the row index of the root span of span ``i``'s transaction, ``-1`` when the span
  was never sent. ``Grouping.reason[i]`` says why (a :class:`Reason`): for a root why it opened a
  transaction, for a member that it joined, for a dropped span why it was lost. Every span has exactly one
  root or is dropped, so counts are conserved by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tracegroup.batching import Delivery
from tracegroup.model import SpanTable
from tracegroup.reasons import Reason
from tracegroup.tree import Forest, jump_to_roots


@dataclass
class Options:
    """Options every strategy may read."""

    boundary: str = "service"  # "service" or "service+remote"
    project_of_service: dict[str, str] = field(default_factory=dict)  # sentry-otlp: service -> project


@dataclass
class Context:
    table: SpanTable
    forest: Forest
    delivery: Delivery
    options: Options = field(default_factory=Options)
    #: Whole-trace strategies see only delivered spans (a compared grouping: what reaches Sentry); the
    #: reference grouping sees every span of the dump.
    lossy: bool = False


@dataclass
class Grouping:
    strategy: str
    root: np.ndarray  # int64 row of the transaction root, -1 = dropped
    reason: np.ndarray  # int8 Reason per span
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def sent(self) -> np.ndarray:
        return self.root >= 0

    def roots(self) -> np.ndarray:
        """Rows that root a transaction (sorted): the spans that are their own root."""
        return np.flatnonzero(self.root == np.arange(len(self.root)))

    def sizes(self) -> np.ndarray:
        """Span count of each span's transaction (0 when dropped)."""
        n = len(self.root)
        counts = np.bincount(self.root[self.root >= 0], minlength=n)
        return np.where(self.root >= 0, counts[np.maximum(self.root, 0)], 0)

    def incomplete(self) -> np.ndarray:
        """Per span: its transaction's root had a parent id that is not in the dump."""
        ok = self.root >= 0
        out = np.zeros(len(self.root), dtype=bool)
        out[ok] = self.reason[self.root[ok]] == Reason.MISSING_PARENT
        return out


Strategy = Callable[[Context], Grouping]
STRATEGIES: dict[str, Strategy] = {}
#: Strategies that look at exporter calls (batches); the others see whole traces.
PER_CALL = {"sentryexporter", "sentryexporter-2021"}


def register(name: str) -> Callable[[Strategy], Strategy]:
    def deco(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn

    return deco


def group(ctx: Context, strategy: str) -> Grouping:
    """Run one strategy by name."""
    return STRATEGIES[strategy](ctx)


def opened_by_parent(ctx: Context, up_cut: np.ndarray, cut_reason: np.ndarray) -> Grouping:
    """Shared core of whole-trace strategies: cut where ``up_cut`` (bool) holds, join the parent elsewhere.

    ``cut_reason`` gives the Reason of each cut span that has a parent in the dump; spans without a parent
    id get NO_PARENT and spans whose parent is missing MISSING_PARENT. With ``ctx.lossy`` spans the delivery
    lost are dropped (with its reason) and their children see a missing parent.
    """
    parent = ctx.forest.parent
    missing = ctx.forest.missing_parent
    n = len(parent)
    rows = np.arange(n)
    alive = ctx.delivery.lost == 0 if ctx.lossy else np.ones(n, dtype=bool)
    if ctx.lossy:
        gone = (parent >= 0) & ~alive[np.maximum(parent, 0)]
        parent = np.where(gone, -1, parent)
        missing = missing | gone
    is_root = (parent < 0) | up_cut
    root = jump_to_roots(np.where(is_root, rows, parent))
    reason = np.where(is_root, cut_reason, Reason.JOINED).astype(np.int8)
    reason[missing] = Reason.MISSING_PARENT
    reason[ctx.table.parent_id == 0] = Reason.NO_PARENT
    root[~alive] = -1
    reason[~alive] = ctx.delivery.lost[~alive]
    return Grouping("", root, reason)
