"""The ``tracegroup`` command line (click).

Contract: each command parses options, makes one library call and hands the result to one renderer; no
logic lives here. Exit codes: 0 success; 1 a check failed (``--fail-on-misgrouped`` exceeded); 2 bad input
or usage, always as one line on stderr naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tracegroup import render, tree
from tracegroup.analysis import Analysis, analyze
from tracegroup.batching import BATCHINGS
from tracegroup.grouping import STRATEGIES
from tracegroup.load import LoadError, load
from tracegroup.model import SpanTable
from tracegroup.routes import Routes, load_routes

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"tracegroup: error: {message}", err=True)
    sys.exit(2)


def _errors(fn: F) -> F:
    """Turn bad input into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoadError as err:
            _fail(str(err))
        except ValueError as err:
            _fail(str(err))
        except OSError as err:
            _fail(f"{getattr(err, 'filename', '') or ''}: {err.strerror or err}")

    return wrapper  # type: ignore[return-value]


def _load(dumps: tuple[str, ...], service_attribute: str, keep_going: bool, quiet: bool) -> SpanTable:
    show = not quiet and sys.stderr.isatty()

    def progress(path: str, spans: int, files: int) -> None:
        click.echo(f"\rloaded {path} ({spans:,} spans so far, {files} files)", err=True, nl=False)

    table = load(
        dumps, service_attribute=service_attribute, keep_going=keep_going, progress=progress if show else None
    )
    if show:
        click.echo("", err=True)
    if not quiet:
        for s in table.sources:
            for w in s.warnings:
                click.echo(f"tracegroup: warning: {w}", err=True)
    return table


def load_options(fn: F) -> F:
    for deco in reversed(
        [
            click.argument("dumps", nargs=-1, required=True, type=click.Path()),
            click.option(
                "--service-attribute",
                default="service.name",
                show_default=True,
                help="Resource attribute that names a service.",
            ),
            click.option(
                "--keep-going", is_flag=True, help="Skip unreadable files with a warning instead of failing."
            ),
            click.option("--quiet", "-q", is_flag=True, help="No progress or warnings on stderr."),
        ]
    ):
        fn = deco(fn)
    return fn


def grouping_options(fn: F) -> F:
    for deco in reversed(
        [
            click.option(
                "--compare",
                default="sentryexporter",
                show_default=True,
                type=click.Choice(sorted(STRATEGIES)),
                help="Strategy compared with the reference.",
            ),
            click.option(
                "--reference",
                default="service",
                show_default=True,
                type=click.Choice(sorted(STRATEGIES)),
                help="The grouping taken as correct.",
            ),
            click.option(
                "--boundary",
                default="service",
                show_default=True,
                type=click.Choice(["service", "service+remote"]),
                help="service+remote also cuts where the OTLP flags say the parent is remote.",
            ),
            click.option(
                "--batches",
                "batching",
                type=click.Choice(BATCHINGS),
                help="Exporter calls: captured messages (default for multi-message dumps), one per trace "
                "(default otherwise), or the whole dump.",
            ),
            click.option(
                "--routing",
                default="none",
                show_default=True,
                help="none, service (one exporter per service), or a routes file (TOML/YAML).",
            ),
        ]
    ):
        fn = deco(fn)
    return fn


def _routing(value: str) -> str | Routes:
    if value in ("none", "service"):
        return value
    if not Path(value).exists():
        raise click.BadParameter(
            f"{value}: not 'none', 'service' or an existing routes file", param_hint="--routing"
        )
    return load_routes(value)


def _analysis(table: SpanTable, opts: dict[str, Any]) -> Analysis:
    return analyze(
        table,
        compare=opts["compare"],
        reference=opts["reference"],
        batching=opts["batching"],
        routing=_routing(opts["routing"]),
        boundary=opts["boundary"],
    )


@click.group()
@click.version_option(package_name="tracegroup")
def main() -> None:
    """Group OpenTelemetry spans into Sentry transactions by application boundary, and show what the
    collector's Sentry exporter did instead."""


@main.command()
@load_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_errors
def info(dumps: tuple[str, ...], service_attribute: str, keep_going: bool, quiet: bool, fmt: str) -> None:
    """Formats detected, batches, spans, traces, services and anomalies of DUMPS."""
    table = _load(dumps, service_attribute, keep_going, quiet)
    data = render.info(table, tree.build(table))
    click.echo(render.to_json(data) if fmt == "json" else render.info_text(data), nl=False)


@main.command(name="analyze")
@load_options
@grouping_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--top", default=10, show_default=True, help="Worst traces to list.")
@click.option(
    "--fail-on-misgrouped",
    type=click.FloatRange(0, 1),
    help="Exit 1 when the share of spans the compared rule gets wrong (dropped included, incomplete "
    "transactions excluded) exceeds this ratio.",
)
@_errors
def analyze_cmd(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    fmt: str,
    top: int,
    fail_on_misgrouped: float | None,
    **opts: Any,
) -> None:
    """How the compared strategy grouped DUMPS against one transaction per application boundary."""
    table = _load(dumps, service_attribute, keep_going, quiet)
    summary = _analysis(table, opts).summary(top=top)
    click.echo(render.to_json(summary) if fmt == "json" else render.analysis_text(summary, top), nl=False)
    if fail_on_misgrouped is not None and summary["blamed"]["ratio"] > fail_on_misgrouped:
        click.echo(
            f"tracegroup: {summary['blamed']['ratio']:.2%} of spans mis-grouped or dropped "
            f"(limit {fail_on_misgrouped:.2%})",
            err=True,
        )
        sys.exit(1)


@main.command()
@load_options
@grouping_options
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Output file (default stdout)."
)
@click.option("--no-details", is_flag=True, help="Only the contract columns: skip attributes, events, links.")
@_errors
def spans(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    fmt: str,
    output: str | None,
    no_details: bool,
    **opts: Any,
) -> None:
    """One row per span with its transaction under both groupings and its verdict."""
    from tracegroup.frames import spans_frame
    from tracegroup.writers import write_frame

    table = _load(dumps, service_attribute, keep_going, quiet)
    frame = spans_frame(table, _analysis(table, opts), details_=not no_details)
    write_frame(frame, fmt, output)


# --- commands defined in other modules (each module imports its heavy dependencies lazily) ---
from tracegroup.check import check  # noqa: E402
main.add_command(check)


if __name__ == "__main__":  # pragma: no cover
    main()
