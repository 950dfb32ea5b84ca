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
from tracegroup.pipeline import PipelineOptions
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
                "(default otherwise), the whole dump, or a simulated pipeline (simulate, groupbytrace).",
            ),
            click.option(
                "--routing",
                default="none",
                show_default=True,
                help="none, service (one exporter per service), or a routes file (TOML/YAML).",
            ),
            click.option(
                "--heal", is_flag=True, help="Repair incomplete transactions (listed in the report)."
            ),
            *pipeline_options,
        ]
    ):
        fn = deco(fn)
    return fn


class Duration(click.ParamType):
    """A duration like ``200ms``, ``5s``, ``1.5s`` or ``100us``, as milliseconds (bare numbers are ms)."""

    name = "duration"
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        for unit in sorted(self.units, key=len, reverse=True):
            if text.endswith(unit) and text[: -len(unit)].strip():
                number, scale = text[: -len(unit)], self.units[unit]
                break
        else:
            number, scale = text, 1.0
        try:
            ms = float(number) * scale
        except ValueError:
            self.fail(f"{value!r} is not a duration like 200ms, 5s or 1.5s", param, ctx)
        if ms < 0:
            self.fail(f"{value!r} is negative", param, ctx)
        return ms


_DEFAULTS = PipelineOptions()
#: Simulation settings for ``--batches simulate|groupbytrace`` (also the ``whatif --vary`` names).
pipeline_options = [
    click.option(
        "--sdk-delay",
        type=Duration(),
        default=f"{_DEFAULTS.sdk_delay_ms}ms",
        show_default=True,
        help="SDK BatchSpanProcessor schedule delay.",
    ),
    click.option(
        "--sdk-batch",
        type=click.IntRange(1),
        default=_DEFAULTS.sdk_batch,
        show_default=True,
        help="SDK max export batch size.",
    ),
    click.option(
        "--sdk-queue",
        type=click.IntRange(1),
        default=_DEFAULTS.sdk_queue,
        show_default=True,
        help="SDK max queue size (spans beyond it are dropped).",
    ),
    click.option(
        "--sdk-export-time",
        type=Duration(),
        default="0ms",
        show_default=True,
        help="How long one SDK export keeps the worker busy (a slow collector fills the queue).",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(1),
        default=_DEFAULTS.batch_size,
        show_default=True,
        help="Collector batch processor send_batch_size.",
    ),
    click.option(
        "--batch-max-size",
        type=click.IntRange(0),
        default=0,
        show_default=True,
        help="Collector batch processor send_batch_max_size (0: no limit).",
    ),
    click.option(
        "--batch-timeout",
        type=Duration(),
        default=f"{_DEFAULTS.batch_timeout_ms}ms",
        show_default=True,
        help="Collector batch processor timeout.",
    ),
    click.option(
        "--wait",
        type=Duration(),
        default=None,
        help="groupbytrace wait_duration (implies --batches groupbytrace; default 1s there).",
    ),
]


def with_pipeline_options(fn: F) -> F:
    for deco in reversed(pipeline_options):
        fn = deco(fn)
    return fn


def _pipeline(opts: dict[str, Any]) -> PipelineOptions:
    return PipelineOptions(
        sdk_delay_ms=opts.get("sdk_delay", _DEFAULTS.sdk_delay_ms),
        sdk_batch=opts.get("sdk_batch", _DEFAULTS.sdk_batch),
        sdk_queue=opts.get("sdk_queue", _DEFAULTS.sdk_queue),
        sdk_export_ms=opts.get("sdk_export_time", 0.0),
        batch_size=opts.get("batch_size", _DEFAULTS.batch_size),
        batch_max_size=opts.get("batch_max_size", 0),
        batch_timeout_ms=opts.get("batch_timeout", _DEFAULTS.batch_timeout_ms),
        wait_ms=opts.get("wait"),
    )


def _routing(value: str) -> str | Routes:
    if value in ("none", "service"):
        return value
    if not Path(value).exists():
        raise click.BadParameter(
            f"{value}: not 'none', 'service' or an existing routes file", param_hint="--routing"
        )
    return load_routes(value)


