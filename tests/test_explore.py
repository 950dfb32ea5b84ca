"""The notebook API (tracegroup.Explorer): exact columns and dtypes, trace lookup, one trace's tree,
anomalies, the memoized analysis behind the frames, and the analysis options it takes."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from builders import S, table

import tracegroup as tg
from tracegroup import explore, frames
from tracegroup.render import MAX_INDENT

HOTROD = "fixtures/external/getTrace-response.json"
DSB = "fixtures/external/traces-1695947455229.json"  # Jaeger, 64-bit trace ids
POLYGLOT = "fixtures/polyglot.pb"

#: The one per-span contract (tracegroup.frames, the `tracegroup spans` columns), in order: without an
#: analysis (.spans()), and with one (.diff(), TraceView.spans), whose columns go in before flags.
SPANS = {
    "trace_id": "str", "span_id": "str", "parent_span_id": "str", "service": "category", "name": "str",
    "kind": "category", "batch": "int64", "start_ns": "int64", "end_ns": "int64",
    "start": "datetime64[ns, UTC]", "end": "datetime64[ns, UTC]", "duration_ms": "float64", "depth": "int64",
    "parent_missing": "bool", "flags": "int64", "position": "str",
}  # fmt: skip
DIFF = {
    **{k: v for k, v in SPANS.items() if k not in ("flags", "position")},
    "transaction": "str", "compared_transaction": "str", "verdict": "category", "incomplete": "bool",
    "reason": "category", "flags": "int64", "position": "str",
}  # fmt: skip
DETAILS = [
    "status_code", "status_message", "scope_name", "scope_version", "attributes", "resource_attributes",
    "events", "links",
]  # fmt: skip
TRANSACTIONS = {
    "trace_id": "str", "transaction": "str", "service": "category", "name": "str", "kind": "category",
    "reason": "category", "spans": "int64", "services": "int64", "start": "datetime64[ns, UTC]",
    "end": "datetime64[ns, UTC]", "duration_ms": "float64", "incomplete": "bool", "counterparts": "int64",
    "dropped": "int64", "not_ok": "int64", "intact": "bool",
}  # fmt: skip
TRACES = {
    "trace_id": "str", "head": "str", "spans": "int64", "services": "int64", "ok": "int64", "split": "int64",
    "merged": "int64", "orphaned": "int64", "dropped": "int64", "not_ok": "int64", "blamed": "int64",
    "in_incomplete": "int64", "transactions": "int64", "compared_transactions": "int64",
    "start": "datetime64[ns, UTC]", "duration_ms": "float64",
}  # fmt: skip
ANOMALIES = {
    "kind": "category", "trace_id": "str", "span_id": "str", "parent_span_id": "str", "service": "category",
    "name": "str", "meaning": "str", "row": "int64",
}  # fmt: skip


def dtypes(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Columns and dtypes, in order."""
    return [(k, str(v)) for k, v in frame.dtypes.items()]


@pytest.fixture(scope="module")
def hotrod() -> tg.Explorer:
    return tg.Explorer.load([HOTROD])


def test_documented_column_tables_match_the_module() -> None:
    assert list(explore.SPAN_COLUMNS.items()) == list(SPANS.items())
    assert dict(DIFF) == {**explore.SPAN_COLUMNS, **explore.DIFF_COLUMNS}
    assert frames.column_order(analysis=False, details=False) == list(SPANS)
    assert frames.column_order(analysis=True, details=True) == list(DIFF) + DETAILS
    assert explore.TRANSACTION_COLUMNS == TRANSACTIONS
    assert explore.TRACE_COLUMNS == TRACES
    assert explore.ANOMALY_COLUMNS == ANOMALIES


def test_spans_columns_dtypes_and_values(hotrod: tg.Explorer) -> None:
    f = hotrod.spans()
    assert dtypes(f) == list(SPANS.items())
    assert len(f) == 40 and f.index.name == "row" and f.index.tolist() == list(range(40))
    services = hotrod.table.services
    assert list(f["service"].cat.categories) == services and len(services) == 6
    assert list(f["kind"].cat.categories) == [
        "UNSPECIFIED",
        "INTERNAL",
        "SERVER",
        "CLIENT",
        "PRODUCER",
        "CONSUMER",
    ]
    assert (
        f["trace_id"].str.fullmatch("[0-9a-f]{32}").all() and f["span_id"].str.fullmatch("[0-9a-f]{16}").all()
    )
    assert (f["parent_span_id"] == "").sum() == 1  # one root
    assert (f["start"].astype("int64") == f["start_ns"]).all()
    assert np.allclose(f["duration_ms"], (f["end_ns"] - f["start_ns"]) / 1e6)
    assert f["depth"].min() == 0 and (f["depth"] == 0).sum() == 1
    assert set(f["flags"]) <= {257, 769}  # sampled, is-remote known (and, once, remote)
    assert f["position"].str.fullmatch(r"\d+/\d+/\d+").all() and f["position"].is_unique
    # the very frame of the CLI's `tracegroup spans` (without details): one builder
    pd.testing.assert_frame_equal(f, tg.spans_frame(hotrod.table, details=False))
    pd.testing.assert_frame_equal(f, tg.spans_frame(hotrod.table, details_=False))  # the former name


