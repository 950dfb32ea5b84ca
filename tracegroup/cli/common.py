"""What every ``tracegroup`` command shares: error handling, loading, and the option groups.

Contract: :func:`errors` turns bad input (``LoadError``, ``ValueError``, ``OSError``) into one line on
stderr naming the file and the problem, exit code 2, never a traceback. :func:`load_table` loads dumps with
progress and warnings on stderr, and for a damaged file what it held versus what loaded. The option
decorators (:func:`load_options`, :func:`grouping_options`, :data:`pipeline_options`,
:func:`send_options`, :data:`delivery_options`) give every command the same names, defaults and help, and
the ``*_from`` functions turn their values into the library's arguments. The routes option is ``--routes``
everywhere; the old spelling ``--routing`` still works with a deprecation warning. Past ``--memory``
(:func:`memory_option`), :func:`spill_files` refuses what cannot stream in one line and
:func:`spilled_summary`, :func:`spilled_frames` and :func:`spilled_emit` run ``analyze``, ``spans`` and
``emit`` through the spill (docs/scale.md) with the same progress and warnings on stderr.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from tracegroup import render
from tracegroup.analysis import Analysis, analyze
from tracegroup.batching import BATCHES, default_batches
from tracegroup.grouping import STRATEGIES
from tracegroup.load import LoadError, load
from tracegroup.model import SpanTable, held_text
from tracegroup.pipeline import PipelineOptions, parse_duration_ms
from tracegroup.routes import Routes, load_routes

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    click.echo(f"tracegroup: error: {message}", err=True)
    sys.exit(2)


def closed_pipe() -> NoReturn:
    """stdout's reader is gone: point stdout at /dev/null so the final flush cannot fail; exit 0 quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


def errors(fn: F) -> F:
    """Turn bad input into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoadError as err:
            fail(str(err))
        except ValueError as err:
            fail(str(err))
        except BrokenPipeError:
            closed_pipe()  # the reader went away (``| head``)
        except OSError as err:
            fail(f"{getattr(err, 'filename', '') or ''}: {err.strerror or err}")

    return wrapper  # type: ignore[return-value]


def load_table(
    dumps: tuple[str, ...], service_attribute: str, keep_going: bool, quiet: bool, warm: bool | str = False
) -> SpanTable:
    """Load with progress and warnings on stderr; ``warm``: the command will need span times and flags."""
    show = not quiet and sys.stderr.isatty()

    def progress(path: str, spans: int, files: int) -> None:
        click.echo(f"\rloaded {path} ({spans:,} spans so far, {files} files)", err=True, nl=False)

    table = load(
        dumps,
        service_attribute=service_attribute,
        keep_going=keep_going,
        progress=progress if show else None,
        warm=warm,
    )
    if show:
        click.echo("", err=True)
    if not quiet:
        for s in table.sources:
            for w in s.warnings:
                click.echo(f"tracegroup: warning: {w}", err=True)
            if held := held_text(s.as_dict()):
                click.echo(f"tracegroup: {s.path}: {held}", err=True)
    return table


class Status:
    """One status line on stderr, rewritten in place while long work runs (what the library says it is
    doing) and cleared at the end; silent with ``--quiet`` and when stderr is not a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.on = not quiet and sys.stderr.isatty()
        self.width = 0

    def __call__(self, text: str) -> None:
        if self.on:
            click.echo("\r" + text.ljust(self.width), err=True, nl=False)
            self.width = len(text)

    def __enter__(self) -> Status:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on and self.width:
            click.echo("\r" + " " * self.width + "\r", err=True, nl=False)
            self.width = 0


def shown(frames: Iterable[Any], quiet: bool, total: int) -> Iterator[Any]:
    """``frames`` passed through, with ``wrote N of M spans`` on a terminal's stderr (not with ``quiet``)."""
    show = not quiet and sys.stderr.isatty()
    done = 0
    for frame in frames:
        yield frame
        done += len(frame)
        if show:
            click.echo(f"\rwrote {done:,} of {total:,} spans", err=True, nl=False)
    if show:
        click.echo("", err=True)


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


