"""Lenient protobuf reading: what to do with a message the strict parser refuses.

Contract:

- :func:`parse_message` parses one serialized ``TracesData``. The fast path is the strict C parser. Only
  when it refuses the message, the message is parsed again with a copy of the OTLP schema in which every
  ``string`` field is ``bytes`` (protobuf rejects invalid UTF-8 in proto3 strings, and one such byte would
  lose the whole message, and with a file exporter stream every message after it). Each string that is not
  UTF-8 is then decoded with U+FFFD replacement characters and the repaired message re-parsed strictly:
  every span is kept, and the caller learns how many strings and spans were repaired.
- Memory exhaustion inside the parser (``Arena alloc failed``) raises :class:`MemoryError`, never "corrupt
  data".
- :func:`count_spans` counts, at the wire level and without parsing span bodies, the spans a message that
  could not be loaded (truncated, corrupt) holds as far as its bytes go: a lower bound, for the accounting
  of what a dump held versus what was loaded.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Span, TracesData

__all__ = ["parse_message", "count_spans"]

_STRING, _MESSAGE = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE
_LENIENT: Any = None


def _string_fields() -> frozenset[str]:
    """Full names of every ``string`` field reachable from ``TracesData``."""
    out: set[str] = set()
    seen: set[str] = set()
    stack = [TracesData.DESCRIPTOR]
    while stack:
        desc = stack.pop()
        if desc.full_name in seen:
            continue
        seen.add(desc.full_name)
        for f in desc.fields:
            if f.type == _STRING:
                out.add(f.full_name)
            elif f.type == _MESSAGE:
                stack.append(f.message_type)
    return frozenset(out)


_STRING_FIELDS = _string_fields()


def _repeated(f: Any) -> bool:
    flag = getattr(f, "is_repeated", None)
    return bool(flag) if flag is not None else f.label == FieldDescriptor.LABEL_REPEATED


def _lenient_class() -> Any:
    """``TracesData`` of a private descriptor pool where every ``string`` field is ``bytes`` (built once)."""
    global _LENIENT
    if _LENIENT is None:
        pool = descriptor_pool.DescriptorPool()
        done: set[str] = set()

        def add(fd: Any) -> None:
            if fd.name in done:
                return
            for dep in fd.dependencies:
                add(dep)
            proto = descriptor_pb2.FileDescriptorProto()
            fd.CopyToProto(proto)
            stack = list(proto.message_type)
            while stack:
                msg = stack.pop()
                stack.extend(msg.nested_type)
                for f in msg.field:
                    if f.type == _STRING:
                        f.type = FieldDescriptor.TYPE_BYTES
            pool.Add(proto)
            done.add(fd.name)

        add(trace_pb2.DESCRIPTOR)
        _LENIENT = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(TracesData.DESCRIPTOR.full_name)
        )
    return _LENIENT


def _fixed(value: bytes) -> bytes | None:
    """``value`` decoded with replacement characters and encoded again; None when it is UTF-8 already."""
    if value.isascii():
        return None
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("utf-8", "replace").encode("utf-8")
    return None


def _repair(msg: Any) -> int:
    """Decode every non-UTF-8 string of ``msg`` (a lenient message) with replacement; returns how many."""
    n = 0
    for f, value in msg.ListFields():
        if f.type == _MESSAGE:
            for item in value if _repeated(f) else (value,):
                n += _repair(item)
        elif f.full_name in _STRING_FIELDS:
            if _repeated(f):  # no repeated string field in OTLP traces today
                fixed = [_fixed(v) for v in value]
                if any(x is not None for x in fixed):
                    value[:] = [v if x is None else x for v, x in zip(value, fixed, strict=True)]
                    n += sum(x is not None for x in fixed)
            elif (repaired := _fixed(value)) is not None:
                setattr(msg, f.name, repaired)
                n += 1
    return n


def _repair_bad(msg: Any, strict: Any) -> int:
    """:func:`_repair` only when the strict class refuses ``msg``'s bytes (a C-speed check first: walking
    every field in Python costs ~100 us per span)."""
    try:
        strict.FromString(msg.SerializeToString())
    except DecodeError:
        return _repair(msg)
    return 0


def _strict(payload: bytes | memoryview) -> TracesData | None:
    try:
        td = TracesData.FromString(payload)
    except DecodeError as err:
        if "alloc" in str(err).lower():
            raise MemoryError(str(err)) from None
        return None
    return None if len(UnknownFieldSet(td)) else td


def parse_message(payload: bytes | memoryview) -> tuple[TracesData | None, int, int]:
    """``(TracesData or None, strings repaired, spans holding a repaired string)`` (module docstring).

    None when the bytes are not a ``TracesData`` even with lenient strings, or hold unknown top-level
    fields (another message type)."""
    td = _strict(payload)
    if td is not None:
        return td, 0, 0
    try:
        loose = _lenient_class().FromString(payload)
    except DecodeError as err:
        if "alloc" in str(err).lower():
            raise MemoryError(str(err)) from None
        return None, 0, 0
    if len(UnknownFieldSet(loose)):
        return None, 0, 0
    strings = spans = 0
    for rs in loose.resource_spans:
        strings += _repair_bad(rs.resource, Resource)
        if (url := _fixed(rs.schema_url)) is not None:
            rs.schema_url, strings = url, strings + 1
        for ss in rs.scope_spans:
            strings += _repair_bad(ss.scope, InstrumentationScope)
            if (url := _fixed(ss.schema_url)) is not None:
                ss.schema_url, strings = url, strings + 1
            for sp in ss.spans:
                k = _repair_bad(sp, Span)
                strings += k
                spans += k > 0
    if not strings:  # refused for another reason than UTF-8
        return None, 0, 0
    td = _strict(loose.SerializeToString())
    return (td, strings, spans) if td is not None else (None, 0, 0)


def _varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``; (-1, end) when cut off or too long."""
    shift = value = 0
    while pos < end and shift < 70:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, end


def _fields(data: memoryview, pos: int, end: int, want: int) -> list[tuple[int, int]]:
    """(start, end) of every length-delimited field number ``want`` between pos and end, the last one
    clipped at ``end`` when cut off; stops at the first malformed tag."""
    out: list[tuple[int, int]] = []
    while pos < end:
        tag, pos = _varint(data, pos, end)
        if tag <= 0:
            break
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if length < 0:
                break
            if number == want:
                out.append((pos, min(pos + length, end)))
            pos += length
        else:
            break
    return out


def count_spans(payload: bytes | memoryview) -> int:
    """Spans a (possibly damaged) serialized ``TracesData`` holds as far as its bytes go (a lower bound:
    counting stops at the first malformed tag of each level)."""
    data = memoryview(payload)
    n = 0
    for rs in _fields(data, 0, len(data), 1):  # TracesData.resource_spans
        for ss in _fields(data, *rs, 2):  # ResourceSpans.scope_spans
            n += len(_fields(data, *ss, 2))  # ScopeSpans.spans
        for ss in _fields(data, *rs, 1000):  # pre-0.19 instrumentation_library_spans
            n += len(_fields(data, *ss, 2))
    return n
