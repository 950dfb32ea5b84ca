"""Renderers: one module per output format, each drawing what it is given.

Contract: this package only re-exports. :mod:`~tracegroup.render.text` lays results out as plain text
(every report the commands print, the text tree of one trace), :mod:`~tracegroup.render.json` as JSON,
:mod:`~tracegroup.render.tables` writes span DataFrames as CSV, JSON Lines or Parquet,
:mod:`~tracegroup.render.plot` draws matplotlib figures and :mod:`~tracegroup.render.html` writes the
self-contained page of ``tracegroup report``. Renderers take the plain dicts, DataFrames and analyses the
library built and compute nothing of their own; they never import :mod:`tracegroup.explore` or
:mod:`tracegroup.cli`, which sit above them and call them. pandas and matplotlib are imported only when a
table is written or a figure drawn.
"""

from tracegroup.render import plot, tables
from tracegroup.render.json import to_json
from tracegroup.render.tables import write_frame
from tracegroup.render.text import (
    MAX_INDENT,
    analysis_text,
    capture_ready,
    capture_status,
    capture_text,
    check_text,
    emit_text,
    info_text,
    plan_text,
    plural,
    redact_text,
    send_text,
    trace_header,
    trace_lines,
    trace_text,
    whatif_text,
)

__all__ = [
    "MAX_INDENT",
    "analysis_text",
    "capture_ready",
    "capture_status",
    "capture_text",
    "check_text",
    "emit_text",
    "info_text",
    "plot",
    "plan_text",
    "plural",
    "redact_text",
    "send_text",
    "tables",
    "to_json",
    "trace_header",
    "trace_lines",
    "trace_text",
    "whatif_text",
    "write_frame",
]
