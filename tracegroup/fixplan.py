"""The fix plan: for each cause of mis-grouping found in a capture, the change that removes it, as
configuration to paste, verified by simulation before it is shown (``tracegroup plan``).

Contract: :func:`fix_plan` analyses the capture as it was exported (``sentryexporter`` against ``service``)
and names each **cause** with its spans and services: ``batch-cuts`` (spans orphaned because their parent
was in another exporter call), ``rootless-calls`` (spans dropped with an exporter call that held no
transaction root) — both as captured —, and the exporter rule's own faults, counted with one exporter
call per whole trace so that the batching cannot hide them: ``nested-server`` (SERVER/CONSUMER spans
under a parent of their own service that open a transaction) and ``non-server-entry`` (an application's
entry span that is neither SERVER nor CONSUMER, so its spans merge into the caller's transaction); then
``unrouted`` (services without a route), ``replicas`` (``replicas`` > 1: a trace's spans reach several
collectors) and ``missing-remote-flags`` (services whose entry spans do not say their parent is remote,
which Sentry's OTLP endpoint needs to cut there). It then
builds one **remedy** per collector generation, each checked by simulation on the same spans:

- ``legacy`` (contrib ≤ v0.144, the exporter that builds transactions): ``groupbytrace`` with the
  smallest wait (from :data:`WAITS`, or the dump's longest trace rounded up) whose simulated residual is
  within :data:`TOLERANCE_PCT` of one exporter call per whole trace (the best any batching can do), the
  batch processor at the fitted values, a ``routing`` connector by the service attribute to one
  ``sentry/<project>`` exporter per Sentry project, and with several replicas a ``loadbalancing`` tier
  (``routing_key: traceID``) in front. Its residual is what no collector setting fixes: nested SERVER
  spans and non-SERVER entry spans, which need the instrumentation changed or the OTLP path.
- ``sentry`` (contrib ≥ v0.145, OTLP forwarding with per-project routing) and ``otlphttp`` (Sentry's
  OTLP endpoint per project, ``x-sentry-auth`` header): no transaction building in the collector, so no
  batching setting matters; Sentry cuts where the parent is absent, remote or in another project. Its
  residual is simulated with the flags as captured and again with the flags corrected
  (:func:`tracegroup.otlp_out.corrected_flags`: what fixing the services' remote-parent flags, or
  ``tracegroup emit --otlp`` as a stop-gap, gives).

Configuration is built as data and dumped with PyYAML, so it always parses; secrets are never written:
DSN keys and tokens are ``${env:…}`` references. SDK settings (``OTEL_BSP_*``, the names each language's
SDK reads: Erlang/Elixir use the ``_MILLIS`` spelling) are given per service with its
``telemetry.sdk.language`` only where a remedy depends on them (the SDK delay bounds the wait; a full SDK
queue drops spans). Deterministic.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup import tree
from tracegroup.analysis import analyze
from tracegroup.batching import deliver
from tracegroup.diff import MERGED, ORPHANED, SPLIT, diff
from tracegroup.fit import fit
from tracegroup.grouping import Context, Options, Reason, group
from tracegroup.model import SpanTable
from tracegroup.otlp import attributes
from tracegroup.otlp_out import service_flags
from tracegroup.pipeline import PipelineOptions
from tracegroup.routes import Dsn, Routes
from tracegroup.whatif import residual_metrics, whatif

#: groupbytrace waits tried (ms), the round values people configure.
WAITS = (1000.0, 2000.0, 5000.0, 10000.0, 30000.0, 60000.0)
#: A wait is good enough when its residual is within this many percentage points of one call per trace.
TOLERANCE_PCT = 0.1
#: Generations a plan is written for.
TARGETS = ("legacy", "sentry", "otlphttp")
#: The first version of the collector-contrib sentry exporter that forwards OTLP (no transactions).
OTLP_EXPORTER_SINCE = "v0.145.0"


@dataclass
class Cause:
    name: str
    spans: int
    share_pct: float
    services: list[str]
    fixed_by: str  # legacy | otlp | instrumentation | routes
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Remedy:
    target: str  # legacy | sentry | otlphttp
    config: dict[str, Any]  # the collector configuration
    residual: dict[str, float]  # misgrouped_pct, dropped_pct after the change (simulated)
    settings: dict[str, Any] = field(default_factory=dict)  # what was chosen, e.g. wait_ms
    unfixed: list[str] = field(default_factory=list)  # what this remedy leaves and why
    extra_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. the loadbalancing tier

    def yaml(self) -> str:
        return to_yaml(self.config)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["yaml"] = self.yaml()
        out["extra_yaml"] = {k: to_yaml(v) for k, v in self.extra_configs.items()}
        return out


@dataclass
class FixPlan:
    causes: list[Cause]
    captured: dict[str, float]  # misgrouped_pct, dropped_pct as captured
    remedies: list[Remedy]
    sdk: dict[str, dict[str, Any]]  # service -> {language, env}
    remote_flags: list[str]  # services whose entry spans need the parent-remote flag
    fit: dict[str, Any]

    def remedy(self, target: str) -> Remedy:
        return next(r for r in self.remedies if r.target == target)

    def write(self, folder: str | Path) -> list[Path]:
        """Each remedy's configuration as ``folder/collector-<target>.yaml`` (a further tier as
        ``collector-<target>-<tier>.yaml``); the paths written."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for r in self.remedies:
            for name, config in [("", r.config), *r.extra_configs.items()]:
                path = out / f"collector-{r.target}{'-' + name if name else ''}.yaml"
                path.write_text(to_yaml(config), encoding="utf-8")
                written.append(path)
        return written

    def as_dict(self) -> dict[str, Any]:
        return {
            "captured": self.captured,
            "causes": [c.as_dict() for c in self.causes],
            "remedies": [r.as_dict() for r in self.remedies],
            "sdk": self.sdk,
            "remote_flags": self.remote_flags,
            "fit": self.fit,
        }


