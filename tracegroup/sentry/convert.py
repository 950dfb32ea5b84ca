"""One OTLP span -> one Sentry span, in two styles, plus the Relay rules every event must satisfy.

Contract:
- ``exporter`` style reproduces the legacy collector-contrib Sentry exporter (2023–2025,
  ``convertToSentrySpan`` and friends; ``docs/exporter.md``): op and description
  from the first of ``http.method``, ``db.system``, ``rpc.service``, ``messaging.system``,
  ``faas.trigger``; tags from span attributes then resource attributes (resource wins), values formatted
  as Go formats them; ``status_message``, ``span_kind`` (``SPAN_KIND_…``), ``library_name`` and
  ``library_version`` tags; the status table of PR #13407; timestamps as Go's RFC 3339 with nanoseconds.
- ``sentry`` style is what Sentry's own OpenTelemetry SDKs send: attributes in ``data`` as JSON values,
  op/description from both generations of the semantic conventions (``http.method`` /
  ``http.request.method``, ``db.system`` / ``db.system.name``, ``rpc.service``, ``messaging.system`` ->
  ``message``, in the order of Relay's ``derive_op_for_v2_span``), the SDKs' HTTP and gRPC status tables
  (gRPC status 0 on an ERROR span counts as absent, as in sentry-python), ``origin: auto.otel``,
  timestamps with microseconds; the transaction name and source come from :func:`sentry_transaction_name`,
  the platform from :data:`PLATFORMS`.
- Both styles keep span links as Sentry links (``trace_id``, ``span_id``, ``sampled``, ``attributes``).
- :func:`relay_event_tags` applies, to event-level tags, the rules Relay enforces (empty values,
  forbidden key characters, reserved keys; values or keys over 200 characters trimmed to 200 as
  ``sentry-relay`` 0.10.1 trims them) so what is emitted is what Relay keeps; :func:`valid_release` and
  :func:`valid_environment` are Relay's checks of those two fields.
- Everything here is per span and allocation-light: no span-tree walks, no per-span imports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracegroup.model import (
    KIND_CLIENT,
    KIND_CONSUMER,
    KIND_SERVER,
    KIND_UNSPECIFIED,
)
from tracegroup.otlp import any_json, go_float

STYLES = ("exporter", "sentry")

#: The exporter's ``sdk`` (``otelSentryExporterName`` / ``otelSentryExporterVersion``).
EXPORTER_SDK: dict[str, str] = {"name": "sentry.opentelemetry", "version": "0.0.2"}

#: ``canonicalCodesHTTPMap`` of the exporter (keys are the tag's string value).
EXPORTER_HTTP_STATUS: dict[str, str] = {
    "400": "failed_precondition",
    "401": "unauthenticated",
    "403": "permission_denied",
    "404": "not_found",
    "409": "aborted",
    "429": "resource_exhausted",
    "499": "cancelled",
    "500": "internal_error",
    "501": "unimplemented",
    "503": "unavailable",
    "504": "deadline_exceeded",
}

#: gRPC status code -> Sentry span status (the exporter's ``canonicalCodesGrpcMap``; the SDKs use the same).
GRPC_STATUS: dict[str, str] = {
    "1": "cancelled",
    "2": "unknown",
    "3": "invalid_argument",
    "4": "deadline_exceeded",
    "5": "not_found",
    "6": "already_exists",
    "7": "permission_denied",
    "8": "resource_exhausted",
    "9": "failed_precondition",
    "10": "aborted",
    "11": "out_of_range",
    "12": "unimplemented",
    "13": "internal_error",
    "14": "unavailable",
    "15": "data_loss",
    "16": "unauthenticated",
}

#: Sentry span statuses (``sentry`` style accepts an ERROR status message that is one of these).
SPAN_STATUSES = frozenset(
    {
        "ok", "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
        "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
        "unimplemented", "internal_error", "unavailable", "data_loss", "unauthenticated",
    }
)  # fmt: skip

#: ``traceutil.SpanKindStr`` for the ``span_kind`` tag (kind 0 gets no tag; unknown kinds an empty one).
KIND_TAGS: dict[int, str] = {
    1: "SPAN_KIND_INTERNAL",
    2: "SPAN_KIND_SERVER",
    3: "SPAN_KIND_CLIENT",
    4: "SPAN_KIND_PRODUCER",
    5: "SPAN_KIND_CONSUMER",
}
_KIND_DATA = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}

#: ``telemetry.sdk.language`` -> Sentry ``platform`` (Relay's accepted names; anything else is ``other``).
PLATFORMS: dict[str, str] = {
    "cpp": "native",
    "c": "c",
    "dotnet": "csharp",
    "erlang": "elixir",
    "elixir": "elixir",
    "go": "go",
    "java": "java",
    "kotlin": "java",
    "nodejs": "node",
    "php": "php",
    "python": "python",
    "ruby": "ruby",
    "rust": "native",
    "swift": "cocoa",
    "webjs": "javascript",
    "javascript": "javascript",
    "perl": "perl",
}

#: Keys the exporter's descriptor rules look at (presence, any type).
_DESCRIPTOR_KEYS = frozenset({"http.method", "db.system", "db.statement", "rpc.service", "messaging.system"})
_DESCRIPTOR_KEYS |= {"faas.trigger"}

#: Relay: tag keys Relay removes from event tags (``environment`` is moved to the event instead).
RESERVED_TAG_KEYS = frozenset({"release", "dist", "user", "filename", "function"})
MAX_TAG_CHARS = 200
_TAG_KEY_RE = re.compile(r"[A-Za-z0-9_.:\- ]+")
_RELEASE_BAD = re.compile(r"[\n\r\t\x0b\x0c/\\]")
_ENV_BAD = re.compile(r"[\n\r\t\x0b\x0c/\\]")


# --------------------------------------------------------------------------------------------- values
def tag_value(v: Any) -> str | None:
    """An OTLP ``AnyValue`` as the exporter's tag string; None for empty, map, array and bytes values."""
    w = v.WhichOneof("value")
    if w == "string_value":
        return str(v.string_value)
    if w == "int_value":
        return str(v.int_value)
    if w == "bool_value":
        return "true" if v.bool_value else "false"
    if w == "double_value":
        return go_float(v.double_value)
    return None


