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
A run of two or more empty (zero-length) frames is damage, not batches (a crashed writer's zero-filled
tail, a preallocated file): it is skipped with one warning per run and reading goes on after it; a file of
nothing but zero bytes is a ``LoadError``. Strings that are not UTF-8 are decoded with replacement
characters (:mod:`tracegroup.load.lenient`), never a reason to drop a message.
"""

from __future__ import annotations

import re
import zlib

import zstandard
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.lenient import count_spans, parse_message

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZEROS = re.compile(rb"\x00+")
MAX_ZERO_WARNINGS = 5


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
    """``TracesData`` when ``payload`` is one (no unknown top-level fields; strings that are not UTF-8 are
    repaired, see :func:`~tracegroup.load.lenient.parse_message`), else None."""
    return parse_message(payload)[0]


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


def read_framed(data: bytes, name: str, warnings: list[str]) -> Decoded | None:
    """Split a length-prefixed stream into messages; None when ``data`` is not such a stream.

    Returns the messages, the stream's format name and the accounting of what was not kept. Only the
    first message is parsed here, to recognise the format; the loader parses the others once, while
    extracting, and treats a bad one like a truncation.
    """
    if _ZEROS.fullmatch(data):
        raise LoadError(f"{name}: file holds nothing but {len(data):,} zero bytes (a zero-filled file)")
    out = Decoded("otlp-proto-stream", [], warnings)
    messages = out.messages
    view = memoryview(data)  # slices share the file's buffer instead of copying every message
    pos, size = 0, len(data)
    zero_runs: list[tuple[int, int]] = []  # (position, length) of runs of empty frames skipped
    while pos < size:
        if pos + 4 > size:
            problem = f"{size - pos} stray bytes at the end"
        else:
            length = int.from_bytes(view[pos : pos + 4], "big")
            if length == 0 and (run := _ZEROS.match(data, pos).end() - pos) >= 8:  # type: ignore[union-attr]
                skip = _after_zeros(data, view, pos, run, name)
                zero_runs.append((pos, skip))
                pos += skip
                continue
            end = pos + 4 + length
            if end > size:
                problem = f"message {len(messages) + 1} is truncated ({size - pos - 4} of {length} bytes)"
                out.spans_unread += count_spans(view[pos + 4 : size])
                out.messages_held = len(messages) + 1
            else:
                payload, kind = _frame_payload(view[pos + 4 : end], name, len(messages) + 1)
                if payload is not None and (messages or length == 0 or parse_traces(payload) is not None):
                    if not messages:
                        out.format = {
                            "zstd": "otlp-proto-stream+zstd-messages",
                            "proto+json": "otlp-json-stream",
                            "zstd+json": "otlp-json-stream+zstd-messages",
                        }.get(kind, out.format)
                    messages.append(payload)
                    pos = end
                    continue
                problem = f"message {len(messages) + 1} at byte {pos} is not an OTLP TracesData message"
                out.spans_unread += count_spans(payload if payload is not None else view[pos + 4 : end])
                out.messages_held = len(messages) + 1
        if not messages:
            return None
        warnings.append(f"{name}: {problem}; kept the {len(messages)} complete messages before it")
        out.bytes_skipped += size - pos
        break
    if zero_runs:
        skipped = sum(n for _, n in zero_runs)
        out.bytes_skipped += skipped
        where = ", ".join(f"{n:,} at byte {p:,}" for p, n in zero_runs[:MAX_ZERO_WARNINGS])
        more = (
            f" and {len(zero_runs) - MAX_ZERO_WARNINGS} more runs"
            if len(zero_runs) > MAX_ZERO_WARNINGS
            else ""
        )
        warnings.append(
            f"{name}: skipped {skipped:,} zero bytes ({where}{more}): runs of empty messages are damage "
            "(a crashed writer's zero-filled tail), not batches"
        )
        out.notes["zero_bytes_skipped"] = skipped
    return out


def _after_zeros(data: bytes, view: memoryview, pos: int, run: int, name: str) -> int:
    """How many bytes of the run of ``run`` zero bytes at ``pos`` to skip: up to the first place near its
    end where a whole message starts (the next length prefix may begin with zero bytes, and the run need
    not be a whole number of empty frames), else the empty frames it holds."""
    end = pos + run
    for start in range(max(pos, end - 3), end + 1):
        if start + 4 > len(data):
            break
        length = int.from_bytes(view[start : start + 4], "big")
        if length and start + 4 + length <= len(data):
            payload, _ = _frame_payload(view[start + 4 : start + 4 + length], name, 0)
            if payload is not None and parse_traces(payload) is not None:
                return start - pos
    return run - run % 4


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
        framed.format = prefix + framed.format
        return framed
    if parse_traces(data) is not None:
        return Decoded(prefix + "otlp-proto", [data], warnings)
    if looks_json:
        return _json(data, name, prefix, warnings)
    raise LoadError(
        f"{name}: not a trace dump (not OTLP protobuf, a file exporter stream, OTLP/JSON, Jaeger or Zipkin)"
    )
