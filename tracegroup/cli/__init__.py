"""The ``tracegroup`` command line (click): one module per command family, :mod:`.common` underneath.

Contract: each command parses options, makes one library call and hands the result to one renderer; no
logic lives here. Exit codes: 0 success; 1 a check failed (``--fail-on-misgrouped`` exceeded, a golden
file differs, something was not sent); 2 bad input or usage, always as one line on stderr naming the file
or option and the problem, never a traceback (click's usage errors too). A reader that closes the pipe
(``tracegroup spans … | head``) ends the command quietly with exit 0 (:func:`.common.closed_pipe`).
Commands import their heavy dependencies when they run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from tracegroup.cli.analyze import analyze_cmd, info, spans, whatif
from tracegroup.cli.capture import capture_cmd
from tracegroup.cli.check import check
from tracegroup.cli.explore import plot, show
from tracegroup.cli.plan import plan
from tracegroup.cli.redact import redact
from tracegroup.cli.report import report
from tracegroup.cli.sentry import emit, send


class Tracegroup(click.Group):
    """The command group, run so that click's own usage errors are one line too."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> NoReturn:
        try:
            code = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as err:
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            click.echo(f"tracegroup: error: {' '.join(err.format_message().split())}{where}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"tracegroup: error: {' '.join(err.format_message().split())}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("tracegroup: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=Tracegroup)
@click.version_option(package_name="tracegroup")
def main() -> None:
    """Group OpenTelemetry spans into Sentry transactions by application boundary, and show what the
    collector's Sentry exporter did instead."""


for command in (
    info,
    analyze_cmd,
    spans,
    whatif,
    plan,
    show,
    plot,
    report,
    check,
    emit,
    send,
    redact,
    capture_cmd,
):
    main.add_command(command)

__all__ = ["main"]
