"""``tracegroup redact``: scrubbed copies of dumps, for sharing; and the redaction options of ``emit`` and
``spans``.

Contract: the command loads DUMPS, scrubs every batch with one :class:`tracegroup.redact.Policy`
(credentials always; e-mail and IP addresses unless ``--keep-pii``; the values of ``--redact-key``
patterns) and writes each input file again, in its own format when that is OTLP (protobuf stream, bare
protobuf, OTLP/JSON, OTLP JSON Lines, each gzip- or zstd-compressed as the input was), otherwise as an
OTLP protobuf stream (said on stderr). Batches, resources, scopes, spans and ids keep their order and
values, so every analysis of the output gives the groupings of the input. One input file: ``-o`` names
the output file; several files or a directory: ``-o`` names a directory holding each file under its name
(relative to the directory named). An output that is one of the inputs is refused (exit 2, one line).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tracegroup.cli.common import errors, load_options, load_table

F = TypeVar("F", bound=Callable[..., Any])

#: Formats written back as they came (after any compression layers).
SAME_FORMAT = ("otlp-proto-stream", "otlp-proto", "otlp-json", "otlp-jsonl")


def redact_key_option(fn: F) -> F:
    """``--redact-key PATTERN`` (repeatable), shared by ``emit``, ``spans`` and ``redact``."""
    return click.option(
        "--redact-key",
        "redact_keys",
        multiple=True,
        metavar="PATTERN",
        help="Also replace the whole value of attributes whose key matches this glob (e.g. 'user.*', "
        "'*.query'); repeatable.",
    )(fn)


def policy_from(secrets: bool, pii: bool, keys: tuple[str, ...], service_attribute: str) -> Any:
    from tracegroup.redact import Policy

    return Policy(secrets, pii, tuple(keys), frozenset({"service.name", service_attribute}))


def _targets(dumps: tuple[str, ...], out: Path) -> dict[str, Path]:
    """Input file path (as the loader names it) -> output path."""
    from tracegroup.load import expand_paths

    single = len(dumps) == 1 and Path(dumps[0]).is_file()
    targets: dict[str, Path] = {}
    for d in dumps:
        base = Path(d)
        for f in expand_paths([d]):
            targets[str(f)] = out if single else out / (f.relative_to(base) if base.is_dir() else f.name)
    inputs = {Path(p).resolve() for p in targets}
    for dest in targets.values():
        if dest.resolve() in inputs:
            raise ValueError(f"-o {out}: would overwrite the input {dest}; choose another output")
    return targets


def _encode(fmt: str, messages: list[Any]) -> tuple[bytes, str]:
    """The bytes of one output file and the format written."""
    from tracegroup.otlp_out import to_json

    layers = fmt.split("+")
    inner, comp = layers[-1], [x for x in layers[:-1] if x in ("gzip", "zstd")]
    if inner not in SAME_FORMAT or len(comp) != len(layers) - 1:
        inner, comp = "otlp-proto-stream", []
    if inner == "otlp-proto" and len(messages) == 1:
        data = messages[0].SerializeToString()
    elif inner == "otlp-json" and len(messages) == 1:
        data = to_json(messages[0]).encode("utf-8") + b"\n"
    elif inner in ("otlp-json", "otlp-jsonl"):
        inner = "otlp-jsonl"
        data = b"".join(to_json(m).encode("utf-8") + b"\n" for m in messages)
    else:
        inner = "otlp-proto-stream"
        parts = []
        for m in messages:
            raw = m.SerializeToString()
            parts += [len(raw).to_bytes(4, "big"), raw]
        data = b"".join(parts)
    for layer in reversed(comp):
        if layer == "gzip":
            data = gzip.compress(data, mtime=0)
        else:
            import zstandard

            data = zstandard.ZstdCompressor().compress(data)
    return data, "+".join([*comp, inner])


@click.command()
@load_options
@click.option(
    "-o", "--output", required=True, type=click.Path(), help="Output file (one input file) or directory."
)
@click.option(
    "--keep-pii", is_flag=True, help="Keep e-mail and IP addresses (credentials are always scrubbed)."
)
@redact_key_option
@errors
def redact(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    output: str,
    keep_pii: bool,
    redact_keys: tuple[str, ...],
) -> None:
    """Write DUMPS again with credentials, e-mail and IP addresses scrubbed, same format, structure and
    ids, so every analysis of the copy groups spans as the original does (see docs/redact.md).

    \b
    Examples:
      tracegroup redact fixtures/polyglot.pb -o shared/polyglot.pb
      tracegroup redact capture/ -o shared/ --redact-key 'user.*'
    """
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    from tracegroup.redact import scrub_traces

    out = Path(output)
    targets = _targets(dumps, out)
    table = load_table(dumps, service_attribute, keep_going, quiet)
    policy = policy_from(True, not keep_pii, redact_keys, table.service_attribute)
    by_source: dict[int, list[TracesData]] = {}
    changed = 0
    for b in table.batches:
        td = TracesData.FromString(b.raw)
        changed += scrub_traces(td, policy)
        by_source.setdefault(b.source, []).append(td)
    files = 0
    for k, src in enumerate(table.sources):
        dest = targets.get(src.path)
        if dest is None or k not in by_source:
            continue
        data, written = _encode(src.format, by_source[k])
        if written != src.format and not quiet:
            click.echo(f"tracegroup: {src.path}: {src.format} written as {written}", err=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        files += 1
    click.echo(
        f"redacted {len(table):,} spans in {len(table.batches):,} batches ({changed:,} changed) "
        f"into {files} file{'s' if files != 1 else ''} under {out}"
    )
