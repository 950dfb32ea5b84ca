"""``tracegroup capture``: record what an OTLP exporter sends, as a file-exporter dump (docs/capture.md).

Contract: the command turns its options into :class:`tracegroup.capture.CaptureOptions` and makes one
library call, :func:`tracegroup.capture.capture`; it prints the ready line
(:func:`tracegroup.render.text.capture_ready`) and, on a terminal, the status line
(:func:`~tracegroup.render.text.capture_status`) on stderr, and the summary
(:func:`~tracegroup.render.text.capture_text`) on stdout. Exit 0 when it stopped as asked (``--for``,
``--max-spans``, SIGINT, SIGTERM); 1 when a write failed (disk full): the summary still says what the
files hold; 2 for bad options or an address it cannot listen on, one line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tracegroup import render
from tracegroup.capture import DEFAULT_HTTP, CaptureError, CaptureOptions, CaptureStats, MiB, capture
from tracegroup.cli.common import Duration, errors, fail


@click.command(name="capture")
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the capture files (created; numbering goes on after files already there).",
)
@click.option(
    "--listen",
    default=DEFAULT_HTTP,
    show_default=True,
    help="OTLP/HTTP address (POST /v1/traces); 'none' for no HTTP receiver.",
)
@click.option(
    "--grpc",
    metavar="HOST:PORT",
    help="Also receive OTLP/gRPC here, e.g. 127.0.0.1:4317 (pip install 'tracegroup[capture]').",
)
@click.option("--for", "duration", type=Duration(), help="Stop after this long (30s, 10m).")
@click.option(
    "--max-spans",
    type=click.IntRange(1),
    help="Stop once this many spans were captured (the request reaching it is kept whole).",
)
@click.option(
    "--rotate-mb",
    type=click.FloatRange(0, min_open=True),
    default=100.0,
    show_default=True,
    help="Start a new file when the next message would take the current one past this size.",
)
@click.option(
    "--max-request-mb",
    type=click.FloatRange(0, min_open=True),
    default=64.0,
    show_default=True,
    help="Refuse larger request bodies (413), compressed or decoded.",
)
@click.option("--quiet", "-q", is_flag=True, help="No ready line or status line on stderr.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="The summary at the end: text, or one JSON document of the counts.",
)
@errors
def capture_cmd(
    out: Path,
    listen: str,
    grpc: str | None,
    duration: float | None,
    max_spans: int | None,
    rotate_mb: float,
    max_request_mb: float,
    quiet: bool,
    fmt: str,
) -> None:
    """Receive OTLP traces (HTTP, and gRPC with --grpc) and write each export request as one message
    of a file-exporter dump under OUT, with its arrival time; stop with Ctrl-C, SIGTERM, --for or
    --max-spans.

    \b
    Examples:
      tracegroup capture -o capture/ --for 10m
      tracegroup capture -o capture/ --listen 127.0.0.1:14318 --grpc 127.0.0.1:14317 --max-spans 100000
      tracegroup info capture/
    """
    options = CaptureOptions(
        out,
        listen=None if listen.strip().lower() == "none" else listen,
        grpc=grpc,
        duration_s=None if duration is None else duration / 1000,
        max_spans=max_spans,
        rotate_bytes=max(1, int(rotate_mb * MiB)),
        max_request_bytes=max(1, int(max_request_mb * MiB)),
    )
    if options.listen is None and options.grpc is None:
        fail("--listen none needs --grpc: nothing would receive")
    tty = not quiet and sys.stderr.isatty()

    def ready(cap: Any) -> None:
        if not quiet:
            click.echo(render.capture_ready(cap.stats().as_dict()), err=True)

    def status(stats: CaptureStats) -> None:
        click.echo("\r" + render.capture_status(stats.as_dict()) + "\x1b[K", err=True, nl=False)

    try:
        result = capture(options, status=status if tty else None, ready=ready)
    except CaptureError as err:
        fail(str(err))
    if tty:
        click.echo("", err=True)
    summary = result.as_dict()
    click.echo(render.to_json(summary) if fmt == "json" else render.capture_text(summary), nl=False)
    if result.error:
        click.echo(
            f"tracegroup: error: {result.error}; the capture stopped, its files are complete", err=True
        )
        sys.exit(1)
