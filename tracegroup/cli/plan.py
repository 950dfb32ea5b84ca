"""``tracegroup plan``: the fix, ready to paste — causes, verified remedies, collector YAML, SDK settings.

Contract: the command loads DUMPS and makes one :func:`tracegroup.fixplan.fix_plan` call (routes from
``--routes``; the pipeline settings fitted to the capture unless simulation options are given;
``--replicas`` as today's collector count); the result is drawn by
:func:`tracegroup.render.text.plan_text` or printed as JSON. ``--out DIR`` also writes each remedy's
collector configuration as ``DIR/collector-<target>.yaml`` (and a loadbalancing tier's as
``DIR/collector-<target>-<tier>.yaml``).
"""

from __future__ import annotations

from typing import Any

import click

from tracegroup import render
from tracegroup.cli.common import (
    Status,
    errors,
    given_pipeline_options,
    in_memory_option,
    load_options,
    load_table,
    pipeline_from,
    require_memory,
    routes_from,
    routes_value,
    with_pipeline_options,
    with_routes_options,
)
from tracegroup.fixplan import TARGETS, fix_plan


@click.command()
@load_options
@with_routes_options
@click.option(
    "--target",
    "targets",
    multiple=True,
    type=click.Choice(TARGETS),
    help="Collector generation(s) to write a remedy for (repeatable; default all): legacy (sentry "
    "exporter ≤ v0.144), sentry (≥ v0.145), otlphttp (Sentry's OTLP endpoint).",
)
@click.option("--out", type=click.Path(file_okay=False), help="Also write each configuration into DIR.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@with_pipeline_options
@in_memory_option
@errors
def plan(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    memory: int,
    targets: tuple[str, ...],
    out: str | None,
    fmt: str,
    **opts: Any,
) -> None:
    """What to change so every application boundary becomes one Sentry transaction: the causes found in
    DUMPS, and for each collector generation a complete configuration, verified by simulating it on the
    same spans, with what it leaves unfixed; SDK settings per service; services that must set the
    parent-remote flag (see docs/plan.md).

    \b
    Examples:
      tracegroup plan fixtures/polyglot.pb
      tracegroup plan dump.pb --routes routes.toml --target legacy --out fix/
      tracegroup plan dump.pb --replicas 3 --format json
    """
    require_memory(dumps, memory, "plan")
    table = load_table(dumps, service_attribute, keep_going, quiet)
    base = pipeline_from(opts) if given_pipeline_options() else None
    routes = routes_from(routes_value(opts))
    with Status(quiet) as status:
        result = fix_plan(table, routes, base, opts.get("replicas", 1), targets or TARGETS, progress=status)
    if out:
        result.write(out)
    text = render.to_json(result.as_dict()) if fmt == "json" else render.text.plan_text(result.as_dict())
    click.echo(text, nl=False)
