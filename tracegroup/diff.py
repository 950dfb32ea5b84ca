"""Compare two groupings span by span: verdicts, causes, per transaction, per service, per trace.

Contract: :func:`diff` takes a reference grouping ``a`` (normally ``service``, the correct answer) and a
compared grouping ``b`` (normally ``sentryexporter``) of the same table and gives each span exactly one
verdict, by precedence (highest first):

- ``dropped``  – ``b`` never sent it;
- ``orphaned`` – ``b`` sent it as its own one-span transaction although it is not a root under ``a``;
- ``merged``   – ``b`` put it in a transaction whose root belongs to another service;
- ``split``    – ``b`` put it under another root span of its own service than ``a`` did;
- ``ok``       – same root under both.

Spans of *incomplete* reference transactions (their root's parent is not in the dump) keep their verdict
but are counted apart: a hole in the capture is not the exporter's fault, and ``blamed`` excludes them.
All work is vectorised over the span arrays; tables come out as pandas DataFrames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tracegroup.grouping import Grouping, Reason
from tracegroup.model import SpanTable, kind_name

VERDICTS: tuple[str, ...] = ("ok", "split", "merged", "orphaned", "dropped")
OK, SPLIT, MERGED, ORPHANED, DROPPED = range(5)


@dataclass
class Diff:
    table: SpanTable
    a: Grouping
    b: Grouping
    verdict: np.ndarray  # int8 code into VERDICTS
    incomplete: np.ndarray  # bool: span's reference transaction is incomplete

    @property
    def blamed(self) -> np.ndarray:
        """Spans not ok whose reference transaction is complete: what the compared rule got wrong."""
        return (self.verdict != OK) & ~self.incomplete

    def counts(self) -> dict[str, int]:
        c = np.bincount(self.verdict, minlength=len(VERDICTS))
        return {v: int(c[i]) for i, v in enumerate(VERDICTS)}

    # ------------------------------------------------------------------ causes
    def causes(self) -> pd.DataFrame:
        """One row per (verdict, cause, service): spans, and how many are in incomplete transactions."""
        t, a, b = self.table, self.a, self.b
        bad = np.flatnonzero(self.verdict != OK)
        cols = ["verdict", "cause", "service", "spans", "in_incomplete"]
        if not len(bad):
            return pd.DataFrame(columns=cols)
        v = self.verdict[bad]
        broot = b.root[bad]
        # The span whose rule explains the verdict: itself (dropped, orphaned), the compared root (split),
        # the reference root (merged: its entry span was not a transaction root under b).
        subject = np.where(v == SPLIT, broot, np.where(v == MERGED, a.root[bad], bad))
        frame = pd.DataFrame(
            {
                "v": v,
                "reason": b.reason[subject] if len(subject) else [],
                "kind": t.kind[subject],
                "svc": t.service[bad],
                "other": np.where(broot >= 0, t.service[np.maximum(broot, 0)], -1),
                "inc": self.incomplete[bad],
            }
        )
        keys = ["v", "reason", "kind", "svc", "other"]
        grouped = frame.groupby(keys, sort=False).agg(spans=("inc", "size"), in_incomplete=("inc", "sum"))
        rows = []
        for (vv, reason, kind, svc, other), r in grouped.iterrows():  # one row per distinct cause: few
            rows.append(
                {
                    "verdict": VERDICTS[vv],
                    "cause": _cause_text(
                        int(vv), Reason(reason), int(kind), t.services, int(svc), int(other)
                    ),
                    "service": t.services[svc],
                    "spans": int(r["spans"]),
                    "in_incomplete": int(r["in_incomplete"]),
                }
            )
        out = pd.DataFrame(rows, columns=cols)
        out = out.groupby(["verdict", "cause", "service"], as_index=False, sort=False).sum()
        return out.sort_values(
            ["spans", "verdict", "cause"], ascending=[False, True, True], ignore_index=True
        )

    # ------------------------------------------------------------------ per transaction
    def transactions(self) -> pd.DataFrame:
        """One row per reference transaction (root row): how the compared grouping treated it."""
        t, a, b = self.table, self.a, self.b
        n = len(t)
        ar = a.root
        sent = b.root >= 0
        spans = np.bincount(ar, minlength=n)
        lost = np.bincount(ar[~sent], minlength=n)
        pairs = np.unique(ar[sent] * np.int64(max(n, 1)) + b.root[sent])
        cut_into = np.bincount(pairs // max(n, 1), minlength=n)
        # Foreign spans absorbed: spans of other reference transactions whose compared root is ours.
        foreign_mask = sent & (ar[np.maximum(b.root, 0)] != ar)
        foreign = np.bincount(ar[b.root[foreign_mask]], minlength=n)
        not_ok = np.bincount(ar[self.verdict != OK], minlength=n)
        roots = a.roots()
        frame = pd.DataFrame(
            {
                "root": roots,
                "trace": t.trace[roots],
                "service": pd.Categorical.from_codes(t.service[roots], categories=t.services),
                "spans": spans[roots],
                "incomplete": a.reason[roots] == Reason.MISSING_PARENT,
                "cut_into": cut_into[roots],
                "lost": lost[roots],
                "foreign": foreign[roots],
                "not_ok": not_ok[roots],
            }
        )
        frame["intact"] = (frame["not_ok"] == 0) & (frame["foreign"] == 0) & (frame["cut_into"] == 1)
        return frame

    # ------------------------------------------------------------------ per service / per trace
    def by(self, key: str) -> pd.DataFrame:
        """Verdict counts and transaction counts per ``service`` or per ``trace`` (codes as index)."""
        t = self.table
        col = t.service if key == "service" else t.trace
        size = len(t.services) if key == "service" else t.n_traces
        out: dict[str, np.ndarray] = {"spans": np.bincount(col, minlength=size)}
        for code, name in enumerate(VERDICTS):
            out[name] = np.bincount(col[self.verdict == code], minlength=size)
        for label, g in (("transactions", self.a), ("compared_transactions", self.b)):
            roots = g.roots()
            out[label] = np.bincount(col[roots], minlength=size)
        out["blamed"] = np.bincount(col[self.blamed], minlength=size)
        out["in_incomplete"] = np.bincount(col[self.incomplete & (self.verdict != OK)], minlength=size)
        frame = pd.DataFrame(out)
        frame.index.name = key
        return frame


def _cause_text(verdict: int, reason: Reason, kind: int, services: list[str], svc: int, other: int) -> str:
    name = services[svc] or "(no service)"
    if verdict == DROPPED:
        return {
            Reason.DROPPED_NO_ROOT: "no transaction root in the exporter call: dropped with it",
            Reason.DROPPED_UNROUTED: "service has no route: never reached Sentry",
            Reason.DROPPED_OVERWRITTEN: "transaction replaced by another with the same root span id",
            Reason.DROPPED_QUEUE_FULL: "SDK export queue full",
        }.get(reason, f"dropped ({reason.name.lower()})")
    if verdict == ORPHANED:
        if reason == Reason.ORPHAN:
            return "batch cut: parent not attached in the same exporter call, sent alone"
        return f"{kind_name(kind)} span opened its own one-span transaction ({reason.name.lower()})"
    if verdict == MERGED:
        return f"entry span of {name} is {kind_name(kind)}: merged into {services[other] or '(no service)'}"
    if reason in (Reason.SERVER_KIND, Reason.CONSUMER_KIND):
        return f"nested {kind_name(kind)} spans in {name} opened their own transactions"
    if reason == Reason.ORPHAN:
        return "batch cut: attached under an orphan"
    return f"split where the compared rule cut ({reason.name.lower()})"


def diff(table: SpanTable, a: Grouping, b: Grouping) -> Diff:
    """Verdict of every span (see the module docstring)."""
    n = len(table)
    rows = np.arange(n)
    sent = b.root >= 0
    broot = np.maximum(b.root, 0)
    sizes = b.sizes()
    verdict = np.full(n, OK, dtype=np.int8)
    verdict[sent & (b.root != a.root)] = SPLIT
    verdict[sent & (table.service[broot] != table.service)] = MERGED
    verdict[sent & (b.root == rows) & (sizes == 1) & (a.root != rows)] = ORPHANED
    verdict[~sent] = DROPPED
    return Diff(table, a, b, verdict, a.incomplete())
