"""tracegroup: OpenTelemetry traces into Sentry transactions, one per application boundary.

Public API (stable): :func:`load` a dump into a :class:`SpanTable`, :func:`analyze` it into an
:class:`Analysis` (reference and compared groupings, their span-by-span :class:`~tracegroup.diff.Diff`,
and a JSON-ready summary), :func:`spans_frame` for a pandas view. The CLI calls exactly these. An
:class:`Explorer` (:mod:`tracegroup.explore`) answers a notebook's questions about a table with DataFrames,
text trees and figures.

Contract: :func:`load`, :class:`LoadError` and :class:`SpanTable` are imported with the package (every
command needs them, and the subpackage :mod:`tracegroup.load` must not shadow the function); the others
when first used (``tracegroup.analyze`` imports :mod:`tracegroup.analysis` then), so ``import tracegroup``
— which every submodule import, the CLI's included, runs first — does not load analysis, plotting or
notebook code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tracegroup.load import LoadError, load
from tracegroup.model import SpanTable

if TYPE_CHECKING:
    from tracegroup.analysis import Analysis, analyze
    from tracegroup.explore import Explorer
    from tracegroup.frames import spans_frame

_HOME = {
    "Analysis": "tracegroup.analysis",
    "analyze": "tracegroup.analysis",
    "Explorer": "tracegroup.explore",
    "spans_frame": "tracegroup.frames",
}

__all__ = ["Analysis", "Explorer", "LoadError", "SpanTable", "analyze", "load", "spans_frame"]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'tracegroup' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
