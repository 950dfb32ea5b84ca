"""Simulated delivery: SDK batch span processors, then groupbytrace (optional), then the collector's batch
processor. Answers "what would the exporter have seen with other settings?" on a user's own spans.

Contract: :func:`simulate` maps every span to the collector batch it leaves in (or to "dropped by a full
SDK queue") and gives the order the exporter walks them. Deterministic: the same table and options give
the same batches. The model, stated so users can judge it:

- **Arrival**: a span enters its service's SDK queue when it *ends* (``end_ns``; clock skew between hosts
  is reported by ``tracegroup info``, not corrected). Ties keep input order.
- **SDK BatchSpanProcessor**, one per service (OTel SDK defaults): the worker exports up to
  ``sdk_batch`` (512) spans as soon as that many are queued, or whatever is queued when ``sdk_delay_ms``
  (5000) has passed since the last export. An export keeps the worker busy ``sdk_export_ms`` (default 0:
  instantaneous); a span arriving while ``sdk_queue`` (2048) spans wait is dropped. At the end of the dump
  every queue is flushed (shutdown). An export arrives at the collector when it is sent.
- **groupbytrace** (``wait_ms`` not None): a trace's spans are held from the first one's arrival until
  ``wait_ms`` later, then released together; spans of it arriving later start a new group.
- **Collector batch processor** over what arrives, in arrival order: a batch is sent as soon as
  ``batch_size`` (8192) spans are buffered — everything buffered, or ``batch_max_size`` spans at a time
  when that is set — or ``batch_timeout_ms`` (200) after the previous send. The timer restarts at every
  send; it first starts at the first arrival, or with ``batch_phase_ms`` ticks at that offset modulo the
  timeout in Unix time (the real timer's phase is set by the collector's start: docs/collector.md).
  At the end everything left is flushed.
- **Replicas** (``replicas`` N > 1): N collector instances behind a round-robin load balancer; each SDK
  export goes whole to the next replica in turn (exports in send order), and each replica runs its own
  groupbytrace and batch processor. With ``loadbalancing`` a first tier (the ``loadbalancing`` exporter,
  ``routing_key: traceID``) sends every span to the replica its trace maps to (trace code modulo N, a
  stand-in for the exporter's hash), so one replica holds each whole trace.

Each collector batch becomes a pipeline batch for :func:`tracegroup.batching.route` (routing comes after
the batch processor, as in the seed's ``otlp -> batch -> routing -> sentry/<service>`` pipeline).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from tracegroup.model import SpanTable

MS = 1_000_000


DURATION_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_duration_ms(value: str | float) -> float:
    """A duration like ``200ms``, ``5s``, ``1.5s``, ``2m`` or ``100us`` as milliseconds. Text needs its unit
    (a bare ``5`` is refused: 5 ms or 5 s?); a Python number is milliseconds. Raises ``ValueError`` naming
    the value when it is not a finite, non-negative duration."""
    if isinstance(value, int | float):
        ms = float(value)
    else:
        text = str(value).strip().lower()
        unit = next((u for u in sorted(DURATION_UNITS, key=len, reverse=True) if text.endswith(u)), "")
        try:
            ms = float(text[: len(text) - len(unit)]) * DURATION_UNITS[unit] if unit else float("nan")
        except ValueError:
            ms = float("nan")
        if not unit and text and text.replace(".", "", 1).isdigit():
            raise ValueError(f"{value!r} needs a unit: ms, s, m or us (e.g. {text}ms or {text}s)")
    if not math.isfinite(ms):
        raise ValueError(f"{value!r} is not a duration like 200ms, 5s or 1.5s")
    if ms < 0:
        raise ValueError(f"{value!r} is negative")
    return ms


@dataclass(frozen=True)
class PipelineOptions:
    """Simulation settings; defaults are the OTel SDKs' and the collector's documented defaults."""

    sdk_delay_ms: float = 5000.0
    sdk_batch: int = 512
    sdk_queue: int = 2048
    sdk_export_ms: float = 0.0
    batch_size: int = 8192
    batch_max_size: int = 0
    batch_timeout_ms: float = 200.0
    wait_ms: float | None = None  # groupbytrace wait_duration; None = no groupbytrace
    batch_phase_ms: float | None = None  # batch timer ticks at this offset (mod timeout); None: first arrival
    replicas: int = 1  # collector instances behind a round-robin load balancer
    loadbalancing: bool = False  # a loadbalancing exporter tier routes by trace id to the replicas

    def __post_init__(self) -> None:
        for name in ("sdk_batch", "sdk_queue", "batch_size", "replicas"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")
        for name in ("sdk_delay_ms", "batch_timeout_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be positive")
        if (
            self.sdk_export_ms < 0
            or self.batch_max_size < 0
            or (self.wait_ms is not None and self.wait_ms < 0)
        ):
            raise ValueError("sdk-export-time, batch-max-size and wait must not be negative")
        if self.batch_max_size and self.batch_max_size < self.batch_size:
            raise ValueError("batch-max-size must be 0 or at least batch-size (the collector's own rule)")


@dataclass
class Simulation:
    batch: np.ndarray  # int64 collector batch per span, -1 = dropped by a full SDK queue
    order: np.ndarray  # delivered rows in the order the exporter walks them (batch by batch)
    sdk_exports: int
    sdk_dropped: int
    batches: int
    notes: dict[str, int] = field(default_factory=dict)


def _sdk(times: list[int], o: PipelineOptions) -> list[tuple[int, list[int]]]:
    """One service's BatchSpanProcessor over its arrival times (sorted): (send time, positions) per export.
    Positions never exported were dropped by the full queue."""
    delay, busy = int(o.sdk_delay_ms * MS), int(o.sdk_export_ms * MS)
    exports: list[tuple[int, list[int]]] = []
    queue: list[int] = []
    head = 0
    free_at: int | None = None  # the worker is busy exporting until then
    deadline = times[0] + delay if times else 0

    def export(when: int) -> None:
        nonlocal head, free_at, deadline
        k = min(o.sdk_batch, len(queue) - head)
        exports.append((when, queue[head : head + k]))
        head += k
        free_at, deadline = when + busy, when + delay

    for pos, t in enumerate(times):
        while True:  # exports that fall due before this arrival
            pending = len(queue) - head
            ready = t if free_at is None else free_at
            if pending >= o.sdk_batch and ready <= t:  # filled while the worker was busy
                export(ready)
            elif pending and max(deadline, ready) <= t:  # the schedule delay expired
                export(max(deadline, ready))
            else:
                break
        if len(queue) == head and deadline <= t:  # idle timer ticks: the next one after this arrival
            deadline += ((t - deadline) // delay + 1) * delay
        if len(queue) - head >= o.sdk_queue:
            continue  # queue full: dropped
        queue.append(pos)
        if len(queue) - head >= o.sdk_batch and (free_at is None or free_at <= t):
            export(t)
    last = times[-1] if times else 0
    while len(queue) > head:  # shutdown: flush what is left
        export(last if free_at is None else max(free_at, last))
    return exports


def simulate(table: SpanTable, o: PipelineOptions) -> Simulation:
    """Run the pipeline model (see the module docstring)."""
    return simulate_columns(table.end_ns, table.service, len(table.services), table.trace_code, o)


def simulate_columns(
    end: np.ndarray,
    service: np.ndarray,
    n_services: int,
    trace: np.ndarray,
    o: PipelineOptions,
    sdk_batch_of: dict[int, int] | None = None,
) -> Simulation:
    """:func:`simulate` on bare columns — each span's end time (ns), service code and trace code — for a
    caller without a table (``benchmarks/gen_dump.py`` cuts its synthetic dumps with this model).
    ``sdk_batch_of`` overrides ``sdk_batch`` for some service codes (an SDK with other defaults)."""
    n = len(end)
    arrivals: list[tuple[int, int, np.ndarray]] = []  # (send time, sequence, rows)
    seq = 0
    by_service = np.argsort(service, kind="stable")
    bounds = np.searchsorted(service[by_service], np.arange(n_services + 1))
    for s in range(n_services):
        rows = by_service[bounds[s] : bounds[s + 1]]
        rows = rows[np.argsort(end[rows], kind="stable")]
        opts = o
        if sdk_batch_of and s in sdk_batch_of:
            opts = dataclasses.replace(
                o, sdk_batch=sdk_batch_of[s], sdk_queue=max(o.sdk_queue, sdk_batch_of[s])
            )
        for when, chunk in _sdk(end[rows].tolist(), opts):
            arrivals.append((when, seq, rows[np.array(chunk, dtype=np.int64)]))
            seq += 1
    sent = np.zeros(n, dtype=bool)
    for _, _, rows in arrivals:
        sent[rows] = True
    dropped = ~sent
    arrivals.sort(key=lambda a: (a[0], a[1]))
    sdk_exports = len(arrivals)
    batch = np.full(n, -1, dtype=np.int64)
    order_parts: list[np.ndarray] = []
    n_batches = groups = 0
    for part in _replicas(trace, arrivals, o):
        if o.wait_ms is not None:
            part = _groupbytrace(trace, part, int(o.wait_ms * MS))
            groups += len(part)
        for rows in _batch_processor(part, o):
            batch[rows] = n_batches
            order_parts.append(rows)
            n_batches += 1
    order = np.concatenate(order_parts) if order_parts else np.zeros(0, dtype=np.int64)
    notes = {"groupbytrace_groups": groups} if o.wait_ms is not None else {}
    return Simulation(batch, order, sdk_exports, int(dropped.sum()), n_batches, notes)


def _replicas(
    trace: np.ndarray, arrivals: list[tuple[int, int, np.ndarray]], o: PipelineOptions
) -> list[list[tuple[int, int, np.ndarray]]]:
    """The arrivals of each replica: round-robin by SDK export, or by trace with ``loadbalancing``."""
    if o.replicas == 1:
        return [arrivals]
    parts: list[list[tuple[int, int, np.ndarray]]] = [[] for _ in range(o.replicas)]
    if not o.loadbalancing:
        for i, a in enumerate(arrivals):
            parts[i % o.replicas].append(a)
        return parts
    for when, seq, rows in arrivals:
        target = trace[rows] % o.replicas
        for r in np.unique(target).tolist():
            parts[r].append((when, seq, rows[target == r]))
    return parts


def _groupbytrace(
    trace: np.ndarray, arrivals: list[tuple[int, int, np.ndarray]], wait: int
) -> list[tuple[int, int, np.ndarray]]:
    """Hold each trace from its first span's arrival for ``wait`` ns, then release it as one group;
    spans of a trace arriving after its release open a new group (the processor's real behaviour)."""
    open_groups: dict[int, tuple[int, int, list[np.ndarray]]] = {}  # trace -> (release time, seq, parts)
    released: list[tuple[int, int, np.ndarray]] = []
    seq = 0
    for when, _, rows in arrivals:
        codes = trace[rows]
        order = np.argsort(codes, kind="stable")
        cuts = np.flatnonzero(np.diff(codes[order])) + 1
        for part in np.split(rows[order], cuts):
            tr = int(trace[part[0]])
            g = open_groups.get(tr)
            if g is not None and g[0] <= when:  # released before this arrival: a late span, new group
                released.append((g[0], g[1], np.concatenate(g[2])))
                g = None
            if g is None:
                g = (when + wait, seq, [])
                seq += 1
                open_groups[tr] = g
            g[2].append(part)
    released.extend((g[0], g[1], np.concatenate(g[2])) for g in open_groups.values())
    released.sort(key=lambda r: (r[0], r[1]))
    return released


def _batch_processor(arrivals: list[tuple[int, int, np.ndarray]], o: PipelineOptions) -> Iterator[np.ndarray]:
    """The collector batch processor over (time, seq, rows) arrivals sorted by time: yields batches."""
    timeout = int(o.batch_timeout_ms * MS)
    buf: list[np.ndarray] = []
    count = 0
    deadline: int | None = None

    def drain(until: int) -> Iterator[np.ndarray]:
        """Send while more than ``until`` spans wait: everything, or max-size pieces."""
        nonlocal buf, count
        while count > until:
            rows = np.concatenate(buf)
            limit = o.batch_max_size or len(rows)
            buf, count = ([rows[limit:]], len(rows) - limit) if limit < len(rows) else ([], 0)
            yield rows[:limit]

    for when, _, rows in arrivals:
        if deadline is None:
            deadline = when + timeout
            if o.batch_phase_ms is not None:  # ticks at phase + k * timeout (Unix time), the next one after
                deadline = when + (int(o.batch_phase_ms * MS) - when) % timeout or timeout
        if deadline <= when:  # the timer fired since the last arrival: everything buffered went then
            yield from drain(0)
            deadline += ((when - deadline) // timeout + 1) * timeout
        buf.append(rows)
        count += len(rows)
        if count >= o.batch_size:  # size trigger: send while a full batch waits
            yield from drain(o.batch_size - 1)
            deadline = when + timeout
    yield from drain(0)  # shutdown flush