def go_times(ns: np.ndarray) -> list[str]:
    """UTC timestamps as Go's ``time.Time`` JSON (RFC 3339, nanoseconds, trailing zeros trimmed), for a
    whole column at once."""
    return rfc3339(ns, 9, trim=True)


def iso_times(ns: np.ndarray) -> list[str]:
    """UTC timestamps as the Sentry SDKs send them (RFC 3339 with microseconds), for a whole column."""
    return rfc3339(ns, 6, trim=False)


_COLS = np.arange(11)


def rfc3339(ns: np.ndarray, digits: int, *, trim: bool) -> list[str]:
    """Nanosecond UTC timestamps as ``YYYY-MM-DDTHH:MM:SS.fffZ`` with ``digits`` fraction digits (9 or 6,
    truncated toward the past), trailing zeros and a bare ``.`` left out when ``trim``: the text of
    ``numpy.datetime_as_string`` with the fraction handled as Go does. Built as one array of characters
    (each distinct second's text made once, the digits by arithmetic), so a value costs about one string
    object (int64 nanoseconds span the years 1677 to 2262: always four digits)."""
    n = len(ns)
    if not n:
        return []
    ticks = ns.astype(np.int64)
    if digits < 9:
        ticks = ticks // 10 ** (9 - digits)
    sec, frac = np.divmod(ticks, 10**digits)
    lo, hi = int(sec.min()), int(sec.max())
    if hi - lo <= 4 * n:  # a batch spans a few seconds or minutes: index them directly
        secs, inv = np.arange(lo, hi + 1, dtype=np.int64), sec - lo
    else:
        secs, inv = np.unique(sec, return_inverse=True)
    chars = np.datetime_as_string(secs.astype("datetime64[s]"), unit="s").view(np.uint32)
    chars = chars.reshape(len(secs), -1)  # 19 characters and NULs
    w = 19 + digits + 2
    out = np.empty((n, w), dtype=np.uint32)
    out[:, :19] = chars[:, :19][inv]
    out[:, 19] = ord(".")
    f = frac
    for j in range(digits - 1, -1, -1):
        f, out[:, 20 + j] = np.divmod(f, 10)
    out[:, 20 : 20 + digits] += ord("0")
    if trim:
        nonzero = out[:, 19 + digits : 19 : -1] != ord("0")  # the digits, last first
        last = np.where(frac == 0, 18, 19 + digits - np.argmax(nonzero, axis=1))  # the last character kept
        out[:, 19:] *= _COLS[: digits + 2] <= (last - 19)[:, None]  # NULs: the end of a numpy string
        out[np.arange(n), last + 1] = ord("Z")
    else:
        out[:, -1] = ord("Z")
    return out.view(f"U{w}").ravel().tolist()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------- resources
