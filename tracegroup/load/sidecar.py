"""The arrival sidecar of a ``tracegroup capture`` file: when each message arrived, over what, from whom.

Contract: a capture file ``DIR/capture-000001.pb`` (the file exporter's framing) has its sidecar next to
it, ``DIR/.capture-000001.pb.arrivals.jsonl`` (hidden, so a directory loads as the dumps alone). The
sidecar is JSON Lines: a header object ``{"tracegroup_capture": 1, "file": NAME, "started_ns": …,
"http": ADDR|null, "grpc": ADDR|null}`` then one object per message in file order with ``message``
(1-based), ``offset`` (of its length prefix in the file), ``bytes`` (the message's length), ``spans``,
``arrival_ns`` (Unix time in ns when the request was accepted; non-decreasing in file order),
``transport`` (``http`` | ``grpc``), ``body`` (``protobuf`` | ``json``), ``encoding`` (the HTTP
``Content-Encoding``: ``gzip``, ``zstd``, ``deflate``, or null; null over gRPC), ``sender`` (the
request's User-Agent, or null) and ``peer`` (host:port).
docs/capture.md describes it for users.

:func:`message_line` and :func:`header_line` are the only writers (:mod:`tracegroup.capture`);
:func:`read_sidecar` is the only reader (the loader). Reading never fails a load: a sidecar that is absent
gives None, one that is damaged or disagrees with its dump gives what it can with a warning.
:func:`position` tells from the senders where in a pipeline the capture was taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 1
SUFFIX = ".arrivals.jsonl"


def sidecar_path(dump: Path) -> Path:
    """Where the sidecar of the capture file ``dump`` lives."""
    return dump.with_name(f".{dump.name}{SUFFIX}")


def header_line(file: str, started_ns: int, http: str | None, grpc: str | None) -> bytes:
    head = {"tracegroup_capture": VERSION, "file": file, "started_ns": started_ns, "http": http, "grpc": grpc}
    return json.dumps(head, separators=(",", ":")).encode() + b"\n"


def message_line(
    message: int,
    offset: int,
    size: int,
    spans: int,
    arrival_ns: int,
    transport: str,
    body: str,
    encoding: str | None,
    sender: str | None,
    peer: str | None,
) -> bytes:
    line = {
        "message": message,
        "offset": offset,
        "bytes": size,
        "spans": spans,
        "arrival_ns": arrival_ns,
        "transport": transport,
        "body": body,
        "encoding": encoding,
        "sender": sender,
        "peer": peer,
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


@dataclass
class Sidecar:
    """What a sidecar says about its dump's messages (``arrival_ns[k]``: message k+1, -1 when unknown)."""

    path: str
    arrival_ns: list[int]
    senders: dict[str, int] = field(default_factory=dict)  # User-Agent -> messages
    transports: dict[str, int] = field(default_factory=dict)
    http: str | None = None
    grpc: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The plain dict a loaded source carries as ``capture``."""
        known = [t for t in self.arrival_ns if t >= 0]
        return {
            "sidecar": self.path,
            "messages": len(known),
            "first_arrival_ns": min(known) if known else None,
            "last_arrival_ns": max(known) if known else None,
            "senders": self.senders,
            "transports": self.transports,
        }


def read_sidecar(dump: Path, messages: int) -> Sidecar | None:
    """The sidecar of ``dump`` (which loaded as ``messages`` messages), None when it has none."""
    path = sidecar_path(dump)
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    except OSError as err:
        return Sidecar(str(path), [-1] * messages, warnings=[f"{path}: cannot read ({err.strerror})"])
    out = Sidecar(str(path), [-1] * messages)
    try:
        head = json.loads(lines[0]) if lines else None
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("tracegroup_capture") != VERSION:
        out.warnings.append(f"{path}: not a tracegroup capture sidecar (version {VERSION}); arrivals unknown")
        return out
    out.http, out.grpc = head.get("http"), head.get("grpc")
    seen = 0
    for number, raw in enumerate(lines[1:], 2):
        try:
            entry = json.loads(raw)
            k, t = int(entry["message"]), int(entry["arrival_ns"])
        except (ValueError, KeyError, TypeError):
            if number < len(lines):  # a cut last line is what a killed writer leaves: say nothing more
                out.warnings.append(f"{path}: line {number} is not a message entry; skipped")
            continue
        if not 1 <= k <= messages:
            continue
        seen += 1
        out.arrival_ns[k - 1] = t
        sender = str(entry.get("sender") or "(no User-Agent)")
        out.senders[sender] = out.senders.get(sender, 0) + 1
        transport = str(entry.get("transport") or "?")
        out.transports[transport] = out.transports.get(transport, 0) + 1
    if seen != messages or len(lines) - 1 != messages:
        out.warnings.append(
            f"{path}: lists {len(lines) - 1:,} messages, the capture file holds {messages:,}; "
            f"arrival times known for {seen:,}"
        )
    return out


#: Where a capture sits, by its senders' User-Agent: (marker, position). Checked in order, lowercase.
_SENDERS = (
    ("collector", "collector"),
    ("otelcol", "collector"),
    ("otel-otlp-exporter", "sdk"),
    ("otel otlp exporter", "sdk"),
)
POSITIONS = {
    "sdk": "SDK exports: each message is one export call of an SDK's span processor, before any collector",
    "collector": "a collector exporter: each message is one exporter call, after the collector's processors",
    "mixed": "mixed: SDKs and collectors sent to the same capture",
    "unknown": "unknown: the senders do not say whether they are SDKs or collectors",
}


def position(senders: dict[str, int]) -> str:
    """``sdk``, ``collector``, ``mixed`` or ``unknown`` (:data:`POSITIONS`) from User-Agent counts."""
    found = set()
    for sender in senders:
        low = sender.lower()
        found.add(next((pos for marker, pos in _SENDERS if marker in low), "unknown"))
    if len(found) == 1:
        return found.pop()
    return "mixed" if {"sdk", "collector"} <= found else "unknown"