def to_yaml(config: dict[str, Any]) -> str:
    import yaml  # PyYAML: only when a plan is written, not when the CLI starts

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=110)


def _env_name(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_") or "DEFAULT"


def _duration(ms: float) -> str:
    return f"{ms / 1000:g}s" if ms >= 1000 and ms % 1000 == 0 else f"{ms:g}ms"


def _languages(table: SpanTable) -> dict[str, str]:
    """Service -> ``telemetry.sdk.language`` of its first resource (first batch holding it)."""
    want = set(table.services)
    found: dict[str, str] = {}
    first_batch = np.full(len(table.services), -1, dtype=np.int64)
    if len(table):
        first_batch[table.service[::-1]] = table.batch[::-1]
    for b in sorted({int(x) for x in first_batch if x >= 0}):
        for rs in TracesData.FromString(table.batches[b].raw).resource_spans:
            attrs = attributes(rs.resource.attributes)
            svc = str(attrs.get(table.service_attribute, ""))
            if svc in want and svc not in found:
                found[svc] = str(attrs.get("telemetry.sdk.language", "") or "unknown")
    return {s: found.get(s, "unknown") for s in table.services}


def _causes(table: SpanTable, routes: str | Routes, replicas: int) -> tuple[list[Cause], dict[str, float]]:
    an = analyze(table, routes=routes)
    v, b = an.diff.verdict, an.compared
    n = max(len(table), 1)
    dropped = b.root < 0
    # The rule's own faults show whatever the batching: one exporter call per whole trace, one exporter.
    whole = analyze(table, batches="trace", forest=an.forest)
    wv, wb = whole.diff.verdict, whole.compared
    opener = wb.reason[np.maximum(wb.root, 0)]  # why the compared transaction of a split span was opened
    masks = {
        "batch-cuts": (v == ORPHANED) & (b.reason == Reason.ORPHAN),
        "rootless-calls": dropped & (b.reason == Reason.DROPPED_NO_ROOT),
        "nested-server": (wv == SPLIT) & np.isin(opener, (Reason.SERVER_KIND, Reason.CONSUMER_KIND)),
        "non-server-entry": wv == MERGED,
        "unrouted": dropped & (b.reason == Reason.DROPPED_UNROUTED),
    }
    text = {
        "batch-cuts": ("legacy", "a parent was in another exporter call, so the span went out alone"),
        "rootless-calls": ("legacy", "an exporter call held no transaction root and was dropped whole"),
        "nested-server": (
            "otlp",
            "a SERVER/CONSUMER span under a parent of its own service opened its own transaction; no "
            "collector setting changes this for the legacy exporter (make such spans INTERNAL, or use the "
            "OTLP path)",
        ),
        "non-server-entry": (
            "otlp",
            "an application's entry span is neither SERVER nor CONSUMER, so its spans joined the caller's "
            "transaction; no collector setting changes this for the legacy exporter (set the entry span's "
            "kind, or use the OTLP path with remote-parent flags)",
        ),
        "unrouted": ("routes", "the service has no route, so its spans never reached Sentry"),
    }
    causes = []
    for name, mask in masks.items():
        count = int(mask.sum())
        if count:
            services = sorted({table.services[s] for s in np.unique(table.service[mask]).tolist()})
            fixed_by, detail = text[name]
            causes.append(Cause(name, count, round(100 * count / n, 3), services, fixed_by, detail))
    if replicas > 1:
        causes.append(
            Cause(
                "replicas",
                0,
                0.0,
                [],
                "legacy",
                f"{replicas} collector replicas behind a round-robin balancer: groupbytrace on each sees "
                "only part of a trace unless a loadbalancing tier routes by trace id",
            )
        )
    captured = {
        "misgrouped_pct": round(100 * np.isin(v, (SPLIT, MERGED, ORPHANED)).sum() / n, 3),
        "dropped_pct": round(100 * dropped.sum() / n, 3),
    }
    return causes, captured


def _projects(table: SpanTable, routes: str | Routes) -> dict[str, str]:
    """Service -> Sentry project name (a routes file's route, else the service itself)."""
    if isinstance(routes, Routes):
        return {s: r.name for s in table.services if (r := routes.route_of(s)) is not None}
    return {s: s for s in table.services if s}


def _routing(
    projects: dict[str, str], attribute: str, exporter: str, head: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A routing connector by ``attribute`` to one pipeline per project, and those pipelines."""
    by_project: dict[str, list[str]] = {}
    for svc, project in sorted(projects.items()):
        by_project.setdefault(project, []).append(svc)
    table = []
    pipelines: dict[str, Any] = {}
    key = _ottl_string(attribute)
    for project, services in by_project.items():
        cond = " or ".join(f"resource.attributes[{key}] == {_ottl_string(s)}" for s in services)
        pipelines[f"traces/{project}"] = {"receivers": ["routing"], "exporters": [f"{exporter}/{project}"]}
        table.append({"statement": f"route() where {cond}", "pipelines": [f"traces/{project}"]})
    connector = {"routing": {"table": table}}
    pipelines = {"traces": {"receivers": ["otlp"], "processors": head, "exporters": ["routing"]}, **pipelines}
    return connector, pipelines


def _ottl_string(text: str) -> str:
    """An OTTL string literal (double quotes, backslash escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


RECEIVERS = {
    "otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}}
}


def _dsn_of(routes: str | Routes, project: str) -> Dsn | None:
    if isinstance(routes, Routes):
        for r in routes.routes + ([routes.default] if routes.default else []):
            if r.name == project and r.dsn:
                try:
                    return Dsn.parse(r.dsn)
                except ValueError:
                    return None
    return None


def _legacy(
    table: SpanTable,
    routes: str | Routes,
    fitted: PipelineOptions,
    projects: dict[str, str],
    progress: Callable[[str], None] | None = None,
) -> tuple[Remedy, float]:
    lb = fitted.replicas > 1
    base = dataclasses.replace(fitted, loadbalancing=lb)
    span_ms = _longest_trace_ms(table)
    waits = sorted({*WAITS, float(_round_up(span_ms + fitted.sdk_delay_ms))})
    sim_routes: str | Routes = routes if isinstance(routes, Routes) else "service"
    say = (lambda text: progress(f"legacy remedy: {text}")) if progress else None
    result = whatif(table, {"wait": waits}, ("sentryexporter",), base, sim_routes, progress=say)
    rows = {r["setting"] if r["setting"] != "wait" else r["value"]: r for r in result.rows}
    best = rows["per-trace"]
    floor = best["misgrouped_pct"] + best["dropped_pct"]
    chosen = next(
        (w for w in waits if rows[w]["misgrouped_pct"] + rows[w]["dropped_pct"] <= floor + TOLERANCE_PCT),
        min(waits, key=lambda w: (rows[w]["misgrouped_pct"] + rows[w]["dropped_pct"], w)),
    )
    row = rows[chosen]
    attribute = table.service_attribute
    processors: dict[str, Any] = {
        "groupbytrace": {"wait_duration": _duration(chosen), "num_traces": _num_traces(table, chosen)},
        "batch": {"send_batch_size": fitted.batch_size, "timeout": _duration(fitted.batch_timeout_ms)},
    }
    if fitted.batch_max_size:
        processors["batch"]["send_batch_max_size"] = fitted.batch_max_size
    connector, pipelines = _routing(projects, attribute, "sentry", ["groupbytrace", "batch"])
    exporters = {
        f"sentry/{p}": {"dsn": f"${{env:SENTRY_DSN_{_env_name(p)}}}"} for p in sorted(set(projects.values()))
    }
    config = {
        "receivers": RECEIVERS,
        "processors": processors,
        "exporters": exporters,
        "connectors": connector,
        "service": {"pipelines": pipelines},
    }
    extra = {}
    if lb:
        extra["loadbalancing-tier"] = {
            "receivers": RECEIVERS,
            "exporters": {
                "loadbalancing": {
                    "routing_key": "traceID",
                    "protocol": {"otlp": {"tls": {"insecure": True}}},
                    "resolver": {"dns": {"hostname": "otelcol-sentry-headless", "port": 4317}},
                }
            },
            "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["loadbalancing"]}}},
        }
    unfixed = []
    if floor > 0:
        unfixed.append(
            f"{floor:g}% of spans stay mis-grouped or dropped with one exporter call per whole trace: nested "
            "SERVER spans and non-SERVER entry spans, which the legacy exporter's rule itself gets wrong"
        )
    residual = {k: row[k] for k in ("misgrouped_pct", "dropped_pct")}
    settings: dict[str, Any] = {
        "wait_ms": chosen,
        "longest_trace_ms": span_ms,
        "replicas": fitted.replicas,
        "loadbalancing": lb,
        "per_trace_residual": {k: best[k] for k in ("misgrouped_pct", "dropped_pct")},
    }
    return Remedy("legacy", config, residual, settings, unfixed, extra), chosen


def _otlp_residuals(
    table: SpanTable, routes: str | Routes
) -> tuple[dict[str, float], dict[str, float], list[str], int]:
    """The ``sentry-otlp`` residual with the captured flags and with corrected flags, the services whose
    entry spans lack the parent-remote flag, and how many spans that mis-groups."""
    forest = tree.build(table, timing=False)
    options = Options(project_of_service=_projects(table, routes) if isinstance(routes, Routes) else {})
    via = routes if isinstance(routes, Routes) else "none"
    delivery = deliver(table, "trace", via)  # Sentry sees whole traces: no batching applies
    ref = group(Context(table, forest, deliver(table, "all", via), options), "service")
    rows = np.arange(len(table))
    out = []
    for t in (table, table.with_flags(service_flags(table))):
        g = group(Context(t, forest, delivery, options, lossy=True), "sentry-otlp")
        m = residual_metrics(t, forest.parent, ref, g, delivery.lost == 0)
        out.append({k: m[k] for k in ("misgrouped_pct", "dropped_pct")})
        if t is table:
            wrong = (ref.root == rows) & (t.parent_id != 0) & (g.root >= 0) & (g.root != rows)
            flags = sorted({t.services[s] for s in np.unique(t.service[wrong]).tolist()})
            bad = int(np.isin(diff(t, ref, g).verdict, (SPLIT, MERGED, ORPHANED)).sum())
    return out[0], out[1], flags, bad


def _otlp_remedies(
    table: SpanTable,
    routes: str | Routes,
    projects: dict[str, str],
    residual: dict[str, float],
    fixed: dict[str, float],
    flags: list[str],
) -> list[Remedy]:
    attribute = table.service_attribute
    unfixed = []
    if flags:
        unfixed.append(
            f"{', '.join(flags)}: entry spans without the parent-remote flag; Sentry joins them to the "
            f"caller until the SDK sets it ({residual['misgrouped_pct']:g}% mis-grouped until then, "
            f"{fixed['misgrouped_pct']:g}% after); stop-gap: tracegroup emit --otlp"
        )
    mapping = {s: p for s, p in sorted(projects.items()) if s != p}
    routing: dict[str, Any] = {"project_from_attribute": attribute}
    if mapping:
        routing["attribute_to_project_mapping"] = mapping
    sentry = {
        "receivers": RECEIVERS,
        "processors": {"batch": {}},
        "exporters": {
            "sentry": {
                "url": "https://sentry.io",
                "org_slug": "${env:SENTRY_ORG_SLUG}",
                "auth_token": "${env:SENTRY_AUTH_TOKEN}",
                "routing": routing,
            }
        },
        "service": {
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["sentry"]}}
        },
    }
    exporters = {}
    for p in sorted(set(projects.values())):
        dsn = _dsn_of(routes, p)
        url = dsn.otlp_traces_url() if dsn else f"${{env:SENTRY_OTLP_TRACES_URL_{_env_name(p)}}}"
        exporters[f"otlphttp/{p}"] = {
            "traces_endpoint": url,
            "headers": {"x-sentry-auth": f"sentry sentry_key=${{env:SENTRY_KEY_{_env_name(p)}}}"},
        }
    connector, pipelines = _routing(projects, attribute, "otlphttp", ["batch"])
    otlphttp = {
        "receivers": RECEIVERS,
        "processors": {"batch": {}},
        "exporters": exporters,
        "connectors": connector,
        "service": {"pipelines": pipelines},
    }
    settings = {"flags_corrected_residual": fixed}
    return [
        Remedy("sentry", sentry, residual, {**settings, "since": OTLP_EXPORTER_SINCE}, list(unfixed)),
        Remedy("otlphttp", otlphttp, residual, settings, list(unfixed)),
    ]


def _longest_trace_ms(table: SpanTable) -> float:
    """Longest trace, first span start to last span end (ms; spans without times ignored)."""
    start, end = table.start_ns, table.end_ns
    ok = (start > 0) & (end >= start)
    if not ok.any():
        return 0.0
    codes = table.trace_code[ok]
    first = np.full(table.n_traces, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.zeros(table.n_traces, dtype=np.int64)
    np.minimum.at(first, codes, start[ok].astype(np.int64))
    np.maximum.at(last, codes, end[ok].astype(np.int64))
    seen = last > 0
    return float((last[seen] - first[seen]).max() / 1e6)


def _round_up(ms: float) -> float:
    """The next round duration (1, 2 or 5 × a power of ten ms) at or above ``ms``."""
    if ms <= 1000:
        return 1000.0
    power = 10 ** math.floor(math.log10(ms))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= ms))


