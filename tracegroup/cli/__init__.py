"""The ``tracegroup`` command line (click): one module per command family, :mod:`.common` underneath.

Contract: each command parses options, makes one library call and hands the result to one renderer; no
logic lives here. Exit codes: 0 success; 1 a check failed (``--fail-on-misgrouped`` exceeded, a golden
file differs, something was not sent); 2 bad input or usage, always as one line on stderr naming the file
or option and the problem, never a traceback (click's usage errors too). A reader that closes the pipe
(``tracegroup spans … | head``) ends the command quietly with exit 0 (:func:`.common.closed_pipe`).
Commands load when they run (:data:`COMMANDS`), and import their heavy dependencies then.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

# command name -> (module, attribute): a command's module (and what it imports) loads when it runs
COMMANDS = {
    "info": ("tracegroup.cli.analyze", "info"),
    "analyze": ("tracegroup.cli.analyze", "analyze_cmd"),
    "spans": ("tracegroup.cli.analyze", "spans"),
    "whatif": ("tracegroup.cli.analyze", "whatif"),
    "plan": ("tracegroup.cli.plan", "plan"),
    "show": ("tracegroup.cli.explore", "show"),
    "plot": ("tracegroup.cli.explore", "plot"),
    "report": ("tracegroup.cli.report", "report"),
    "check": ("tracegroup.cli.check", "check"),
    "emit": ("tracegroup.cli.sentry", "emit"),
    "send": ("tracegroup.cli.sentry", "send"),
    "redact": ("tracegroup.cli.redact", "redact"),
    "capture": ("tracegroup.cli.capture", "capture_cmd"),
}


class Tracegroup(click.Group):
    """The command group, run so that click's own usage errors are one line too; its commands load on
    first use (click's lazily loaded subcommands)."""

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context | None, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module, attr = COMMANDS[name]
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return self.commands.get(name)

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


__all__ = ["COMMANDS", "main"]