def _deprecated_routing(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        click.echo("tracegroup: warning: --routing is deprecated, use --routes", err=True)
    return value


#: ``--routes none|service|FILE`` and its deprecated spelling ``--routing`` (hidden).
routes_options = [
    click.option(
        "--routes",
        default="none",
        show_default=True,
        help="none, service (one exporter per service), or a routes file (TOML/YAML).",
    ),
    click.option("--routing", "routing_deprecated", hidden=True, callback=_deprecated_routing),
]


def with_routes_options(fn: F) -> F:
    for deco in reversed(routes_options):
        fn = deco(fn)
    return fn


def routes_value(opts: dict[str, Any]) -> str:
    """The ``--routes`` value, or the deprecated ``--routing`` one when only that was given."""
    old = opts.pop("routing_deprecated", None)
    return old if old is not None and opts.get("routes", "none") == "none" else opts.get("routes", "none")


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
                type=click.Choice(BATCHES),
                help="Exporter calls: captured messages (default for multi-message dumps), one per trace "
                "(default otherwise), the whole dump, or a simulated pipeline (simulate, groupbytrace).",
            ),
            *routes_options,
            click.option(
                "--heal", is_flag=True, help="Repair incomplete transactions (listed in the report)."
            ),
            *pipeline_options,
        ]
    ):
        fn = deco(fn)
    return fn


class Share(click.ParamType):
    """A share of spans: a ratio from 0 to 1 (``0.05``) or a percentage (``5%``)."""

    name = "ratio"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = str(value).strip()
        try:
            share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            self.fail(f"{value!r} is not a ratio (0.05) or a percentage (5%)", param, ctx)
        if not 0 <= share <= 1:
            self.fail(f"{value!r} is not between 0 and 1 (0% and 100%)", param, ctx)
        return share


