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
from typing import TYPE_CHECKING

import numpy as np

from tracegroup.model import SpanTable, kind_name, span_hex

if TYPE_CHECKING:
    import networkx as nx

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


def lookup_parents(table: SpanTable, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parents by span id inside groups (traces, or exporter calls), vectorised.

    ``group[i]`` is the group of row ``i`` (``-1``: the row takes no part). For each taking part, the row
    of the first span, in input order, of the same group whose span id is its parent id, else -1; and the
    rows that repeat an earlier (group, span id) pair. When every span id of the table is distinct (the
    usual case) the parent candidate is unique and only its group is checked: no sort of (group, id) keys.
    """
    n = len(group)
    uniq, s_rank, p_rank, p_known, row_of_rank = table.id_ranks
    member = group >= 0
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if row_of_rank is not None:
        cand = row_of_rank[p_rank]
        found = p_known & member & (group[cand] == group)
        return np.where(found, cand, -1).astype(np.int64), np.zeros(0, dtype=np.int64)
    rows = np.flatnonzero(member)
    width = np.int64(len(uniq))
    key = group[rows] * width + s_rank[rows]
    order = np.argsort(key, kind="stable")
    skey = key[order]
    duplicates = rows[order[np.flatnonzero(skey[1:] == skey[:-1]) + 1]]
    pkey = group[rows] * width + p_rank[rows]
    pos = np.minimum(np.searchsorted(skey, pkey), max(len(skey) - 1, 0))
    found = p_known[rows] & (skey[pos] == pkey) if len(skey) else np.zeros(0, dtype=bool)
    parent = np.full(n, -1, dtype=np.int64)
    parent[rows] = np.where(found, rows[order[pos]], -1)
    return parent, np.sort(duplicates)


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


def build(table: SpanTable, timing: bool = True) -> Forest:
    """Resolve parents and collect anomalies (see the module docstring).

    ``timing=False`` skips the clock-skew check, the only one that needs start times: the grouping
    commands then never decode the warm columns.
    """
    parent, duplicates = lookup_parents(table, table.trace_code)
    parent[table.bad_ids] = -1
    rows = np.arange(len(table))
    self_parent = np.flatnonzero(parent == rows)
    parent[self_parent] = -1
    cycles = np.array(_cut_cycles(parent), dtype=np.int64)
    has_pid = table.parent_id != 0
    missing = has_pid & (parent < 0)
    no_service_codes = [i for i, s in enumerate(table.services) if s == ""]
    anomalies = {
        "missing_parent": np.flatnonzero(missing & ~table.bad_ids),
        "duplicate_span_id": duplicates,
        "self_parent": self_parent,
        "parent_cycle": cycles,
        "no_service": np.flatnonzero(np.isin(table.service, no_service_codes)),
        "empty_id": np.flatnonzero(table.bad_ids | (table.span_id == 0)),
    }
    if timing:
        child = np.flatnonzero(parent >= 0)
        anomalies["clock_skew"] = child[table.start_ns[child] < table.start_ns[parent[child]]]
    return Forest(parent, missing, anomalies)


def trace_graph(table: SpanTable, forest: Forest, trace: int) -> nx.DiGraph:
    """One trace as a networkx DiGraph (edges parent -> child, nodes are row indices) with span data."""
    import networkx as nx

    rows = np.flatnonzero(table.trace_code == trace)
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
