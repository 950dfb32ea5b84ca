"""``tracegroup emit`` and ``send``: dump files -> Sentry envelopes (or bare events) on disk, and a summary.

Contract: the command loads the dumps, reads the routes and renames files, makes one
:func:`tracegroup.sentry.emit.emit` call, writes what was asked (``--out DIR``: envelopes in the
``--layout`` asked, manifest and summary, the envelopes streamed as events are built unless ``--jsonl`` is
also given; ``--jsonl FILE``: bare
events; ``--manifest FILE``: the manifest anywhere) and prints the summary
(:func:`tracegroup.render.text.emit_text` or JSON) on stdout. With neither ``--out`` nor ``--jsonl`` it writes
nothing: a dry run. Writing ``--out DIR`` forgets DIR's earlier deliveries (journal, not-sent list, kept OTLP
requests); ``--send`` and ``--send-otlp`` (both need ``--out DIR``) then deliver as ``tracegroup send`` does
(docs/send.md), with the same limits (``--retries``, ``--max-wait``, ``--timeout``, ``--deadline``,
``--concurrency``), journaling in DIR so ``tracegroup send DIR --resume`` finishes the
job. Bad input (unreadable dump, bad routes/renames file or regular expression, bad
``--environment``/``--now``, unwritable or foreign output directory) is one line on stderr naming the file or
option, exit code 2, via the shared :func:`tracegroup.cli.common.errors`. DSN keys are never printed. Heavy
modules are imported when the command runs, so registering it costs nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tracegroup.cli.common import (
    Status,
    errors,
    load_table,
    memory_option,
    report_send,
    send_options,
    spill_files,
    spilled_emit,
    transport_options,
    with_delivery_options,
)
from tracegroup.cli.redact import policy_from, redact_key_option


def parse_now(value: str) -> int:
    """``--now``: epoch seconds (int or float) or an RFC 3339 timestamp -> ns since the epoch."""
    import datetime as dt

    text = value.strip()
    try:
        return int(round(float(text) * 1_000_000_000))
    except ValueError:
        pass
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"--now {value!r}: not epoch seconds nor an RFC 3339 timestamp") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


@click.command("emit")
@click.argument("dumps", nargs=-1, required=True, type=click.Path())
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Write DIR/<service>/<event_id>.envelope per event, DIR/manifest.jsonl and DIR/summary.json.",
)
@click.option(
    "--layout",
    type=click.Choice(["files", "packed"]),
    default="files",
    show_default=True,
    help="How --out DIR holds the envelopes: files, one file per event; packed, every envelope of a "
    "service appended to DIR/<service>.envelopes (manifest lines give offset and length): for big dumps.",
)
@click.option("--jsonl", type=click.Path(dir_okay=False), help="Write the bare events, one JSON per line.")
@click.option(
    "--manifest", type=click.Path(dir_okay=False), help="Also write the manifest (JSON lines) to this file."
)
@click.option(
    "--style",
    type=click.Choice(["exporter", "sentry"]),
    default="exporter",
    show_default=True,
    help="exporter: spans as the legacy collector exporter converted them; sentry: as Sentry's SDKs "
    "send them.",
)
@click.option(
    "--errors",
    type=click.Choice(["all", "dedup", "none"]),
    default="all",
    show_default=True,
    help="Error events from exception span events: all, dedup (one per exception re-recorded on enclosing "
    "spans of a transaction), none.",
)
@click.option("--routes", "routes_file", type=click.Path(), help="Routes file (TOML/YAML): service -> DSN.")
@click.option("--renames", "renames_file", type=click.Path(), help="File of [[rename]] rules (TOML/YAML).")
@click.option("--environment", default="", help="Sentry environment of every event.")
@click.option(
    "--rebase-time",
    is_flag=True,
    help="Shift every timestamp so the newest span ends now (replaying a capture).",
)
@click.option(
    "--now",
    "now_text",
    help="The time Relay is assumed to receive the events (RFC 3339 or epoch seconds); default: the "
    "clock. With --rebase-time the newest span ends at --now (default: the start of the current UTC hour). "
    "Pin it for byte-identical replays across hours.",
)
@click.option(
    "--service-attribute",
    default="service.name",
    show_default=True,
    help="Resource attribute that names a service.",
)
@click.option("--keep-going", is_flag=True, help="Skip unreadable files with a warning instead of failing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or warnings on stderr.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--send", is_flag=True, help="Then send the envelopes of --out DIR (as `tracegroup send DIR`).")
@click.option(
    "--otlp",
    type=click.Path(dir_okay=False),
    help="Also write the spans as OTLP with corrected parent-remote flags (for Sentry's OTLP endpoint).",
)
@click.option("--otlp-format", type=click.Choice(["proto", "jsonl"]), default="proto", show_default=True)
@click.option("--send-otlp", is_flag=True, help="Post the corrected OTLP to each route's OTLP endpoint.")
@click.option(
    "--keep-secrets",
    is_flag=True,
    help="Keep URL credentials, secret query values and Authorization/Cookie headers (scrubbed by default).",
)
@click.option("--redact-pii", is_flag=True, help="Also replace e-mail and IP addresses in attribute values.")
@redact_key_option
@click.option(
    "--replay-id",
    default="",
    help="Enters every event id, so another replay of the same dump to the same project is not dropped "
    "as duplicates (--rebase-time already varies ids with --now).",
)
@with_delivery_options
@memory_option
def emit(**options: Any) -> None:
    """Turn DUMPS into Sentry transactions (one per application boundary) and error events.

    \b
    Example:
      tracegroup emit fixtures/polyglot.pb --out out/ --routes fixtures/routes-example.toml --rebase-time
      tracegroup emit day-of-capture/ --out out/ --rebase-time --memory 2GB --layout packed
    """

    errors(_run)(**options)


def _run(
    dumps: tuple[str, ...],
    out: str | None,
    layout: str,
    jsonl: str | None,
    manifest: str | None,
    style: str,
    errors: str,
    routes_file: str | None,
    renames_file: str | None,
    environment: str,
    rebase_time: bool,
    now_text: str | None,
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    fmt: str,
    send: bool,
    otlp: str | None,
    otlp_format: str,
    send_otlp: bool,
    keep_secrets: bool,
    redact_pii: bool,
    redact_keys: tuple[str, ...],
    replay_id: str,
    memory: int,
    **limits: Any,
) -> None:
    from tracegroup.render import emit_text, to_json
    from tracegroup.routes import load_renames, load_routes
    from tracegroup.sentry import envelope as files
    from tracegroup.sentry.emit import emit as emit_events

    if layout != "files" and not out:
        raise ValueError(f"--layout {layout} needs --out DIR (the directory it lays out)")
    if send and not out:
        raise ValueError("--send needs --out DIR (the envelopes it sends)")
    if send_otlp and not routes_file:
        raise ValueError("--send-otlp needs --routes FILE (the DSN of each service's project)")
    if send_otlp and not out:
        raise ValueError("--send-otlp needs --out DIR (its delivery journal and what --resume sends again)")
    routes = load_routes(routes_file) if routes_file else None
    renames = load_renames(renames_file) if renames_file else []
    now = parse_now(now_text) if now_text else None
    options: dict[str, Any] = {
        "routes": routes,
        "renames": renames,
        "style": style,
        "errors": errors,
        "environment": environment,
        "rebase_time": rebase_time,
        "now": now,
        "replay_id": replay_id,
    }
    spilled = spill_files(dumps, memory, {}, "--otlp" if otlp else "--send-otlp" if send_otlp else "")
    table = None
    writer = files.DirWriter(out, layout) if out else None  # a foreign DIR is refused before any work
    if spilled is not None:  # past the budget: whole-trace partitions, each emitted alone (docs/scale.md)
        policy = policy_from(not keep_secrets, redact_pii, redact_keys, service_attribute)
        result = spilled_emit(spilled, service_attribute, quiet, memory, writer, jsonl, policy, options)
    else:
        table = load_table(dumps, service_attribute, keep_going, quiet, warm=True)
        policy = policy_from(not keep_secrets, redact_pii, redact_keys, table.service_attribute)
        # --out alone streams: each envelope is written as soon as its event is built (memory stays flat);
        # --jsonl needs every payload in output order, so then events are held until written
        stream = writer if not jsonl else None
        with Status(quiet) as status:
            status(f"emitting {len(table):,} spans")
            on_written = _counted(stream.write, status) if stream else None
            result = emit_events(table, on_written=on_written, redaction=policy, **options)
        if writer and not stream:
            writer.write_all(result)
    if writer:
        writer.finish(result)
    if out:
        from pathlib import Path

        from tracegroup.send import clear_state

        clear_state(Path(out))  # a new emit: earlier deliveries from DIR no longer describe its files
    if jsonl and table is not None:
        files.write_jsonl(result, jsonl)
    if manifest:
        files.write_manifest(result, manifest, writer)
    summary = result.summary()
    summary["output"] = {"out": out or "", "layout": layout, "jsonl": jsonl or "", "manifest": manifest or ""}
    if otlp and table is not None:
        from tracegroup.otlp_out import corrected_messages, service_flags, write_otlp

        write_otlp(corrected_messages(table, service_flags(table), policy), otlp, otlp_format)
        summary["output"]["otlp"] = otlp
    click.echo(to_json(summary) if fmt == "json" else emit_text(summary), nl=False)
    if send or send_otlp:
        assert out is not None  # checked above
        _send(table, out, send, routes if send_otlp else None, fmt, policy, transport_options(limits))


def _counted(write: Callable[[Any], None], status: Status) -> Callable[[Any], None]:
    """``write`` that also says on the status line how many events were written (every 1,000th)."""
    count = [0]

    def counted(event: Any) -> None:
        write(event)
        count[0] += 1
        if count[0] % 1000 == 0:
            status(f"wrote {count[0]:,} events")

    return counted


def _send(
    table: Any, out: str, envelopes: bool, routes: Any, fmt: str, policy: Any, limits: dict[str, Any]
) -> None:
    """``--send`` / ``--send-otlp``: deliver, journal in ``out``, report, exit 1 unless all was accepted."""
    from pathlib import Path

    from tracegroup.otlp_out import corrected_messages, service_flags
    from tracegroup.send import envelope_requests, otlp_requests, send
    from tracegroup.transport import Outcome, Request

    root = Path(out)
    requests: list[Request] = []
    unsendable: list[Outcome] = []
    if envelopes:
        requests, unsendable = envelope_requests(root)
    if routes is not None:
        messages = corrected_messages(table, service_flags(table), policy)
        more, lost = otlp_requests(messages, routes, table.service_attribute, root)
        requests, unsendable = requests + more, unsendable + lost
    report_send(send(requests, unsendable, root, **limits), fmt)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@send_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@errors
def send(directory: str, resume: bool, dry_run: bool, fmt: str, **opts: Any) -> None:
    """Send the envelopes `tracegroup emit --out DIRECTORY` wrote (either --layout), each to its DSN;
    report every outcome and journal it in DIRECTORY/send-journal.jsonl (see docs/send.md).

    \b
    Examples:
      tracegroup send out/
      tracegroup send out/ --resume --deadline 10m
    """
    from tracegroup.send import envelope_requests, otlp_file_requests
    from tracegroup.send import send as run_send

    root = Path(directory)
    requests, unsendable = envelope_requests(root, required=not resume)
    if resume:
        requests += otlp_file_requests(root)
    result = run_send(requests, unsendable, root, resume=resume, dry_run=dry_run, **transport_options(opts))
    report_send(result, fmt)
