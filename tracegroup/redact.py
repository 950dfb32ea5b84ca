"""One redaction policy for everything that leaves the machine: emitted Sentry payloads, corrected OTLP,
``tracegroup spans`` output and scrubbed dumps (``tracegroup redact``).

Contract:
- A :class:`Policy` rewrites strings inside OTLP protobuf messages in place (:func:`scrub_traces`): span
  names, status messages, and the values of span, resource, span event and link attributes (strings, and
  strings inside arrays and maps). Keys, ids, kinds, flags, times and the structure (which message holds
  which resource, scope and span) are never changed, nor is the value of the service attribute
  (``keep``), so every grouping of a scrubbed dump equals the original's.
- Secrets (``secrets``, on unless ``--keep-secrets``): URL userinfo becomes ``[Filtered]:[Filtered]@``
  (as ``sentry_sdk.utils.sanitize_url`` writes it); the value of a query parameter whose name looks secret
  (:data:`SECRET_WORDS`: ``token``, ``password``, ``api_key``, ``sig``, ``key``, … alone or as the last
  ``_``/``-``/``.`` separated part of the name) becomes ``[Filtered]``; the whole value of an attribute
  whose key is an ``Authorization``/``Cookie``/``Set-Cookie`` header (either convention:
  ``http.request.header.authorization``, ``http.request.header.cookie``,
  ``http.response.header.set-cookie``, …) or whose last key part is a secret word becomes
  ``[Filtered]``.
- Personal data (``pii``): e-mail addresses become ``[email]`` and IPv4/IPv6 addresses ``[ip]``, the
  replacements of Relay's ``@email:replace`` and ``@ip:replace`` rules.
- ``keys``: glob patterns (``fnmatch``, case-insensitive) of attribute keys whose whole value becomes
  ``[Filtered]``.
- Deterministic and idempotent: scrubbing twice gives what scrubbing once gave. Per string the cost is a
  few substring tests; the regular expressions run only on strings that could match.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.model import Batch, SpanTable

FILTERED = "[Filtered]"
EMAIL = "[email]"
IP = "[ip]"

#: Query parameter names (and last parts of attribute keys) whose values are secrets.
SECRET_WORDS = (
    "token", "password", "passwd", "pwd", "api_key", "apikey", "secret", "auth", "authorization",
    "signature", "sig", "key", "access_token", "refresh_token", "id_token", "credential", "credentials",
    "private_key", "session", "sessionid",
)  # fmt: skip
#: Header names whose values are secrets (attribute keys ``http.request.header.<name>`` and the like).
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")

_WORDS = "|".join(sorted((re.escape(w) for w in SECRET_WORDS), key=len, reverse=True))
_SECRET_NAME = re.compile(rf"(?:^|.*[_.\-])(?:{_WORDS})$", re.IGNORECASE)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^/\s?#@]+)@")
_QUERY = re.compile(r"([?&;])([^=&#\s;?]+)=([^&#\s;]*)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])")
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(
    rf"(?<![\w:.])(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,6}}(?::{_H}){{1,6}}|(?:{_H}:){{1,7}}:|:(?::{_H}){{1,7}})(?![\w:])"
)
#: Secret words that name a whole attribute only as a key's last part (narrower: ``messaging.*.key`` is not
#: a secret, ``?key=`` in a URL is).
_KEY_WORDS = "|".join(re.escape(w) for w in SECRET_WORDS if w not in ("key", "sig", "session", "signature"))
_SECRET_KEY = re.compile(rf"(?:^|.*[_\-])(?:{_KEY_WORDS})$", re.IGNORECASE)
_HEADER_KEY = re.compile(r"^(?:http\.(?:request|response)\.header\.|http\.request\.headers?\.)(.+)$", re.I)


def secret_key(key: str) -> bool:
    """Whether an attribute's whole value is a secret: a secret header (any convention, e.g.
    ``http.request.header.authorization``) or a key whose last part is a secret word
    (``db.password``, ``auth_token``)."""
    m = _HEADER_KEY.match(key)
    if m:
        name = m.group(1).lower().replace("_", "-")
        return name in SECRET_HEADERS or bool(_SECRET_NAME.match(name))
    return bool(_SECRET_KEY.match(key.rsplit(".", 1)[-1]))


def _query_sub(m: re.Match[str]) -> str:
    if _SECRET_NAME.match(m.group(2)) and m.group(3) != FILTERED:
        return f"{m.group(1)}{m.group(2)}={FILTERED}"
    return m.group(0)


@dataclass(frozen=True)
class Policy:
    """What to scrub (see the module docstring). ``Policy()`` scrubs secrets only; ``Policy(pii=True)``
    also e-mail and IP addresses; ``Policy(secrets=False)`` nothing (unless ``pii`` or ``keys``)."""

    secrets: bool = True
    pii: bool = False
    keys: tuple[str, ...] = ()
    keep: frozenset[str] = field(default_factory=lambda: frozenset({"service.name"}))

    def __bool__(self) -> bool:
        return self.secrets or self.pii or bool(self.keys)

    def text(self, s: str) -> str:
        """One string with secrets (and, with ``pii``, e-mail and IP addresses) replaced."""
        if self.secrets:
            if "@" in s and "://" in s:
                s = _USERINFO.sub(lambda m: f"{m.group(1)}{FILTERED}:{FILTERED}@", s)
            if "=" in s:
                s = _QUERY.sub(_query_sub, s)
        if self.pii:
            if "@" in s:
                s = _EMAIL.sub(EMAIL, s)
            if "." in s:
                s = _IPV4.sub(IP, s)
            if ":" in s:
                s = _IPV6.sub(IP, s)
        return s

    def whole(self, key: str) -> bool:
        """Whether the whole value of attribute ``key`` is replaced by ``[Filtered]``."""
        if key in self.keep:
            return False
        if self.secrets and secret_key(key):
            return True
        low = key.lower()
        return any(fnmatch.fnmatchcase(low, p.lower()) for p in self.keys)


@functools.lru_cache(maxsize=1 << 12)
def _whole(policy: Policy, key: str) -> bool:
    """:meth:`Policy.whole`, remembered: a dump holds few distinct keys and millions of attributes."""
    return policy.whole(key)


@functools.lru_cache(maxsize=1 << 16)
def _text(policy: Policy, s: str) -> str:
    """:meth:`Policy.text`, remembered: most attribute values repeat."""
    return policy.text(s)


def _value(v: Any, policy: Policy, whole: bool) -> bool:
    """Scrub one ``AnyValue`` in place; True when it changed."""
    w = v.WhichOneof("value")
    if w == "string_value":
        new = FILTERED if whole else _text(policy, v.string_value)
        if new != v.string_value:
            v.string_value = new
            return True
        return False
    if w == "array_value":
        return any([_value(x, policy, whole) for x in v.array_value.values])
    if w == "kvlist_value":
        return _attributes(v.kvlist_value.values, policy, whole)
    if whole and w is not None:
        v.string_value = FILTERED
        return True
    return False


def _attributes(kvs: Iterable[Any], policy: Policy, whole: bool = False) -> bool:
    changed = False
    for kv in kvs:
        if kv.key in policy.keep:
            continue
        changed |= _value(kv.value, policy, whole or _whole(policy, kv.key))
    return changed


def scrub_traces(td: TracesData, policy: Policy) -> bool:
    """Scrub one ``TracesData`` in place (see the module docstring); True when anything changed."""
    if not policy:
        return False
    changed = False
    for rs in td.resource_spans:
        changed |= _attributes(rs.resource.attributes, policy)
        for ss in rs.scope_spans:
            changed |= _attributes(ss.scope.attributes, policy)
            for sp in ss.spans:
                for holder, name in ((sp, "name"), (sp.status, "message")):
                    old = getattr(holder, name)
                    if old:
                        new = _text(policy, old)
                        if new != old:
                            setattr(holder, name, new)
                            changed = True
                changed |= _attributes(sp.attributes, policy)
                for ev in sp.events:
                    changed |= _attributes(ev.attributes, policy)
                for link in sp.links:
                    changed |= _attributes(link.attributes, policy)
    return changed


def scrub_bytes(raw: bytes | memoryview, policy: Policy) -> bytes | memoryview:
    """A serialized ``TracesData`` scrubbed (the same object back when nothing changed)."""
    td = TracesData.FromString(raw)
    return td.SerializeToString() if scrub_traces(td, policy) else raw


def redact_table(table: SpanTable, policy: Policy) -> SpanTable:
    """The same table over scrubbed batch bytes: every column and id equal, names and details scrubbed.
    The table's service attribute is always kept."""
    keep = Policy(policy.secrets, policy.pii, policy.keys, policy.keep | {table.service_attribute})
    if not keep:
        return table
    batches = [Batch(b.source, scrub_bytes(b.raw, keep), b.spans) for b in table.batches]
    out = dataclasses.replace(table, batches=batches, _parsed={})
    if "_warm" in table.__dict__:  # ids, times and flags are not scrubbed: keep them if already decoded
        out.__dict__["_warm"] = table.__dict__["_warm"]
    return out