def test_spans_with_details(hotrod: tg.Explorer) -> None:
    f = hotrod.spans(details=True)
    assert list(f.columns) == list(SPANS) + DETAILS
    pd.testing.assert_frame_equal(f, tg.spans_frame(hotrod.table))
    pd.testing.assert_frame_equal(f[list(SPANS)], hotrod.spans())
    assert {"status_code", "attributes", "resource_attributes", "events", "links"} <= set(f.columns)
    assert all(r["service.name"] == s for r, s in zip(f["resource_attributes"], f["service"], strict=True))


def test_diff_verdicts_and_the_analysis_behind_them(hotrod: tg.Explorer) -> None:
    d = hotrod.diff()
    assert dtypes(d) == list(DIFF.items())
    assert d["verdict"].value_counts().to_dict() == {
        "ok": 25,
        "merged": 15,
        "split": 0,
        "orphaned": 0,
        "dropped": 0,
    }
    assert list(d["verdict"].cat.categories) == ["ok", "split", "merged", "orphaned", "dropped"]
    merged = d[d["verdict"] == "merged"]
    assert set(merged["service"].astype(str)) == {"redis-manual", "mysql"}
    assert (merged["transaction"] != merged["compared_transaction"]).all()
    # the memoized Analysis is the one the frame came from, reachable with the same options
    an = hotrod.analyze(reference="service", compare="sentryexporter")
    assert an is hotrod.analyze() and an is hotrod.analyze(compare="sentryexporter")
    # the CLI's `tracegroup spans` frame of that analysis is this very frame
    pd.testing.assert_frame_equal(d, tg.spans_frame(hotrod.table, an, details=False), check_flags=False)
    assert (an.diff.verdict == d["verdict"].cat.codes.to_numpy()).all()
    assert d.attrs["options"]["compare"] == "sentryexporter"
    # other options give another analysis
    routed = hotrod.diff(routes="service")
    assert (routed["verdict"] == "dropped").sum() == 15
    assert hotrod.analyze(routes="service") is not an
    with pytest.raises(TypeError, match="unknown analysis option"):
        hotrod.diff(batchs="trace")


def test_transactions_both_ways(hotrod: tg.Explorer) -> None:
    ref = hotrod.transactions()
    assert dtypes(ref) == list(TRANSACTIONS.items())
    assert len(ref) == 28 and ref["spans"].sum() == 40 and ref["intact"].sum() == 11
    assert (ref["services"] == 1).all()  # the correct grouping never mixes services
    assert (ref["transaction"].isin(hotrod.diff()["transaction"])).all()
    redis = ref[ref["service"] == "redis-manual"]
    assert len(redis) == 14 and (~redis["intact"]).all() and (redis["reason"] == "other_service").all()
    cmp = hotrod.transactions("sentryexporter")
    assert dtypes(cmp) == list(TRANSACTIONS.items())
    assert len(cmp) == 13 and cmp["spans"].sum() == 40
    driver = cmp[cmp["service"] == "driver"].iloc[0]
    assert driver["spans"] == 15 and driver["services"] == 2 and driver["counterparts"] == 15
    assert not driver["intact"] and driver["reason"] == "server_kind"
    assert cmp["intact"].sum() == 11  # intact is symmetric: the same 11 transactions either way


def test_traces_worst_first() -> None:
    t = tg.Explorer.load([POLYGLOT])
    f = t.traces()
    assert dtypes(f) == list(TRACES.items())
    assert len(f) == t.table.n_traces and f["spans"].sum() == len(t.table)
    assert (f["not_ok"].diff().dropna() <= 0).all()
    summary = t.analyze().summary()
    assert f["trace_id"].tolist()[: len(summary["worst_traces"])] == [
        w["trace_id"] for w in summary["worst_traces"]
    ]
    assert f["head"].tolist()[: len(summary["worst_traces"])] == [w["head"] for w in summary["worst_traces"]]
    assert f["head"].iloc[0].startswith("reports: ") and f["head"].iloc[0].endswith(
        ")"
    )  # service: name (KIND, id)
    assert t.worst_trace() == f["trace_id"].iloc[0]


