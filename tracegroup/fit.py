"""Pipeline settings fitted to a capture: what the collector and SDKs that cut these messages were set to.

Contract: :func:`fit` reads a multi-message dump (each message one exporter call) and returns a :class:`Fit`:
the :class:`~tracegroup.pipeline.PipelineOptions`, ``batches`` and ``routes`` under which the pipeline
model best reproduces the capture, and one :class:`Setting` per pipeline setting saying how it was found.
Every setting is one of

- ``fitted``: read from the capture — ``routes`` ``service`` when every message holds one service of
  several; ``groupbytrace`` when every resource entry holds one trace (the processor re-emits each trace on
  its own) and whole traces share a message; ``sdk-batch`` when many resource entries (one SDK export
  each: the batch processor keeps incoming ``ResourceSpans`` apart) hold exactly the largest count;
  ``batch-size`` when the largest messages (three at least) all lie within one export, and within 25 %,
  of the same size (the size trigger: ``send_batch_size`` plus the export that crossed it);
  ``batch-timeout`` from arrival times when the capture was taken after a collector by ``tracegroup
  capture`` (the shortest gap before a send below the size trigger), else as the round value (50 ms …
  10 s) whose simulation gives the captured number of exporter calls (message sizes and span end times
  are the simulation's input);
- ``bound``: the capture only bounds it and the bound is used — ``sdk-delay`` is at most the shortest time
  between the spans of a service's exports two apart around a partial (timer) export;
- ``undetermined``: nothing in the capture says; the documented default (``base``) is used and the report
  says so, never a guess (``batch-size`` then at least one more than the largest message).

Deterministic; costs one simulation per timeout tried (at most eight, stopping once the captured call count
is passed). A dump of one message determines nothing: every setting is ``undetermined``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracegroup.batching import deliver
from tracegroup.load.sidecar import position
from tracegroup.model import SpanTable
from tracegroup.pipeline import MS, PipelineOptions
from tracegroup.routes import Routes

#: The size trigger's messages lie within one export above send_batch_size, and within this share of it.
SIZE_WINDOW = 0.25
#: Timeouts tried (ms): the round values people configure.
TIMEOUTS_MS = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
#: Messages arriving this close together were one send (a routing exporter splits a batch), ms.
SAME_SEND_MS = 5.0
#: Share of multi-span resource entries allowed to hold more than one trace under groupbytrace.
GROUPBYTRACE_MIXED = 0.02
#: Share of multi-span traces that must lie in one message under groupbytrace.
GROUPBYTRACE_WHOLE = 0.9


@dataclass
class Setting:
    name: str  # the --vary / option name: batch-size, batch-timeout, sdk-batch, sdk-delay, wait, routes
    value: Any  # what the fitted simulation uses
    status: str  # fitted | bound | undetermined
    evidence: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Fit:
    pipeline: PipelineOptions
    batches: str  # simulate | groupbytrace
    routes: str  # none | service
    settings: list[Setting] = field(default_factory=list)
    captured_calls: int = 0
    simulated_calls: int = 0

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "routes": self.routes,
            "pipeline": dataclasses.asdict(self.pipeline),
            "settings": [s.as_dict() for s in self.settings],
            "captured_calls": self.captured_calls,
            "simulated_calls": self.simulated_calls,
        }


def _resources(table: SpanTable) -> tuple[np.ndarray, np.ndarray]:
    """Resource entry (batch, resource index) of every span as a dense code, and the entries' sizes."""
    key = table.batch.astype(np.int64) * (int(table.res.max(initial=0)) + 1) + table.res
    _, code = np.unique(key, return_inverse=True)
    return code, np.bincount(code)


