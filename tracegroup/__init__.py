"""tracegroup: OpenTelemetry traces into Sentry transactions, one per application boundary.

Public API (stable): :func:`load` a dump into a :class:`SpanTable`, :func:`analyze` it into an
:class:`Analysis` (reference and compared groupings, their span-by-span :class:`~tracegroup.diff.Diff`,
and a JSON-ready summary), :func:`spans_frame` for a pandas view. The CLI calls exactly these. An
:class:`Explorer` (:mod:`tracegroup.explore`) answers a notebook's questions about a table with DataFrames,
text trees and figures.
"""

from tracegroup.analysis import Analysis, analyze
from tracegroup.explore import Explorer
from tracegroup.frames import spans_frame
from tracegroup.load import LoadError, load
from tracegroup.model import SpanTable

__all__ = ["Analysis", "Explorer", "LoadError", "SpanTable", "analyze", "load", "spans_frame"]