def _num_traces(table: SpanTable, wait_ms: float) -> int:
    """groupbytrace ``num_traces``: twice the most traces starting within one wait in the capture, at least
    the collector's default of 1,000,000 (a smaller value evicts traces early)."""
    start = table.start_ns
    ok = start > 0
    if not ok.any():
        return 1_000_000
    first = np.full(table.n_traces, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, table.trace_code[ok], start[ok].astype(np.int64))
    t = np.sort(first[first < np.iinfo(np.int64).max])
    peak = int((np.searchsorted(t, t + int(wait_ms * 1e6), side="right") - np.arange(len(t))).max())
    return max(1_000_000, 2 * peak)


def _sdk(
    table: SpanTable, fitted: PipelineOptions, wait_ms: float, queue_drops: bool
) -> dict[str, dict[str, Any]]:
    """Per service: its SDK language and the ``OTEL_BSP_*`` variables the legacy remedy relies on."""
    out = {}
    for svc, lang in _languages(table).items():
        millis = lang == "erlang"
        env = {
            ("OTEL_BSP_SCHEDULE_DELAY_MILLIS" if millis else "OTEL_BSP_SCHEDULE_DELAY"): int(
                fitted.sdk_delay_ms
            )
        }
        if queue_drops:
            env["OTEL_BSP_MAX_QUEUE_SIZE"] = 4 * fitted.sdk_queue
        out[svc] = {
            "language": lang,
            "env": env,
            "why": f"groupbytrace waits {_duration(wait_ms)} from a trace's first span; spans an SDK holds "
            f"longer than the wait minus the trace's duration arrive after it is released",
        }
    return out