def test_anomalies_one_row_per_span_and_kind() -> None:
    t = tg.Explorer(
        table(
            [
                S(1, service="a", start=100),
                S(2, 1, "a", start=50),  # starts before its parent: clock skew
                S(2, 1, "a", start=150),  # duplicate id in the trace
                S(7, 7, "a"),  # self parent
                S(8, 99, "b"),  # parent not in the dump
            ]
        )
    )
    f = t.anomalies()
    assert dtypes(f) == list(ANOMALIES.items())
    got = sorted(zip(f["kind"].astype(str), f["span_id"], strict=True))
    assert got == [
        ("clock_skew", "0000000000000002"),
        ("duplicate_span_id", "0000000000000002"),
        ("missing_parent", "0000000000000007"),  # a self parent counts as missing too
        ("missing_parent", "0000000000000008"),
        ("self_parent", "0000000000000007"),
    ]
    assert f.loc[f["span_id"] == "0000000000000008", "parent_span_id"].tolist() == ["0000000000000063"]
    assert (f["meaning"] == f["kind"].astype(str).map(tg.tree.ANOMALY_KINDS)).all()
    order = list(tg.tree.ANOMALY_KINDS)
    keys = [(order.index(k), r) for k, r in zip(f["kind"].astype(str), f["row"], strict=True)]
    assert keys == sorted(keys)  # kinds in report order, then rows
    assert list(f["kind"].cat.categories) == list(tg.tree.ANOMALY_KINDS)
    assert len(tg.Explorer.load([HOTROD]).anomalies()) == 0


def test_trace_lookup_by_hex_in_any_form(hotrod: tg.Explorer) -> None:
    tid = hotrod.table.trace_hex[0]
    for form in (tid, tid.upper(), "0x" + tid, f"  {tid}\n"):
        assert hotrod.trace(form).trace_id == tid
    dsb = tg.Explorer.load([DSB])
    short = dsb.table.trace_hex[3][16:]
    assert dsb.table.trace_hex[3] == "0" * 16 + short  # 64-bit ids are left-padded at load
    assert dsb.trace(short.upper()).trace_id == dsb.table.trace_hex[3]
    with pytest.raises(ValueError, match="16 or 32 hex"):
        hotrod.trace("xyz")
    with pytest.raises(ValueError):
        hotrod.trace(tid[:20])
    with pytest.raises(KeyError, match="not in the dump"):
        hotrod.trace("f" * 32)


def test_trace_view_tree_order_graph_and_text(hotrod: tg.Explorer) -> None:
    v = hotrod.trace(hotrod.table.trace_hex[0])
    f = v.spans
    assert dtypes(f) == list(DIFF.items()) and len(v) == 40 and f.index.name == "row"
    pos = {s: k for k, s in enumerate(f["span_id"])}
    for sid, parent, depth in zip(f["span_id"], f["parent_span_id"], f["depth"], strict=True):
        if parent:  # depth first: every parent listed before its children, one level up
            assert pos[parent] < pos[sid] and f["depth"].iloc[pos[parent]] == depth - 1
    assert f["name"].iloc[0] == "GET /dispatch" and f["depth"].iloc[0] == 0
    g = v.graph
    assert g.number_of_nodes() == 40 and g.number_of_edges() == 39
    assert g.graph["trace_id"] == v.trace_id and g.graph["compare"] == "sentryexporter"
    merged = [n for n, d in g.nodes(data=True) if d["verdict"] == "merged"]
    assert len(merged) == 15
    text = v.text(collapse=0)
    assert text.splitlines()[0] == f"trace {v.trace_id}: 40 spans, 6 services, 1 batch, 1 exporter call"
    assert "service: 28 transactions; sentryexporter: 13 transactions" in text
    line = next(x for x in text.splitlines() if x.lstrip().startswith("SQL SELECT"))
    assert "mysql" in line and line.split()[-2:] == ["merged", "joined"] and line.count("*") == 1
    assert "not shown" not in text
    cut = v.lines(max_spans=10, collapse=0)
    assert cut[-1].startswith("... 30 spans of 40 not shown: 30 beyond --max-spans 10") and "ok" in cut[-1]
    assert hotrod.show(v.trace_id, collapse=0) == text
    assert hotrod.show(v.trace_id, max_spans=10, collapse=0) == "\n".join(cut) + "\n"
    assert v.facts()["transactions"] == 28 and v.facts()["exporter_calls"] == 1
    records = v.records()
    assert len(records["spans"]) == 40 and records["trace"] == v.facts()


