"""Dumps written again in their own format: the scrubbed copy ``tracegroup redact`` shares.

Contract: :func:`redact_dumps` scrubs every batch of a loaded table with one
:class:`tracegroup.redact.Policy` and writes each input file again — in its own format when that is OTLP
(protobuf stream, bare protobuf, OTLP/JSON, OTLP JSON Lines, each gzip- or zstd-compressed as the input
was), otherwise as an OTLP protobuf stream (the file's entry says so). Batches, resources, scopes, spans
and ids keep their order and values, so every analysis of the output gives the groupings of the input. One
input file: the output names the file; several files or a directory: the output is a directory holding
each file under its name (relative to the directory named). An output that is one of the inputs is a
``ValueError`` raised before anything is written. A capture file's arrival sidecar (``tracegroup
capture``) goes along, its offsets those of the copy and its addresses scrubbed. The result is a plain
dict (``--format json`` prints it).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import zstandard
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load import expand_paths
from tracegroup.load.sidecar import sidecar_path
from tracegroup.model import SpanTable
from tracegroup.otlp import to_json
from tracegroup.redact import Policy, scrub_traces

#: Formats written back as they came (after any compression layers).
SAME_FORMAT = ("otlp-proto-stream", "otlp-proto", "otlp-json", "otlp-jsonl")


def targets(dumps: list[str] | tuple[str, ...], out: str | Path) -> dict[str, Path]:
    """Input file path (as the loader names it) -> output path; refuses to overwrite an input."""
    out = Path(out)
    single = len(dumps) == 1 and Path(dumps[0]).is_file()
    found: dict[str, Path] = {}
    for d in dumps:
        base = Path(d)
        for f in expand_paths([d]):
            found[str(f)] = out if single else out / (f.relative_to(base) if base.is_dir() else f.name)
    inputs = {Path(p).resolve() for p in found}
    for dest in found.values():
        if dest.resolve() in inputs:
            raise ValueError(f"-o {out}: would overwrite the input {dest}; choose another output")
    return found


def encode(fmt: str, messages: list[TracesData]) -> tuple[bytes, str]:
    """The bytes of one output file holding ``messages`` in format ``fmt`` (as detected on load), and the
    format written."""
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
        data = gzip.compress(data, mtime=0) if layer == "gzip" else zstandard.ZstdCompressor().compress(data)
    return data, "+".join([*comp, inner])


def _sidecar(source: Path, dest: Path, data: bytes, written: str, policy: Policy) -> str | None:
    """A ``tracegroup capture`` file's arrival sidecar, copied next to its scrubbed copy with each message's
    new offset and size and the addresses (peers, the receiver's own) scrubbed like the spans; the path
    written, or None (no sidecar, or the copy is not a message stream of the same messages)."""
    try:
        head, *entries = sidecar_path(source).read_bytes().splitlines()
    except (OSError, ValueError):
        return None
    frames = []
    offset = 0
    while offset + 4 <= len(data) and written == "otlp-proto-stream":
        size = int.from_bytes(data[offset : offset + 4], "big")
        frames.append((offset, size))
        offset += 4 + size
    if not frames or len(frames) != len(entries):
        return None
    try:
        header = {**json.loads(head), "file": dest.name}
        for key in ("http", "grpc"):  # the receiver's own addresses
            if header.get(key):
                header[key] = policy.text(str(header[key]))
        lines = [json.dumps(header, separators=(",", ":"))]
        for raw, (at, size) in zip(entries, frames, strict=True):
            entry = {**json.loads(raw), "offset": at, "bytes": size}
            if entry.get("peer"):
                entry["peer"] = policy.text(str(entry["peer"]))
            lines.append(json.dumps(entry, separators=(",", ":")))
    except (ValueError, TypeError):  # a damaged sidecar: the copy goes without one (the load warned)
        return None
    out = sidecar_path(dest)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(out)


def redact_dumps(
    table: SpanTable, dumps: list[str] | tuple[str, ...], out: str | Path, policy: Policy
) -> dict[str, Any]:
    """Write the scrubbed copy of ``table`` (loaded from ``dumps``) under ``out``; what was written."""
    where = targets(dumps, out)
    by_source: dict[int, list[TracesData]] = {}
    changed = 0
    for b in table.batches:
        td = TracesData.FromString(b.raw)
        changed += scrub_traces(td, policy)
        by_source.setdefault(b.source, []).append(td)
    files = []
    for k, src in enumerate(table.sources):
        dest = where.get(src.path)
        if dest is None or k not in by_source:
            continue
        data, written = encode(src.format, by_source[k])
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        arrivals = _sidecar(Path(src.path), dest, data, written, policy)
        files.append(
            {
                "input": src.path,
                "output": str(dest),
                "format": src.format,
                "written_as": written,
                "arrivals": arrivals,
            }
        )
    return {
        "output": str(out),
        "spans": len(table),
        "batches": len(table.batches),
        "batches_changed": changed,
        "files": files,
    }
