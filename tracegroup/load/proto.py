"""Binary readers: compression layers, the file exporter's length-prefixed stream, bare OTLP protobuf.

Contract: :func:`decode_binary` takes the raw bytes of one file and returns a
:class:`~tracegroup.load.base.Decoded` of serialized ``TracesData`` messages, or raises ``LoadError``.
Detection is by content only:

- gzip magic ``1f 8b`` or zstd magic ``28 b5 2f fd`` at offset 0: decompress (streaming, so frames without a
  recorded content size work; several gzip members are concatenated) and detect again inside;
- ``{`` or ``[`` as first non-blank byte: JSON, handed to :mod:`tracegroup.load.jsonfmt`;
- a sequence of 4-byte big-endian lengths each followed by a ``TracesData`` (optionally one zstd frame per
  message): the collector file exporter's ``format: proto`` stream;
- else one bare ``TracesData`` / ``ExportTraceServiceRequest`` (an OTLP/HTTP body).

A stream truncated or corrupt after at least one good message keeps the good messages and adds a warning.
"""

from __future__ import annotations

import re
import zlib

import zstandard
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load.base import Decoded, LoadError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def decompress(data: bytes, name: str, warnings: list[str], kind: str) -> bytes:
    """Decompress every gzip member / zstd frame of ``data`` (``kind``: "gzip" or "zstd"), streaming, so
    frames without a recorded size work. A truncated or corrupt tail keeps what came before, with a
    warning; nothing usable at all is a ``LoadError``."""
    out: list[bytes] = []
    while data and (kind == "zstd" or data[:2] == GZIP_MAGIC):
        d = zlib.decompressobj(wbits=31) if kind == "gzip" else zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(d.decompress(data))
        except (zlib.error, zstandard.ZstdError) as err:
            if not out:
                raise LoadError(f"{name}: corrupt {kind} data ({err})") from None
            warnings.append(f"{name}: corrupt {kind} data after {sum(map(len, out))} bytes, rest ignored")
            break
        if not d.eof:
            if not any(out):
                raise LoadError(f"{name}: {kind} stream is truncated before any data")
            warnings.append(
                f"{name}: {kind} stream is truncated, using the {sum(map(len, out))} bytes it held"
            )
            break
        data = d.unused_data
    return b"".join(out)


def parse_traces(payload: bytes | memoryview) -> TracesData | None:
    """``TracesData`` when ``payload`` is one (no unknown top-level fields), else None."""
    try:
        td = TracesData.FromString(payload)
    except DecodeError:
        return None
    if len(UnknownFieldSet(td)):
        return None
    return td


def _frame_payload(payload: bytes | memoryview, name: str, k: int) -> tuple[bytes | memoryview | None, str]:
    """One frame's TracesData bytes (zstd frame and JSON line handled) and what it was; None if bad."""
    kind = "proto"
    if payload[:4] == ZSTD_MAGIC:
        kind = "zstd"
        try:
            d = zstandard.ZstdDecompressor().decompressobj()
            payload = d.decompress(payload)
            if not d.eof:
                return None, kind
        except zstandard.ZstdError:
            return None, kind
    if payload[:1] == b"{":  # file exporter `format: json` with compression: one JSON document per frame
        from tracegroup.load.jsonfmt import decode_json

        try:
            return decode_json(bytes(payload), f"{name} message {k}").messages[0], kind + "+json"
        except LoadError:
            return None, kind + "+json"
    return payload, kind


def read_framed(data: bytes, name: str, warnings: list[str]) -> tuple[list[bytes | memoryview], str] | None:
    """Split a length-prefixed stream into messages; None when ``data`` is not such a stream.

    Returns the messages and the stream's format name. Only the first message is parsed here, to
    recognise the format; the loader parses the others once, while extracting, and treats a bad one like
    a truncation.
    """
    messages: list[bytes | memoryview] = []
    fmt = "otlp-proto-stream"
    view = memoryview(data)  # slices share the file's buffer instead of copying every message
    pos, size = 0, len(data)
    while pos < size:
        if pos + 4 > size:
            problem = f"{size - pos} stray bytes at the end"
        else:
            length = int.from_bytes(view[pos : pos + 4], "big")
            end = pos + 4 + length
            if end > size:
                problem = f"message {len(messages) + 1} is truncated ({size - pos - 4} of {length} bytes)"
            else:
                payload, kind = _frame_payload(view[pos + 4 : end], name, len(messages) + 1)
                if payload is not None and (messages or length == 0 or parse_traces(payload) is not None):
                    if not messages:
                        fmt = {
                            "zstd": "otlp-proto-stream+zstd-messages",
                            "proto+json": "otlp-json-stream",
                            "zstd+json": "otlp-json-stream+zstd-messages",
                        }.get(kind, fmt)
                    messages.append(payload)
                    pos = end
                    continue
                problem = f"message {len(messages) + 1} at byte {pos} is not an OTLP TracesData message"
        if not messages:
            return None
        warnings.append(f"{name}: {problem}; kept the {len(messages)} complete messages before it")
        break
    return messages, fmt


def _json(data: bytes, name: str, prefix: str, warnings: list[str]) -> Decoded:
    from tracegroup.load.jsonfmt import decode_json

    decoded = decode_json(data, name)
    decoded.format = prefix + decoded.format
    decoded.warnings[:0] = warnings
    return decoded


def decode_binary(data: bytes, name: str) -> Decoded:
    """Detect the layers of one file's bytes and return its messages (see the module docstring)."""
    warnings: list[str] = []
    layers: list[str] = []
    while True:
        first = re.match(rb"\s*", data).end()  # type: ignore[union-attr]
        if first == len(data):
            what = "is empty" if not layers else f"holds no data inside its {layers[-1]} layer"
            raise LoadError(f"{name}: file {what}")
        kind = "gzip" if data[:2] == GZIP_MAGIC else "zstd" if data[:4] == ZSTD_MAGIC else None
        if kind is None:
            break
        layers.append(kind)
        data = decompress(data, name, warnings, kind)
    prefix = "+".join(layers + [""])
    looks_json = data[first : first + 1] in (b"{", b"[")
    # A bare protobuf starts with 0x0a (a newline) and a length byte that may be "{" or "[": such files
    # try the binary readers first, everything else that looks like JSON is JSON.
    if looks_json and data[:1] != b"\n":
        return _json(data, name, prefix, warnings)
    framed = read_framed(data, name, warnings)
    if framed is not None:
        return Decoded(prefix + framed[1], framed[0], warnings)
    if parse_traces(data) is not None:
        return Decoded(prefix + "otlp-proto", [data], warnings)
    if looks_json:
        return _json(data, name, prefix, warnings)
    raise LoadError(
        f"{name}: not a trace dump (not OTLP protobuf, a file exporter stream, OTLP/JSON, Jaeger or Zipkin)"
    )
