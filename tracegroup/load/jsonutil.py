"""Helpers shared by the JSON readers (:mod:`~tracegroup.load.otlp_json`, :mod:`~tracegroup.load.jaeger`,
:mod:`~tracegroup.load.zipkin` and the :mod:`~tracegroup.load.jsonfmt` dispatcher).

Contract: messages are one line (:func:`one_line`, :func:`short`); a shape check that fails raises
:class:`~tracegroup.load.base.LoadError` naming ``where``; ``BAD`` lists the exceptions a reader turns
into a ``LoadError`` for malformed input. :func:`put_attrs` writes plain JSON values as OTLP attributes:
bool, int in int64 range, float, bytes and str keep their type, ``None`` is an empty value, anything else
(lists, objects, big ints) becomes its JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tracegroup.load.base import LoadError

HEX = frozenset("0123456789abcdefABCDEF")
BAD = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError)
STATUS = {"OK": Status.STATUS_CODE_OK, "ERROR": Status.STATUS_CODE_ERROR}  # otel.status_code tag values
_INT64 = (-(1 << 63), (1 << 63) - 1)


def one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: object, limit: int = 60) -> str:
    return one_line(repr(value), limit)


def dicts(value: Any, what: str, where: str) -> list[dict[str, Any]]:
    """``value`` as a list of JSON objects (``None`` -> empty); anything else is a LoadError."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise LoadError(f"{where}: {what} is not a list of objects")
    return value


def _set_value(dest: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        dest.bool_value = value
    elif isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        dest.int_value = value
    elif isinstance(value, float):
        dest.double_value = value
    elif isinstance(value, bytes):
        dest.bytes_value = value
    elif isinstance(value, str):
        dest.string_value = value
    elif value is not None:
        dest.string_value = json.dumps(value)


def put_attrs(dest: Any, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        kv: KeyValue = dest.add()
        kv.key = key
        _set_value(kv.value, value)


def to_str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def pad_hex(value: Any, nbytes: int, field: str, where: str) -> bytes:
    """A Jaeger / Zipkin hex id, left-padded with zeros (64-bit trace ids -> 16 bytes); "" -> b""."""
    if value is None or value == "":
        return b""
    if isinstance(value, str) and len(value) <= 2 * nbytes and HEX.issuperset(value):
        return bytes.fromhex(value.rjust(2 * nbytes, "0"))
    raise LoadError(f"{where}: bad {field} {short(value)}: expected up to {2 * nbytes} hex digits")
