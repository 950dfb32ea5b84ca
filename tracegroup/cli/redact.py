"""``tracegroup redact``: scrubbed copies of dumps, for sharing; and the redaction options of ``emit`` and
``spans``.

Contract: the command loads DUMPS and makes one :func:`tracegroup.rewrite.redact_dumps` call with one
:class:`tracegroup.redact.Policy` (credentials always; e-mail and IP addresses unless ``--keep-pii``; the
values of ``--redact-key`` patterns); the result is drawn as text (a line per file written in another
format, then a summary) or as JSON (``--format json``). An output that is one of the inputs is refused
(exit 2, one line).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from tracegroup import render
from tracegroup.cli.common import errors, load_options, load_table

F = TypeVar("F", bound=Callable[..., Any])


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


@click.command()
@load_options
@click.option(
    "-o", "--output", required=True, type=click.Path(), help="Output file (one input file) or directory."
)
@click.option(
    "--keep-pii", is_flag=True, help="Keep e-mail and IP addresses (credentials are always scrubbed)."
)
@redact_key_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@errors
def redact(
    dumps: tuple[str, ...],
    service_attribute: str,
    keep_going: bool,
    quiet: bool,
    output: str,
    keep_pii: bool,
    redact_keys: tuple[str, ...],
    fmt: str,
) -> None:
    """Write DUMPS again with credentials, e-mail and IP addresses scrubbed, same format, structure and
    ids, so every analysis of the copy groups spans as the original does (see docs/redact.md).

    \b
    Examples:
      tracegroup redact fixtures/polyglot.pb -o shared/polyglot.pb
      tracegroup redact capture/ -o shared/ --redact-key 'user.*'
    """
    from tracegroup.rewrite import redact_dumps, targets

    targets(dumps, output)  # refuse an output that is an input before loading anything
    table = load_table(dumps, service_attribute, keep_going, quiet)
    policy = policy_from(True, not keep_pii, redact_keys, table.service_attribute)
    result = redact_dumps(table, dumps, output, policy)
    click.echo(render.json.to_json(result) if fmt == "json" else render.text.redact_text(result), nl=False)
