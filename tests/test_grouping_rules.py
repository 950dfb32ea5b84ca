"""Grouping rules one by one on hand-built traces: exact roots, reasons and verdicts.

Rules: docs/exporter.md (the collector Sentry exporter, Go ``pushTraceData`` at
contrib c87eb2d7) and the docstrings of ``tracegroup.grouping.*``, ``tracegroup.batching`` and
``tracegroup.diff``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import S, roots_by_id, table

from tracegroup import analyze, tree
from tracegroup.analysis import Analysis
from tracegroup.diff import VERDICTS
from tracegroup.grouping import Grouping, Reason
from tracegroup.load import LoadError
from tracegroup.model import SpanTable
from tracegroup.routes import Route, Routes, load_routes

R = Reason


def reasons(t: SpanTable, g: Grouping) -> dict[int, Reason]:
    """span id -> Reason (span ids unique in the table)."""
    return {int(t.span_id[i]): Reason(int(r)) for i, r in enumerate(g.reason)}


def verdicts(an: Analysis) -> dict[int, str]:
    """span id -> verdict name (span ids unique in the table)."""
    return {int(an.table.span_id[i]): VERDICTS[v] for i, v in enumerate(an.diff.verdict)}


# ------------------------------------------------------------------------------ nested SERVER spans


def nested_server() -> SpanTable:
    return table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a"),
            S(3, 2, "a", "SERVER"),  # nested SERVER in the same service
            S(4, 3, "a"),
            S(5, 4, "a", "CLIENT"),
        ]
    )


def test_nested_server_spans_split_under_sentryexporter_one_transaction_under_service() -> None:
    t = nested_server()
    an = analyze(t, batches="captured", routes="none")
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 3}
    assert reasons(t, an.reference) == {1: R.NO_PARENT, 2: R.JOINED, 3: R.JOINED, 4: R.JOINED, 5: R.JOINED}
    assert reasons(t, an.compared) == {
        1: R.NO_PARENT,
        2: R.JOINED,
        3: R.SERVER_KIND,
        4: R.JOINED,
        5: R.JOINED,
    }
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "split", 4: "split", 5: "split"}
    assert an.diff.blamed.tolist() == [False, False, True, True, True]


def test_nested_server_span_without_children_is_orphaned() -> None:
    # A nested SERVER span with nothing under it becomes a one-span transaction: the verdict is "orphaned"
    # (sent alone although not a root under the reference), the cause names its SERVER kind.
    t = table([S(1, None, "a", "SERVER"), S(2, 1, "a", "SERVER")])
    an = analyze(t, batches="captured")
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 2}
    assert verdicts(an) == {1: "ok", 2: "orphaned"}
    assert an.diff.causes()["cause"].tolist() == [
        "SERVER span opened its own one-span transaction (server_kind)"
    ]


# ------------------------------------------------------------------------------ INTERNAL entry span


def internal_entry() -> SpanTable:
    return table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "b", "INTERNAL"),  # entry span of service b is not SERVER/CONSUMER
            S(4, 3, "b", "CLIENT"),
        ]
    )


def test_internal_entry_span_merged_without_routing() -> None:
    t = internal_entry()
    an = analyze(t, batches="captured", routes="none")
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 3: 3, 4: 3}
    assert reasons(t, an.reference) == {1: R.NO_PARENT, 2: R.JOINED, 3: R.OTHER_SERVICE, 4: R.JOINED}
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "merged", 4: "merged"}
    assert an.delivery.n_calls == 1


def test_internal_entry_span_whole_part_dropped_with_service_routing() -> None:
    t = internal_entry()
    an = analyze(t, batches="captured", routes="service")
    assert an.delivery.n_calls == 2
    assert an.delivery.exporters == ["a", "b"]
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: None, 4: None}
    assert reasons(t, an.compared) == {
        1: R.NO_PARENT,
        2: R.JOINED,
        3: R.DROPPED_NO_ROOT,
        4: R.DROPPED_NO_ROOT,
    }
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "dropped", 4: "dropped"}
    # The reference does not depend on routing.
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 3: 3, 4: 3}


# ------------------------------------------------------------------------------ batch cuts


def cut_trace() -> SpanTable:
    return table(
        [S(1, None, "a", "SERVER"), S(2, 1, "a"), S(3, 2, "a")],
        # Parents of 4 are in the first batch; 10 (another trace) makes the call send.
        [S(4, 3, "a"), S(5, 4, "a"), S(6, 5, "a"), S(10, None, "a", "SERVER", trace=2)],
        [S(7, 1, "a")],  # no root in this call at all
    )


def test_trace_cut_across_captured_batches_orphans_and_drops() -> None:
    t = cut_trace()
    an = analyze(t, batches="captured")
    assert an.delivery.n_calls == 3
    # Every span under the missing root is sent separately: 5 and 6 do not attach to the orphan 4.
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 1, 4: 4, 5: 5, 6: 6, 10: 10, 7: None}
    assert reasons(t, an.compared) == {
        1: R.NO_PARENT,
        2: R.JOINED,
        3: R.JOINED,
        4: R.ORPHAN,
        5: R.ORPHAN,
        6: R.ORPHAN,
        10: R.NO_PARENT,
        7: R.DROPPED_NO_ROOT,
    }
    assert verdicts(an) == {
        1: "ok",
        2: "ok",
        3: "ok",
        4: "orphaned",
        5: "orphaned",
        6: "orphaned",
        10: "ok",
        7: "dropped",
    }
    assert an.summary()["compared"]["one_span_transactions"] == 4  # 4, 5, 6 and the lone root 10


def test_trace_batching_heals_the_cut() -> None:
    t = cut_trace()
    an = analyze(t, batches="trace")
    assert an.delivery.n_calls == 2
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 10: 10, 7: 1}
    assert an.diff.counts() == {"ok": 8, "split": 0, "merged": 0, "orphaned": 0, "dropped": 0}


def test_no_state_survives_between_calls() -> None:
    # The same trace in two calls: the second call's child does not find its parent.
    t = table([S(1, None, "a", "SERVER")], [S(2, 1, "a", "SERVER"), S(3, 1, "a")])
    an = analyze(t, batches="captured")
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 2, 3: 3}
    assert reasons(t, an.compared)[3] == R.ORPHAN


# ------------------------------------------------------------------------------ PRODUCER -> CONSUMER


def test_consumer_child_of_producer_in_another_service() -> None:
    t = table(
        [S(1, None, "a", "SERVER"), S(2, 1, "a", "PRODUCER"), S(3, 2, "b", "CONSUMER"), S(4, 3, "b")],
    )
    an = analyze(t, batches="captured")
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 3: 3, 4: 3}
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3}
    assert reasons(t, an.reference)[3] == R.OTHER_SERVICE
    assert reasons(t, an.compared)[3] == R.CONSUMER_KIND
    assert set(verdicts(an).values()) == {"ok"}


def test_consumer_child_of_producer_in_the_same_service() -> None:
    t = table(
        [S(1, None, "a", "SERVER"), S(2, 1, "a", "PRODUCER"), S(3, 2, "a", "CONSUMER"), S(4, 3, "a")],
    )
    an = analyze(t, batches="captured")
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3}
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "split", 4: "split"}
    assert an.diff.causes()[["verdict", "cause", "service", "spans"]].to_dict("records") == [
        {
            "verdict": "split",
            "cause": "nested CONSUMER spans in a opened their own transactions",
            "service": "a",
            "spans": 2,
        }
    ]


# ------------------------------------------------------------------------------ incomplete transactions


def test_missing_parent_makes_the_service_transaction_incomplete() -> None:
    t = table(
        # Trace 1: its entry span's parent 99 is not in the dump, and the call has no root: dropped.
        [S(1, 99, "a"), S(2, 1, "a")],
        # Trace 2: a complete transaction, and a part under missing parent 97 cut into orphans.
        [
            S(10, None, "a", "SERVER", trace=2),
            S(11, 10, "a", trace=2),
            S(13, 97, "a", trace=2),
            S(14, 13, "a", trace=2),
        ],
    )
    an = analyze(t, batches="captured")
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 10: 10, 11: 10, 13: 13, 14: 13}
    assert reasons(t, an.reference) == {
        1: R.MISSING_PARENT,
        2: R.JOINED,
        10: R.NO_PARENT,
        11: R.JOINED,
        13: R.MISSING_PARENT,
        14: R.JOINED,
    }
    assert an.reference.incomplete().tolist() == [True, True, False, False, True, True]
    assert an.diff.incomplete.tolist() == [True, True, False, False, True, True]
    assert roots_by_id(t, an.compared.root) == {1: None, 2: None, 10: 10, 11: 10, 13: 13, 14: 14}
    assert verdicts(an) == {1: "dropped", 2: "dropped", 10: "ok", 11: "ok", 13: "ok", 14: "orphaned"}
    # Not the exporter's fault: nothing is blamed, the three bad spans count as in incomplete transactions.
    assert an.diff.blamed.tolist() == [False] * 6
    s = an.summary()
    assert s["in_incomplete_transactions"] == 3
    assert s["blamed"] == {"spans": 0, "ratio": 0.0}
    assert s["reference"]["incomplete_transactions"] == 2
    assert s["anomalies"]["missing_parent"] == 2
    by_service = an.diff.by("service")
    assert by_service.loc[0, "in_incomplete"] == 3
    assert by_service.loc[0, "blamed"] == 0
    assert an.diff.causes()["in_incomplete"].sum() == 3


# ------------------------------------------------------------------------------ duplicate span ids
#
# Go (sentry_exporter.go @ c87eb2d7), per call:
#     if spanIsTransaction(span) { transactionMap[id] = transactionFromSpan(span); idMap[id] = id }
#     else if root, ok := idMap[parent]; ok { idMap[id] = root; transactionMap[root].Spans += span }
#     else { maybeOrphans += span }
# then retry passes over maybeOrphans, then one event per transactionMap entry and per remaining orphan.
# Both maps are keyed by span id only, so two spans with the same id (here: in two traces) share entries.

A_T1 = S(1, None, "a", "SERVER", trace=1)  # root of trace 1, span id 1
A_T2 = S(1, None, "a", "SERVER", trace=2)  # root of trace 2, also span id 1
C_T1 = S(2, 1, "a", trace=1)  # child of trace 1's root
C_T2 = S(3, 1, "a", trace=2)  # child of trace 2's root

DUPLICATE_ROOT_CASES = {
    # rows: A_T1, C_T1, A_T2, C_T2
    #   A_T1: transactionMap[1] = T0, idMap[1] = 1
    #   C_T1: idMap[1] -> 1: idMap[2] = 1, T0.Spans += C_T1
    #   A_T2: transactionMap[1] = T2 (T0 and C_T1 are lost), idMap[1] = 1
    #   C_T2: idMap[1] -> 1: T2.Spans += C_T2
    # -> one event T2 {A_T2, C_T2}; trace 1 dropped.
    "t1_then_t2": (
        [A_T1, C_T1, A_T2, C_T2],
        [-1, -1, 2, 2],
        [R.DROPPED_OVERWRITTEN, R.DROPPED_OVERWRITTEN, R.NO_PARENT, R.JOINED],
        ["dropped", "dropped", "ok", "ok"],
    ),
    # Same spans, trace 2 first: now trace 2 is the one lost.
    "t2_then_t1": (
        [A_T2, C_T2, A_T1, C_T1],
        [-1, -1, 2, 2],
        [R.DROPPED_OVERWRITTEN, R.DROPPED_OVERWRITTEN, R.NO_PARENT, R.JOINED],
        ["dropped", "dropped", "ok", "ok"],
    ),
    # rows: A_T1, A_T2, C_T1, C_T2
    #   A_T1: transactionMap[1] = T0;  A_T2: transactionMap[1] = T1 (T0 lost)
    #   C_T1: idMap[1] -> 1: T1.Spans += C_T1 (trace 1's child lands in trace 2's transaction)
    #   C_T2: T1.Spans += C_T2
    # -> one event T1 {A_T2, C_T1, C_T2}; C_T1 is under another root of its service: split.
    "roots_first": (
        [A_T1, A_T2, C_T1, C_T2],
        [-1, 1, 1, 1],
        [R.DROPPED_OVERWRITTEN, R.NO_PARENT, R.JOINED, R.JOINED],
        ["dropped", "ok", "split", "ok"],
    ),
    # rows: C_T1, A_T1, A_T2, C_T2
    #   C_T1: idMap has no 1 yet: held
    #   A_T1: transactionMap[1] = T1;  A_T2: transactionMap[1] = T2 (T1 lost, it held only A_T1)
    #   C_T2: T2.Spans += C_T2
    #   retry pass: C_T1: idMap[1] -> 1: T2.Spans += C_T1
    # -> one event T2 {A_T2, C_T2, C_T1}.
    "held_child": (
        [C_T1, A_T1, A_T2, C_T2],
        [2, -1, 2, 2],
        [R.JOINED, R.DROPPED_OVERWRITTEN, R.NO_PARENT, R.JOINED],
        ["split", "dropped", "ok", "ok"],
    ),
}


@pytest.mark.parametrize("case", list(DUPLICATE_ROOT_CASES))
def test_duplicate_root_span_id_later_root_replaces_earlier_transaction(case: str) -> None:
    spans, root, reason, verdict = DUPLICATE_ROOT_CASES[case]
    t = table(spans)
    an = analyze(t, batches="captured")
    assert an.compared.root.tolist() == root
    assert [Reason(int(r)) for r in an.compared.reason] == reason
    assert [VERDICTS[v] for v in an.diff.verdict] == verdict
    assert an.compared.notes["calls_with_duplicate_span_ids"] == 1
    # The reference keeps the two traces apart (parents resolve within their trace).
    assert an.reference.root.tolist() == _reference_rows(spans)


def _reference_rows(spans: list[S]) -> list[int]:
    """Row of the trace root of each span (one transaction per trace in these cases)."""
    root_row = {s.trace: i for i, s in enumerate(spans) if s.parent is None}
    return [root_row[s.trace] for s in spans]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # rows: R1, R5, X(2 <- 1), Y(2 <- 5), Z(3 <- 2)
        #   R1: idMap[1] = 1;  R5: idMap[5] = 5
        #   X: idMap[2] = 1 (joins R1);  Y: idMap[2] = 5 (joins R5, overwriting X's entry)
        #   Z: idMap[2] -> 5: joins R5 although its parent in trace 1 is X
        ("xy", [0, 1, 0, 1, 1]),
        # rows: R1, R5, Y, X, Z: X writes idMap[2] last, so Z joins R1.
        ("yx", [0, 1, 1, 0, 0]),
    ],
)
def test_duplicate_non_root_span_id_last_writer_of_the_id_map_wins(order: str, expected: list[int]) -> None:
    r1 = S(1, None, "a", "SERVER", trace=1)
    r5 = S(5, None, "a", "SERVER", trace=2)
    x = S(2, 1, "a", trace=1)
    y = S(2, 5, "a", trace=2)
    z = S(3, 2, "a", trace=1)
    spans = [r1, r5, x, y, z] if order == "xy" else [r1, r5, y, x, z]
    t = table(spans)
    an = analyze(t, batches="captured")
    assert an.compared.root.tolist() == expected
    assert set(an.compared.reason[2:].tolist()) == {R.JOINED}
    z_verdict = VERDICTS[an.diff.verdict[4]]
    assert z_verdict == ("split" if order == "xy" else "ok")


def test_duplicate_span_ids_in_different_calls_do_not_interact() -> None:
    t = table([A_T1, C_T1], [A_T2, C_T2])
    an = analyze(t, batches="captured")
    assert an.compared.root.tolist() == [0, 0, 2, 2]
    assert an.compared.notes["calls_with_duplicate_span_ids"] == 0
    assert an.diff.counts()["ok"] == 4


# ------------------------------------------------------------------------------ the 2021 era


def test_sentryexporter_2021_only_parentless_spans_open_transactions() -> None:
    spans = [
        S(1, None, "a", "SERVER"),
        S(2, 1, "a", "CLIENT"),
        S(3, 2, "b", "SERVER"),
        S(4, 3, "b"),
        S(5, 99, "a", "CONSUMER"),  # parent not in the dump
    ]
    t = table(spans)
    old = analyze(t, batches="captured", compare="sentryexporter-2021")
    assert old.compared.strategy == "sentryexporter-2021"
    assert roots_by_id(t, old.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 5}
    assert reasons(t, old.compared) == {1: R.NO_PARENT, 2: R.JOINED, 3: R.JOINED, 4: R.JOINED, 5: R.ORPHAN}
    assert verdicts(old) == {1: "ok", 2: "ok", 3: "merged", 4: "merged", 5: "ok"}
    new = analyze(t, batches="captured")
    assert roots_by_id(t, new.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 5}
    assert reasons(t, new.compared)[5] == R.CONSUMER_KIND


def test_sentryexporter_2021_call_of_server_spans_with_parents_sends_nothing() -> None:
    t = table([S(3, 2, "b", "SERVER"), S(4, 3, "b")])
    old = analyze(t, batches="captured", compare="sentryexporter-2021")
    assert old.compared.root.tolist() == [-1, -1]
    assert set(old.compared.reason.tolist()) == {R.DROPPED_NO_ROOT}
    new = analyze(t, batches="captured")
    assert new.compared.root.tolist() == [0, 0]


# ------------------------------------------------------------------------------ service+remote boundary


def test_service_plus_remote_boundary_cuts_at_flags_0x300_only() -> None:
    t = table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "a", "SERVER", flags=0x300),  # parent is remote (same service: a self-call)
            S(4, 3, "a"),
            S(5, 4, "a", flags=0x100),  # has-is-remote bit, parent not remote
            S(6, 5, "a", flags=0x200),  # is-remote without has-is-remote: not trusted
        ]
    )
    plain = analyze(t, batches="captured")
    assert plain.reference.strategy == "service"
    assert roots_by_id(t, plain.reference.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
    assert verdicts(plain) == {1: "ok", 2: "ok", 3: "split", 4: "split", 5: "split", 6: "split"}
    remote = analyze(t, batches="captured", boundary="service+remote")
    assert remote.reference.strategy == "service+remote"
    assert roots_by_id(t, remote.reference.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 3, 6: 3}
    assert reasons(t, remote.reference)[3] == R.REMOTE_PARENT
    assert remote.diff.counts() == {"ok": 6, "split": 0, "merged": 0, "orphaned": 0, "dropped": 0}
    assert remote.options["boundary"] == "service+remote"


def test_unknown_boundary_is_rejected() -> None:
    with pytest.raises(ValueError, match="boundary"):
        analyze(nested_server(), boundary="remote")


# ------------------------------------------------------------------------------ whole-trace strategies


def test_span_kind_cuts_at_server_and_consumer_whatever_the_batching() -> None:
    spans = [
        S(1, None, "a", "SERVER"),
        S(2, 1, "a", "CLIENT"),
        S(3, 2, "b", "INTERNAL"),
        S(4, 3, "b", "SERVER"),
        S(5, 4, "b", "CONSUMER"),
        S(6, 5, "b"),
    ]
    expected = {1: 1, 2: 1, 3: 1, 4: 4, 5: 5, 6: 5}
    for t, batching in ((table(spans[:3], spans[3:]), "captured"), (table(spans), "all")):
        an = analyze(t, batches=batching, compare="span-kind")
        assert an.compared.strategy == "span-kind"
        assert roots_by_id(t, an.compared.root) == expected
        assert reasons(t, an.compared) == {
            1: R.NO_PARENT,
            2: R.JOINED,
            3: R.JOINED,
            4: R.SERVER_KIND,
            5: R.CONSUMER_KIND,
            6: R.JOINED,
        }


def test_remote_parent_cuts_only_where_both_remote_bits_are_set() -> None:
    t = table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "b", "SERVER", flags=0x300),
            S(4, 3, "b", "CLIENT"),
            S(5, 4, "c", "SERVER"),  # another service, no remote bits: joins
            S(6, 77, "c"),  # parent missing: opens
        ]
    )
    an = analyze(t, batches="captured", compare="remote-parent")
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 3, 6: 6}
    assert reasons(t, an.compared) == {
        1: R.NO_PARENT,
        2: R.JOINED,
        3: R.REMOTE_PARENT,
        4: R.JOINED,
        5: R.JOINED,
        6: R.MISSING_PARENT,
    }
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "ok", 4: "ok", 5: "merged", 6: "ok"}


def sentry_otlp_trace() -> SpanTable:
    return table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "b", "SERVER"),  # same project as a, no remote bits: does not cut
            S(4, 3, "b", "CLIENT"),
            S(5, 4, "c", "SERVER"),  # another project: cuts
            S(6, 5, "c", "CLIENT", flags=0x100),
            S(7, 6, "c", "SERVER", flags=0x300),  # remote parent: cuts
        ]
    )


def test_sentry_otlp_cross_service_link_inside_one_project_does_not_cut() -> None:
    t = sentry_otlp_trace()
    routes = Routes([Route("shop", ["a", "b"]), Route("pay", ["c"])], None, "routes.toml")
    an = analyze(t, batches="captured", routes=routes, compare="sentry-otlp")
    assert an.compared.strategy == "sentry-otlp"
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 5, 6: 5, 7: 7}
    assert reasons(t, an.compared) == {
        1: R.NO_PARENT,
        2: R.JOINED,
        3: R.JOINED,
        4: R.JOINED,
        5: R.OTHER_PROJECT,
        6: R.JOINED,
        7: R.REMOTE_PARENT,
    }
    assert an.compared.notes["services_without_remote_bits"] == ["a", "b"]
    # 7 is alone in its segment although its service's transaction starts at 5: "orphaned".
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "merged", 4: "merged", 5: "ok", 6: "ok", 7: "orphaned"}


def test_sentry_otlp_without_routes_every_service_is_its_own_project() -> None:
    t = sentry_otlp_trace()
    an = analyze(t, batches="captured", compare="sentry-otlp")
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 5, 6: 5, 7: 7}
    assert reasons(t, an.compared)[3] == R.OTHER_PROJECT


def test_sentry_otlp_unrouted_service_named_like_a_route_is_not_in_that_project() -> None:
    # Route "a" holds services x and y; service a itself has no route. Spans of service a never reach the
    # project called "a", so span 3 (service a) must not join x's segment and y's span 5, whose parent
    # is in service a, must open its own segment.
    t = table(
        [
            S(1, None, "x", "SERVER"),
            S(2, 1, "x", "CLIENT"),
            S(3, 2, "a", "SERVER"),
            S(4, 3, "a", "CLIENT"),
            S(5, 4, "y", "SERVER"),
        ]
    )
    routes = Routes([Route("a", ["x", "y"])], None, "routes.toml")
    an = analyze(t, batches="all", routes=routes, compare="sentry-otlp")
    got = roots_by_id(t, an.compared.root)
    assert got[3] in (3, None)
    assert got[5] == 5


# ------------------------------------------------------------------------------ routes files


ROUTES_TOML = """
[[route]]
name = "shop"
services = ["a", "b"]
dsn = "https://public@o1.ingest.sentry.io/2"
"""


def routed_trace(entry_kind: str) -> SpanTable:
    return table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "b", entry_kind),
            S(4, 3, "b", "CLIENT"),
            S(5, 4, "c", "SERVER"),  # service c has no route
            S(6, 5, "c"),
        ]
    )


def test_routes_file_unrouted_service_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(ROUTES_TOML)
    routes = load_routes(path)
    t = routed_trace("SERVER")
    an = analyze(t, batches="captured", routes=routes)
    assert an.delivery.exporters == ["shop"]
    assert an.delivery.n_calls == 1
    assert (an.delivery.lost == Reason.DROPPED_UNROUTED).tolist() == [False, False, False, False, True, True]
    assert an.options["routes"] == f"file:{path}"
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: None, 6: None}
    assert reasons(t, an.compared)[5] == R.DROPPED_UNROUTED
    assert reasons(t, an.compared)[6] == R.DROPPED_UNROUTED
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "ok", 4: "ok", 5: "dropped", 6: "dropped"}
    assert an.diff.causes()[["verdict", "cause", "service", "spans"]].to_dict("records") == [
        {
            "verdict": "dropped",
            "cause": "service has no route: never reached Sentry",
            "service": "c",
            "spans": 2,
        }
    ]


def test_routes_file_services_sharing_a_route_share_the_exporter_call(tmp_path: Path) -> None:
    # a and b share the "shop" exporter: b's INTERNAL entry span merges into a's transaction, routing or not.
    path = tmp_path / "routes.toml"
    path.write_text(ROUTES_TOML)
    t = routed_trace("INTERNAL")
    an = analyze(t, batches="captured", routes=load_routes(path))
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: None, 6: None}
    assert verdicts(an) == {1: "ok", 2: "ok", 3: "merged", 4: "merged", 5: "dropped", 6: "dropped"}


def test_routes_file_default_route_catches_other_services(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(ROUTES_TOML + '\n[default]\ndsn = "https://public@o1.ingest.sentry.io/1"\n')
    t = routed_trace("SERVER")
    an = analyze(t, batches="captured", routes=load_routes(path))
    assert an.delivery.exporters == ["shop", "default"]
    assert an.delivery.n_calls == 2
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 5, 6: 5}
    assert not an.delivery.lost.any()


DUPLICATE_NAME_ROUTES_TOML = """
[[route]]
name = "shop"
services = ["a"]
dsn = "https://public@o1.ingest.sentry.io/2"

