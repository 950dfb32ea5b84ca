"""``sentryexporter`` / ``sentryexporter-2021``: the legacy collector Sentry exporter, emulated exactly.

Contract (docs/exporter.md; Go ``pushTraceData`` in open-telemetry/opentelemetry-collector-contrib,
``exporter/sentryexporter/sentry_exporter.go`` at c87eb2d7), per exporter call of the
:class:`~tracegroup.batching.Delivery`:

1. Root rule: parent span id all zeros, or kind SERVER or CONSUMER (2021 era: parent all zeros only).
   A root-rule span opens a transaction keyed by its span id.
2. Other spans join the transaction of their parent, looked up **by span id only** (not trace id) among
   the spans of the same call that have joined or opened one; the Go code retries held spans until a pass
   attaches none, so with unique span ids in the call membership does not depend on span order.
3. A call that opened no transaction sends nothing: all its spans are dropped (DROPPED_NO_ROOT).
4. Spans still held become one-span transactions (ORPHAN); spans under them are not attached to them.

Calls whose span ids are unique take a vectorised path (pointer jumping over all calls at once: linear in
spans whatever the depth or order, where the Go code's repeated passes are quadratic on a deep chain in
reverse order). Calls holding a span id twice run the Go algorithm literally, map overwrites included: a
later root-rule span with the same id replaces the earlier transaction, whose spans are then lost
(DROPPED_OVERWRITTEN), and a later span's id entry replaces the earlier one's.
"""

from __future__ import annotations

import numpy as np

from tracegroup.grouping.base import Context, Grouping, Reason, register
from tracegroup.model import KIND_CONSUMER, KIND_SERVER
from tracegroup.tree import jump_to_roots, lookup_parents


def _root_rule(ctx: Context, era: str) -> tuple[np.ndarray, np.ndarray]:
    t = ctx.table
    no_parent = t.parent_id == 0
    if era == "2021":
        return no_parent, np.where(no_parent, Reason.NO_PARENT, Reason.JOINED)
    server, consumer = t.kind == KIND_SERVER, t.kind == KIND_CONSUMER
    reason = np.select(
        [no_parent, server, consumer],
        [Reason.NO_PARENT, Reason.SERVER_KIND, Reason.CONSUMER_KIND],
        Reason.JOINED,
    )
    return no_parent | server | consumer, reason


def emulate(ctx: Context, era: str = "2023") -> Grouping:
    t, d = ctx.table, ctx.delivery
    n = len(t)
    is_root, rule_reason = _root_rule(ctx, era)
    call = d.call
    delivered = call >= 0
    # Parent inside the same call by span id only (the Go maps' key).
    parent, dups = lookup_parents(t, call)
    rows = np.arange(n)
    rr = is_root & delivered
    top = jump_to_roots(np.where(rr | (parent < 0), rows, parent))
    attached = rr[top]
    calls_with_root = np.bincount(call[rr], minlength=max(d.n_calls, 1)) > 0
    sent = delivered & calls_with_root[np.maximum(call, 0)]
    root = np.where(sent, np.where(attached, top, rows), -1)
    why = np.where(rr, rule_reason, np.where(attached, Reason.JOINED, Reason.ORPHAN))
    reason = np.where(sent, why, np.where(delivered, Reason.DROPPED_NO_ROOT, d.lost))
    reason = reason.astype(np.int8)
    dup_calls = np.unique(call[dups])
    for c in dup_calls.tolist():  # walk order inside the call matters only here
        _literal_call(t.span_id, t.parent_id, is_root, rule_reason, d.rows_of_call(c), root, reason)
    g = Grouping("sentryexporter" if era == "2023" else "sentryexporter-2021", root, reason)
    g.notes["exporter_calls"] = d.n_calls
    g.notes["calls_with_duplicate_span_ids"] = len(dup_calls)
    return g


def _literal_call(
    span_id: np.ndarray,
    parent_id: np.ndarray,
    is_root: np.ndarray,
    rule_reason: np.ndarray,
    rows: np.ndarray,
    root: np.ndarray,
    reason: np.ndarray,
) -> None:
    """One call through the Go algorithm step by step (only for calls with duplicate span ids)."""
    id_map: dict[int, int] = {}  # span id -> root span id
    tx: dict[int, int] = {}  # root span id -> transaction token (the row that opened it)
    members: dict[int, list[int]] = {}
    held: list[int] = []

    def attach(r: int) -> bool:
        root_sid = id_map.get(int(parent_id[r]))
        if root_sid is None:
            return False
        id_map[int(span_id[r])] = root_sid
        members[tx[root_sid]].append(r)
        return True

    for r in rows.tolist():
        if is_root[r]:
            s = int(span_id[r])
            tx[s] = r
            members[r] = [r]
            id_map[s] = s
        elif not attach(r):
            held.append(r)
    if not tx:
        root[rows] = -1
        reason[rows] = Reason.DROPPED_NO_ROOT
        return
    prev = len(held) + 1
    while held and len(held) != prev:
        prev = len(held)
        held = [r for r in held if not attach(r)]
    live = set(tx.values())
    for token, spans in members.items():
        if token in live:
            root[spans] = token
            reason[spans] = Reason.JOINED
            reason[token] = rule_reason[token]
        else:
            root[spans] = -1
            reason[spans] = Reason.DROPPED_OVERWRITTEN
    root[held] = held
    reason[held] = Reason.ORPHAN


@register("sentryexporter")
def sentryexporter(ctx: Context) -> Grouping:
    return emulate(ctx, "2023")


@register("sentryexporter-2021")
def sentryexporter_2021(ctx: Context) -> Grouping:
    return emulate(ctx, "2021")
