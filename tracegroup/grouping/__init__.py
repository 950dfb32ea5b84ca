"""Grouping strategies: every span -> the root span of the Sentry transaction it ends up in, or dropped.

Contract: this package only re-exports. :mod:`tracegroup.grouping.base` holds what strategies share
(``Context``, ``Grouping``, the registry); each strategy is one module that registers itself under its public
name in :data:`STRATEGIES` when imported here.
"""

from tracegroup.grouping import remote_parent, sentry_otlp, sentryexporter, service, span_kind
from tracegroup.grouping.base import (
    PER_CALL,
    STRATEGIES,
    Context,
    Grouping,
    Options,
    Reason,
    Strategy,
    group,
    opened_by_parent,
    register,
)

__all__ = [
    "PER_CALL",
    "STRATEGIES",
    "Context",
    "Grouping",
    "Options",
    "Reason",
    "Strategy",
    "group",
    "opened_by_parent",
    "register",
    "remote_parent",
    "sentry_otlp",
    "sentryexporter",
    "service",
    "span_kind",
]
