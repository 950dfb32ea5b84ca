"""Grouping strategies: every span -> the root span of the Sentry transaction it ends up in, or dropped.

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

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tracegroup.batching import Delivery
from tracegroup.model import SpanTable
from tracegroup.tree import Forest, jump_to_roots


class Reason(enum.IntEnum):
    JOINED = 0
    NO_PARENT = 1
    MISSING_PARENT = 2
    OTHER_SERVICE = 3
    REMOTE_PARENT = 4
    SERVER_KIND = 5
    CONSUMER_KIND = 6
    ORPHAN = 7
    OTHER_PROJECT = 8
    DROPPED_NO_ROOT = 20
    DROPPED_UNROUTED = 21
    DROPPED_OVERWRITTEN = 22
    DROPPED_QUEUE_FULL = 23


#: One-line explanation of each reason, as reports print it.
REASON_TEXT: dict[Reason, str] = {
    Reason.JOINED: "joined its parent's transaction",
    Reason.NO_PARENT: "opened: no parent",
    Reason.MISSING_PARENT: "opened: parent not in the dump",
    Reason.OTHER_SERVICE: "opened: parent in another service",
    Reason.REMOTE_PARENT: "opened: parent-remote flag set",
    Reason.SERVER_KIND: "opened: SERVER span",
    Reason.CONSUMER_KIND: "opened: CONSUMER span",
    Reason.ORPHAN: "sent alone: parent not attached in the same exporter call",
    Reason.OTHER_PROJECT: "opened: parent in another Sentry project",
    Reason.DROPPED_NO_ROOT: "dropped: its exporter call had no transaction root",
    Reason.DROPPED_UNROUTED: "dropped: its service has no route to Sentry",
    Reason.DROPPED_OVERWRITTEN: "dropped: its transaction was replaced by one with the same root span id",
    Reason.DROPPED_QUEUE_FULL: "dropped: SDK export queue full",
}


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
    id get NO_PARENT and spans whose parent is missing MISSING_PARENT.
    """
    parent = ctx.forest.parent
    n = len(parent)
    rows = np.arange(n)
    is_root = (parent < 0) | up_cut
    root = jump_to_roots(np.where(is_root, rows, parent))
    reason = np.where(is_root, cut_reason, Reason.JOINED).astype(np.int8)
    reason[ctx.forest.missing_parent] = Reason.MISSING_PARENT
    reason[ctx.table.parent_id == 0] = Reason.NO_PARENT
    return Grouping("", root, reason)


def _load_builtin() -> None:
    from tracegroup.grouping import (  # noqa: F401
        remote_parent,
        sentry_otlp,
        sentryexporter,
        service,
        span_kind,
    )


_load_builtin()