def test_trace_view_of_a_100k_deep_trace_is_iterative() -> None:
    n = 100_000
    t = tg.Explorer(
        table(
            [
                S(i + 1, i or None, "a" if i < n // 2 else "b", start=1_000 + i, end=10**9 - i)
                for i in range(n)
            ]
        )
    )
    v = t.trace("1".rjust(32, "0"))
    assert v.depth.tolist() == list(range(n))
    lines = v.lines(max_spans=MAX_INDENT + 3)
    deep = [x for x in lines if "[" in x.split("  ")[-1] or x.lstrip().startswith("[")]
    assert deep and deep[0].lstrip().startswith(f"[{MAX_INDENT + 1}] span-")
    assert "service: 2 transactions" in lines[1]


def test_corrected_grouping_of_one_trace(hotrod: tg.Explorer) -> None:
    f = hotrod.corrected(hotrod.table.trace_hex[0])
    assert len(f) == 40 and f["transaction"].nunique() == 28
    # each transaction's rows are contiguous, its root first
    runs = (f["transaction"] != f["transaction"].shift()).sum()
    assert runs == 28
    firsts = f.groupby("transaction", sort=False).head(1)
    assert (firsts["span_id"] == firsts["transaction"]).all()


def test_analysis_options_are_analyzes_and_reference_and_compare(hotrod: tg.Explorer) -> None:
    params = inspect.signature(tg.analyze).parameters
    defaults = {
        k: p.default for k, p in params.items() if k not in ("table", "forest") and p.kind != p.VAR_KEYWORD
    }
    assert defaults == explore.ANALYSIS_DEFAULTS
    assert set(explore.AnalysisOptions.__annotations__) == set(explore.ANALYSIS_DEFAULTS)
    # reference= and compare=, by keyword or in place, in every method; compared= is no option
    tid = hotrod.table.trace_hex[0]
    a = hotrod.diff("service", "span-kind").attrs["options"]["compare"]
    b = hotrod.diff(compare="span-kind").attrs["options"]["compare"]
    assert a == b == "span-kind"
    assert hotrod.trace(tid, compare="span-kind").analysis is hotrod.trace(tid, "span-kind").analysis
    assert hotrod.traces(compare="span-kind").attrs["options"]["compare"] == "span-kind"
    for method in (hotrod.diff, hotrod.traces, hotrod.analyze, hotrod.transactions):
        with pytest.raises(TypeError, match="unknown analysis option"):
            method(compared="span-kind")
    with pytest.raises(TypeError, match="unknown analysis option"):
        hotrod.trace(tid, compared="span-kind")
    # the former option names still work for one release, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="routing= is deprecated, use routes="):
        assert hotrod.analyze(routing="service") is hotrod.analyze(routes="service")
    with pytest.warns(DeprecationWarning, match="batching= is deprecated, use batches="):
        assert hotrod.diff(batching="all").attrs["options"]["batches"] == "all"
    with pytest.raises(TypeError, match="give only routes="):
        hotrod.analyze(routing="service", routes="none")
    # ... and in tracegroup.analyze itself
    with pytest.warns(DeprecationWarning, match="routing= is deprecated"):
        old = tg.analyze(hotrod.table, routing="service", batches="trace")
    assert old.options == tg.analyze(hotrod.table, routes="service", batches="trace").options
    assert (old.options["routes"], old.options["batches"]) == ("service", "trace")
    with pytest.warns(DeprecationWarning, match="batching= is deprecated"):
        assert tg.analyze(hotrod.table, batching="all").options["batches"] == "all"
    with pytest.raises(TypeError, match="unexpected keyword argument 'compared'"):
        tg.analyze(hotrod.table, compared="span-kind")
    with pytest.raises(TypeError, match="give each option once"):
        tg.analyze(hotrod.table, routing="service", routes="service")
    # an Explorer never touches its table: two Explorers of one table keep their own memo
    other = tg.Explorer(hotrod.table)
    assert other.analyze() is not hotrod.analyze() and not hasattr(hotrod.table, "_tracegroup_explore_cache")
    assert repr(other) == "Explorer(40 spans, 1 trace, 6 services)"
