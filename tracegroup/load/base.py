"""Shared types of the readers: what a reader returns and how it fails.

Contract: a reader takes the (decompressed) bytes of one input file and returns a :class:`Decoded` whose
``messages`` are serialized OTLP ``TracesData`` messages, one per batch (one exporter call / one captured
message), in file order. Readers never raise anything but :class:`LoadError` for bad input; its message is
one line that names the file and the problem. Problems that still leave usable data (a truncated last
message, a skipped record) go to ``warnings`` instead, and counts worth reporting go to ``notes``.

Accounting: ``messages_held`` is how many messages the input held (None: as many as ``messages``),
``spans_unread`` the spans known to be in parts that are not among ``messages`` (counted as far as their
bytes go) or that were merged into others, ``bytes_skipped`` the input bytes not in ``messages``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LoadError(Exception):
    """Bad input: ``str(err)`` is one line naming the file and what is wrong with it."""


class LoadMemoryError(LoadError):
    """Memory ran out while reading a file: not bad input, so ``keep_going`` does not skip it."""


@dataclass
class Decoded:
    format: str
    messages: list[bytes | memoryview]
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    messages_held: int | None = None
    spans_unread: int = 0
    bytes_skipped: int = 0
