"""What of one trace is drawn (tracegroup.layout): the ``max_spans`` selection rule, collapsing, filters,
placing spans without timestamps, escaping names, the dump's service colours."""

from __future__ import annotations

import numpy as np
import pytest

import tracegroup as tg
from tracegroup import layout
from tracegroup.explore import TraceView
from tracegroup.pipeline import PipelineOptions

HOTROD = "fixtures/external/getTrace-response.json"
HOTROD_TRACE = "2ea75461946a7dd10f2c15ab36a076cb"
POLYGLOT = "fixtures/polyglot.pb"
BIG = "47c657d05b819aa436bd0ff4d36ddb18"


@pytest.fixture(scope="module")
def hotrod() -> TraceView:
    return tg.Explorer.load([HOTROD]).trace(HOTROD_TRACE)


#: Small batches, so the big report job is cut into orphaned and dropped pieces (as captured, every piece
#: after the first exporter call lacks its root and is dropped).
SMALL = {
    "batches": "simulate",
    "pipeline": PipelineOptions(sdk_batch=128, batch_size=256, batch_max_size=256),
}


@pytest.fixture(scope="module")
def big() -> TraceView:
    explorer = tg.Explorer.load([POLYGLOT])
    return explorer.trace(BIG, analysis=explorer.analyze(**SMALL))


def closed(lay: layout.TraceLayout) -> bool:
    """Every drawn row's parent row is drawn, before it, one level up."""
    r = lay.rows
    parent, depth = r["parent"].to_numpy(), r["depth"].to_numpy()
    return all(p < k and depth[p] == depth[k] - 1 for k, p in enumerate(parent.tolist()) if p >= 0)


def test_max_spans_takes_every_bad_span_and_its_path_first(hotrod: TraceView) -> None:
    # 15 merged spans; their ancestors are 5 spans: exactly 20 rows hold them all
    lay = hotrod.layout(20, collapse=0)
    r = lay.rows
    assert len(r) == 20 and closed(lay)
    assert (r["verdict"] == "merged").sum() == 15 and (r["verdict"] == "ok").sum() == 5
    assert lay.left_out == {"spans": 20, "filtered": 0, "max_spans": 20, "verdicts": {"ok": 20}}
    # then spans opening a transaction (either grouping), then the rest in tree order
    more = hotrod.layout(25, collapse=0).rows
    assert (more["verdict"] == "merged").sum() == 15
    new = ~more["span_id"].isin(r["span_id"]).to_numpy()
    opener = (more["opens"] | more["opens_compared"]).to_numpy()
    assert new.sum() == 5 and (new & opener).sum() == 2  # two openers, each with its (ok) parent; one left
    assert not more["opens"].to_numpy()[new & ~opener].any()
    # a budget too small for a whole path keeps no orphan rows: shorter paths are taken instead
    tiny = hotrod.layout(3, collapse=0)
    assert len(tiny.rows) <= 3 and closed(tiny)
    # 0 = everything, in tree order
    every = hotrod.layout(0, collapse=0).rows
    assert every["span_id"].tolist() == hotrod.spans["span_id"].tolist()


def test_max_spans_takes_the_verdicts_in_turn(big: TraceView) -> None:
    lay = big.layout(80, collapse=0)
    r = lay.rows
    assert len(r) == 80 and closed(lay)
    counts = r["verdict"].value_counts()
    assert counts["orphaned"] >= 30 and counts["dropped"] >= 30  # both kinds shown, not one kind only
    assert lay.left_out["spans"] == 1403 - 80
    assert lay.facts["compared_transactions"] == 129 and lay.facts["verdicts"]["dropped"] == 1152


def test_collapse_keeps_every_span_counted(big: TraceView) -> None:
    lay = big.layout()
    r = lay.rows
    assert r["count"].sum() == 1403 and len(r) < 70 and closed(lay)
    # members of a row agree on verdict and exporter call: counts per verdict are the trace's
    assert r.groupby("verdict")["count"].sum().to_dict() == {"dropped": 1152, "ok": 123, "orphaned": 128}
    orphan_rows = r[(r["verdict"] == "orphaned") & (r["count"] > 1)]
    assert (orphan_rows["compared_key"] < -1).all() and orphan_rows["compared_key"].is_unique
    assert set(r.loc[r["verdict"] == "orphaned", "batch"]) == {7}
    assert layout.trace_layout is not None and big.layout(collapse=0, max_spans=0).rows["count"].eq(1).all()


def test_filters_keep_ancestors_as_context(hotrod: TraceView) -> None:
    lay = hotrod.layout(0, collapse=0, service="mysql")
    r = lay.rows
    assert r["service"].tolist()[-1] == "mysql" and r["context"].tolist() == [True] * 3 + [False]
    assert lay.left_out["filtered"] == 36
    with pytest.raises(ValueError, match="unknown verdict"):
        hotrod.layout(verdict="bad")


def test_placed_times_and_escape() -> None:
    start = np.array([100, 0, 0, 150])
    end = np.array([200, 0, 0, 160])
    parent = np.array([-1, 0, 1, 0])
    s, e, missing = layout.placed_times(start, end, parent)
    assert s.tolist() == [100, 100, 100, 150] and e.tolist() == [200, 100, 100, 160]
    assert missing.tolist() == [False, True, True, False]
    assert layout.escape("a\nb\x1b[31m\u200b") == "a\\nb\\x1b[31m\\u200b"
    assert layout.escape("plain name") == "plain name"