def _distinct_per(group: np.ndarray, value: np.ndarray, n_groups: int) -> np.ndarray:
    """How many distinct ``value`` each ``group`` holds."""
    pairs = np.unique(group.astype(np.int64) * (int(value.max(initial=0)) + 1) + value)
    return np.bincount(pairs // (int(value.max(initial=0)) + 1), minlength=n_groups)


def _sdk_delay_bound(table: SpanTable, res: np.ndarray, sizes: np.ndarray, full: int) -> float | None:
    """Upper bound (ms) on the SDK schedule delay: a partial export k+1 is sent a whole delay after export k
    and before the spans of export k+2 end, so delay <= min end(k+2) - max end(k)."""
    end = table.end_ns
    svc_of_res = np.zeros(len(sizes), dtype=np.int64)
    svc_of_res[res] = table.service
    lo = np.full(len(sizes), np.iinfo(np.int64).max)
    hi = np.zeros(len(sizes), dtype=np.int64)
    np.minimum.at(lo, res, end)
    np.maximum.at(hi, res, end)
    best: float | None = None
    for s in range(len(table.services)):
        mine = np.flatnonzero(svc_of_res == s)
        if len(mine) < 3:
            continue
        mine = mine[np.argsort(lo[mine], kind="stable")]
        gaps = (lo[mine[2:]] - hi[mine[:-2]])[sizes[mine[1:-1]] < full]
        gaps = gaps[gaps > 0]
        if len(gaps):
            b = float(gaps.min()) / MS
            best = b if best is None else min(best, b)
    return best


def _timeout_from_arrivals(
    table: SpanTable, msg_sizes: np.ndarray, batch_size: int
) -> tuple[float, str] | None:
    """The batch processor's ``timeout`` read off a capture taken after a collector (``tracegroup capture``
    arrival times): a send below the size trigger is the timer's, which fires ``timeout`` after the
    previous send, so the shortest gap before such a send is the timeout (snapped to a round value within
    :data:`SIZE_WINDOW`). Messages arriving within :data:`SAME_SEND_MS` of each other are one send (a
    routing exporter splits a batch). None when arrivals are unknown, the senders are not collectors, or
    fewer than three timer sends show."""
    arrivals = np.array([b.arrival_ns for b in table.batches], dtype=np.int64)
    captures = [s.capture for s in table.sources if s.batches]
    if not len(arrivals) or (arrivals < 0).any() or not captures or None in captures:
        return None
    if any(position(c.get("senders", {})) != "collector" for c in captures if c is not None):
        return None
    order = np.argsort(arrivals, kind="stable")
    times, sizes = arrivals[order], msg_sizes[order]
    new_send = np.concatenate([[True], np.diff(times) > SAME_SEND_MS * MS])
    send = np.cumsum(new_send) - 1
    send_time = times[new_send]
    send_size = np.bincount(send, weights=sizes)
    timer = np.flatnonzero(send_size[1:] < batch_size) + 1
    if len(timer) < 3:
        return None
    gaps = (send_time[timer] - send_time[timer - 1]) / MS
    shortest = float(gaps.min())
    near = [t for t in TIMEOUTS_MS if abs(t - shortest) <= SIZE_WINDOW * t]
    value = near[0] if near else round(shortest)
    return value, (
        f"from arrival times: {len(timer)} sends below the size trigger, the shortest {shortest:.0f} ms "
        "after the previous send"
    )


def fit(table: SpanTable, base: PipelineOptions | None = None, routes: str | Routes | None = None) -> Fit:
    """Fit the pipeline settings to the capture (see the module docstring). ``routes`` given (not None or
    ``none``) replaces the fitted routing."""
    base = base or PipelineOptions()
    n_msgs = len(table.batches)
    settings: list[Setting] = []
    if n_msgs < 2 or not len(table):
        why = "one message: the capture shows no batching"
        for name, value in (
            ("routes", "none"),
            ("wait", None),
            ("sdk-batch", base.sdk_batch),
            ("sdk-delay", base.sdk_delay_ms),
            ("batch-size", base.batch_size),
            ("batch-timeout", base.batch_timeout_ms),
        ):
            settings.append(Setting(name, value, "undetermined", why))
        return Fit(base, "simulate", "none", settings, n_msgs, 0)

    batch = table.batch.astype(np.int64)
    msg_sizes = np.bincount(batch, minlength=n_msgs)
    used = msg_sizes > 0
    services_per_msg = _distinct_per(batch, table.service.astype(np.int64), n_msgs)
    one_service = bool((services_per_msg[used] == 1).all()) and len(table.services) > 1
    if routes is not None and routes != "none":
        fitted_routes = "none"
        settings.append(Setting("routes", "given", "fitted", "given by --routes"))
    elif one_service:
        fitted_routes = "service"
        settings.append(
            Setting("routes", "service", "fitted", f"all {n_msgs} messages hold one service each")
        )
    else:
        fitted_routes = "none"
        mixed = int((services_per_msg[used] > 1).sum())
        settings.append(Setting("routes", "none", "fitted", f"{mixed} of {n_msgs} messages mix services"))

    res, res_sizes = _resources(table)
    traces_per_res = _distinct_per(res, table.trace_code.astype(np.int64), len(res_sizes))
    multi = res_sizes >= 2
    mixed_share = float((traces_per_res[multi] > 1).mean()) if multi.any() else 1.0
    msgs_per_trace = _distinct_per(table.trace_code.astype(np.int64), batch, table.n_traces)
    trace_sizes = np.bincount(table.trace_code, minlength=table.n_traces)
    whole = float((msgs_per_trace[trace_sizes >= 2] == 1).mean()) if (trace_sizes >= 2).any() else 0.0
    grouped = mixed_share <= GROUPBYTRACE_MIXED and whole >= GROUPBYTRACE_WHOLE
    if grouped:
        wait = base.wait_ms if base.wait_ms is not None else 1000.0
        settings.append(
            Setting(
                "wait",
                wait,
                "undetermined",
                f"groupbytrace fitted: every resource entry holds one trace and {whole:.0%} of traces lie in "
                f"one message; its wait_duration leaves no trace in the capture ({wait:g} ms used)",
            )
        )
    else:
        settings.append(
            Setting(
                "wait",
                None,
                "fitted",
                f"no groupbytrace: {mixed_share:.0%} of resource entries mix traces, {whole:.0%} of traces "
                "lie in one message",
            )
        )

    changes: dict[str, Any] = {"wait_ms": settings[-1].value}
    full = int(res_sizes.max())
    at_full = int((res_sizes == full).sum())
    below = int((res_sizes == full - 1).sum())
    if full > 1 and at_full >= max(3, 0.1 * len(res_sizes)) and at_full > 2 * below:
        changes["sdk_batch"] = full
        settings.append(
            Setting(
                "sdk-batch", full, "fitted", f"{at_full} of {len(res_sizes)} SDK exports hold exactly {full}"
            )
        )
    else:
        settings.append(
            Setting(
                "sdk-batch",
                base.sdk_batch,
                "undetermined",
                f"no SDK export is visibly full (largest {full} spans, {at_full}×)",
            )
        )
    bound = None if grouped else _sdk_delay_bound(table, res, res_sizes, full)
    if bound is not None and bound < base.sdk_delay_ms:
        changes["sdk_delay_ms"] = round(bound)
        settings.append(
            Setting(
                "sdk-delay",
                round(bound),
                "bound",
                f"at most {bound:.0f} ms (partial exports of one service); the bound is used",
            )
        )
    else:
        settings.append(
            Setting("sdk-delay", base.sdk_delay_ms, "undetermined", "the exports' timing does not bound it")
        )

    largest = int(msg_sizes.max())
    overshoot = full - 1
    size_fit = None
    if fitted_routes == "none":
        for s in np.unique(msg_sizes[used])[::-1]:
            top = msg_sizes[msg_sizes >= s]
            if top.max() - s > max(overshoot, 0) or top.max() - s > SIZE_WINDOW * s:
                break
            if len(top) >= max(3, 0.1 * n_msgs):
                size_fit = int(s)
    if size_fit is not None:
        changes["batch_size"] = size_fit
        n_cut = int((msg_sizes >= size_fit).sum())
        settings.append(
            Setting(
                "batch-size",
                size_fit,
                "fitted",
                f"{n_cut} messages of {size_fit}–{largest} spans: cut by size at {size_fit}",
            )
        )
    else:
        value = max(base.batch_size, largest + 1)
        changes["batch_size"] = value
        where = (
            "messages are split by routing" if fitted_routes == "service" else "no message was cut by size"
        )
        settings.append(
            Setting(
                "batch-size",
                value,
                "undetermined",
                f"{where}: send_batch_size is above {largest} or never reached ({value} used)",
            )
        )
    if changes["batch_size"] > base.batch_max_size > 0:
        changes["batch_max_size"] = 0
    options = dataclasses.replace(base, **changes)
    batches = "groupbytrace" if grouped else "simulate"
    sim_routes = routes if routes is not None and routes != "none" else fitted_routes
    captured = deliver(table, "captured", sim_routes).n_calls

    from_arrivals = _timeout_from_arrivals(table, msg_sizes, options.batch_size)
    tried: list[tuple[float, int]] = []
    if from_arrivals is not None:
        timeout, why = from_arrivals
        options = dataclasses.replace(options, batch_timeout_ms=timeout)
        calls = deliver(table, batches, sim_routes, options).n_calls
        settings.append(Setting("batch-timeout", timeout, "fitted", why))
    for timeout in TIMEOUTS_MS if from_arrivals is None else ():
        calls = deliver(
            table, batches, sim_routes, dataclasses.replace(options, batch_timeout_ms=timeout)
        ).n_calls
        tried.append((timeout, calls))
        if calls < captured:
            break
    if len({c for _, c in tried}) > 1:
        timeout, calls = min(tried, key=lambda tc: (abs(np.log(max(tc[1], 1) / max(captured, 1))), tc[0]))
        options = dataclasses.replace(options, batch_timeout_ms=timeout)
        settings.append(
            Setting(
                "batch-timeout",
                timeout,
                "fitted",
                f"{calls} simulated exporter calls against {captured} captured "
                f"(tried {', '.join(f'{t:g} ms: {c}' for t, c in tried)})",
            )
        )
    elif tried:
        calls = tried[0][1]
        settings.append(
            Setting(
                "batch-timeout",
                base.batch_timeout_ms,
                "undetermined",
                "the number of exporter calls does not depend on it here",
            )
        )
        calls = deliver(table, batches, sim_routes, options).n_calls
    order = ["routes", "wait", "sdk-batch", "sdk-delay", "batch-size", "batch-timeout"]
    settings.sort(key=lambda s: order.index(s.name))
    return Fit(options, batches, fitted_routes, settings, captured, calls)