def fix_plan(
    table: SpanTable,
    routes: str | Routes = "none",
    base: PipelineOptions | None = None,
    replicas: int = 1,
    targets: Iterable[str] = TARGETS,
    progress: Callable[[str], None] | None = None,
) -> FixPlan:
    """The causes in ``table`` and a verified remedy per collector generation (see the module docstring).
    ``routes``: as for ``analyze`` (a routes file names the Sentry projects and DSNs); ``base``: pipeline
    settings to start from (None: fitted to the capture); ``replicas``: collector instances today;
    ``targets``: the generations to plan for (any of :data:`TARGETS`); ``progress`` is told each step."""
    targets = list(targets)
    for t in targets:
        if t not in TARGETS:
            raise ValueError(f"unknown target {t!r} (choose from {', '.join(TARGETS)})")
    if len(table) == 0:
        raise ValueError("the dump holds no spans: nothing to plan")
    say = progress or (lambda text: None)
    say("fitting the capture")
    fitted_fit = fit(table, base, routes)
    fitted = dataclasses.replace(base or fitted_fit.pipeline, replicas=replicas)
    say("finding the causes")
    causes, captured = _causes(table, routes, replicas)
    projects = _projects(table, routes)
    legacy, wait = _legacy(table, routes, fitted, projects, progress)
    say("simulating the OTLP remedies")
    residual, fixed, flags, bad = _otlp_residuals(table, routes)
    if flags:
        causes.append(
            Cause(
                "missing-remote-flags",
                bad,
                round(100 * bad / len(table), 3),
                flags,
                "instrumentation",
                "entry spans without the parent-remote flag (Span.flags 0x100|0x200): Sentry's OTLP endpoint "
                "joins them to the caller's transaction",
            )
        )
    per_trace = legacy.settings["per_trace_residual"]["dropped_pct"]
    queue_drops = legacy.residual["dropped_pct"] > per_trace + TOLERANCE_PCT  # the SDK queue overflowed
    remedies = [legacy, *_otlp_remedies(table, routes, projects, residual, fixed, flags)]
    return FixPlan(
        causes,
        captured,
        [r for r in remedies if r.target in targets],
        _sdk(table, fitted, wait, queue_drops),
        flags,
        fitted_fit.as_dict(),
    )
