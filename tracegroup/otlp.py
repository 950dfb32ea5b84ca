"""OTLP ``AnyValue`` helpers shared by the span tables and the emitted events.

Contract: :func:`any_json` turns an ``AnyValue`` into a JSON value and :func:`attributes` a list of
key-values into a dict of them, the one conversion used by ``tracegroup spans``, the notebook frames and
``emit --style sentry``; :func:`go_float` formats a double as Go's ``strconv.FormatFloat(v, 'g', -1, 64)``,
as the legacy exporter wrote numbers; :func:`to_json` writes a ``TracesData`` as one OTLP/JSON document
(hex ids, as the collector's file exporter writes them). Pure functions over protobuf messages; this
module imports nothing of tracegroup.
"""

from __future__ import annotations

import base64
import json
import math
from decimal import Decimal
from typing import Any

from google.protobuf import json_format


def go_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)``: shortest round-trip digits, exponent form when the
    decimal exponent is below -4 or at least 6 (``123.123``, ``100``, ``1.234567e+06``, ``1e-05``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign, digit_tuple, exp = Decimal(repr(v)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exp, int)
    dp = len(digit_tuple) + exp  # position of the decimal point relative to the digits
    x = dp - 1
    s = "-" if sign else ""
    if x < -4 or x >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{s}{mant}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{s}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{s}{digits}{'0' * (dp - len(digits))}"
    return f"{s}{digits[:dp]}.{digits[dp:]}"


def any_json(v: Any) -> Any:
    """An OTLP ``AnyValue`` as a JSON value (arrays -> lists, kvlists -> objects, bytes -> base64,
    non-finite doubles -> strings, empty -> None). Nesting is bounded by protobuf's own depth limit."""
    w = v.WhichOneof("value")
    if w == "string_value":
        return v.string_value
    if w == "int_value":
        return v.int_value
    if w == "bool_value":
        return v.bool_value
    if w == "double_value":
        f = v.double_value
        return f if math.isfinite(f) else go_float(f)
    if w == "array_value":
        return [any_json(x) for x in v.array_value.values]
    if w == "kvlist_value":
        return {kv.key: any_json(kv.value) for kv in v.kvlist_value.values}
    if w == "bytes_value":
        return base64.b64encode(v.bytes_value).decode("ascii")
    return None


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP key-values as a dict of JSON values."""
    return {kv.key: any_json(kv.value) for kv in kvs}


def _hex_ids(doc: Any) -> Any:
    """OTLP/JSON wants hex ids; protobuf's JSON printer writes base64."""
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for obj in (sp, *sp.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if obj.get(key):
                            obj[key] = base64.b64decode(obj[key]).hex()
    return doc


def to_json(td: Any) -> str:
    """One ``TracesData`` as compact OTLP/JSON (hex ids, keys sorted)."""
    return json.dumps(_hex_ids(json_format.MessageToDict(td)), separators=(",", ":"), sort_keys=True)
