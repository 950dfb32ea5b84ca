"""``tracegroup show`` and ``tracegroup plot``: one trace as a text tree, figures as image files.

Contract: both commands take the load and grouping options of ``analyze`` (the same decorators, so
``--compare``, ``--batches``, ``--routes``, the simulation settings … mean the same), build the same
Analysis, and call one library method each — :meth:`tracegroup.explore.Explorer.show`,
:meth:`~tracegroup.explore.Explorer.waterfall` or a :mod:`tracegroup.render.plot` function — exactly what a
notebook calls. Without ``--trace`` they take the worst trace (most spans not ``ok``) and say so on
stderr. A trace id not in the dump, or a malformed one, is a usage error (exit 2). matplotlib is imported
only when ``plot`` runs; this module is imported by :mod:`tracegroup.cli` at start-up and imports nothing
heavy itself.
"""

from __future__ import annotations

from typing import Any

import click

from tracegroup.analysis import Analysis
from tracegroup.cli.common import (
    analysis_from,
    errors,
    grouping_options,
    load_options,
    load_table,
    pipeline_from,
    routes_from,
    routes_value,
)
from tracegroup.explore import Explorer

WORST_NOTE = "no --trace given: showing the worst trace, {trace} ({not_ok} spans not ok)"


def _trace_id(explorer: Explorer, an: Analysis, trace_id: str | None, quiet: bool) -> str:
    """The requested trace id, checked, or the worst trace's (announced on stderr)."""
    if trace_id is None:
        if not len(explorer.table):
            raise click.UsageError("the dump holds no spans")
        worst = explorer.worst_trace(analysis=an)
        if not quiet:
            per = an.diff.by_arrays("trace")
            code = explorer.trace_code(worst)
            not_ok = int(per["spans"][code] - per["ok"][code])
            click.echo(f"tracegroup: {WORST_NOTE.format(trace=worst, not_ok=f'{not_ok:,}')}", err=True)
        return worst
    try:
        explorer.trace_code(trace_id)
    except (KeyError, ValueError) as err:
        raise click.BadParameter(str(err.args[0]), param_hint="--trace") from None
    return trace_id


@click.command()
@load_options
@grouping_options
@click.option("--trace", "trace_id", metavar="ID", help="Trace id (hex, 16 or 32 chars; default: the worst).")
@click.option(
    "--max-spans",
    type=click.IntRange(0),
    default=500,
    show_default=True,
    help="Show the first N spans in tree order and say what was left out (0 = all).",
)
@errors
def show(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    trace_id: str | None,
    max_spans: int,
    **opts: Any,
) -> None:
    """One trace as an indented tree: each span with its transaction under both groupings.

    \b
    Examples:
      tracegroup show fixtures/polyglot.pb
      tracegroup show dump.pb --trace 47c657d05b819aa436bd0ff4d36ddb18
    """
    explorer = Explorer(load_table(dumps, service_attribute, keep_going, quiet))
    an = analysis_from(explorer.table, opts)
    text = explorer.show(_trace_id(explorer, an, trace_id, quiet), analysis=an, max_spans=max_spans)
    click.echo(text, nl=False)


@click.command()
@load_options
@grouping_options
@click.option(
    "--kind",
    type=click.Choice(["waterfall", "overview", "whatif"]),
    default="waterfall",
    show_default=True,
    help="waterfall: one trace under both groupings; overview: mis-grouped share by service and trace "
    "size; whatif: curves against pipeline settings.",
)
@click.option("--trace", "trace_id", metavar="ID", help="waterfall: trace id (default: the worst trace).")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Image file; the format follows the extension (png, svg, pdf).",
)
@click.option(
    "--max-spans", type=click.IntRange(0), default=0, help="waterfall: first N spans in tree order (0 = all)."
)
@click.option(
    "--vary",
    multiple=True,
    metavar="SETTING=V1,V2,…",
    help="whatif: a setting and its values (repeatable; default batch-size and sdk-batch grids).",
)
@click.option("--dpi", type=click.IntRange(20, 600), default=110, show_default=True)
@errors
def plot(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    kind: str,
    trace_id: str | None,
    output: str,
    max_spans: int,
    vary: tuple[str, ...],
    dpi: int,
    **opts: Any,
) -> None:
    """Draw a figure of DUMPS into an image file (the notebook's figures).

    \b
    Examples:
      tracegroup plot fixtures/polyglot.pb -o waterfall.png
      tracegroup plot dump.pb --kind whatif --vary batch-size=64,8192 -o whatif.png
    """
    from tracegroup.render import plot as figures
    from tracegroup.whatif import parse_vary

    grid = parse_vary(vary) if kind == "whatif" else {}
    table = load_table(dumps, service_attribute, keep_going, quiet)
    if kind == "whatif":
        from tracegroup.whatif import whatif

        result = whatif(
            table,
            vary=grid,
            strategies=(opts["compare"],),
            base=pipeline_from(opts),
            routes=routes_from(routes_value(opts)),
        )
        fig = figures.whatif_curves(result.frame)
        if not quiet:
            click.echo(f"tracegroup: {result.recommendation}", err=True)
    else:
        an = analysis_from(table, opts)
        if kind == "overview":
            fig = figures.overview(an)
        else:
            explorer = Explorer(table)
            chosen = _trace_id(explorer, an, trace_id, quiet)
            fig = explorer.waterfall(chosen, analysis=an, max_spans=max_spans or None)
    fig.savefig(output, dpi=dpi)
    if not quiet:
        click.echo(f"tracegroup: wrote {output}", err=True)