@dataclass
class ResourceInfo:
    """What every span of one ``ResourceSpans`` shares, computed once per resource."""

    tags: dict[str, str]  # exporter: resource attributes as tags
    json: dict[str, Any]  # sentry: contexts.otel.resource
    release: str = ""
    environment: str = ""
    platform: str = "other"
    notes: list[str] = field(default_factory=list)


def resource_info(attributes: Iterable[Any], style: str) -> ResourceInfo:
    """Resource attributes -> tags (exporter) or ``contexts.otel.resource``, release, environment and
    platform (sentry). Invalid release/environment values are left out with a note (Relay would drop
    them with an error)."""
    if style == "exporter":
        tags = {}
        for kv in attributes:
            t = tag_value(kv.value)
            if t is not None:
                tags[kv.key] = t
        return ResourceInfo(tags, {})
    res: dict[str, Any] = {}
    for kv in attributes:
        val = any_json(kv.value)
        if val is not None:
            res[kv.key] = val
    info = ResourceInfo({}, res)
    release = res.get("service.version")
    if isinstance(release, str) and release:
        if valid_release(release):
            info.release = release
        else:
            info.notes.append(f"service.version {release[:40]!r} is not a valid Sentry release: left out")
    env = res.get("deployment.environment.name", res.get("deployment.environment"))
    if isinstance(env, str) and env:
        if valid_environment(env):
            info.environment = env
        else:
            info.notes.append(
                f"deployment.environment {env[:40]!r} is not a valid Sentry environment: left out"
            )
    lang = res.get("telemetry.sdk.language")
    info.platform = PLATFORMS.get(lang.lower(), "other") if isinstance(lang, str) else "other"
    return info


def valid_release(value: str) -> bool:
    """Relay's release check: 1–200 characters, no newline/tab/slash/backslash, not ``.``, ``..`` or
    ``latest``."""
    v = value.strip()
    return (
        0 < len(value) <= 200
        and bool(v)
        and not _RELEASE_BAD.search(value)
        and v not in (".", "..")
        and v.lower() != "latest"
    )


def valid_environment(value: str) -> bool:
    """Relay's environment check: 1–64 characters, no newline/tab/slash/backslash, not ``none``."""
    return (
        0 < len(value) <= 64
        and bool(value.strip())
        and not _ENV_BAD.search(value)
        and value.strip().lower() != "none"
    )


