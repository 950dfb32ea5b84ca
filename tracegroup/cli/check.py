"""``tracegroup check``: groupings of fixture dumps against committed golden files (CI regression).

Contract: one :func:`tracegroup.check.check_fixture` call per fixture, one summary line each and the
diffs, truncated to ``--max-diff-lines`` (drawn by :func:`tracegroup.render.text.check_text`), or with
``--format json`` one document of every :meth:`~tracegroup.check.FixtureResult.summary`; errors and load
warnings go to stderr. The exit code is the worst status: 0 equal/updated, 1 differ, 2 error. Options not
given come from each golden file's header (see :mod:`tracegroup.check`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tracegroup.batching import BATCHES
from tracegroup.check import check_fixture, golden_path
from tracegroup.cli.common import _deprecated_routing, memory_option
from tracegroup.grouping import STRATEGIES
from tracegroup.render.json import to_json
from tracegroup.render.text import check_text


@click.command()
@click.argument("fixtures", nargs=-1, required=True, type=click.Path())
@click.option(
    "--expected",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory of golden files (<fixture name>.golden.jsonl).",
)
@click.option("--update", is_flag=True, help="Rewrite the golden files from the current groupings.")
@click.option(
    "--accept-warnings",
    is_flag=True,
    help="Let --update write a golden file from a dump that loaded with warnings (damaged input).",
)
@click.option(
    "--compare", type=click.Choice(sorted(STRATEGIES)), help="Compared strategy (default sentryexporter)."
)
@click.option(
    "--reference", type=click.Choice(sorted(STRATEGIES)), help="Reference strategy (default service)."
)
@click.option("--boundary", type=click.Choice(["service", "service+remote"]), help="Application boundary.")
@click.option("--batches", type=click.Choice(BATCHES), help="Exporter calls (as for analyze).")
@click.option("--routes", help="none, service, or a routes file (as for analyze).")
@click.option("--routing", "routing_deprecated", hidden=True, callback=_deprecated_routing)
@click.option("--service-attribute", help="Resource attribute that names a service (default service.name).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one document with every fixture's status, message, diff and load warnings.",
)
@click.option(
    "--max-diff-lines",
    default=80,
    show_default=True,
    type=click.IntRange(min=0),
    help="Diff lines shown per fixture (0: all).",
)
@memory_option
def check(
    fixtures: tuple[str, ...],
    expected: str,
    update: bool,
    accept_warnings: bool,
    max_diff_lines: int,
    fmt: str,
    memory: int,
    **overrides: Any,
) -> None:
    """Compare each FIXTURE's groupings with its golden file in --expected DIR.

    Options not given on the command line come from the golden file's header, else the analyze
    defaults. Exit 0 when every fixture matches (or was updated), 1 when one differs, 2 on bad input or
    a missing golden file.

    \b
    Examples:
      tracegroup check fixtures/polyglot.pb --expected fixtures/expected
      tracegroup check capture/dump.pb --expected capture/expected --update
      tracegroup check day-of-capture/ --expected expected/ --memory 2GB
    """
    routes = overrides.pop("routes", None) or overrides.pop("routing_deprecated", None)
    overrides.pop("routing_deprecated", None)
    overrides["routes"] = routes
    seen: dict[Path, str] = {}
    for f in fixtures:
        g = golden_path(f, expected)
        if g in seen and seen[g] != f:
            click.echo(f"tracegroup: error: {seen[g]} and {f} would share the golden file {g}", err=True)
            sys.exit(2)
        seen[g] = f
    worst = 0
    results = []
    for f in fixtures:  # every fixture is checked and reported, then the worst status is the exit code
        r = check_fixture(
            f, expected, overrides, update=update, accept_warnings=accept_warnings, memory=memory
        )
        results.append(r.summary())
        worst = max(worst, r.exit_code)
        for w in r.warnings:
            click.echo(f"tracegroup: warning: {w}", err=True)
        if r.status == "error":
            click.echo(f"tracegroup: error: {r.message}", err=True)
        elif fmt == "text":
            click.echo(check_text(r, max_diff_lines), nl=False)
    if fmt == "json":
        click.echo(to_json({"fixtures": results, "exit_code": worst}), nl=False)
    if worst == 1:
        click.echo(
            "tracegroup: groupings differ from the golden files; if the change is intended, "
            "rerun with --update and commit the golden files",
            err=True,
        )
    sys.exit(worst)
