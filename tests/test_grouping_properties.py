"""Properties of the groupings on random span forests (hypothesis).

Forests: unique span ids, each span's parent among the earlier spans (or none, or an id missing from the
dump), services from three, random kinds, random assignment into 1-5 captured batches and random order
inside each batch. Property (e) also draws small id ranges so that span ids collide inside a batch and
across traces, and checks the library's ``sentryexporter`` against a literal Python transcription of the Go
``pushTraceData`` (contrib exporter/sentryexporter/sentry_exporter.go @ c87eb2d7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from builders import S, roots_by_id, table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracegroup import analyze
from tracegroup.diff import VERDICTS
from tracegroup.grouping import Grouping, Reason
from tracegroup.model import SpanTable
from tracegroup.routes import Route, Routes

SERVICES = ("a", "b", "c")
KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
NON_ENTRY_KINDS = ("UNSPECIFIED", "INTERNAL", "CLIENT", "PRODUCER")
MISSING = 2**63  # parent ids at or above this are never span ids of a generated forest

FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Drawn:
    spans: list[S]  # in generation order (parents before children)
    batch_of: list[int]  # batch index of each span
    order: list[int]  # a permutation of span indexes: walk order inside each batch

    def batches(self, batch_of: list[int] | None = None, order: list[int] | None = None) -> list[list[S]]:
        batch_of = self.batch_of if batch_of is None else batch_of
        order = self.order if order is None else order
        out: dict[int, list[S]] = {}
        for i in order:
            out.setdefault(batch_of[i], []).append(self.spans[i])
        return [out[b] for b in sorted(out)]

    def table(self, batch_of: list[int] | None = None, order: list[int] | None = None) -> SpanTable:
        return table(*self.batches(batch_of, order))


@st.composite
def layouts(draw: st.DrawFn, n: int) -> tuple[list[int], list[int]]:
    """A batch assignment into 1-5 batches and a walk order for ``n`` spans."""
    n_batches = draw(st.integers(1, 5))
    batch_of = draw(st.lists(st.integers(0, n_batches - 1), min_size=n, max_size=n))
    order = draw(st.permutations(range(n)))
    return batch_of, list(order)


@st.composite
def forests(draw: st.DrawFn, max_spans: int = 24, entry_server: bool = False) -> Drawn:
    """A random forest with unique span ids.

    ``entry_server``: every service entry span (no parent in the dump, or parent in another service) is
    SERVER and no other span is SERVER or CONSUMER, so no service nests SERVER/CONSUMER spans.
    """
    n = draw(st.integers(1, max_spans))
    ids = draw(st.lists(st.integers(1, MISSING - 1), min_size=n, max_size=n, unique=True))
    spans: list[S] = []
    for i in range(n):
        p = draw(st.integers(-2, i - 1))  # -1: no parent, -2: a parent missing from the dump
        service = draw(st.sampled_from(SERVICES))
        if p >= 0:
            parent: int | None = ids[p]
            trace = spans[p].trace
            entry = spans[p].service != service
        else:
            parent = None if p == -1 else draw(st.integers(MISSING, 2**64 - 1))
            trace = draw(st.integers(1, 3))
            entry = True
        if entry_server:
            kind = "SERVER" if entry else draw(st.sampled_from(NON_ENTRY_KINDS))
        else:
            kind = draw(st.sampled_from(KINDS))
        spans.append(S(ids[i], parent, service, kind, trace=trace))
    batch_of, order = draw(layouts(n))
    return Drawn(spans, batch_of, order)


def reasons_by_id(t: SpanTable, g: Grouping) -> dict[int, int]:
    return {int(t.span_id[i]): int(r) for i, r in enumerate(g.reason)}


# ------------------------------------------------------------------------------ (a) order inside batches


@FAST
@given(forests(), st.data())
def test_span_order_inside_batches_does_not_change_sentryexporter(f: Drawn, data: st.DataObject) -> None:
    other_order = list(data.draw(st.permutations(range(len(f.spans)))))
    t1, t2 = f.table(), f.table(order=other_order)
    for routing in ("none", "service"):
        a1 = analyze(t1, batches="captured", routes=routing)
        a2 = analyze(t2, batches="captured", routes=routing)
        assert roots_by_id(t1, a1.compared.root) == roots_by_id(t2, a2.compared.root)
        assert reasons_by_id(t1, a1.compared) == reasons_by_id(t2, a2.compared)


# ------------------------------------------------------------------------------ (b) service vs batching


@FAST
@given(forests(), st.data())
def test_service_grouping_is_invariant_to_batching(f: Drawn, data: st.DataObject) -> None:
    t = f.table()
    base = analyze(t, batches="captured")
    expected_roots = roots_by_id(t, base.reference.root)
    expected_reasons = reasons_by_id(t, base.reference)
    for batching in ("trace", "all"):
        for routing in ("none", "service"):
            an = analyze(t, batches=batching, routes=routing)
            assert roots_by_id(t, an.reference.root) == expected_roots
    batch_of, order = data.draw(layouts(len(f.spans)))
    t2 = f.table(batch_of, order)
    an2 = analyze(t2, batches="captured")
    assert roots_by_id(t2, an2.reference.root) == expected_roots
    assert reasons_by_id(t2, an2.reference) == expected_reasons
    # The service grouping sends everything, one service per transaction.
    assert (base.reference.root >= 0).all()
    assert (t.service[base.reference.root] == t.service).all()


# ------------------------------------------------------------------------------ (c) accounting


@FAST
@given(
    forests(),
    st.sampled_from(("captured", "trace", "all")),
    st.sampled_from(("none", "service")),
    st.sampled_from(("sentryexporter", "sentryexporter-2021", "span-kind", "remote-parent", "sentry-otlp")),
)
def test_every_span_gets_exactly_one_verdict(f: Drawn, batching: str, routing: str, compare: str) -> None:
    t = f.table()
    n = len(t)
    an = analyze(t, batches=batching, routes=routing, compare=compare)
    a, b, d = an.reference, an.compared, an.diff
    assert d.verdict.shape == (n,)
    assert set(d.verdict.tolist()) <= set(range(len(VERDICTS)))
    counts = d.counts()
    assert sum(counts.values()) == n
    assert counts["dropped"] == int((b.root < 0).sum())
    # ok exactly where the compared root is the reference root.
    assert ((d.verdict == 0) == ((b.root >= 0) & (b.root == a.root))).all()
    # Transaction sizes sum to the sent spans; every root roots itself.
    roots = b.roots()
    assert int(b.sizes()[roots].sum()) == int(b.sent.sum())
    assert (b.root[roots] == roots).all()
    assert int(a.sizes()[a.roots()].sum()) == n
    # The per-transaction table accounts for every span and every lost one.
    tx = d.transactions()
    assert int(tx["spans"].sum()) == n
    assert int(tx["lost"].sum()) == counts["dropped"]
    assert int(tx["not_ok"].sum()) == n - counts["ok"]
    s = an.summary()
    assert s["verdicts"] == counts
    assert s["misgrouped"]["spans"] == counts["split"] + counts["merged"] + counts["orphaned"]
    assert s["compared"]["sentry_events"] == len(roots)
    assert s["transactions"]["total"] == len(a.roots())
    assert sum(c["spans"] for c in s["causes"]) == n - counts["ok"]


# ------------------------------------------------------------------------------ (d) when they agree


@FAST
@given(forests(entry_server=True))
def test_sentryexporter_equals_service_when_entries_are_server_and_nothing_nests(f: Drawn) -> None:
    t = f.table()
    an = analyze(t, batches="all")
    assert an.compared.root.tolist() == an.reference.root.tolist()
    assert an.diff.counts()["ok"] == len(t)
    assert an.summary()["transactions"]["intact"] == len(an.reference.roots())


# ------------------------------------------------------------------------------ (e) the Go algorithm


@dataclass(eq=False)
class Event:
    """Stands for a *sentry.Event transaction: the row of its root span and the rows appended to Spans."""

    root: int
    spans: list[int] = field(default_factory=list)


def go_push_trace_data(call: list[tuple[int, S]], era: str) -> dict[int, tuple[int, Reason]]:
    """One exporter call through Go's pushTraceData, literally: position -> (root position or -1, reason).

    ``call`` is the list of (row, span) in walk order.
    """

    def span_is_transaction(s: S) -> bool:
        if era == "2021":
            return not s.parent
        return not s.parent or s.kind in ("SERVER", "CONSUMER")

    id_map: dict[int, int] = {}  # span id -> root span id
    transaction_map: dict[int, Event] = {}  # root span id -> event
    maybe_orphans: list[tuple[int, S]] = []
    all_events: list[Event] = []
    for row, s in call:
        if span_is_transaction(s):
            event = Event(row)
            all_events.append(event)
            transaction_map[s.span] = event
            id_map[s.span] = s.span
        elif s.parent in id_map:
            root_id = id_map[s.parent]
            id_map[s.span] = root_id
            transaction_map[root_id].spans.append(row)
        else:
            maybe_orphans.append((row, s))

    out: dict[int, tuple[int, Reason]] = {}
    if len(transaction_map) == 0:
        for row, _ in call:
            out[row] = (-1, Reason.DROPPED_NO_ROOT)
        return out

    def classify(orphans: list[tuple[int, S]], prev_length: int) -> list[tuple[int, S]]:
        if len(orphans) == 0 or len(orphans) == prev_length:
            return orphans
        new_orphans = []
        for row, s in orphans:
            if s.parent in id_map:
                root_id = id_map[s.parent]
                id_map[s.span] = root_id
                transaction_map[root_id].spans.append(row)
            else:
                new_orphans.append((row, s))
        return classify(new_orphans, len(orphans))

    orphans = classify(maybe_orphans, len(maybe_orphans) + 1)

    sent = {id(e) for e in transaction_map.values()}
    by_row = dict(call)
    for event in all_events:
        root = event.root
        if id(event) in sent:
            s = by_row[root]
            why = Reason.NO_PARENT if not s.parent else Reason[f"{s.kind}_KIND"]
            out[root] = (root, why)
            for row in event.spans:
                out[row] = (root, Reason.JOINED)
        else:  # replaced in transactionMap by a later transaction with the same root span id
            for row in [root, *event.spans]:
                out[row] = (-1, Reason.DROPPED_OVERWRITTEN)
    for row, _ in orphans:
        out[row] = (row, Reason.ORPHAN)
    return out


def go_reference(batches: list[list[S]], routing: str, era: str) -> list[tuple[int, Reason]]:
    """Every batch split into exporter calls as the routing does it, each call through pushTraceData."""
    out: dict[int, tuple[int, Reason]] = {}
    row = 0
    for b in batches:
        rows = list(range(row, row + len(b)))
        row += len(b)
        exporter_of: dict[int, str | None] = {}
        for r, s in zip(rows, b, strict=True):
            if routing == "none":
                exporter_of[r] = "sentry"
            elif routing == "service":
                exporter_of[r] = s.service
            else:  # routes: a and b share one exporter, c has no route
                exporter_of[r] = None if s.service == "c" else "ab"
        for r in rows:
            if exporter_of[r] is None:
                out[r] = (-1, Reason.DROPPED_UNROUTED)
        for exporter in sorted({e for e in exporter_of.values() if e is not None}):
            call = [(r, s) for r, s in zip(rows, b, strict=True) if exporter_of[r] == exporter]
            out.update(go_push_trace_data(call, era))
    return [out[r] for r in range(row)]


@st.composite
def colliding_batches(draw: st.DrawFn) -> list[list[S]]:
    """1-3 batches of spans with ids from a small range: duplicates inside a batch, across traces."""
    max_id = draw(st.integers(2, 8))
    span = st.builds(
        S,
        span=st.integers(1, max_id),
        parent=st.integers(0, max_id),
        service=st.sampled_from(SERVICES),
        kind=st.sampled_from(KINDS),
        trace=st.integers(1, 3),
    )
    batches = draw(st.lists(st.lists(span, min_size=1, max_size=12), min_size=1, max_size=3))
    return batches


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    colliding_batches(),
    st.sampled_from(("none", "service", "routes")),
    st.sampled_from(("2023", "2021")),
)
def test_sentryexporter_matches_a_literal_go_transcription(
    batches: list[list[S]], routing: str, era: str
) -> None:
    t = table(*batches)
    routes = Routes([Route("ab", ["a", "b"])], None, "routes.toml") if routing == "routes" else routing
    compare = "sentryexporter" if era == "2023" else "sentryexporter-2021"
    an = analyze(t, batches="captured", routes=routes, compare=compare)
    expected = go_reference(batches, routing, era)
    assert an.compared.root.tolist() == [r for r, _ in expected]
    assert [Reason(int(x)) for x in an.compared.reason] == [why for _, why in expected]


def test_literal_go_transcription_sees_duplicates() -> None:
    # Guard for property (e): the transcription itself reproduces the overwrite (later root wins).
    batches = [
        [S(1, None, "a", "SERVER", trace=1), S(2, 1, "a", trace=1), S(1, None, "a", "SERVER", trace=2)]
    ]
    assert go_reference(batches, "none", "2023") == [
        (-1, Reason.DROPPED_OVERWRITTEN),
        (-1, Reason.DROPPED_OVERWRITTEN),
        (2, Reason.NO_PARENT),
    ]
    an = analyze(table(*batches), batches="captured")
    assert an.compared.root.tolist() == [-1, -1, 2]
    assert an.compared.notes["calls_with_duplicate_span_ids"] == 1
    assert np.array_equal(an.compared.sizes(), [0, 0, 1])
