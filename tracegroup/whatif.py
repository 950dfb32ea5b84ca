"""What-if: the same spans through pipelines with other settings, and the smallest change that helps.

Contract: :func:`whatif` starts from the capture: its first rows (``setting`` ``captured``) are the capture
itself (its own messages as exporter calls), the next (``fitted``) the pipeline model with the settings
:func:`tracegroup.fit.fit` read from the capture — so the distance between model and capture is on the
table. Then it simulates the pipeline (:mod:`tracegroup.pipeline`) once per value of each varied setting
(the others at ``base``; ``base`` None means the fitted settings), groups what each exporter call would
have held with every compared strategy, and diffs against the ``service`` grouping of the whole dump.
Every option reaches every row: ``routes`` (exporters, and the Sentry project of each service for
``sentry-otlp``), ``boundary`` and ``heal`` (the reference), ``strategies`` (every row but
``sentry-otlp``). ``WhatIf.frame`` is a pandas DataFrame, one row per (setting, value, strategy), with
``misgrouped_pct`` (split + merged + orphaned), ``dropped_pct``, ``incomplete_pct`` (spans whose
transaction, as Sentry would receive it, has a root whose parent Sentry never receives), ``sentry_events``
and ``exporter_calls``; reference rows give the lines to beat: ``groupbytrace`` at the base wait,
``loadbalancing`` (with ``replicas`` > 1: a trace-id load-balancing tier in front of groupbytrace),
``per-trace`` (one exporter call per whole trace, the best any batching can do: what is left there is the
rule's own fault) and ``sentry-otlp``. ``WhatIf.recommendation`` is one line: the smallest change from
``base`` (never the base value itself) that brings mis-grouped plus dropped spans under ``target`` for the
first strategy, as a collector/SDK setting to paste, or what comes closest. The same inputs give the same
recommendation to ``whatif``, ``plot --kind whatif`` and the notebook: they all call this function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup import tree
from tracegroup.batching import default_batches, deliver
from tracegroup.diff import MERGED, ORPHANED, SPLIT, diff
from tracegroup.fit import Fit, fit
from tracegroup.grouping import Context, Grouping, Options, group
from tracegroup.grouping.service import heal as heal_grouping
from tracegroup.model import SpanTable
from tracegroup.pipeline import PipelineOptions, parse_duration_ms
from tracegroup.routes import Routes

if TYPE_CHECKING:
    import pandas as pd

#: ``--vary`` names -> (PipelineOptions field, how to write it in a config, unit).
SETTINGS: dict[str, tuple[str, str, str]] = {
    # Smaller collector batches: send_batch_size and send_batch_max_size together (a size alone never splits
    # an incoming export, and the collector requires max >= size).
    "batch-size": ("batch_size", "processors.batch.send_batch_size", ""),
    "batch-timeout": ("batch_timeout_ms", "processors.batch.timeout", "ms"),
    "sdk-batch": ("sdk_batch", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", ""),
    "sdk-delay": ("sdk_delay_ms", "OTEL_BSP_SCHEDULE_DELAY", "ms"),
    "sdk-queue": ("sdk_queue", "OTEL_BSP_MAX_QUEUE_SIZE", ""),
    "wait": ("wait_ms", "processors.groupbytrace.wait_duration", "ms"),
}


#: The grid ``whatif``, ``plot --kind whatif`` and the notebook use when no ``--vary`` is given.
DEFAULT_VARY: dict[str, list[float]] = {
    "batch-size": [64, 512, 8192],
    "sdk-batch": [64, 512],
    "wait": [1000, 5000],
}


def parse_vary(items: Iterable[str]) -> dict[str, list[float]]:
    """``NAME=V1,V2,…`` items (``--vary``) as a grid; NAME is one of :data:`SETTINGS`, durations take units
    (``wait=1s,5s``), counts are whole numbers. No items: a copy of :data:`DEFAULT_VARY`. Raises
    ``ValueError`` naming the item."""
    grid: dict[str, list[float]] = {}
    for item in items:
        name, _, raw = item.partition("=")
        name = name.strip()
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if name not in SETTINGS or not values:
            raise ValueError(f"--vary {item!r}: expected NAME=V1,V2,… with NAME one of {', '.join(SETTINGS)}")
        try:
            if SETTINGS[name][2] == "ms":
                grid[name] = [parse_duration_ms(v) for v in values]
            else:
                counts = [int(v) for v in values]
                if min(counts) < 0:
                    raise ValueError(f"{min(counts)} is negative")
                grid[name] = [float(c) for c in counts]
        except ValueError as err:
            raise ValueError(f"--vary {item!r}: {err}") from None
    return grid or {k: list(v) for k, v in DEFAULT_VARY.items()}


#: Rows that are not remedies: the capture itself and its fitted simulation.
BASELINE_SETTINGS = ("captured", "fitted")


@dataclass
class WhatIf:
    frame: pd.DataFrame
    recommendation: str
    rows: list[dict[str, Any]]
    fit: Fit | None = None
    base: PipelineOptions | None = None  # the settings every varied row starts from

    def base_values(self) -> dict[str, float]:
        """The base value of each ``--vary`` setting that has one (the as-captured point of a plot)."""
        if self.base is None:
            return {}
        values = {name: getattr(self.base, spec[0]) for name, spec in SETTINGS.items()}
        return {name: float(v) for name, v in values.items() if v is not None}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: rows, recommendation, the fit and the base settings (``whatif --format json``)."""
        return {
            "rows": self.rows,
            "recommendation": self.recommendation,
            "fit": self.fit.as_dict() if self.fit else None,
            "base": dataclasses.asdict(self.base) if self.base else None,
        }


