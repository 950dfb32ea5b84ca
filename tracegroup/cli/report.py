"""``tracegroup report``: one self-contained HTML file of an analysis, to look at and to share.

Contract: the command takes the load and grouping options of ``analyze`` (the same decorators), builds
the same Analysis, makes one library call (:meth:`tracegroup.explore.Explorer.report`, with the what-if
result of :func:`tracegroup.cli.common.whatif_from` when ``--whatif`` is given, exactly what ``tracegroup
whatif`` computes) and hands the data to one renderer (:func:`tracegroup.render.html.report_html`). It
writes the file and says on stderr how big it is, how many bytes per embedded span, and what was left
out beyond ``--max-spans``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tracegroup.cli.common import (
    Status,
    analysis_from,
    errors,
    grouping_options,
    load_options,
    load_table,
    whatif_from,
)
from tracegroup.report import REPORT_MAX_SPANS


@click.command()
@load_options
@grouping_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The HTML file to write.",
)
@click.option(
    "--max-spans",
    type=click.IntRange(0),
    default=REPORT_MAX_SPANS,
    show_default=True,
    help="Embed the trace views of the worst traces up to N spans in all (0 = every trace); the page "
    "says what it left out.",
)
@click.option("--top", default=10, show_default=True, help="Worst traces to list.")
@click.option(
    "--whatif",
    "with_whatif",
    is_flag=True,
    help="Add the what-if table (tracegroup whatif's default grid and recommendation).",
)
@click.option(
    "--vary",
    multiple=True,
    metavar="SETTING=V1,V2,…",
    help="With --whatif: a setting and its values (repeatable; default: the grid of tracegroup whatif).",
)
@click.option(
    "--details/--no-details",
    default=True,
    show_default=True,
    help="Embed each span's attributes, status, events, links and resource (shown when a row is clicked).",
)
@click.option(
    "--keep-secrets",
    is_flag=True,
    help="Do not redact credentials in URLs and secret-looking query values (redacted by default, as emit).",
)
@errors
def report(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    output: str,
    max_spans: int,
    top: int,
    with_whatif: bool,
    vary: tuple[str, ...],
    details: bool,
    keep_secrets: bool,
    **opts: Any,
) -> None:
    """One self-contained HTML file: the analyze summary, causes, per service, worst traces, the what-if
    table with --whatif, and an interactive view of every embedded trace (see docs/report.md).

    \b
    Examples:
      tracegroup report fixtures/polyglot.pb -o report.html
      tracegroup report dump.pb --whatif --vary batch-size=64,8192 -o report.html
      tracegroup report capture/ --max-spans 20000 --routes service -o report.html
    """
    from tracegroup.explore import Explorer
    from tracegroup.render.html import data_bytes, report_html
    from tracegroup.whatif import parse_vary

    if vary and not with_whatif:
        raise click.UsageError("--vary only applies with --whatif")
    grid = parse_vary(vary)
    table = load_table(dumps, service_attribute, keep_going, quiet)
    explorer = Explorer(table)
    with Status(quiet) as status:
        status("grouping")
        an = analysis_from(table, opts)
        extra = None
        if with_whatif:
            extra = whatif_from(table, opts, grid, (opts["compare"],), progress=status).as_dict()
        status("building the report")
        data = explorer.report(
            analysis=an,
            max_spans=max_spans,
            top=top,
            whatif=extra,
            keep_secrets=keep_secrets,
            details=details,
        )
        status("writing the page")
        page = report_html(data)
    Path(output).write_text(page, encoding="utf-8")
    if not quiet:
        e = data["embedded"]
        size = len(page.encode("utf-8"))
        per = f", {data_bytes(data) / e['spans']:.0f} bytes of data per span" if e["spans"] else ""
        left = (
            f"; left out {e['left_out_traces']:,} traces ({e['left_out_spans']:,} spans) beyond --max-spans"
            if e["left_out_traces"]
            else ""
        )
        click.echo(
            f"tracegroup: wrote {output} ({size:,} bytes; {e['traces']:,} traces, {e['spans']:,} spans "
            f"embedded{per}{left})",
            err=True,
        )
