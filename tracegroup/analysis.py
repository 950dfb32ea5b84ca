"""The library entry point: one call from a loaded table to groupings, their diff and a summary.

Contract: :func:`analyze` resolves the forest, builds the delivery (``batches`` + ``routes``), runs the
reference strategy (default ``service``) and the compared one (default ``sentryexporter``) and diffs them.
:meth:`Analysis.summary` returns plain JSON-ready data under stable keys (documented in the README); the
CLI renders exactly that, so the command line and the Python API never disagree.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracegroup import tree
from tracegroup.batching import Delivery, default_batches, deliver
from tracegroup.diff import VERDICTS, Diff, diff
from tracegroup.grouping import PER_CALL, STRATEGIES, Context, Grouping, Options, group
from tracegroup.grouping.service import heal as heal_grouping
from tracegroup.model import SpanTable, kind_name, span_hex
from tracegroup.pipeline import PipelineOptions
from tracegroup.routes import Routes


@dataclass
class Analysis:
    table: SpanTable
    forest: tree.Forest
    delivery: Delivery
    reference: Grouping
    compared: Grouping
    diff: Diff
    options: dict[str, Any] = field(default_factory=dict)
    repairs: list[dict[str, str]] = field(default_factory=list)

    def summary(self, top: int = 10) -> dict[str, Any]:
        """Every number of the report, JSON-ready (keys documented in the README)."""
        t, d = self.table, self.diff
        n = len(t)
        counts = d.counts()
        misgrouped = counts["split"] + counts["merged"] + counts["orphaned"]
        blamed = int(d.blamed.sum())
        tx = d.transaction_arrays()
        svc = d.by_arrays("service")
        svc_order = np.lexsort((-svc["spans"], -svc["blamed"]))
        per_trace = d.by_arrays("trace")
        not_ok = per_trace["spans"] - per_trace["ok"]
        worst = worst_first(d)[: min(top, int((not_ok > 0).sum()))]
        head = head_rows(t, self.forest)
        heads = {c: head_text(t, head[c], t.span(head[c]).name) for c in worst.tolist()}
        n_compared = len(self.compared.roots())
        one_span = (self.compared.sizes() == 1) & (self.compared.root == np.arange(n))
        return {
            "input": {
                "files": [s.as_dict() for s in t.sources],
                "spans": n,
                "traces": t.n_traces,
                "services": len(t.services),
                "batches": len(t.batches),
            },
            "options": self.options,
            "reference": {
                "strategy": self.reference.strategy,
                "transactions": len(tx["root"]),
                "incomplete_transactions": int(tx["incomplete"].sum()),
            },
            "compared": {
                "strategy": self.compared.strategy,
                "transactions": n_compared,
                "sentry_events": n_compared,
                "one_span_transactions": int(one_span.sum()),
                "exporter_calls": self.delivery.n_calls,
                "per_exporter_call": self.compared.strategy in PER_CALL,
                **{k: v for k, v in self.compared.notes.items() if k != "exporter_calls"},
            },
            "verdicts": counts,
            "misgrouped": {"spans": misgrouped, "ratio": _ratio(n, misgrouped)},
            "dropped": {"spans": counts["dropped"], "ratio": _ratio(n, counts["dropped"])},
            "blamed": {"spans": blamed, "ratio": _ratio(n, blamed)},
            "in_incomplete_transactions": int((d.incomplete & (d.verdict != 0)).sum()),
            "transactions": {
                "total": len(tx["root"]),
                "intact": int(tx["intact"].sum()),
                "broken": int((~tx["intact"]).sum()),
                "cut_into_max": int(tx["cut_into"].max()) if len(tx["root"]) else 0,
            },
            "causes": d.cause_records(),
            "per_service": [
                {"name": t.services[i], **{k: int(v[i]) for k, v in svc.items()}} for i in svc_order.tolist()
            ],
            "worst_traces": [
                {
                    "trace_id": t.trace_hex[c],
                    "head": heads.get(c, ""),
                    "not_ok": int(not_ok[c]),
                    **{
                        k: int(per_trace[k][c])
                        for k in ("spans", *VERDICTS, "transactions", "compared_transactions")
                    },
                }
                for c in worst.tolist()
            ],
            "anomalies": self.forest.counts(),
            "repairs": self.repairs,
        }


def worst_first(d: Diff) -> np.ndarray:
    """Trace codes, worst first: most spans not ``ok``, then most spans, then input order. The one order
    of ``analyze``'s worst traces, ``Explorer.traces()`` and the trace ``show``/``plot`` pick by default."""
    per = d.by_arrays("trace")
    not_ok = per["spans"] - per["ok"]
    return np.lexsort((np.arange(len(not_ok)), -per["spans"], -not_ok))


