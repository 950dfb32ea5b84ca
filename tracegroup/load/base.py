"""Shared types of the readers: what a reader returns and how it fails.

Contract: a reader takes the (decompressed) bytes of one input file and returns a :class:`Decoded` whose
``messages`` are serialized OTLP ``TracesData`` messages, one per batch (one exporter call / one captured
message), in file order. Readers never raise anything but :class:`LoadError` for bad input; its message is
one line that names the file and the problem. Problems that still leave usable data (a truncated last
message, a skipped record) go to ``warnings`` instead, and counts worth reporting go to ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LoadError(Exception):
    """Bad input: ``str(err)`` is one line naming the file and what is wrong with it."""


@dataclass
class Decoded:
    format: str
    messages: list[bytes | memoryview]
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
