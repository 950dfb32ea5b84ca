"""Ports of the grouping tests of the collector-contrib Sentry exporter's Go test suite.

Source: open-telemetry/opentelemetry-collector-contrib, ``exporter/sentryexporter/sentry_exporter_test.go``.
The code emulated is ``sentry_exporter.go`` at commit c87eb2d72377878d31559a21093b0b5ce2a36c56; the search
index holds the test file at 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (the pdata/ptrace era, with
``spanIsTransaction``), which is the version read for these ports. Its grouping tests are the same as in the
2021 version (05a78fe7fa39263bf93082dd674525677feb57af), except for ``environment`` arguments.

The Go tests call ``classifyAsOrphanSpans`` and ``generateTransactions`` on hand-made maps. Here every case is
turned into a real OTLP batch whose walk by ``pushTraceData`` reaches the same state: spans the Go test hands
to ``classifyAsOrphanSpans`` are put *before* the roots of the call, so the first pass holds exactly those
spans and the id map seen by the retry passes holds exactly the Go test's roots.

Go fixture spans (one trace, d6c4f03650bd47699ec65c84352b6208)::

    rootSpan1 <- childSpan1 <- childChildSpan1
    rootSpan1 <- childSpan2
    rootSpan2 <- root2childSpan
    orphanSpan1 (parent 1930bb5cc45c4003, not in the data)

``rootSpan1`` is an ``http.server`` span (SERVER, no parent), ``rootSpan2`` a ``pageload`` (CLIENT, no
parent). The children carry a ``span_kind: server`` *tag* in the Go fixtures, but ``classifyAsOrphanSpans``
takes them as non-transaction spans (in ``pushTraceData`` only non-transaction spans are ever held), so they
are INTERNAL here.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders import KINDS, S, table
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup import Analysis, analyze
from tracegroup.grouping import Reason
from tracegroup.load import table_from_messages
from tracegroup.model import SpanTable

TRACE = 0xD6C4F03650BD47699EC65C84352B6208
OTHER_TRACE = 0x1915F8AA35FF8FBEBBFEEDB9D7E07216

ROOT1 = 0x1CC4B26AB9094EF0
CHILD1 = 0x93BA92DB3FA24752
CHILD_CHILD1 = 0x1FA8913EC3814D34
CHILD2 = 0x34EFCDE268684BB0
ORPHAN1 = 0x6241111811384FAE
ORPHAN1_PARENT = 0x1930BB5CC45C4003
ROOT2 = 0x4C7F56556FFE4E4A
ROOT2_CHILD = 0x7FF3C8DAF8184FEE
UNRELATED_ROOT = 0xCC55AC735F0170AC

root_span1 = S(ROOT1, None, "api", "SERVER", TRACE, 5, 10, name="/api/users/{user_id}")
child_span1 = S(
    CHILD1, ROOT1, "api", "INTERNAL", TRACE, 5, 7, name='SELECT * FROM user WHERE "user"."id" = {id}'
)
child_child_span1 = S(CHILD_CHILD1, CHILD1, "api", "INTERNAL", TRACE, 6, 7, name="DB locked")
child_span2 = S(CHILD2, ROOT1, "api", "INTERNAL", TRACE, 7, 10, name="Serialize stuff")
orphan_span1 = S(ORPHAN1, ORPHAN1_PARENT, "api", "INTERNAL", TRACE, 3, 6, name="A random span")
root_span2 = S(ROOT2, None, "api", "CLIENT", TRACE, 0, 5, name="Navigating to fancy website")
root2_child_span = S(ROOT2_CHILD, ROOT2, "api", "INTERNAL", TRACE, 4, 5, name="<FancyReactComponent />")
# Not in the Go fixtures: a transaction of another trace, so that a call holds a transaction at all.
unrelated_root = S(UNRELATED_ROOT, None, "api", "SERVER", OTHER_TRACE, 1, 2)


def roots(t: SpanTable, root: np.ndarray) -> dict[int, int | None]:
    """span id -> root span id (None: not sent); span ids are unique in every table of this file."""
    return {int(t.span_id[i]): None if r < 0 else int(t.span_id[r]) for i, r in enumerate(root.tolist())}


def reasons(t: SpanTable, reason: np.ndarray) -> dict[int, Reason]:
    return {int(t.span_id[i]): Reason(r) for i, r in enumerate(reason.tolist())}


def orphans(t: SpanTable, an: Analysis) -> list[int]:
    """Span ids of the one-span ORPHAN transactions, in input order (Go's ``orphanSpans``)."""
    g = an.compared
    return [int(t.span_id[i]) for i in range(len(t)) if g.reason[i] == Reason.ORPHAN and g.root[i] == i]


def transactions(t: SpanTable, an: Analysis) -> dict[int, set[int]]:
    """Root span id -> span ids of the transaction (Go's ``transactionMap`` plus orphan transactions)."""
    out: dict[int, set[int]] = {}
    for sid, root in roots(t, an.compared.root).items():
        if root is not None:
            out.setdefault(root, set()).add(sid)
    return out


# ------------------------------------------------------------------------------ TestClassifyOrphanSpans


def test_classify_orphan_spans_with_no_root_spans_sends_nothing() -> None:
    # Go: TestClassifyOrphanSpans / "with no root spans", exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7).
    # The Go case seeds empty maps and expects both spans back as orphans. pushTraceData itself never gets
    # there: with an empty transactionMap it returns before classifyAsOrphanSpans, sending nothing.
    t = table([child_span1, child_span2])
    an = analyze(t, batches="captured")
    assert roots(t, an.compared.root) == {CHILD1: None, CHILD2: None}
    assert set(reasons(t, an.compared.reason).values()) == {Reason.DROPPED_NO_ROOT}
    assert an.summary()["compared"]["sentry_events"] == 0


def test_classify_orphan_spans_with_no_root_spans_in_a_call_with_a_transaction() -> None:
    # Go: TestClassifyOrphanSpans / "with no root spans", exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7).
    # The id map holds nothing the two spans can attach to: assert.Len(orphanSpans, 2). A transaction of
    # another trace keeps the call alive so that the classification runs.
    t = table([child_span1, child_span2, unrelated_root])
    an = analyze(t, batches="captured")
    assert orphans(t, an) == [CHILD1, CHILD2]
    assert roots(t, an.compared.root) == {CHILD1: CHILD1, CHILD2: CHILD2, UNRELATED_ROOT: UNRELATED_ROOT}


def test_classify_orphan_spans_with_no_remaining_orphans() -> None:
    # Go: TestClassifyOrphanSpans / "with no remaining orphans",
    # exporter/sentryexporter/sentry_exporter_test.go @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95
    # (emulating sentry_exporter.go @ c87eb2d7).
    # idMap {rootSpan1}, spans (childChildSpan1, childSpan1, childSpan2): childChildSpan1 needs a second
    # pass (its parent attaches after it in the first one); assert.Len(orphanSpans, 0).
    t = table([child_child_span1, child_span1, child_span2, root_span1])
    an = analyze(t, batches="captured")
    assert orphans(t, an) == []
    assert transactions(t, an) == {ROOT1: {ROOT1, CHILD1, CHILD_CHILD1, CHILD2}}
    assert reasons(t, an.compared.reason) == {
        CHILD_CHILD1: Reason.JOINED,
        CHILD1: Reason.JOINED,
        CHILD2: Reason.JOINED,
        ROOT1: Reason.NO_PARENT,
    }


def test_classify_orphan_spans_with_some_remaining_orphans() -> None:
    # Go: TestClassifyOrphanSpans / "with some remaining orphans",
    # exporter/sentryexporter/sentry_exporter_test.go @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95
    # (emulating sentry_exporter.go @ c87eb2d7).
    # Same as above plus orphanSpan1, whose parent is not in the data:
    # assert.Len(orphanSpans, 1); assert.Equal(orphanSpan1, orphanSpans[0]).
    t = table([child_child_span1, child_span1, child_span2, orphan_span1, root_span1])
    an = analyze(t, batches="captured")
    assert orphans(t, an) == [ORPHAN1]
    assert transactions(t, an) == {ROOT1: {ROOT1, CHILD1, CHILD_CHILD1, CHILD2}, ORPHAN1: {ORPHAN1}}


def test_classify_orphan_spans_with_multiple_roots() -> None:
    # Go: TestClassifyOrphanSpans / "with multiple roots", exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7).
    # idMap {rootSpan1, rootSpan2}, spans (childChildSpan1, childSpan1, root2childSpan, childSpan2):
    # assert.Len(orphanSpans, 0).
    t = table([child_child_span1, child_span1, root2_child_span, child_span2, root_span1, root_span2])
    an = analyze(t, batches="captured")
    assert orphans(t, an) == []
    assert transactions(t, an) == {
        ROOT1: {ROOT1, CHILD1, CHILD_CHILD1, CHILD2},
        ROOT2: {ROOT2, ROOT2_CHILD},
    }
    # Two transactions in one call: nothing is split, so the service grouping agrees span for span.
    assert an.diff.counts() == {"ok": 6, "split": 0, "merged": 0, "orphaned": 0, "dropped": 0}


# ------------------------------------------------------------------------------ TestGenerateTransactions


def test_generate_transactions_one_event_per_transaction_and_per_orphan() -> None:
    # Go: TestGenerateTransactions, exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7).
    # generateTransactions(transactionMap{rootSpan1, rootSpan2}, orphans{orphanSpan1, childSpan1}) gives
    # 4 events. That state is not reachable in one pushTraceData call (childSpan1 would attach to rootSpan1,
    # the maps being keyed by span id), so the port spreads it over two exporter calls: rootSpan1 with
    # orphanSpan1, and rootSpan2 with childSpan1, whose parent is then in the other call.
    t = table([root_span1, orphan_span1], [root_span2, child_span1])
    an = analyze(t, batches="captured")
    assert transactions(t, an) == {ROOT1: {ROOT1}, ORPHAN1: {ORPHAN1}, ROOT2: {ROOT2}, CHILD1: {CHILD1}}
    assert orphans(t, an) == [ORPHAN1, CHILD1]
    summary = an.summary()["compared"]
    assert summary["sentry_events"] == 4
    assert summary["one_span_transactions"] == 4
    assert summary["exporter_calls"] == 2


def test_generate_transactions_in_one_call_child_joins_its_root() -> None:
    # Go: TestGenerateTransactions, exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7).
    # Counterpart of the case above in a single call: childSpan1 joins rootSpan1, so 3 events, not 4.
    t = table([root_span1, root_span2, orphan_span1, child_span1])
    an = analyze(t, batches="captured")
    assert transactions(t, an) == {ROOT1: {ROOT1, CHILD1}, ROOT2: {ROOT2}, ORPHAN1: {ORPHAN1}}
    assert an.summary()["compared"]["sentry_events"] == 3


# ------------------------------------------------------------------------------ TestPushTraceData


def _traces(shape: str) -> bytes:
    td = TracesData()
    if shape != "no resources":
        rs = td.resource_spans.add()
        if shape != "no libraries":
            ss = rs.scope_spans.add()
            if shape == "full trace":
                ss.spans.add()  # ptrace.NewTraces()...Spans().AppendEmpty(): every field empty
    return td.SerializeToString()


@pytest.mark.parametrize(
    ("shape", "called"),
    [("no resources", False), ("no libraries", False), ("no spans", False), ("full trace", True)],
)
def test_push_trace_data(shape: str, called: bool) -> None:
    # Go: TestPushTraceData, exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7).
    # Cases "with no resources" / "with no libraries" / "with no spans" / "with full trace": the transport
    # is called only for the last one. Its one span is empty: no parent id, so spanIsTransaction is true and
    # it is sent as a transaction of its own.
    t = table_from_messages([_traces(shape)])
    an = analyze(t, batches="captured")
    events = an.summary()["compared"]["sentry_events"]
    assert (events > 0) is called
    if called:
        assert len(t) == 1
        assert an.compared.root.tolist() == [0]
        assert an.compared.reason.tolist() == [Reason.NO_PARENT]
        assert an.delivery.n_calls == 1
    else:
        assert len(t) == 0
        assert an.delivery.n_calls == 0
        assert events == 0


# ------------------------------------------------------------------------------ spanIsTransaction


def test_span_is_transaction_root_span_with_invalid_parent_span_id() -> None:
    # Go: TestSpanToSentrySpan / "with root span and invalid parent span_id",
    # exporter/sentryexporter/sentry_exporter_test.go @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95
    # (emulating sentry_exporter.go @ c87eb2d7): a ptrace.NewSpan() (kind UNSPECIFIED) with an empty
    # parent span id: assert.True(spanIsTransaction(testSpan)).
    t = table([S(0x0102030405060708, None, "svc", "UNSPECIFIED", 0x01020304050607080807060504030201)])
    an = analyze(t, batches="captured")
    assert an.compared.root.tolist() == [0]
    assert an.compared.reason.tolist() == [Reason.NO_PARENT]


def test_span_is_transaction_full_client_span_is_not() -> None:
    # Go: TestSpanToSentrySpan / "with full span", exporter/sentryexporter/sentry_exporter_test.go
    # @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95 (emulating sentry_exporter.go @ c87eb2d7): a CLIENT span
    # with parent 0807060504030201: assert.False(spanIsTransaction(testSpan)). Alone in a call it opens no
    # transaction, so the call sends nothing.
    span = S(0x0102030405060708, 0x0807060504030201, "svc", "CLIENT", 0x01020304050607080807060504030201, 123)
    t = table([span])
    an = analyze(t, batches="captured")
    assert an.compared.root.tolist() == [-1]
    assert an.compared.reason.tolist() == [Reason.DROPPED_NO_ROOT]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("has_parent", [False, True])
def test_span_is_transaction_by_kind_and_parent(kind: str, has_parent: bool) -> None:
    # Go: spanIsTransaction in exporter/sentryexporter/sentry_exporter.go @ c87eb2d7, exercised by
    # TestSpanToSentrySpan in sentry_exporter_test.go @ 8d28b91237dc0022d3f99cad1949f4c67e5bdb95:
    # ParentSpanID() == empty || kind == SERVER || kind == CONSUMER. A lone span in a call is sent exactly
    # when it is a transaction.
    t = table([S(7, 9 if has_parent else None, "svc", kind)])
    an = analyze(t, batches="captured")
    expected = {(False, k): Reason.NO_PARENT for k in KINDS} | {
        (True, "SERVER"): Reason.SERVER_KIND,
        (True, "CONSUMER"): Reason.CONSUMER_KIND,
    }
    want = expected.get((has_parent, kind), Reason.DROPPED_NO_ROOT)
    assert an.compared.reason.tolist() == [want]
    assert an.compared.root.tolist() == [-1 if want == Reason.DROPPED_NO_ROOT else 0]
