"""Entry point for JSON trace dumps: tells which JSON format a file is and hands it to its reader.

Contract: :func:`decode_json` takes the whole (decompressed) content of one file and its name, detects the
format from the content only, and returns a :class:`~tracegroup.load.base.Decoded` whose messages are
serialized OTLP ``TracesData``:

- ``otlp-json``: one OTLP/JSON document (``TracesData`` or ``ExportTraceServiceRequest``) -> 1 message
  (:mod:`~tracegroup.load.otlp_json`).
- ``otlp-jsonl``: JSON Lines of ``TracesData`` (collector file exporter) -> 1 message per non-empty line; a
  truncated last line is skipped with a warning, any other bad line is an error
  (:mod:`~tracegroup.load.otlp_json`). A file is JSON Lines when its first line is a whole JSON object and
  more follows.
- ``jaeger-v3``: ``{"result": {"resourceSpans": ...}}`` (Jaeger query API v3) -> 1 message; the wrapped
  document is OTLP/JSON (:mod:`~tracegroup.load.otlp_json`).
- ``jaeger``: Jaeger v1 query/UI JSON ``{"data": [trace, ...]}`` -> 1 message holding every trace, converted
  like the collector's jaeger->OTLP translator (:mod:`~tracegroup.load.jaeger`); ``errors`` next to the data
  become a warning. Also one bare trace ``{"traceID", "spans", "processes"}`` (``jq .data[0]``), an array
  of such traces, and an array of Jaeger spans with inline ``process`` (jaeger-anonymizer output).
- ``zipkin``: Zipkin v2 JSON (an array of spans, or an array of traces) -> 1 message; records of one span are
  merged and ``shared`` server halves get a derived span id of their own (:mod:`~tracegroup.load.zipkin`).
  ``zipkin-v1``: the same arrays holding Zipkin v1 records (``binaryAnnotations``, annotation endpoints),
  converted to v2 first (:mod:`~tracegroup.load.zipkin_v1`).
- A file whose bytes are not all UTF-8 is decoded with U+FFFD replacement characters, with a warning.

A JSON API error response (``errors`` / ``error`` and no data) is an error naming it. Nothing but
:class:`LoadError` (one line, naming the file) escapes for bad input.
"""

from __future__ import annotations

import json
import re
from typing import Any

from google.protobuf import json_format

from tracegroup.load.base import Decoded, LoadError
from tracegroup.load.jaeger import decode_jaeger
from tracegroup.load.jsonutil import BAD, one_line, short
from tracegroup.load.otlp_json import decode_jsonl, otlp_message
from tracegroup.load.zipkin import decode_zipkin

__all__ = ["decode_json"]

_NONBLANK = re.compile(rb"\S")


def decode_json(data: bytes, name: str) -> Decoded:
    """Decode one JSON trace file (see the module docstring for the formats and the contract)."""
    data, bad_utf8 = _lenient_utf8(data)
    decoded = _decode_json(data, name)
    if bad_utf8:
        decoded.notes["invalid_utf8_sequences"] = bad_utf8
        decoded.warnings.append(
            f"{name}: {bad_utf8:,} byte sequences were not valid UTF-8; decoded with U+FFFD replacement "
            "characters, every span kept"
        )
    return decoded


def _lenient_utf8(data: bytes) -> tuple[bytes, int]:
    """``data`` with every invalid UTF-8 sequence replaced by U+FFFD, and how many there were."""
    if data.isascii():
        return data, 0
    try:
        data.decode("utf-8")
        return data, 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
    fixed = text.encode("utf-8")
    return fixed, text.count("\ufffd") - data.count("\ufffd".encode())


def _decode_json(data: bytes, name: str) -> Decoded:
    fmt = "JSON"
    try:
        if not _NONBLANK.search(data):
            raise LoadError(f"{name}: empty file")
        lines = _jsonl_head(data)
        if lines is not None:
            fmt = "otlp-jsonl"
            return decode_jsonl(lines, name)
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise LoadError(f"{name}: not valid JSON: {one_line(exc)}") from None
        if isinstance(doc, list):
            jaeger = _jaeger_list(doc)
            if jaeger is not None:
                fmt = "jaeger"
                return decode_jaeger(jaeger, name)
            fmt = "zipkin"
            return decode_zipkin(doc, name)
        if not isinstance(doc, dict):
            raise LoadError(f"{name}: JSON {type(doc).__name__} is not a trace document")
        if isinstance(doc.get("spans"), list) and ("traceID" in doc or "processes" in doc):
            fmt = "jaeger"  # one bare Jaeger trace: what `jq .data[0]` gives
            return decode_jaeger([doc], name)
        if "resourceSpans" in doc or "resource_spans" in doc:
            fmt = "otlp-json"
            return Decoded(fmt, [otlp_message(doc, name)])
        if isinstance(doc.get("result"), dict):
            fmt = "jaeger-v3"
            return Decoded(fmt, [otlp_message(doc["result"], name)])
        if isinstance(doc.get("data"), list):
            fmt = "jaeger"
            decoded = decode_jaeger(doc["data"], name)
            if doc.get("errors"):
                decoded.warnings.append(f"{name}: Jaeger API reported errors: {short(doc['errors'], 200)}")
            return decoded
        problem = doc.get("errors") or doc.get("error")
        if problem:
            raise LoadError(f"{name}: the document is an API error response: {short(problem, 200)}")
        raise LoadError(
            f"{name}: JSON object with keys {short(sorted(doc)[:5])} is not OTLP (resourceSpans), "
            'Jaeger ({"data": [...]}) or Jaeger v3 ({"result": {...}})'
        )
    except BAD + (json_format.ParseError,) as exc:
        raise LoadError(f"{name}: malformed {fmt} data: {type(exc).__name__}: {one_line(exc)}") from exc


def _jaeger_list(doc: list[Any]) -> list[Any] | None:
    """A JSON array as Jaeger traces: an array of Jaeger traces (``{traceID, spans, processes}``), or of
    Jaeger spans (``traceID`` / ``spanID``, usually with an inline ``process``: jaeger-anonymizer output)
    as one trace; None when it is not Jaeger (Zipkin spells ``traceId`` / ``id``)."""
    first = doc[0] if doc and isinstance(doc[0], dict) else None
    if first is None:
        return None
    if isinstance(first.get("spans"), list) and ("traceID" in first or "processes" in first):
        return doc
    if "traceID" in first and "spanID" in first:
        return [{"spans": doc}]
    return None


def _jsonl_head(data: bytes) -> list[bytes] | None:
    """The lines of ``data`` if it is JSON Lines: its first line is a whole JSON object and more follows."""
    found = _NONBLANK.search(data)
    start = found.start() if found else 0
    end = data.find(b"\n", start)
    if end < 0 or data[start] != ord("{") or not _NONBLANK.search(data, end):
        return None
    try:
        first = json.loads(data[start:end])
    except ValueError:
        return None
    return data.split(b"\n") if isinstance(first, dict) else None