def residual_metrics(
    table: SpanTable, parent: np.ndarray, ref: Grouping, g: Grouping, delivered: np.ndarray
) -> dict[str, Any]:
    """One row's numbers: mis-grouped, dropped and incomplete shares of ``g`` against ``ref`` (percent of
    spans), and the Sentry events ``g`` makes; ``delivered``: spans that reached the exporter."""
    n = max(len(table), 1)
    verdict = diff(table, ref, g).verdict
    sent = g.root >= 0
    roots = g.roots()
    p = parent[roots]
    root_parent_lost = np.zeros(len(table), dtype=bool)
    root_parent_lost[roots] = (table.parent_id[roots] != 0) & ((p < 0) | ~delivered[np.maximum(p, 0)])
    incomplete = sent & root_parent_lost[np.maximum(g.root, 0)]
    return {
        "spans": len(table),
        "misgrouped_pct": round(100 * np.isin(verdict, (SPLIT, MERGED, ORPHANED)).sum() / n, 3),
        "dropped_pct": round(100 * (~sent).sum() / n, 3),
        "incomplete_pct": round(100 * incomplete.sum() / n, 3),
        "sentry_events": len(roots),
    }


def whatif(
    table: SpanTable,
    vary: dict[str, list[float]],
    strategies: tuple[str, ...] | list[str] = ("sentryexporter",),
    base: PipelineOptions | None = None,
    routes: str | Routes = "none",
    target: float = 0.01,
    *,
    boundary: str = "service",
    heal: bool = False,
    progress: Callable[[str], None] | None = None,
) -> WhatIf:
    """Run the what-if grid (see the module docstring). ``target`` is a fraction (0.01 = 1 %); ``base``
    None varies from the settings fitted to the capture (:func:`tracegroup.fit.fit`); ``progress`` is
    told what runs (``fitting the capture``, then ``what-if row K of N: SETTING VALUE``)."""
    import pandas as pd

    for name in vary:
        if name not in SETTINGS:
            raise ValueError(f"cannot vary {name!r} (choose from {', '.join(SETTINGS)})")
    if boundary not in ("service", "service+remote"):
        raise ValueError(f"unknown boundary {boundary!r} (service or service+remote)")
    names = tuple(strategies)
    if not names:
        raise ValueError("give at least one strategy")
    say = progress or (lambda text: None)
    say("fitting the capture")
    fitted = fit(table, base, routes)
    if base is None:
        base = fitted.pipeline
    sim_routes = routes if routes != "none" else fitted.routes
    forest = tree.build(table, timing=False)
    projects = {}
    if isinstance(routes, Routes):
        projects = {s: r.name for s in table.services if (r := routes.route_of(s)) is not None}
    options = Options(boundary=boundary, project_of_service=projects)
    ref = group(Context(table, forest, deliver(table, "all", routes), options), "service")
    if heal:
        heal_grouping(table, ref)
    rows: list[dict[str, Any]] = []
    total = 5 + sum(len(v) for v in vary.values()) + (base.replicas > 1)
    step: list[str] = []

    def run(
        setting: str,
        value: Any,
        pipeline: PipelineOptions | None,
        batches: str,
        names: tuple[str, ...],
        via: str | Routes = sim_routes,
    ) -> None:
        step.append(setting)
        say(f"what-if row {len(step)} of {total}: {setting}" + ("" if value is None else f" {value:g}"))
        delivery = deliver(table, batches, via, pipeline)
        for strategy in names:
            g = group(Context(table, forest, delivery, options, lossy=True), strategy)
            rows.append(
                {
                    "setting": setting,
                    "value": value,
                    "strategy": strategy,
                    **residual_metrics(table, forest.parent, ref, g, delivery.lost == 0),
                    "exporter_calls": delivery.n_calls,
                }
            )

    run("captured", None, None, default_batches(table), names, routes)
    run("fitted", None, fitted.pipeline, fitted.batches, names)
    for name, values in vary.items():
        field = SETTINGS[name][0]
        for value in values:
            typed = float(value) if SETTINGS[name][2] == "ms" else int(value)
            changes: dict[str, Any] = {field: typed}
            if name == "batch-size":
                changes["batch_max_size"] = typed
            run(name, value, dataclasses.replace(base, **changes), "simulate", names)  # a wait: groupbytrace
    wait = base.wait_ms if base.wait_ms is not None else 1000.0
    run("groupbytrace", wait, dataclasses.replace(base, wait_ms=wait), "groupbytrace", names)
    if base.replicas > 1:
        lb = dataclasses.replace(base, wait_ms=wait, loadbalancing=True)
        run("loadbalancing", wait, lb, "groupbytrace", names)
    run("per-trace", None, base, "trace", names)
    run("sentry-otlp", None, base, "simulate", ("sentry-otlp",))
    frame = pd.DataFrame(rows)
    return WhatIf(frame, _recommend(rows, base, names[0], target), rows, fitted, base)