[[route]]
name = "shop"
services = ["b"]
dsn = "https://other@o1.ingest.sentry.io/3"
"""


def test_routes_with_the_same_name_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(DUPLICATE_NAME_ROUTES_TOML)
    with pytest.raises(LoadError, match="two routes are named 'shop'"):
        load_routes(path)


# ------------------------------------------------------------------------------ per transaction, summary


def composite() -> SpanTable:
    return table(
        [
            S(1, None, "a", "SERVER"),
            S(2, 1, "a", "CLIENT"),
            S(3, 2, "b", "INTERNAL"),  # merged into a
            S(4, 3, "b"),
            S(5, 1, "a", "SERVER"),  # nested SERVER: split
            S(6, 5, "a"),
        ],
        [S(7, 6, "a"), S(8, None, "c", "SERVER", trace=2)],  # 7: batch cut, orphan
        [S(9, 2, "a")],  # no root: dropped
    )


def test_transactions_table_cut_into_lost_foreign_intact() -> None:
    t = composite()
    an = analyze(t, batches="captured")
    assert roots_by_id(t, an.reference.root) == {1: 1, 2: 1, 3: 3, 4: 3, 5: 1, 6: 1, 7: 1, 8: 8, 9: 1}
    assert roots_by_id(t, an.compared.root) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 5, 6: 5, 7: 7, 8: 8, 9: None}
    assert verdicts(an) == {
        1: "ok",
        2: "ok",
        3: "merged",
        4: "merged",
        5: "split",
        6: "split",
        7: "orphaned",
        8: "ok",
        9: "dropped",
    }
    tx = an.diff.transactions()
    cols = [
        "root",
        "trace",
        "service",
        "spans",
        "incomplete",
        "cut_into",
        "lost",
        "foreign",
        "not_ok",
        "intact",
    ]
    assert list(tx.columns) == cols
    rows = tx.astype({"service": str}).to_dict("records")
    assert rows == [
        # a's transaction: sent under roots 1, 5 and 7; 9 lost; absorbed b's two spans.
        {
            "root": 0,
            "trace": 0,
            "service": "a",
            "spans": 6,
            "incomplete": False,
            "cut_into": 3,
            "lost": 1,
            "foreign": 2,
            "not_ok": 4,
            "intact": False,
        },
        # b's transaction: all of it sent, in one piece, but inside a's.
        {
            "root": 2,
            "trace": 0,
            "service": "b",
            "spans": 2,
            "incomplete": False,
            "cut_into": 1,
            "lost": 0,
            "foreign": 0,
            "not_ok": 2,
            "intact": False,
        },
        {
            "root": 7,
            "trace": 1,
            "service": "c",
            "spans": 1,
            "incomplete": False,
            "cut_into": 1,
            "lost": 0,
            "foreign": 0,
            "not_ok": 0,
            "intact": True,
        },
    ]


def test_causes_labels_nested_server_batch_cut_no_root_merged() -> None:
    an = analyze(composite(), batches="captured")
    assert an.diff.causes().to_dict("records") == [
        {
            "verdict": "merged",
            "cause": "entry span of b is INTERNAL: merged into a",
            "service": "b",
            "spans": 2,
            "in_incomplete": 0,
        },
        {
            "verdict": "split",
            "cause": "nested SERVER spans in a opened their own transactions",
            "service": "a",
            "spans": 2,
            "in_incomplete": 0,
        },
        {
            "verdict": "dropped",
            "cause": "no transaction root in the exporter call: dropped with it",
            "service": "a",
            "spans": 1,
            "in_incomplete": 0,
        },
        {
            "verdict": "orphaned",
            "cause": "batch cut: parent not attached in the same exporter call, sent alone",
            "service": "a",
            "spans": 1,
            "in_incomplete": 0,
        },
    ]


def test_summary_keys_and_numbers() -> None:
    an = analyze(composite(), batches="captured")
    s = an.summary()
    assert list(s) == [
        "input",
        "options",
        "reference",
        "compared",
        "verdicts",
        "misgrouped",
        "dropped",
        "blamed",
        "in_incomplete_transactions",
        "transactions",
        "causes",
        "per_service",
        "worst_traces",
        "anomalies",
        "repairs",
    ]
    assert s["input"]["spans"] == 9
    assert s["input"]["traces"] == 2
    assert s["input"]["services"] == 3
    assert s["input"]["batches"] == 3
    assert s["options"] == {
        "reference": "service",
        "compare": "sentryexporter",
        "batches": "captured",
        "routes": "none",
        "boundary": "service",
        "heal": False,
    }
    assert s["reference"] == {"strategy": "service", "transactions": 3, "incomplete_transactions": 0}
    assert s["compared"] == {
        "strategy": "sentryexporter",
        "transactions": 4,
        "sentry_events": 4,
        "one_span_transactions": 2,
        "exporter_calls": 3,
        "per_exporter_call": True,
        "calls_with_duplicate_span_ids": 0,
    }
    assert s["verdicts"] == {"ok": 3, "split": 2, "merged": 2, "orphaned": 1, "dropped": 1}
    assert s["misgrouped"] == {"spans": 5, "ratio": 0.555556}
    assert s["dropped"] == {"spans": 1, "ratio": 0.111111}
    assert s["blamed"] == {"spans": 6, "ratio": 0.666667}
    assert s["in_incomplete_transactions"] == 0
    assert s["transactions"] == {"total": 3, "intact": 1, "broken": 2, "cut_into_max": 3}
    assert [c["verdict"] for c in s["causes"]] == ["merged", "split", "dropped", "orphaned"]
    assert [(p["name"], p["spans"], p["blamed"]) for p in s["per_service"]] == [
        ("a", 6, 4),
        ("b", 2, 2),
        ("c", 1, 0),
    ]
    assert len(s["worst_traces"]) == 1
    worst = s["worst_traces"][0]
    assert worst["trace_id"] == f"{1:032x}"
    assert worst["head"] == "a: span-1 (SERVER, 0000000000000001)"
    assert (worst["spans"], worst["not_ok"], worst["transactions"], worst["compared_transactions"]) == (
        8,
        6,
        2,
        3,
    )
    assert s["anomalies"]["missing_parent"] == 0


def test_grouping_sizes_and_roots() -> None:
    an = analyze(composite(), batches="captured")
    g = an.compared
    assert g.roots().tolist() == [0, 4, 6, 7]
    assert g.sizes().tolist() == [4, 4, 4, 4, 2, 2, 1, 1, 0]
    assert int(np.sum(g.sizes()[g.roots()])) == int(g.sent.sum()) == 8


# ------------------------------------------------------------------------------ deep traces

DEEP = 100_000


@pytest.fixture(scope="module")
def deep_chain() -> list[S]:
    return [S(1, None, "a", "SERVER")] + [S(i, i - 1, "a") for i in range(2, DEEP + 1)]


@pytest.mark.parametrize("reverse", [False, True], ids=["input-order", "reverse-order"])
def test_deep_chain_in_one_batch_is_one_transaction(deep_chain: list[S], reverse: bool) -> None:
    # A 100,000-span parent chain in one exporter call: no recursion limit, no quadratic retry passes.
    t = table(deep_chain[::-1] if reverse else deep_chain)
    an = analyze(t, batches="all")
    root_row = DEEP - 1 if reverse else 0
    assert an.delivery.n_calls == 1
    for g in (an.compared, an.reference):
        assert g.roots().tolist() == [root_row]
        assert (g.root == root_row).all()
        assert g.sizes()[root_row] == DEEP
    assert an.compared.reason[root_row] == R.NO_PARENT
    assert int((an.compared.reason == R.JOINED).sum()) == DEEP - 1
    assert an.diff.counts() == {"ok": DEEP, "split": 0, "merged": 0, "orphaned": 0, "dropped": 0}
    depth = an.forest.depth()
    assert int(depth.max()) == DEEP - 1
    assert int(depth[root_row]) == 0


def test_deep_chain_of_200k_through_tree_build() -> None:
    n = 200_000
    t = table([S(1)] + [S(i, i - 1) for i in range(2, n + 1)])
    forest = tree.build(t)
    assert forest.parent[0] == -1
    assert np.array_equal(forest.parent[1:], np.arange(n - 1))
    depth = forest.depth()
    assert int(depth.max()) == 199_999
    assert np.array_equal(depth, np.arange(n))
    assert forest.counts()["missing_parent"] == 0
    assert forest.counts()["parent_cycle"] == 0