def head_rows(table: SpanTable, forest: tree.Forest) -> np.ndarray:
    """Per trace code, the row of its head: its first span without a parent id, else its first span whose
    parent is missing from the dump."""
    top = np.flatnonzero(forest.parent < 0)
    top = np.concatenate([top[table.parent_id[top] == 0], top[table.parent_id[top] != 0]])
    head = np.full(table.n_traces, -1, dtype=np.int64)
    head[table.trace_code[top][::-1]] = top[::-1]  # the first listed wins
    return head


def head_text(table: SpanTable, row: int, name: str) -> str:
    """How a trace's head span is named everywhere: ``service: name (KIND, span id)``."""
    kind = kind_name(int(table.kind[row]))
    return f"{table.service_name(row) or '(no service)'}: {name} ({kind}, {span_hex(table.span_id[row])})"


def _ratio(n: int, x: int) -> float:
    return round(x / n, 6) if n else 0.0


#: Former keyword names of :func:`analyze` options -> their names now (the CLI's: ``--routes``,
#: ``--batches``). Accepted with a ``DeprecationWarning`` for one release.
DEPRECATED_OPTIONS = {"routing": "routes", "batching": "batches"}


def renamed_options(options: Mapping[str, Any], stacklevel: int = 3) -> dict[str, Any]:
    """``options`` with the :data:`DEPRECATED_OPTIONS` names renamed (warning once per old name);
    ``TypeError`` when an option is given under both names."""
    out = dict(options)
    for old, new in DEPRECATED_OPTIONS.items():
        if old in out:
            value = out.pop(old)
            if new in out:
                raise TypeError(f"{old}= is the deprecated spelling of {new}=: give only {new}=")
            warnings.warn(f"{old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=stacklevel)
            out[new] = value
    return out


def analyze(
    table: SpanTable,
    *,
    compare: str = "sentryexporter",
    reference: str = "service",
    batches: str | None = None,
    routes: str | Routes = "none",
    boundary: str = "service",
    pipeline: PipelineOptions | None = None,
    heal: bool = False,
    forest: tree.Forest | None = None,
    **deprecated: Any,
) -> Analysis:
    """Group ``table`` by ``reference`` and ``compare`` and diff them (see the module docstring).

    ``batches`` (``--batches``: captured, trace, all, simulate, groupbytrace; None: the dump's default)
    says how the dump is cut into exporter calls, ``routes`` (``--routes``) is ``none``, ``service`` or a
    :class:`~tracegroup.routes.Routes`. ``pipeline`` sets the simulation for
    ``batches="simulate"``/``"groupbytrace"`` (a groupbytrace wait in it makes both, and a missing
    ``batches``, mean ``groupbytrace``: the one place this rule lives, with
    :func:`tracegroup.batching.deliver`); ``heal`` repairs incomplete reference transactions
    (:func:`tracegroup.grouping.service.heal`), listed under ``Analysis.repairs``. The former names
    ``routing=`` and ``batching=`` still work with a ``DeprecationWarning``.
    """
    if deprecated:
        unknown = sorted(set(deprecated) - set(DEPRECATED_OPTIONS))
        if unknown:
            raise TypeError(f"analyze() got an unexpected keyword argument {unknown[0]!r}")
        if ("batching" in deprecated and batches is not None) or (
            "routing" in deprecated and routes != "none"
        ):
            raise TypeError("give each option once: batches= (not batching=), routes= (not routing=)")
        renamed = renamed_options(deprecated)
        batches = renamed.get("batches", batches)
        routes = renamed.get("routes", routes)
    for name in (compare, reference):
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r} (choose from {', '.join(sorted(STRATEGIES))})")
    if boundary not in ("service", "service+remote"):
        raise ValueError(f"unknown boundary {boundary!r} (service or service+remote)")
    forest = forest if forest is not None else tree.build(table, timing=False)
    if batches is None:  # a groupbytrace wait implies its pipeline; else what the dump's shape suggests
        waits = pipeline is not None and pipeline.wait_ms is not None
        batches = "groupbytrace" if waits else default_batches(table)
    delivery = deliver(table, batches, routes, pipeline)
    projects = {}
    if isinstance(routes, Routes):
        projects = {s: r.name for s in table.services if (r := routes.route_of(s)) is not None}
    options = Options(boundary=boundary, project_of_service=projects)
    ref = group(Context(table, forest, delivery, options), reference)
    repairs = heal_grouping(table, ref) if heal else []
    cmp = group(Context(table, forest, delivery, options, lossy=True), compare)
    settings: dict[str, Any] = {
        "reference": ref.strategy,
        "compare": cmp.strategy,
        "batches": delivery.batches,
        "routes": delivery.routes,
        "boundary": boundary,
        "heal": heal,
    }
    if delivery.pipeline is not None:
        settings["pipeline"] = dataclasses.asdict(delivery.pipeline)
        settings["pipeline_result"] = delivery.notes
    return Analysis(table, forest, delivery, ref, cmp, diff(table, ref, cmp), settings, repairs)
