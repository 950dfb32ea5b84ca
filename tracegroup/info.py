"""The facts of a loaded dump that ``tracegroup info`` reports: files, formats, batches, spans, traces,
services, cross-service links, load notes and anomalies.

Contract: :func:`info` takes a :class:`~tracegroup.model.SpanTable` and its
:class:`~tracegroup.tree.Forest` and returns a plain JSON-ready dict (keys ``files``, ``batches``,
``spans``, ``traces``, ``services`` — span count per service, in the table's service order —,
``cross_service_links``, ``notes`` — load notes summed over files —, ``anomalies`` — per kind of the
forest, its count, its one-line meaning and the first ``examples`` spans as hex trace id, span id and
service), and ``capture`` when files come from ``tracegroup capture`` (their sidecars: messages with an
arrival time, first and last arrival, the longest gap between arrivals, senders, transports and the
``position`` in a pipeline the senders tell, with its meaning). :func:`tracegroup.render.text.info_text`
and :func:`tracegroup.render.json.to_json` draw it.
The table and the forest are not modified; the cost is a few passes over whole columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracegroup.load.sidecar import POSITIONS, position
from tracegroup.model import SpanTable
from tracegroup.tree import ANOMALY_KINDS, Forest


def info(table: SpanTable, forest: Forest, examples: int = 5) -> dict[str, Any]:
    """What ``tracegroup info`` reports: files, formats, batches, spans, traces, services, anomalies."""
    per_service = np.bincount(table.service, minlength=len(table.services))
    anomalies = {}
    for kind, rows in forest.anomalies.items():
        anomalies[kind] = {
            "count": int(len(rows)),
            "meaning": ANOMALY_KINDS[kind],
            "examples": [
                {
                    "trace_id": table.trace_hex[int(table.trace_code[r])],
                    "span_id": f"{int(table.span_id[r]):016x}",
                    "service": table.service_name(r),
                }
                for r in rows[:examples].tolist()
            ],
        }
    notes: dict[str, int] = {}
    for s in table.sources:
        for k, v in s.notes.items():
            notes[k] = notes.get(k, 0) + v
    out = {
        "files": [s.as_dict() for s in table.sources],
        "batches": len(table.batches),
        "spans": len(table),
        "traces": table.n_traces,
        "services": {name: int(c) for name, c in zip(table.services, per_service, strict=True)},
        "cross_service_links": int(
            (table.service[forest.parent[forest.parent >= 0]] != table.service[forest.parent >= 0]).sum()
        ),
        "notes": notes,
        "anomalies": anomalies,
    }
    if any(s.capture for s in table.sources):
        out["capture"] = capture_info(table)
    return out


def capture_info(table: SpanTable) -> dict[str, Any]:
    """What the sidecars of ``tracegroup capture`` files say (see the module docstring)."""
    senders: dict[str, int] = {}
    transports: dict[str, int] = {}
    for s in table.sources:
        for key, into in (("senders", senders), ("transports", transports)):
            for k, v in ((s.capture or {}).get(key) or {}).items():
                into[k] = into.get(k, 0) + v
    times = np.sort(np.array([b.arrival_ns for b in table.batches if b.arrival_ns >= 0], dtype=np.int64))
    where = position(senders)
    return {
        "files": sum(1 for s in table.sources if s.capture),
        "messages": int(len(times)),
        "first_arrival_ns": int(times[0]) if len(times) else None,
        "last_arrival_ns": int(times[-1]) if len(times) else None,
        "duration_s": float(times[-1] - times[0]) / 1e9 if len(times) else 0.0,
        "max_gap_s": float(np.diff(times).max()) / 1e9 if len(times) > 1 else 0.0,
        "senders": senders,
        "transports": transports,
        "position": where,
        "position_meaning": POSITIONS[where],
    }