def snippet(setting: str, value: float) -> str:
    """A setting as users write it: collector YAML in flow style, or the SDK environment variable."""
    key, unit = SETTINGS[setting][1], SETTINGS[setting][2]
    shown = f"{value / 1000:g}s" if unit == "ms" and value >= 1000 else f"{value:g}{unit}"
    if key.startswith("OTEL_"):
        return f"{key}={value:g}"
    if setting == "batch-size":
        return f"processors: {{batch: {{send_batch_size: {value:g}, send_batch_max_size: {value:g}}}}}"
    *outer, last = key.split(".")
    text = f"{last}: {shown}"
    for part in reversed(outer):
        text = f"{part}: {{{text}}}"
    return text


def _recommend(rows: list[dict[str, Any]], base: PipelineOptions, strategy: str, target: float) -> str:
    """The smallest relative change from ``base`` that meets ``target`` (mis-grouped + dropped)."""
    limit = 100 * target

    def cost(r: dict[str, Any]) -> float:
        return float(r["misgrouped_pct"] + r["dropped_pct"])

    def unchanged(r: dict[str, Any]) -> bool:
        old = getattr(base, SETTINGS[r["setting"]][0])
        return old is not None and float(r["value"]) == float(old)

    varied = [r for r in rows if r["setting"] in SETTINGS and r["strategy"] == strategy and not unchanged(r)]
    ok = [r for r in varied if cost(r) <= limit]

    def change(r: dict[str, Any]) -> float:
        old = getattr(base, SETTINGS[r["setting"]][0])
        if old is None or not old:
            return float("inf") if r["setting"] != "wait" else 1.0
        return abs(np.log(max(float(r["value"]), 1e-9) / float(old)))

    refs = [
        r
        for r in rows
        if r["setting"] not in SETTINGS
        and r["setting"] not in BASELINE_SETTINGS
        and r["strategy"] in (strategy, "sentry-otlp")
    ]
    if ok:
        best = min(ok, key=lambda r: (change(r), cost(r)))
        return (
            f"{snippet(best['setting'], best['value'])}  # {strategy} then mis-groups "
            f"{best['misgrouped_pct']:g}% and drops {best['dropped_pct']:g}% of spans (target {limit:g}%)"
        )
    ideal = next((r for r in refs if r["setting"] == "per-trace"), None)
    refs = [r for r in refs if r["setting"] != "per-trace"]
    best_ref = min(refs, key=cost) if refs else None
    closest = min(varied, key=cost) if varied else None
    parts = [f"no varied setting brings {strategy} under {limit:g}% mis-grouped + dropped"]
    if closest:
        parts.append(f"closest: {snippet(closest['setting'], closest['value'])} ({cost(closest):g}%)")
    lb = next((r for r in refs if r["setting"] == "loadbalancing"), None)
    gbt = next((r for r in refs if r["setting"] == "groupbytrace"), None)
    if lb and gbt and cost(lb) < cost(gbt):
        parts.append(
            f"with {base.replicas} replicas groupbytrace sees parts of traces ({cost(gbt):g}%); a "
            f"loadbalancing exporter (routing_key: traceID) in front of them brings it to {cost(lb):g}%"
        )
        refs = [r for r in refs if r is not lb]
    if ideal and cost(ideal) > limit:
        parts.append(
            f"even one exporter call per trace leaves {cost(ideal):g}%: the rule itself (nested SERVER "
            "spans, entry spans that are not SERVER/CONSUMER) causes it, which no pipeline setting fixes; "
            "emit the corrected payloads (tracegroup emit)"
        )
    if best_ref and (closest is None or cost(best_ref) < cost(closest)):
        what = {
            "sentry-otlp": "Sentry's OTLP endpoint",
            "loadbalancing": "a loadbalancing exporter (routing_key: traceID) in front of groupbytrace",
        }.get(best_ref["setting"], "a groupbytrace processor")
        parts.append(f"{what} does better ({cost(best_ref):g}%)")
    return "; ".join(parts)
