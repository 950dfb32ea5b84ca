"""The ``tracegroup`` command line (click): one module per command family, :mod:`.common` underneath.

Contract: each command parses options, makes one library call and hands the result to one renderer; no
logic lives here. Exit codes: 0 success; 1 a check failed (``--fail-on-misgrouped`` exceeded, a golden
file differs, something was not sent); 2 bad input or usage, always as one line on stderr naming the file
and the problem, never a traceback. Commands import their heavy dependencies when they run.
"""

from __future__ import annotations

import click

from tracegroup.cli.analyze import analyze_cmd, info, spans, whatif
from tracegroup.cli.check import check
from tracegroup.cli.explore import plot, show
from tracegroup.cli.redact import redact
from tracegroup.cli.sentry import emit, send


@click.group()
@click.version_option(package_name="tracegroup")
def main() -> None:
    """Group OpenTelemetry spans into Sentry transactions by application boundary, and show what the
    collector's Sentry exporter did instead."""


for command in (info, analyze_cmd, spans, whatif, show, plot, check, emit, send, redact):
    main.add_command(command)

__all__ = ["main"]