def _analysis(table: SpanTable, opts: dict[str, Any]) -> Analysis:
    batching = opts["batching"]
    if opts.get("wait") is not None and batching in (None, "simulate"):
        batching = "groupbytrace"
    return analyze(
        table,
        compare=opts["compare"],
        reference=opts["reference"],
        batching=batching,
        routing=_routing(opts["routing"]),
        boundary=opts["boundary"],
        pipeline=_pipeline(opts),
        heal=opts.get("heal", False),
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


def _vary(values: tuple[str, ...]) -> dict[str, list[float]]:
    from tracegroup.whatif import SETTINGS

    out: dict[str, list[float]] = {}
    for item in values:
        name, _, raw = item.partition("=")
        name = name.strip()
        if name not in SETTINGS or not raw:
            raise click.BadParameter(
                f"{item!r}: expected NAME=V1,V2,… with NAME one of {', '.join(SETTINGS)}", param_hint="--vary"
            )
        convert: click.ParamType = Duration() if SETTINGS[name][2] == "ms" else click.IntRange(0)
        out[name] = [float(convert.convert(v.strip(), None, None)) for v in raw.split(",") if v.strip()]
    return out


@main.command()
@load_options
@click.option(
    "--vary", multiple=True, help="NAME=V1,V2,… e.g. batch-size=64,512,8192 or wait=1s,5s (repeatable)."
)
@click.option(
    "--strategies",
    default="sentryexporter",
    show_default=True,
    help="Comma-separated compared strategies; the first one drives the recommendation.",
)
@click.option(
    "--target",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Acceptable share of mis-grouped plus dropped spans.",
)
@click.option("--routing", default="none", show_default=True, help="none, service or a routes file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_pipeline_options
@_errors
def whatif(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    vary: tuple[str, ...],
    strategies: str,
    target: float,
    routing: str,
    fmt: str,
    **opts: Any,
) -> None:
    """Mis-grouped, dropped and incomplete spans under other pipeline settings, and what to change."""
    from tracegroup.whatif import whatif as run_whatif

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        if name not in STRATEGIES:
            raise click.BadParameter(f"unknown strategy {name!r}", param_hint="--strategies")
    grid = _vary(vary) or {"batch-size": [64, 512, 8192], "sdk-batch": [64, 512], "wait": [1000, 5000]}
    table = _load(dumps, service_attribute, keep_going, quiet)
    result = run_whatif(table, grid, names, _pipeline(opts), _routing(routing), target)
    if fmt == "json":
        click.echo(render.to_json({"rows": result.rows, "recommendation": result.recommendation}), nl=False)
    else:
        click.echo(render.whatif_text(result.rows, result.recommendation), nl=False)


def send_options(fn: F) -> F:
    for deco in reversed(
        [
            click.option(
                "--resume",
                is_flag=True,
                help="Send exactly what the directory's send-journal.jsonl does not list as accepted.",
            ),
            click.option("--dry-run", is_flag=True, help="Send nothing; show what would go where."),
            click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True),
            click.option(
                "--retries",
                type=click.IntRange(1, 100),
                default=5,
                show_default=True,
                help="Most requests per item (429, 5xx, network errors); retries wait 1 s at least.",
            ),
            click.option(
                "--max-wait",
                type=Duration(),
                default="300s",
                show_default=True,
                help="Longest total wait (backoff and rate limits) per item before it counts as failed.",
            ),
            click.option(
                "--timeout",
                type=Duration(),
                default="30s",
                show_default=True,
                help="Longest attempt: connecting, sending and the whole answer.",
            ),
            click.option(
                "--deadline",
                type=Duration(),
                default="3600s",
                show_default=True,
                help="Longest run: what is not accepted by then is listed as not sent (--resume).",
            ),
        ]
    ):
        fn = deco(fn)
    return fn


def transport_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The ``send_options`` values as :func:`tracegroup.transport.send_all` arguments (seconds)."""
    return {
        "concurrency": opts["concurrency"],
        "retries": opts["retries"],
        "max_wait": opts["max_wait"] / 1000,
        "timeout": max(opts["timeout"], 1.0) / 1000,
        "deadline": opts["deadline"] / 1000,
    }


def report_send(result: Any, fmt: str) -> None:
    """Print a send report and exit 1 unless every item was accepted."""
    if fmt == "json":
        click.echo(render.to_json(result.as_dict()), nl=False)
    else:
        click.echo(render.send_text(result.as_dict()), nl=False)
    if getattr(result, "interrupted", False):
        sent = sum(o.status == "sent" for o in result.outcomes)
        click.echo(
            f"tracegroup: interrupted: {sent} accepted, {len(result.outcomes) - sent} not; "
            "rerun with --resume to send the rest",
            err=True,
        )
    if not result.ok and not all(o.status == "would-send" for o in result.outcomes):
        sys.exit(1)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@send_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_errors
def send(directory: str, resume: bool, dry_run: bool, fmt: str, **opts: Any) -> None:
    """Send the envelopes `tracegroup emit --out DIRECTORY` wrote, each to its DSN; report every outcome
    and journal it in DIRECTORY/send-journal.jsonl (see docs/send.md)."""
    from tracegroup.send import envelope_requests, otlp_file_requests
    from tracegroup.send import send as run_send

    root = Path(directory)
    requests, unsendable = envelope_requests(root, required=not resume)
    if resume:
        requests += otlp_file_requests(root)
    result = run_send(requests, unsendable, root, resume=resume, dry_run=dry_run, **transport_options(opts))
    report_send(result, fmt)


# --- commands defined in other modules (each module imports its heavy dependencies lazily) ---
from tracegroup.sentry.cli import emit  # noqa: E402

main.add_command(emit)
from tracegroup.explore_cli import plot, show  # noqa: E402

main.add_command(plot)
main.add_command(show)
from tracegroup.check import check  # noqa: E402

main.add_command(check)


if __name__ == "__main__":  # pragma: no cover
    main()
