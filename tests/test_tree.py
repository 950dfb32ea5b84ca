"""Forest building: parent resolution within traces, anomalies, cycles, depth, networkx views."""

from __future__ import annotations

import networkx as nx
import numpy as np
from builders import S, row_of, table
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegroup.tree import build, trace_graph


def test_parents_resolve_within_the_trace_only() -> None:
    # span 2's parent id 1 exists in trace 1 only; in trace 2 it is missing.
    t = table([S(1, service="a"), S(2, 1, "a"), S(3, 1, "b", trace=2)])
    f = build(t)
    assert f.parent.tolist() == [-1, 0, -1]
    assert f.anomalies["missing_parent"].tolist() == [2]
    assert f.missing_parent.tolist() == [False, False, True]


def test_duplicates_self_parent_cycle_and_skew() -> None:
    t = table(
        [
            S(1, service="a", start=100),
            S(2, 1, "a", start=50),  # starts before its parent: skew
            S(2, 1, "a", start=150),  # duplicate id in the same trace
            S(3, 2, "a", start=200),  # resolves to the first span 2
            S(7, 7, "a"),  # self parent
            S(8, 9, "b"),
            S(9, 10, "b"),
            S(10, 8, "b"),  # cycle 8 -> 9 -> 10 -> 8
            S(11, 10, "b"),  # hangs under the cycle
        ]
    )
    f = build(t)
    assert f.anomalies["duplicate_span_id"].tolist() == [2]
    assert f.parent[row_of(t, 3)] == 1
    assert f.anomalies["self_parent"].tolist() == [4]
    assert f.anomalies["parent_cycle"].tolist() == [5]  # cut at the first member in input order
    assert f.parent.tolist() == [-1, 0, 0, 1, -1, -1, 7, 5, 7]
    assert f.anomalies["clock_skew"].tolist() == [1]
    assert f.depth().tolist() == [0, 1, 1, 2, 0, 0, 2, 1, 2]


def test_no_service_name_is_an_anomaly() -> None:
    t = table([S(1, service=""), S(2, 1, service="")])
    assert build(t).anomalies["no_service"].tolist() == [0, 1]


def test_trace_graph_is_a_networkx_tree() -> None:
    t = table(
        [S(1, service="a", name="root", kind="SERVER"), S(2, 1, "a"), S(3, 2, "b"), S(4, None, "c", trace=2)]
    )
    g = trace_graph(t, build(t), int(t.trace_code[0]))
    assert isinstance(g, nx.DiGraph) and nx.is_arborescence(g)
    assert sorted(g.edges) == [(0, 1), (1, 2)]
    assert g.nodes[0]["name"] == "root" and g.nodes[0]["kind"] == "SERVER"
    assert g.nodes[2]["service"] == "b" and g.nodes[2]["span_id"] == "0000000000000003"


def test_deep_chain_depth_without_recursion() -> None:
    n = 200_000
    from builders import batch

    from tracegroup.load import table_from_messages

    t = table_from_messages([batch(*[S(i + 1, i or None, "a") for i in range(n)])])
    f = build(t)
    assert int(f.depth().max()) == n - 1
    assert (f.parent[1:] == range(n - 1)).all()


@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=3000, unique=True),
    st.lists(st.integers(0, 2**64 - 1), max_size=500),
    st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_search_sorted_matches_numpy(ids: list[int], extra: list[int], sequential: bool) -> None:
    from tracegroup.model import search_sorted

    if sequential:  # crowded buckets: the fallback path
        ids = list(range(1, len(ids) + 1))
    u = np.array(sorted(ids), dtype=np.uint64)
    rng = np.random.default_rng(len(ids))
    q = np.concatenate(
        [u[rng.integers(0, max(len(u), 1), len(u))] if len(u) else u, np.array(extra, dtype=np.uint64)]
    )
    assert (search_sorted(u, q) == np.searchsorted(u, q)).all()


def test_search_sorted_bucket_path_on_random_ids() -> None:
    from tracegroup.model import search_sorted

    rng = np.random.default_rng(3)
    u = np.unique(rng.integers(0, 2**63, 50_000, dtype=np.uint64) * np.uint64(2))
    q = np.concatenate([u, u + np.uint64(1), rng.integers(0, 2**64 - 1, 50_000, dtype=np.uint64)])
    assert (search_sorted(u, q) == np.searchsorted(u, q)).all()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(4096, 20_000),
    st.sampled_from(["random", "few", "small", "top-bits", "sorted"]),
    st.integers(0, 2**32),
)
def test_argsort_stable_matches_numpy(n: int, shape: str, seed: int) -> None:
    """The packed sort gives numpy's stable argsort on every shape of ids: random, many duplicates, small
    values (no shift), values sharing their top bits (the checked fallback), already sorted."""
    from tracegroup.model import argsort_stable

    rng = np.random.default_rng(seed)
    if shape == "random":
        v = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
    elif shape == "few":
        v = rng.integers(0, 2**64 - 1, 7, dtype=np.uint64)[rng.integers(0, 7, n)]
    elif shape == "small":
        v = rng.integers(0, 1000, n).astype(np.uint64)
    elif shape == "top-bits":  # equal top bits, random low bits: ties of the packed key out of order
        v = np.uint64(0xFFFF_0000_0000_0000) | rng.integers(0, 2**20, n).astype(np.uint64)
    else:
        v = np.sort(rng.integers(0, 2**64 - 1, n, dtype=np.uint64))
    assert np.array_equal(argsort_stable(v), np.argsort(v, kind="stable"))
    assert np.array_equal(argsort_stable(v[::2]), np.argsort(v[::2], kind="stable"))  # a strided view