class MemorySize(click.ParamType):
    """A memory size: ``64MB``, ``1.5GB``, ``512MiB`` or bytes; ``auto`` is half the machine's memory."""

    name = "size"
    UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
    UNITS.update({"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40, "K": 10**3, "M": 10**6})
    UNITS.update({"G": 10**9})

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper()
        if text == "AUTO":
            from tracegroup.spill import default_memory

            return default_memory()
        number = text.rstrip("KMGTIB")
        unit = text[len(number) :]
        try:
            size = float(number) * self.UNITS[unit]
        except (ValueError, KeyError):
            self.fail(f"{value!r} is not a size like 64MB, 1.5GB or 512MiB", param, ctx)
        if not size > 0:
            self.fail(f"{value!r} is not a positive size", param, ctx)
        return int(size)


def memory_option(fn: F) -> F:
    """``--memory SIZE``: past this estimate the command streams through an on-disk spill."""
    return click.option(
        "--memory",
        type=MemorySize(),
        default="auto",
        show_default=True,
        help="Memory budget (64MB, 2GB; auto: half the machine's). Dumps needing more stream through an "
        "on-disk Parquet spill partitioned by trace (docs/scale.md).",
    )(fn)


def in_memory_option(fn: F) -> F:
    """``--memory SIZE`` of a command that needs every span in memory: past the estimate it refuses
    (:func:`require_memory`) instead of running out of memory."""
    return click.option(
        "--memory",
        type=MemorySize(),
        default="auto",
        show_default=True,
        help="Memory budget (64MB, 2GB; auto: half the machine's). This command needs every span in "
        "memory: a dump needing more is refused in one line naming the memory needed (docs/scale.md).",
    )(fn)


def require_memory(dumps: tuple[str, ...], memory: int, what: str) -> None:
    """Refuse (one line naming the memory needed) when ``dumps`` need more than ``memory`` in memory."""
    from tracegroup.load import expand_paths
    from tracegroup.spill import memory_needed, refuse

    needed = memory_needed(expand_paths(dumps))
    if needed > memory:
        raise refuse(what, needed, memory)


class Duration(click.ParamType):
    """A duration like ``200ms``, ``5s``, ``1.5s`` or ``100us``, as milliseconds (bare numbers are ms):
    :func:`tracegroup.pipeline.parse_duration_ms`."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return parse_duration_ms(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


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
    click.option(
        "--replicas",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Collector instances behind a round-robin load balancer (each SDK export goes to one).",
    ),
    click.option(
        "--loadbalancing",
        is_flag=True,
        help="With --replicas: a loadbalancing exporter tier routes spans to the replicas by trace id.",
    ),
]
#: Parameter names of ``pipeline_options``: they apply only to a simulated pipeline.
PIPELINE_PARAMS = (
    "sdk_delay",
    "sdk_batch",
    "sdk_queue",
    "sdk_export_time",
    "batch_size",
    "batch_max_size",
    "batch_timeout",
    "wait",
    "replicas",
    "loadbalancing",
)


def given_pipeline_options() -> list[str]:
    """The simulation options given on the command line (or environment), as ``--flag`` names."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return []
    given = []
    for name in PIPELINE_PARAMS:
        source = ctx.get_parameter_source(name)
        if source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
            given.append("--" + name.replace("_", "-"))
    return given


def with_pipeline_options(fn: F) -> F:
    for deco in reversed(pipeline_options):
        fn = deco(fn)
    return fn


def pipeline_from(opts: dict[str, Any]) -> PipelineOptions:
    return PipelineOptions(
        sdk_delay_ms=opts.get("sdk_delay", _DEFAULTS.sdk_delay_ms),
        sdk_batch=opts.get("sdk_batch", _DEFAULTS.sdk_batch),
        sdk_queue=opts.get("sdk_queue", _DEFAULTS.sdk_queue),
        sdk_export_ms=opts.get("sdk_export_time", 0.0),
        batch_size=opts.get("batch_size", _DEFAULTS.batch_size),
        batch_max_size=opts.get("batch_max_size", 0),
        batch_timeout_ms=opts.get("batch_timeout", _DEFAULTS.batch_timeout_ms),
        wait_ms=opts.get("wait"),
        replicas=opts.get("replicas", 1),
        loadbalancing=opts.get("loadbalancing", False),
    )


def routes_from(value: str) -> str | Routes:
    if value in ("none", "service"):
        return value
    if not Path(value).exists():
        raise click.BadParameter(
            f"{value}: not 'none', 'service' or an existing routes file", param_hint="--routes"
        )
    return load_routes(value)


def refuse_unused_pipeline(table: SpanTable, batches: str | None) -> None:
    """One line (exit 2) when simulation options were given but the batches are not simulated."""
    given = given_pipeline_options()
    if not given:
        return
    resolved = batches or ("groupbytrace" if "--wait" in given else default_batches(table))
    if resolved not in ("simulate", "groupbytrace"):
        fail(
            f"{', '.join(given)} only apply to --batches simulate or groupbytrace (batches here: {resolved})"
        )


def analysis_from(table: SpanTable, opts: dict[str, Any]) -> Analysis:
    refuse_unused_pipeline(table, opts.get("batches"))
    return analyze(
        table,
        compare=opts["compare"],
        reference=opts["reference"],
        batches=opts["batches"],
        routes=routes_from(routes_value(opts)),
        boundary=opts["boundary"],
        pipeline=pipeline_from(opts),
        heal=opts.get("heal", False),
    )


#: How hard delivery tries: ``send`` and ``emit --send/--send-otlp`` share these.
delivery_options = [
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


def with_delivery_options(fn: F) -> F:
    for deco in reversed(delivery_options):
        fn = deco(fn)
    return fn


def spill_files(
    dumps: tuple[str, ...], memory: int, opts: dict[str, Any], unsupported: str = ""
) -> list[str] | None:
    """The files of ``dumps`` when they need more than ``memory`` in memory (the spilled path), after
    refusing the options the spill cannot honour (``unsupported``: a command's own, e.g. ``--otlp``);
    None when they fit."""
    from tracegroup.load import expand_paths
    from tracegroup.spill import memory_needed, refuse

    files = expand_paths(dumps)
    needed = memory_needed(files)
    if needed <= memory:
        return None
    if opts.get("heal"):
        raise refuse("--heal", needed, memory)
    if given_pipeline_options():
        raise refuse(", ".join(given_pipeline_options()), needed, memory)
    if unsupported:
        raise refuse(unsupported, needed, memory)
    return [str(f) for f in files]


def _spill_progress(quiet: bool) -> Callable[[str, int, int], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def progress(what: str, spans: int, files: int) -> None:
        click.echo(f"\rspilled {what} ({spans:,} spans so far, {files} files)", err=True, nl=False)

    return progress


def _report_sources(sources: list[Any], quiet: bool) -> None:
    if not quiet:
        for s in sources:
            for w in s.warnings:
                click.echo(f"tracegroup: warning: {w}", err=True)
            if held := held_text(s.as_dict()):
                click.echo(f"tracegroup: {s.path}: {held}", err=True)


def _grouping_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "compare": opts["compare"],
        "reference": opts["reference"],
        "batches": opts["batches"],
        "routes": routes_from(routes_value(opts)),
        "boundary": opts["boundary"],
    }


def spilled_summary(
    dumps: tuple[str, ...], service_attribute: str, quiet: bool, memory: int, top: int, opts: dict[str, Any]
) -> dict[str, Any] | None:
    """``analyze``'s summary through the spill (:func:`tracegroup.spill.analyze_spilled`) when the dumps
    need more than ``memory`` in memory, with progress and warnings on stderr; None when they fit."""
    from tracegroup.spill import analyze_spilled

    files = spill_files(dumps, memory, opts)
    if files is None:
        return None
    progress = _spill_progress(quiet)
    summary, sources = analyze_spilled(
        files,
        budget=memory,
        service_attribute=service_attribute,
        top=top,
        progress=progress,
        **_grouping_kwargs(opts),
    )
    if progress:
        click.echo("", err=True)
    _report_sources(sources, quiet)
    return summary


def spilled_frames(
    dumps: tuple[str, ...],
    service_attribute: str,
    quiet: bool,
    memory: int,
    opts: dict[str, Any],
    details: bool,
    redaction: Any,
) -> Iterator[Any] | None:
    """``spans``' frames through the spill (:func:`tracegroup.spill_frames.spans_frames_spilled`) when the
    dumps need more than ``memory`` in memory, with progress and warnings on stderr; None when they fit."""
    from tracegroup.spill_frames import spans_frames_spilled

    files = spill_files(dumps, memory, opts)
    if files is None:
        return None
    progress = _spill_progress(quiet)
    total = [0]

    def passed(sp: Any) -> None:
        total[0] = sp.spans
        if progress:
            click.echo("", err=True)
        _report_sources(sp.sources, quiet)

    frames = spans_frames_spilled(
        files,
        budget=memory,
        service_attribute=service_attribute,
        details=details,
        redaction=redaction,
        progress=progress,
        on_pass=passed,
        **_grouping_kwargs(opts),
    )

    def counted() -> Iterator[Any]:
        first = next(frames, None)  # the pass and the partitions run here: then the total is known
        if first is None:
            return
        yield from shown(_chain(first, frames), quiet, total[0])

    return counted()


def spilled_emit(
    files: list[str],
    service_attribute: str,
    quiet: bool,
    memory: int,
    writer: Any,
    jsonl: str | None,
    policy: Any,
    options: dict[str, Any],
) -> Any:
    """``emit`` through whole-trace partitions (:func:`tracegroup.spill_emit.emit_spilled`), envelopes
    streamed to ``writer`` (a ``DirWriter`` or None), bare events to ``jsonl``; warnings on stderr."""
    from tracegroup.spill_emit import emit_spilled

    progress = _spill_progress(quiet)

    def passed(sources: list[Any]) -> None:
        if progress:
            click.echo("", err=True)
        _report_sources(sources, quiet)

    result = emit_spilled(
        files,
        budget=memory,
        service_attribute=service_attribute,
        on_written=writer.write if writer else None,
        redaction=policy,
        jsonl=jsonl,
        on_pass=passed,
        progress=progress,
        **options,
    )
    if progress:
        click.echo("", err=True)
    return result


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def send_options(fn: F) -> F:
    for deco in reversed(
        [
            click.option(
                "--resume",
                is_flag=True,
                help="Send exactly what the directory's send-journal.jsonl does not list as accepted.",
            ),
            click.option("--dry-run", is_flag=True, help="Send nothing; show what would go where."),
            *delivery_options,
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


def whatif_from(
    table: SpanTable,
    opts: dict[str, Any],
    grid: dict[str, list[float]],
    strategies: tuple[str, ...] | list[str],
    target: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """:func:`tracegroup.whatif.whatif` with the command's options: every option reaches every row; the
    base is the fitted settings unless simulation options were given. ``whatif`` and ``plot --kind whatif``
    both call this, so the same inputs give the same recommendation."""
    from tracegroup.whatif import whatif

    base = pipeline_from(opts) if given_pipeline_options() else None
    return whatif(
        table,
        grid,
        strategies,
        base,
        routes_from(routes_value(opts)),
        target,
        boundary=opts.get("boundary", "service"),
        heal=opts.get("heal", False),
        progress=progress,
    )
