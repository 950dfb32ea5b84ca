"""pandas views of a table and an analysis: one row per span.

Contract: :func:`spans_frame` returns one row per span in table order with the columns of the
``tracegroup spans`` contract (README.md): ``trace_id, span_id, parent_span_id`` (lowercase hex,
parent empty when none), ``service, name, kind`` (OTLP kind name), ``batch, start_ns, end_ns`` and, given
an :class:`~tracegroup.analysis.Analysis`, ``transaction, heuristic_transaction, verdict``, plus the rest
of each span (flags, position, status, scope, attributes, resource attributes, events, links) when
``details`` is true. Detail columns decode every batch message once (:func:`details`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tracegroup.model import KIND_NAMES, STATUS_NAMES, SpanTable, hex_ids
from tracegroup.otlp import attributes

if TYPE_CHECKING:
    import pandas as pd

    from tracegroup.analysis import Analysis


def details(table: SpanTable) -> dict[str, list[Any]]:
    """Decode name, status, scope, attributes, resource attributes, events and links of every span."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "name",
            "status_code",
            "status_message",
            "scope_name",
            "scope_version",
            "attributes",
            "resource_attributes",
            "events",
            "links",
        )
    }
    last_rs: Any = None
    res_attrs: dict[str, Any] = {}
    for _, rs, ss, s in table.iter_spans():
        if rs is not last_rs:
            last_rs, res_attrs = rs, attributes(rs.resource.attributes)
        cols["name"].append(s.name)
        cols["status_code"].append(
            STATUS_NAMES[s.status.code] if 0 <= s.status.code < 3 else str(s.status.code)
        )
        cols["status_message"].append(s.status.message)
        cols["scope_name"].append(ss.scope.name)
        cols["scope_version"].append(ss.scope.version)
        cols["attributes"].append(attributes(s.attributes))
        cols["resource_attributes"].append(res_attrs)
        cols["events"].append(
            [
                {"name": e.name, "time_ns": e.time_unix_nano, "attributes": attributes(e.attributes)}
                for e in s.events
            ]
        )
        cols["links"].append(
            [
                {
                    "trace_id": ln.trace_id.hex(),
                    "span_id": ln.span_id.hex(),
                    "flags": ln.flags,
                    "attributes": attributes(ln.attributes),
                }
                for ln in s.links
            ]
        )
    return cols


def spans_frame(table: SpanTable, analysis: Analysis | None = None, *, details_: bool = True) -> pd.DataFrame:
    """One row per span (see the module docstring)."""
    import pandas as pd

    parent_hex = hex_ids(table.parent_id, 16)
    no_parent = table.parent_id == 0
    frame = pd.DataFrame(
        {
            "trace_id": hex_ids(table.trace_id, 32),
            "span_id": hex_ids(table.span_id, 16),
            "parent_span_id": np.where(no_parent, "", np.array(parent_hex, dtype=object)),
            "service": pd.Categorical.from_codes(table.service, categories=table.services),
            "kind": pd.Categorical.from_codes(
                np.where((table.kind < 0) | (table.kind > 5), 0, table.kind).astype(np.int8),
                categories=list(KIND_NAMES),
            ),
            "batch": table.batch,
            "start_ns": table.start_ns,
            "end_ns": table.end_ns,
        }
    )
    if details_:
        d = details(table)
        frame.insert(4, "name", d.pop("name"))
    else:
        frame.insert(4, "name", table.names())
    if analysis is not None:
        from tracegroup.diff import VERDICTS

        span_hex = frame["span_id"].to_numpy()
        ref, cmp = analysis.reference.root, analysis.compared.root
        frame["transaction"] = span_hex[ref]
        frame["heuristic_transaction"] = np.where(cmp >= 0, span_hex[np.maximum(cmp, 0)], "")
        frame["verdict"] = pd.Categorical.from_codes(analysis.diff.verdict, categories=list(VERDICTS))
        frame["incomplete"] = analysis.diff.incomplete
    frame["flags"] = table.flags
    frame["position"] = [f"{r}/{s}/{i}" for r, s, i in zip(table.res, table.scope, table.idx, strict=True)]
    if details_:
        for k, v in d.items():
            frame[k] = v
    return frame
