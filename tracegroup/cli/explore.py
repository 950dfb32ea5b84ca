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
from click.core import ParameterSource

from tracegroup.analysis import Analysis
from tracegroup.cli.common import (
    Status,
    analysis_from,
    errors,
    grouping_options,
    load_options,
    load_table,
    whatif_from,
)
from tracegroup.diff import VERDICTS
from tracegroup.explore import Explorer
from tracegroup.layout import DEFAULT_COLLAPSE, DEFAULT_MAX_SPANS
from tracegroup.render.json import to_json

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


def _drawing_options(f: Any) -> Any:
    """The options of :meth:`tracegroup.explore.TraceView.layout` that ``show`` and ``plot`` share."""
    for deco in reversed(
        (
            click.option(
                "--max-spans",
                type=click.IntRange(0),
                default=DEFAULT_MAX_SPANS,
                show_default=True,
                help="Draw at most N rows: every span not ok and its path to the root first, then "
                "transaction roots, then the rest in tree order; says what was left out (0 = all).",
            ),
            click.option(
                "--collapse",
                type=click.IntRange(0),
                default=DEFAULT_COLLAPSE,
                show_default=True,
                help="Collapse at least N alike siblings (same name, service, verdict, reason, exporter "
                "call, transactions) into one row with a count (0 = never).",
            ),
            click.option("--only-bad", is_flag=True, help="Only spans not ok (their ancestors as context)."),
            click.option(
                "--verdict",
                "verdicts",
                multiple=True,
                type=click.Choice(VERDICTS),
                help="Only spans with this verdict (repeatable; ancestors as context).",
            ),
            click.option(
                "--service",
                "services",
                multiple=True,
                metavar="S",
                help="Only spans of service S (repeatable).",
            ),
            click.option(
                "--depth", type=click.IntRange(0), help="Only spans at most N deep (0 = the roots)."
            ),
        )
    ):
        f = deco(f)
    return f


def _layout(
    max_spans: int,
    collapse: int,
    only_bad: bool,
    verdicts: tuple[str, ...],
    services: tuple[str, ...],
    depth: int | None,
) -> dict[str, Any]:
    return {
        "max_spans": max_spans,
        "collapse": collapse,
        "only_bad": only_bad,
        "verdict": list(verdicts) or None,
        "service": list(services) or None,
        "depth": depth,
    }


@click.command()
@load_options
@grouping_options
@click.option("--trace", "trace_id", metavar="ID", help="Trace id (hex, 16 or 32 chars; default: the worst).")
@_drawing_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: the tree; json: the trace's facts and one object per span (not collapsed unless "
    "--collapse is given) with both transactions, verdict, reason, batch (exporter call) and depth.",
)
@errors
def show(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    trace_id: str | None,
    max_spans: int,
    collapse: int,
    only_bad: bool,
    verdicts: tuple[str, ...],
    services: tuple[str, ...],
    depth: int | None,
    fmt: str,
    **opts: Any,
) -> None:
    """One trace as an indented tree: each span with the exporter call it came in and its transaction
    under both groupings.

    \b
    Examples:
      tracegroup show fixtures/polyglot.pb
      tracegroup show dump.pb --trace 47c657d05b819aa436bd0ff4d36ddb18 --only-bad
      tracegroup show dump.pb --service checkout --depth 3 --format json
    """
    explorer = Explorer(load_table(dumps, service_attribute, keep_going, quiet))
    an = analysis_from(explorer.table, opts)
    view = explorer.trace(_trace_id(explorer, an, trace_id, quiet), analysis=an)
    layout = _layout(max_spans, collapse, only_bad, verdicts, services, depth)
    if fmt == "json":
        if click.get_current_context().get_parameter_source("collapse") is ParameterSource.DEFAULT:
            layout["collapse"] = 0
        click.echo(to_json(view.records(**layout)), nl=False)
    else:
        click.echo(view.text(**layout), nl=False)


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
@_drawing_options
@click.option(
    "--vary",
    multiple=True,
    metavar="SETTING=V1,V2,…",
    help="whatif: a setting and its values (repeatable; default: the grid of tracegroup whatif).",
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
    collapse: int,
    only_bad: bool,
    verdicts: tuple[str, ...],
    services: tuple[str, ...],
    depth: int | None,
    vary: tuple[str, ...],
    dpi: int,
    **opts: Any,
) -> None:
    """Draw a figure of DUMPS into an image file (the notebook's figures).

    \b
    Examples:
      tracegroup plot fixtures/polyglot.pb -o waterfall.png
      tracegroup plot dump.pb --trace 47c657d05b819aa436bd0ff4d36ddb18 --max-spans 80 -o big.png
      tracegroup plot dump.pb --kind whatif --vary batch-size=64,8192 -o whatif.png
    """
    from tracegroup.render import plot as figures
    from tracegroup.whatif import parse_vary

    figures.image_format(output)  # a bad -o fails before the analysis
    grid = parse_vary(vary) if kind == "whatif" else {}
    table = load_table(dumps, service_attribute, keep_going, quiet)
    if kind == "whatif":
        with Status(quiet) as status:
            result = whatif_from(table, opts, grid, (opts["compare"],), progress=status)
        fig = figures.whatif_curves(result.frame, result.base_values())
        if not quiet:
            click.echo(f"tracegroup: {result.recommendation}", err=True)
    else:
        an = analysis_from(table, opts)
        if kind == "overview":
            fig = figures.overview(an)
        else:
            explorer = Explorer(table)
            chosen = _trace_id(explorer, an, trace_id, quiet)
            layout = _layout(max_spans, collapse, only_bad, verdicts, services, depth)
            fig = explorer.trace(chosen, analysis=an).waterfall(**layout)
    fig.savefig(output, dpi=dpi)
    if not quiet:
        click.echo(f"tracegroup: wrote {output}", err=True)
