"""``tracegroup info``, ``analyze``, ``spans`` and ``whatif``: a dump's facts, both groupings, the per-span
table and other pipeline settings.

Contract: each command loads the dumps, makes one library call (:func:`tracegroup.info.info`,
:meth:`tracegroup.analysis.Analysis.summary`, :func:`tracegroup.frames.file_chunks`,
:func:`tracegroup.whatif.whatif`) and hands the result to one renderer or writer.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from tracegroup import render, tree
from tracegroup.cli.common import (
    Share,
    Status,
    analysis_from,
    errors,
    grouping_options,
    in_memory_option,
    load_options,
    load_table,
    memory_option,
    require_memory,
    shown,
    spilled_frames,
    spilled_summary,
    whatif_from,
    with_pipeline_options,
    with_routes_options,
)
from tracegroup.cli.redact import policy_from, redact_key_option
from tracegroup.grouping import STRATEGIES
from tracegroup.info import info as dump_info


@click.command()
@load_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@errors
def info(dumps: tuple[str, ...], service_attribute: str, keep_going: bool, quiet: bool, fmt: str) -> None:
    """Formats detected, batches, spans, traces, services and anomalies of DUMPS.

    \b
    Examples:
      tracegroup info fixtures/polyglot.pb
      tracegroup info capture/ --format json
    """
    table = load_table(dumps, service_attribute, keep_going, quiet, warm="start")  # the clock-skew check
    data = dump_info(table, tree.build(table))
    click.echo(render.to_json(data) if fmt == "json" else render.info_text(data), nl=False)


@click.command(name="analyze")
@load_options
@grouping_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--top", default=10, show_default=True, help="Worst traces to list.")
@click.option(
    "--fail-on-misgrouped",
    type=Share(),
    help="Exit 1 when the share of spans the compared rule gets wrong (dropped included, incomplete "
    "transactions excluded) exceeds this ratio.",
)
@memory_option
@errors
def analyze_cmd(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    fmt: str,
    top: int,
    fail_on_misgrouped: float | None,
    memory: int,
    **opts: Any,
) -> None:
    """How the compared strategy grouped DUMPS against one transaction per application boundary.

    \b
    Examples:
      tracegroup analyze fixtures/polyglot.pb
      tracegroup analyze dump.pb --routes service --fail-on-misgrouped 0.01
      tracegroup analyze day-of-capture/ --memory 2GB
    """
    summary = spilled_summary(dumps, service_attribute, quiet, memory, top, opts)
    if summary is None:
        table = load_table(dumps, service_attribute, keep_going, quiet)
        with Status(quiet) as status:
            status(f"grouping {len(table):,} spans")
            summary = analysis_from(table, opts).summary(top=top)
    click.echo(render.to_json(summary) if fmt == "json" else render.analysis_text(summary, top), nl=False)
    if fail_on_misgrouped is not None and summary["blamed"]["ratio"] > fail_on_misgrouped:
        click.echo(
            f"tracegroup: {summary['blamed']['ratio']:.2%} of spans mis-grouped or dropped "
            f"(limit {fail_on_misgrouped:.2%})",
            err=True,
        )
        sys.exit(1)


@click.command()
@load_options
@grouping_options
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default="csv", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Output file (default stdout)."
)
@click.option("--no-details", is_flag=True, help="Only the contract columns: skip attributes, events, links.")
@click.option("--redact", is_flag=True, help="Scrub credentials, e-mail and IP addresses (docs/redact.md).")
@redact_key_option
@memory_option
@errors
def spans(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    fmt: str,
    output: str | None,
    no_details: bool,
    redact: bool,
    redact_keys: tuple[str, ...],
    memory: int,
    **opts: Any,
) -> None:
    """One row per span with its transaction under both groupings and its verdict.

    \b
    Examples:
      tracegroup spans fixtures/polyglot.pb -o spans.csv
      tracegroup spans dump.pb --format parquet -o spans.parquet
      tracegroup spans day-of-capture/ --format parquet -o spans.parquet --memory 2GB
    """
    from tracegroup.frames import file_chunks
    from tracegroup.render.tables import write_frames

    policy = policy_from(redact, redact, redact_keys, service_attribute) if redact or redact_keys else None
    spilled = spilled_frames(dumps, service_attribute, quiet, memory, opts, not no_details, policy)
    if spilled is not None:
        write_frames(spilled, fmt, output)
        return
    table = load_table(dumps, service_attribute, keep_going, quiet, warm=True)
    if redact or redact_keys:  # names and details come from scrubbed bytes; ids and groupings are unchanged
        from tracegroup.redact import redact_table

        table = redact_table(table, policy_from(redact, redact, redact_keys, service_attribute))
    frames = file_chunks(table, analysis_from(table, opts), details=not no_details)
    write_frames(shown(frames, quiet, len(table)), fmt, output)


@click.command()
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
@with_routes_options
@click.option(
    "--boundary",
    default="service",
    show_default=True,
    type=click.Choice(["service", "service+remote"]),
    help="The reference's boundary, as for analyze.",
)
@click.option("--heal", is_flag=True, help="Repair incomplete reference transactions first, as for analyze.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_pipeline_options
@in_memory_option
@errors
def whatif(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    memory: int,
    vary: tuple[str, ...],
    strategies: str,
    target: float,
    fmt: str,
    **opts: Any,
) -> None:
    """Mis-grouped, dropped and incomplete spans under other pipeline settings, and what to change.

    The first rows are the capture itself and the model with settings fitted to it; the varied rows
    start from the fitted settings unless simulation options (--batch-size, --sdk-batch, …) are given.

    \b
    Examples:
      tracegroup whatif fixtures/polyglot.pb --vary batch-size=64,512,8192 --vary wait=1s,5s
      tracegroup whatif dump.pb --routes routes.toml --replicas 3
    """
    from tracegroup.whatif import parse_vary

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        if name not in STRATEGIES:
            raise click.BadParameter(f"unknown strategy {name!r}", param_hint="--strategies")
    grid = parse_vary(vary)
    require_memory(dumps, memory, "whatif")
    table = load_table(dumps, service_attribute, keep_going, quiet)
    with Status(quiet) as status:
        result = whatif_from(table, opts, grid, names, target, progress=status)
    if fmt == "json":
        click.echo(render.to_json(result.as_dict()), nl=False)
    else:
        click.echo(render.whatif_text(result.rows, result.recommendation, result.as_dict()["fit"]), nl=False)
