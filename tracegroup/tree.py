"""Span forests: parent resolution, anomalies, roots by pointer jumping, one trace as a networkx tree.

Contract:
- :func:`build` resolves every span's parent to a row index *within its trace* (``-1`` when it has no
  parent id, or its parent is not in the dump), all with vectorised numpy passes (no recursion, no
  per-span Python loop): traces 100k spans deep cost the same as flat ones.
- Duplicate ``(trace, span id)`` pairs: children resolve to the first occurrence in input order.
- Parent cycles (including self-parents) are cut deterministically at the cycle member with the lowest
  row index, which then counts as having a missing parent; every cut is listed as an anomaly.
- Anomalies never raise: each kind maps to the row indices of the spans concerned.
- :func:`jump_to_roots` turns an "up" array (``up[i] == i`` at roots) into each span's root in
  O(n log depth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from tracegroup.model import SpanTable, kind_name, span_hex

#: Anomaly kinds, in report order, with their one-line explanation.
ANOMALY_KINDS: dict[str, str] = {
    "missing_parent": "parent span id not in the dump (sampling hole, lost export, capture window)",
    "duplicate_span_id": "span id used more than once in its trace (later copies are not parents)",
    "self_parent": "span names itself as its parent (treated as a missing parent)",
    "parent_cycle": "parent links form a cycle (cut at its first span in input order)",
    "clock_skew": "child starts before its parent (clocks of two hosts disagree, or a bad timestamp)",
    "no_service": "resource has no service name attribute",
    "empty_id": "empty or wrong-length trace/span/parent id",
}


@dataclass
class Forest:
    """Resolved parents (row index or -1), which spans had a parent id that was not found, anomalies."""

    parent: np.ndarray
    missing_parent: np.ndarray  # bool: has a parent id, parent not resolved (incl. cut cycles)
    anomalies: dict[str, np.ndarray] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {k: int(len(v)) for k, v in self.anomalies.items()}

    def depth(self) -> np.ndarray:
        """Depth of each span (roots 0) by pointer jumping, summing hop counts."""
        n = len(self.parent)
        up = np.where(self.parent < 0, np.arange(n), self.parent)
        dist = (self.parent >= 0).astype(np.int64)
        while True:
            nxt = up[up]
            if np.array_equal(nxt, up):
                return dist
            dist = dist + dist[up]
            up = nxt


def jump_to_roots(up: np.ndarray) -> np.ndarray:
    """Root of every node of an up-array (``up[i] == i`` at roots), by pointer jumping.

    On a cycle (never in a :class:`Forest`, possible in per-call graphs keyed by span id only) the result
    for nodes on or under it is some node of the cycle, which is not a root: callers see "no root reached".
    """
    up = up.copy()
    for _ in range(max(1, len(up).bit_length()) + 1):
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    return up


def _resolve(table: SpanTable) -> tuple[np.ndarray, np.ndarray]:
    """Parent row per span (or -1), and the rows that are duplicates of an earlier (trace, span id)."""
    n = len(table)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    uniq, s_rank = np.unique(table.span_id, return_inverse=True)
    width = np.int64(len(uniq))
    key = table.trace * width + s_rank
    order = np.argsort(key, kind="stable")
    skey = key[order]
    dup_sorted = np.flatnonzero(skey[1:] == skey[:-1]) + 1
    duplicates = np.sort(order[dup_sorted])
    pid = table.parent_id
    pr = np.minimum(np.searchsorted(uniq, pid), len(uniq) - 1)
    pkey = table.trace * width + pr
    pos = np.minimum(np.searchsorted(skey, pkey), n - 1)
    found = (pid != 0) & (uniq[pr] == pid) & (skey[pos] == pkey) & ~table.bad_ids
    parent = np.where(found, order[pos], -1).astype(np.int64)
    return parent, duplicates


def _cut_cycles(parent: np.ndarray) -> list[int]:
    """Cut every parent cycle in place at its lowest row; return the cut rows."""
    n = len(parent)
    up = np.where(parent < 0, np.arange(n), parent)
    for _ in range(max(1, int(n).bit_length()) + 1):
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    cyclic = np.flatnonzero(parent[up] >= 0)  # never reached a real root: on or below a cycle
    if not len(cyclic):
        return []
    cuts: list[int] = []
    seen: set[int] = set()
    for start in np.unique(up[cyclic]).tolist():  # every landing node lies on a cycle
        if start in seen:
            continue
        members = [start]
        seen.add(start)
        node = int(parent[start])
        while node != start:
            members.append(node)
            seen.add(node)
            node = int(parent[node])
        cut = min(members)
        parent[cut] = -1
        cuts.append(cut)
    return sorted(cuts)


def build(table: SpanTable) -> Forest:
    """Resolve parents and collect anomalies (see the module docstring)."""
    parent, duplicates = _resolve(table)
    rows = np.arange(len(table))
    self_parent = np.flatnonzero(parent == rows)
    parent[self_parent] = -1
    cycles = np.array(_cut_cycles(parent), dtype=np.int64)
    has_pid = table.parent_id != 0
    missing = has_pid & (parent < 0)
    child = np.flatnonzero(parent >= 0)
    skew = child[table.start_ns[child] < table.start_ns[parent[child]]]
    no_service_codes = [i for i, s in enumerate(table.services) if s == ""]
    anomalies = {
        "missing_parent": np.flatnonzero(missing & ~table.bad_ids),
        "duplicate_span_id": duplicates,
        "self_parent": self_parent,
        "parent_cycle": cycles,
        "clock_skew": skew,
        "no_service": np.flatnonzero(np.isin(table.service, no_service_codes)),
        "empty_id": np.flatnonzero(table.bad_ids | (table.span_id == 0)),
    }
    return Forest(parent, missing, anomalies)


def trace_graph(table: SpanTable, forest: Forest, trace: int) -> nx.DiGraph:
    """One trace as a networkx DiGraph (edges parent -> child, nodes are row indices) with span data."""
    rows = np.flatnonzero(table.trace == trace)
    g = nx.DiGraph()
    names = table.names(rows)
    for i, name in zip(rows.tolist(), names, strict=True):
        g.add_node(
            i,
            span_id=span_hex(table.span_id[i]),
            service=table.service_name(i),
            name=name,
            kind=kind_name(int(table.kind[i])),
            start_ns=int(table.start_ns[i]),
            end_ns=int(table.end_ns[i]),
        )
    for i in rows.tolist():
        p = int(forest.parent[i])
        if p >= 0:
            g.add_edge(p, i)
    return g
