"""Sentry span items as JSON bytes straight from encoded OTLP spans: the fast path of ``tracegroup emit``.

Contract: :class:`SpanEncoder` turns one span of a ``TracesData`` parsed by
:func:`tracegroup.frames.detail_messages` (a span's status, attributes, events and links kept as their
encoded bytes) into its Sentry span item as compact JSON bytes, byte-identical to
``dumps(exporter_span(...))`` / ``dumps(sentry_span(...))`` of the same span after
:func:`tracegroup.redact.scrub_traces` with the same policy (the conversion rules are
:mod:`tracegroup.sentry.convert`'s; nothing is re-implemented here but the memos and the byte layout).
Each distinct encoded attribute is decoded and scrubbed once (key, tag string, descriptor value, JSON
value), each distinct attribute list once (tags or data), and each distinct (resource, scope, kind,
status, name, attribute list) is encoded once into the JSON fragment between a span's ids and its times,
so per span what remains is a few dictionary lookups and one string join. A whole pass goes further
(:meth:`SpanEncoder.known`, :meth:`SpanEncoder.remember`): the :class:`Fields` of a span without events
or links are remembered by its key (:data:`KEY_FIELDS` cut by :func:`tracegroup.frames.span_keys`) in its
resource and scope, so a span seen before costs one lookup and the :func:`span_item` join of its ids and
times. Memos are bounded (cleared when full; keys: the first :data:`KEYED` within :data:`KEYED_BYTES`
kept), so memory does not grow with the dump, and :meth:`SpanEncoder.forget` drops them when the pass
ends. Exception span events and links are decoded (and scrubbed) per span, as they are rare.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from operator import attrgetter
from types import SimpleNamespace
from typing import Any, NamedTuple

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracegroup.model import KIND_SERVER
from tracegroup.otlp import any_json
from tracegroup.redact import Policy, _attributes
from tracegroup.sentry.convert import (
    _DESCRIPTOR_KEYS,
    ResourceInfo,
    exporter_fields,
    resource_info,
    sentry_fields,
    sentry_transaction_name,
    span_links,
    tag_value,
)
from tracegroup.sentry.events import ExceptionRecord, dumps
from tracegroup.sentry.rename import Renamer

_ENCODE = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
#: Entries per memo before it is cleared.
MEMO = 1 << 13
#: Span keys remembered at most (per resource and scope: a service's hosts each have theirs), and the bytes
#: of their keys and fields at most (spans with big attributes fill it sooner).
KEYED = 1 << 15
KEYED_BYTES = 32 << 20


class Attr(NamedTuple):
    """One decoded, scrubbed attribute: the ``KeyValue`` (rename rules read it) and what conversion needs."""

    kv: Any
    key: str
    tag: str | None  # the exporter's tag string (None: not a tag)
    desc: str | None  # descriptor keys: the value's ``Str()``; others None
    data: Any  # sentry style: the JSON value (None: absent)


class Context(NamedTuple):
    """A resource and scope: its number in the run, the resource's info, the scope's name and version."""

    seq: int
    info: ResourceInfo
    scope_name: str
    scope_version: str


#: The span fields its item's middle depends on, and its events and links: what a span's key holds.
KEY_FIELDS = ("name", "kind", "status", "attributes", "events", "links")
_FIELDS = attrgetter("attributes", "name", "status", "kind", "links")


def span_item(tid: str, sid: str, parent: str, mid: str, start: str, end: str, links: str) -> str:
    """A span item from its trace id, span id, parent member (or ""), middle, times and links member (or
    ""), all ASCII (one ``join``: faster than ``str.format`` or ``%`` per span)."""
    return "".join(
        (
            '{"trace_id":"',
            tid,
            '","span_id":"',
            sid,
            '"',
            parent,
            ",",
            mid,
            ',"start_timestamp":"',
            start,
            '","timestamp":"',
            end,
            '"',
            links,
            "}",
        )
    )


class Fields(NamedTuple):
    """A span's item but its ids and times: the JSON between them (no braces), the route an inner SERVER
    span names (sentry style), its name after scrubbing and renames, whether a rename changed it, and its
    ``,"links":[…]`` member ("" when none)."""

    mid: str
    nested: str | None
    name: str
    renamed: bool
    links: str


class SpanEncoder:
    """Encodes spans of one style under one redaction policy (see the module docstring)."""

    def __init__(self, style: str, policy: Policy) -> None:
        self.style, self.policy = style, policy
        self.attrs: dict[bytes, Attr] = {}
        self.lists: dict[tuple[bytes, ...], tuple[Any, ...]] = {}
        self.mids: dict[tuple[Any, ...], tuple[str, str | None]] = {}
        self.statuses: dict[bytes, tuple[int, str]] = {b"": (0, "")}
        self.names: dict[str, str] = {}
        self.resources: dict[bytes, tuple[int, ResourceInfo]] = {}
        self.contexts: dict[tuple[int, str, str], Context] = {}
        self.keyed: dict[int, dict[bytes, Fields]] = {}  # context number -> span key -> fields
        self.nkeyed = self.keyed_bytes = 0
        self.seq = 0

    # ----------------------------------------------------------------- memoised pieces
    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def context(self, res: tuple[int, ResourceInfo], scope_name: str, scope_version: str) -> Context:
        """What the spans of one resource and scope share (numbered: part of the :attr:`mids` keys)."""
        key = (res[0], scope_name, scope_version)
        hit = self.contexts.get(key)
        if hit is None:
            if len(self.contexts) >= MEMO:
                self.contexts.clear()
            hit = self.contexts[key] = Context(self._next(), res[1], scope_name, scope_version)
        return hit

    def resource(self, rs: Any) -> tuple[int, ResourceInfo]:
        """(a number unique to the resource's attributes in this run, its :class:`ResourceInfo`)."""
        raw = rs.resource.SerializeToString()
        hit = self.resources.get(raw)
        if hit is None:
            res = Resource.FromString(raw)
            if self.policy:
                _attributes(res.attributes, self.policy)
            if len(self.resources) >= MEMO:
                self.resources.clear()
            hit = self.resources[raw] = (self._next(), resource_info(res.attributes, self.style))
        return hit

    def attr(self, raw: bytes) -> Attr:
        kv = KeyValue.FromString(raw)
        if self.policy:
            _attributes((kv,), self.policy)
        key, v = kv.key, kv.value
        w = v.WhichOneof("value")
        desc = (v.string_value if w == "string_value" else "") if key in _DESCRIPTOR_KEYS else None
        a = Attr(kv, key, tag_value(v), desc, any_json(v) if self.style == "sentry" else None)
        if len(self.attrs) >= MEMO:
            self.attrs.clear()
        self.attrs[raw] = a
        return a

    def attr_list(self, raws: tuple[bytes, ...]) -> tuple[Any, ...]:
        """(attrs, tags, descriptor values, number) in exporter style, (attrs, data, number) in sentry
        style; the number is unique in this run (the key of the list in :attr:`mids`)."""
        memo = self.attrs
        attrs = [memo.get(b) or self.attr(b) for b in raws]
        out: tuple[Any, ...]
        if self.style == "exporter":
            tags: dict[str, str] = {}
            present: dict[str, str] = {}
            for a in attrs:
                if a.tag is not None:
                    tags[a.key] = a.tag
                if a.desc is not None and a.key not in present:
                    present[a.key] = a.desc
            out = (attrs, tags, present, self._next())
        else:
            data = {a.key: a.data for a in attrs if a.data is not None}
            out = (attrs, data, self._next())
        if len(self.lists) >= MEMO:
            self.lists.clear()
        self.lists[raws] = out
        return out

    def status(self, raw: bytes) -> tuple[int, str]:
        st = Status.FromString(raw)
        msg = st.message
        if msg and self.policy:
            msg = self.policy.text(msg)
        out = self.statuses[raw] = (int(st.code), msg)
        return out

    def name(self, name: str) -> str:
        if len(self.names) >= MEMO:
            self.names.clear()
        out = self.names[name] = self.policy.text(name) if self.policy else name
        return out

    def middle(
        self,
        lst: tuple[Any, ...],
        rinfo: ResourceInfo,
        sname: str,
        sver: str,
        kind: int,
        code: int,
        msg: str,
        name: str,
    ) -> tuple[str, str | None]:
        """The JSON between a span's ids and its times (``"op"`` … ``"tags"``/``"data"`` members, no
        braces), and in sentry style the transaction name an inner SERVER span's ``http.route`` gives."""
        nested: str | None = None
        if self.style == "exporter":
            d = exporter_fields(name, kind, lst[1], lst[2], rinfo.tags, sname, sver, code, msg)
        else:
            data = dict(lst[1])
            if kind == KIND_SERVER and data.get("http.route"):
                nested = sentry_transaction_name("", KIND_SERVER, data)[0]
            d = sentry_fields(name, kind, data, code, msg, sname, sver)
        return _ENCODE(d)[1:-1], nested

    # ----------------------------------------------------------------- per span
    def fields(self, sp: Any, ctx: Context, renamer: Renamer | None = None, svc: int = 0) -> Fields:
        """What a span's item holds besides its ids and times (``sp``: a span with at least the
        :data:`KEY_FIELDS`, as :func:`tracegroup.frames.detail_messages` declares them)."""
        attrs, name, sraw, kind, links = _FIELDS(sp)
        raws = tuple(attrs)
        lst = self.lists.get(raws) or self.attr_list(raws)
        if name and self.policy:
            name = self.names.get(name) or self.name(name)
        given = name
        if renamer:
            name = renamer.apply(name, svc, (a.kv for a in lst[0]))
        key = (ctx.seq, kind, sraw, name, lst[-1])
        hit = self.mids.get(key)
        if hit is None:
            code, msg = self.statuses.get(sraw) or self.status(sraw)
            hit = self.middle(lst, ctx.info, ctx.scope_name, ctx.scope_version, kind, code, msg, name)
            if len(self.mids) >= MEMO:
                self.mids.clear()
            self.mids[key] = hit
        return Fields(hit[0], hit[1], name, name != given, self.links(links) if len(links) else "")

    def known(self, keys: Sequence[bytes], ctx: Context) -> list[Fields | None]:
        """The :class:`Fields` of the spans of one scope whose keys (:func:`tracegroup.frames.span_keys`
        of :data:`KEY_FIELDS`) were :meth:`remember`-ed in this context; None for the others."""
        memo = self.keyed.get(ctx.seq)
        if memo is None:
            return [None] * len(keys)
        return list(map(memo.get, keys))

    def recall(self, ctx: Context, key: bytes) -> Fields | None:
        """The :class:`Fields` remembered for one key in this context (None when not)."""
        memo = self.keyed.get(ctx.seq)
        return memo.get(key) if memo is not None else None

    def remember(self, ctx: Context, key: bytes, f: Fields) -> None:
        """Remember the fields of a span without events or links by its key, while there is room (the
        first :data:`KEYED` keys within :data:`KEYED_BYTES`: the frequent ones come early)."""
        if self.nkeyed >= KEYED or self.keyed_bytes >= KEYED_BYTES:
            return
        memo = self.keyed.get(ctx.seq)
        if memo is None:
            memo = self.keyed[ctx.seq] = {}
        memo[key] = f
        self.nkeyed += 1
        self.keyed_bytes += len(key) + len(f.mid)

    def forget(self) -> None:
        """Forget the remembered keys, attributes, lists and middles (the pass over the spans is done:
        their memory goes to what follows)."""
        for memo in (self.keyed, self.attrs, self.lists, self.mids, self.names):
            memo.clear()
        self.nkeyed = self.keyed_bytes = 0

    def encode(
        self,
        sp: Any,
        ctx: Context,
        st: str,
        en: str,
        renamer: Renamer | None = None,
        svc: int = 0,
    ) -> tuple[bytes, str, str | None]:
        """(the span item's JSON bytes, the span's name after scrubbing and renames, the nested route) of
        a whole span."""
        f = self.fields(sp, ctx, renamer, svc)
        pid, tid, sid = sp.parent_span_id, sp.trace_id, sp.span_id
        par = f',"parent_span_id":"{pid.hex()}"' if pid.strip(b"\0") else ""
        return span_item(tid.hex(), sid.hex(), par, f.mid, st, en, f.links).encode("ascii"), f.name, f.nested

    def links(self, raws: Iterable[bytes]) -> str:
        """The ``,"links":[…]`` member of a span with links ("" when none is valid)."""
        links = []
        for raw in raws:
            link = Span.Link.FromString(raw)
            if self.policy:
                _attributes(link.attributes, self.policy)
            links.append(link)
        out = span_links(SimpleNamespace(links=links))
        return ',"links":' + dumps(out).decode("ascii") if out else ""

    def exceptions(self, raws: Iterable[bytes], row: int) -> list[ExceptionRecord]:
        """The ``exception`` span events of one span that have a message or a type (scrubbed)."""
        out: list[ExceptionRecord] = []
        for k, raw in enumerate(raws):
            ev = Span.Event.FromString(raw)
            if ev.name != "exception":
                continue
            if self.policy:
                _attributes(ev.attributes, self.policy)
            msg = typ = stack = ""
            for kv in ev.attributes:
                key = kv.key
                if key == "exception.message":
                    msg = kv.value.string_value
                elif key == "exception.type":
                    typ = kv.value.string_value
                elif key == "exception.stacktrace":
                    stack = kv.value.string_value
            if msg or typ:
                out.append(ExceptionRecord(row, k, typ, msg, stack, int(ev.time_unix_nano)))
        return out