# --------------------------------------------------------------------------------------------- exporter
def exporter_tags_from_attributes(attributes: Iterable[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """``generateTagsFromAttributes``: (tags, descriptor attributes present with their ``Str()`` value —
    the empty string for non-string values, as pcommon's ``Value.Str()`` gives)."""
    tags: dict[str, str] = {}
    present: dict[str, str] = {}
    for kv in attributes:
        key, v = kv.key, kv.value
        w = v.WhichOneof("value")
        if w == "string_value":
            t: str | None = v.string_value
        elif w == "int_value":
            t = str(v.int_value)
        else:
            t = tag_value(v)
        if t is not None:
            tags[key] = t
        if key in _DESCRIPTOR_KEYS and key not in present:
            present[key] = v.string_value if w == "string_value" else ""
    return tags, present


def exporter_descriptors(name: str, present: Mapping[str, str], kind: int) -> tuple[str, str]:
    """``generateSpanDescriptors``: (op, description) from the first convention attribute present."""
    if "http.method" in present:
        suffix = {1: ".internal", 2: ".server", 3: ".client", 4: ".producer", 5: ".consumer"}.get(kind, "")
        return "http" + suffix, f"{present['http.method']} {name}"
    if "db.system" in present:
        return "db", present.get("db.statement", name)
    if "rpc.service" in present:
        return "rpc", name
    if "messaging.system" in present:
        return "message", name
    if "faas.trigger" in present:
        return present["faas.trigger"], name
    return "", name


def exporter_status(code: int, message: str, tags: Mapping[str, str]) -> tuple[str, str]:
    """``statusFromSpanStatus``: (Sentry status, status message). UNSET and OK are ``ok``; ERROR goes
    through ``http.status_code`` (unmapped -> ``unknown``, gRPC not consulted), else
    ``rpc.grpc.status_code``, else ``unknown``; a code outside 0..2 is ``unknown`` with
    ``error code N``."""
    if code < 0 or code > 2:
        return "unknown", f"error code {code}"
    if code in (0, 1):
        return "ok", message
    if "http.status_code" in tags:
        return EXPORTER_HTTP_STATUS.get(tags["http.status_code"], "unknown"), message
    if "rpc.grpc.status_code" in tags:
        return GRPC_STATUS.get(tags["rpc.grpc.status_code"], "unknown"), message
    return "unknown", message


def exporter_fields(
    name: str,
    kind: int,
    tags: Mapping[str, str],
    present: Mapping[str, str],
    resource_tags: Mapping[str, str],
    scope_name: str,
    scope_version: str,
    code: int,
    message: str,
) -> dict[str, Any]:
    """The members of an exporter-style span item between its ids and its times (``op``,
    ``description``, ``status``, ``tags``), from its attributes as tags and descriptor values
    (:func:`exporter_tags_from_attributes`); ``tags`` is not modified."""
    op, description = exporter_descriptors(name, present, kind)
    all_tags = {**tags, **resource_tags}
    status, message = exporter_status(code, message, all_tags)
    if message:
        all_tags["status_message"] = message
    if kind != KIND_UNSPECIFIED:
        all_tags["span_kind"] = KIND_TAGS.get(kind, "")
    all_tags["library_name"] = scope_name
    all_tags["library_version"] = scope_version
    out: dict[str, Any] = {}
    if op:
        out["op"] = op
    if description:
        out["description"] = description
    out["status"] = status
    out["tags"] = dict(sorted(all_tags.items()))  # Go marshals maps with sorted keys
    return out


def exporter_span(
    sp: Any,
    name: str,
    resource_tags: Mapping[str, str],
    scope_name: str,
    scope_version: str,
    start: str,
    end: str,
) -> dict[str, Any]:
    """``convertToSentrySpan`` for one protobuf span (``name`` is the span name after renames)."""
    tags, present = exporter_tags_from_attributes(sp.attributes)
    out: dict[str, Any] = {"trace_id": sp.trace_id.hex(), "span_id": sp.span_id.hex()}
    if any(sp.parent_span_id):
        out["parent_span_id"] = sp.parent_span_id.hex()
    fields = exporter_fields(
        name, int(sp.kind), tags, present, resource_tags, scope_name, scope_version, int(sp.status.code),
        sp.status.message,
    )  # fmt: skip
    out.update(fields)
    out["start_timestamp"] = start
    out["timestamp"] = end
    links = span_links(sp)
    if links:
        out["links"] = links
    return out


# --------------------------------------------------------------------------------------------- sentry
def sentry_http_status(code: int) -> str:
    """Sentry SDKs' ``getSpanStatusFromHttpCode``."""
    if 100 <= code < 400:
        return "ok"
    if 400 <= code < 500:
        return {
            401: "unauthenticated",
            403: "permission_denied",
            404: "not_found",
            409: "already_exists",
            413: "failed_precondition",
            429: "resource_exhausted",
            499: "cancelled",
        }.get(code, "invalid_argument")
    if 500 <= code < 600:
        return {501: "unimplemented", 503: "unavailable", 504: "deadline_exceeded"}.get(
            code, "internal_error"
        )
    return "unknown"


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


def sentry_status(code: int, message: str, data: Mapping[str, Any]) -> str:
    """The SDKs' ``mapStatus``: OK is ``ok``; otherwise an HTTP status code attribute
    (``http.response.status_code`` / ``http.status_code``) decides, then ``rpc.grpc.status_code``; UNSET
    without them is ``ok``; ERROR falls back to its message when that is a Sentry status, else
    ``internal_error`` (what Relay makes of the SDKs' ``unknown_error``)."""
    if code == 1:
        return "ok"
    http = _int(data.get("http.response.status_code", data.get("http.status_code")))
    if http is not None:
        return sentry_http_status(http)
    grpc = _int(data.get("rpc.grpc.status_code"))
    if grpc == 0 and code == 2:  # sentry-python: a falsy gRPC code is absent, the status message decides
        grpc = None
    if grpc is not None:
        return "ok" if grpc == 0 else GRPC_STATUS.get(str(grpc), "unknown")
    if code == 0:
        return "ok"
    return message if message in SPAN_STATUSES else "internal_error"


def _str(data: Mapping[str, Any], *keys: str) -> str:
    for k in keys:
        v = data.get(k)
        if v is not None and v != "":
            return str(v)
    return ""


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def sentry_descriptors(name: str, kind: int, data: Mapping[str, Any]) -> tuple[str, str]:
    """(op, description) as Sentry infers them from OpenTelemetry attributes, old and new conventions; the
    ops and their precedence are Relay's (``relay-spans/src/op.rs``, ``derive_op_for_v2_span``)."""
    method = _str(data, "http.request.method", "http.method")
    if method:
        if kind == KIND_SERVER:
            target = _str(data, "http.route") or _strip_query(_str(data, "url.path", "http.target"))
            return "http.server", f"{method} {target}" if target else name
        target = _strip_query(_str(data, "url.full", "http.url")) or _str(data, "http.route")
        op = "http.client" if kind == KIND_CLIENT else "http"
        return op, f"{method} {target}" if target else name
    if "db.system" in data or "db.system.name" in data:
        return "db", _str(data, "db.query.text", "db.statement") or name
    if "rpc.service" in data:
        return "rpc", name
    if "messaging.system" in data:  # Relay's op inference: ``message``, whatever the operation
        return "message", name
    trigger = _str(data, "faas.trigger")
    if trigger:
        return trigger, name
    return "", name


#: Attributes naming a job (``task`` transactions), first found wins.
JOB_NAME_KEYS = ("job.name", "celery.task_name", "messaging.sidekiq.job_class", "faas.name")
_JOB_PREFIXES = ("job.", "celery.", "faas.")


def sentry_transaction_name(name: str, kind: int, data: Mapping[str, Any]) -> tuple[str, str]:
    """(transaction name, ``transaction_info.source``): ``http.route`` (with the method) -> ``route``;
    else a job (a job-name attribute, or any ``job.*``/``celery.*``/``faas.*`` attribute: the span name)
    -> ``task``; a messaging span (``messaging.system``) or a CONSUMER keeps its span name -> ``task``; else
    the span name -> ``custom``."""
    route = _str(data, "http.route")
    if route:
        method = _str(data, "http.request.method", "http.method")
        return (f"{method} {route}" if method else route), "route"
    job = _str(data, *JOB_NAME_KEYS)
    if job:
        return job, "task"
    if "messaging.system" in data or kind == KIND_CONSUMER or any(k.startswith(_JOB_PREFIXES) for k in data):
        return name, "task"
    return name, "custom"


def sentry_fields(
    name: str, kind: int, data: dict[str, Any], code: int, message: str, scope_name: str, scope_version: str
) -> dict[str, Any]:
    """The members of a Sentry-style span item between its ids and its times (``op``, ``description``,
    ``status``, ``origin``, ``data``) from its attributes as JSON values; ``data`` gets the ``otel.*``
    keys and becomes the item's ``data``."""
    op, description = sentry_descriptors(name, kind, data)
    status = sentry_status(code, message, data)
    data["otel.kind"] = _KIND_DATA.get(kind, str(kind))
    if scope_name:
        data["otel.scope.name"] = scope_name
    if scope_version:
        data["otel.scope.version"] = scope_version
    if message:
        data["otel.status_description"] = message
    out: dict[str, Any] = {}
    if op:
        out["op"] = op
    if description:
        out["description"] = description
    out["status"] = status
    out["origin"] = "auto.otel"
    out["data"] = data
    return out


def sentry_span(
    sp: Any,
    name: str,
    scope_name: str,
    scope_version: str,
    start: str,
    end: str,
) -> dict[str, Any]:
    """One protobuf span as a Sentry SDK would send it (``name`` after renames)."""
    kind = int(sp.kind)
    data: dict[str, Any] = {}
    for kv in sp.attributes:
        v = kv.value
        w = v.WhichOneof("value")
        if w == "string_value":
            data[kv.key] = v.string_value
        elif w == "int_value":
            data[kv.key] = v.int_value
        else:
            val = any_json(v)
            if val is not None:
                data[kv.key] = val
    out: dict[str, Any] = {"trace_id": sp.trace_id.hex(), "span_id": sp.span_id.hex()}
    if any(sp.parent_span_id):
        out["parent_span_id"] = sp.parent_span_id.hex()
    out.update(
        sentry_fields(name, kind, data, int(sp.status.code), sp.status.message, scope_name, scope_version)
    )
    out["start_timestamp"] = start
    out["timestamp"] = end
    links = span_links(sp)
    if links:
        out["links"] = links
    return out


def span_links(sp: Any) -> list[dict[str, Any]]:
    """OTLP links as Sentry span links; links with malformed ids are left out (Relay rejects them)."""
    out: list[dict[str, Any]] = []
    for link in sp.links:
        if len(link.trace_id) != 16 or len(link.span_id) != 8 or not any(link.trace_id):
            continue
        item: dict[str, Any] = {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()}
        if link.flags:
            item["sampled"] = bool(link.flags & 1)
        attrs = {kv.key: v for kv in link.attributes if (v := any_json(kv.value)) is not None}
        if link.trace_state:
            attrs["w3c.tracestate"] = link.trace_state
        if attrs:
            item["attributes"] = attrs
        out.append(item)
    return out


# --------------------------------------------------------------------------------------------- Relay rules
_KEY_VERDICTS: dict[str, str] = {}


def _key_verdict(key: str) -> str:
    """Why Relay would not keep a tag key ("" when it does; "environment" for that special key)."""
    if key in RESERVED_TAG_KEYS:
        return "reserved key"
    if key == "environment":
        return "environment"
    if not key or not _TAG_KEY_RE.fullmatch(key):
        return "key has characters Relay rejects"
    return ""


def relay_trim(text: str, limit: int = MAX_TAG_CHARS) -> str:
    """Relay's trimming of a string over ``limit`` characters: the first ``limit - 3`` and ``...``."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_EVENT_TAGS: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[str], str]] = {}


def relay_event_tags(tags: Mapping[str, str]) -> tuple[dict[str, str], list[str], str]:
    """Event-level tags as Relay keeps them: (tags, notes on what was left out, the value of an
    ``environment`` tag, which Relay moves to the event).

    Relay removes ``release``, ``dist``, ``user``, ``filename`` and ``function``; rejects empty values
    (after trimming whitespace, which it also strips), values containing a newline and keys with
    characters outside ``A-Z a-z 0-9 _ . : -`` (spaces become ``-``); it trims keys and values over 200
    characters to 197 and ``...`` (:func:`relay_trim`; Relay as published in ``sentry-relay`` 0.10.1 —
    older Relays rejected them, the rule this function followed before). Remembered per distinct tags
    (roots of one service repeat theirs); the caller owns the returned dict and list.
    """
    key = tuple(tags.items())
    hit = _EVENT_TAGS.get(key)
    if hit is None:
        if len(_EVENT_TAGS) >= 1 << 10:  # small: it holds the tags of roots
            _EVENT_TAGS.clear()
        hit = _EVENT_TAGS[key] = _relay_event_tags(tags)
    return dict(hit[0]), list(hit[1]), hit[2]


#: (key, value) -> (key, value as Relay keeps them, why Relay leaves the tag out or "environment", trimmed);
#: the first pairs seen with values up to 200 characters are kept (tags repeat across roots: service, host,
#: method, status…).
_TAG_VERDICTS: dict[tuple[str, str], tuple[str, str, str, bool]] = {}


def _tag_verdict(key: str, value: str) -> tuple[str, str, str, bool]:
    why = _KEY_VERDICTS.get(key)
    if why is None:
        why = _key_verdict(key)
        if len(_KEY_VERDICTS) < 100_000:  # bounded cache: keys repeat across spans
            _KEY_VERDICTS[key] = why
    v = value.strip()
    k = key.replace(" ", "-") if " " in key else key
    if why:
        return k, v, why, False
    if not v:
        return k, v, "empty value", False
    if "\n" in v:
        return k, v, "value with a newline", False
    if len(v) > MAX_TAG_CHARS or len(k) > MAX_TAG_CHARS:
        return relay_trim(k), relay_trim(v), "", True
    return k, v, "", False


def _relay_event_tags(tags: Mapping[str, str]) -> tuple[dict[str, str], list[str], str]:
    out: dict[str, str] = {}
    dropped: dict[str, list[str]] = {}
    trimmed: list[str] = []
    environment = ""
    for pair in tags.items():
        hit = _TAG_VERDICTS.get(pair)
        if hit is None:
            hit = _tag_verdict(*pair)
            if len(_TAG_VERDICTS) < 1 << 13 and len(pair[1]) <= MAX_TAG_CHARS:
                _TAG_VERDICTS[pair] = hit
        k, v, why, trim = hit
        if trim:
            trimmed.append(pair[0])
        if why == "environment":
            environment = v
            why = "moved to the event's environment"
        elif not why and k in out:
            why = "duplicate key after Relay's normalization"
        if why:
            dropped.setdefault(why, []).append(pair[0])
        else:
            out[k] = v
    notes = [f"tags left out ({why}): {', '.join(sorted(keys))}" for why, keys in sorted(dropped.items())]
    if trimmed:
        notes.append(f"tags trimmed to 200 characters as Relay trims them: {', '.join(sorted(trimmed))}")
    return dict(sorted(out.items())), notes, environment
