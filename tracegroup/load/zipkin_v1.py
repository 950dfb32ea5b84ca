"""Zipkin v1 JSON records -> Zipkin v2 records, the way Zipkin's own ``V1SpanConverter`` does it.

Contract: :func:`is_v1` tells a v1 record (``binaryAnnotations``, or annotations carrying an ``endpoint``,
and none of v2's ``localEndpoint`` / ``remoteEndpoint`` / ``kind`` / ``shared`` / ``tags``);
:func:`v1_to_v2` turns one v1 record into the v2 records it stands for, which
:mod:`~tracegroup.load.zipkin` then reads like any v2 input:

- a v2 record per service (annotation and binary annotation endpoints, matched by ``serviceName``); the
  record without an endpoint gets the data that names none;
- ``cs``/``cr`` make a CLIENT, ``sr``/``ss`` a SERVER, ``ms`` a PRODUCER, ``mr`` a CONSUMER; a v1 record
  holding both ``cs`` and ``sr`` (one RPC, both sides) becomes a client record and a ``shared`` server
  record (two even when both sides name the same service, a loopback); a server side seen without its
  client side and without the record's own timestamp is ``shared`` (v1's convention);
- timestamps and durations from the record, else from the core annotations; other annotations stay
  annotations; string binary annotations become tags (others their JSON text); the ``ca`` / ``sa`` /
  ``ma`` address annotations become the remote endpoint.

Simplification: a record holding both ``ms`` and ``mr`` is read as two one-sided records (Zipkin forks a
shared consumer); the rest follows ``zipkin2/v1/V1SpanConverter.java`` (see docs/otlp-dumps.md).
"""

from __future__ import annotations

from typing import Any

from tracegroup.load.jsonutil import to_str

__all__ = ["is_v1", "v1_to_v2"]

_V2_KEYS = ("localEndpoint", "remoteEndpoint", "kind", "shared", "tags")
_CORE_KIND = {
    "cs": "CLIENT",
    "cr": "CLIENT",
    "sr": "SERVER",
    "ss": "SERVER",
    "ms": "PRODUCER",
    "mr": "CONSUMER",
}
_CORE = frozenset(_CORE_KIND) | {"ws", "wr"}
_ADDRESSES = ("ca", "sa", "ma")


def is_v1(rec: dict[str, Any]) -> bool:
    if any(key in rec for key in _V2_KEYS):
        return False
    if rec.get("binaryAnnotations"):
        return True
    notes = rec.get("annotations")
    return isinstance(notes, list) and any(isinstance(a, dict) and a.get("endpoint") for a in notes)


def _endpoint(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and value else None


def _service(ep: dict[str, Any] | None) -> Any:
    return (ep or {}).get("serviceName")


def v1_to_v2(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The v2 records one v1 record stands for (see the module docstring)."""
    base: dict[str, Any] = {k: rec[k] for k in ("traceId", "id", "parentId", "name", "debug") if k in rec}
    first: dict[str, Any] = dict(base)
    more: list[dict[str, Any]] = []

    def new(ep: dict[str, Any]) -> dict[str, Any]:
        out = {**base, "localEndpoint": ep}
        more.append(out)
        return out

    def for_ep(ep: dict[str, Any] | None) -> dict[str, Any]:
        if ep is None:
            return first
        for out in (first, *more):
            if out.get("localEndpoint") is None:
                out["localEndpoint"] = ep
                return out
            if _service(out["localEndpoint"]) == _service(ep):
                return out
        return new(ep)

    core: dict[str, dict[str, Any]] = {}
    for note in rec.get("annotations") or ():
        if not isinstance(note, dict):
            raise TypeError("an annotation is not an object")
        ep, value = _endpoint(note.get("endpoint")), note.get("value")
        out = for_ep(ep)
        if ep is not None and value in _CORE:
            core[value] = note
            if value in _CORE_KIND:
                out["kind"] = _CORE_KIND[value]
        else:
            out.setdefault("annotations", []).append({"timestamp": note.get("timestamp"), "value": value})

    ts, dur = int(rec.get("timestamp") or 0), int(rec.get("duration") or 0)

    def at(note: dict[str, Any] | None) -> int:
        return int(note.get("timestamp") or 0) if note else 0

    def reflects(end: dict[str, Any] | None) -> bool:
        return end is not None and bool(ts and dur) and ts + dur == at(end)

    cs, sr, ss, cr = (core.get(k) for k in ("cs", "sr", "ss", "cr"))
    if cs is None and cr is not None and reflects(cr):
        cs = {"timestamp": ts, "value": "cs", "endpoint": cr.get("endpoint")}
    if sr is None and ss is not None and reflects(ss):
        sr = {"timestamp": ts, "value": "sr", "endpoint": ss.get("endpoint")}

    def timing(begin: dict[str, Any], end: dict[str, Any] | None) -> None:
        out = for_ep(_endpoint(begin.get("endpoint")))
        if ts and dur:
            out["timestamp"], out["duration"] = ts, dur
        else:
            out["timestamp"] = at(begin)
            if end is not None:
                out["duration"] = at(end) - at(begin)

    if cs is not None and sr is not None:
        timing(cs, cr)
        client, server_ep = for_ep(_endpoint(cs.get("endpoint"))), _endpoint(sr.get("endpoint"))
        if _service(_endpoint(cs.get("endpoint"))) == _service(server_ep):
            client["kind"] = "CLIENT"
            server = new(server_ep or {})
            server["kind"] = "SERVER"
        else:
            server = for_ep(server_ep)
        server["shared"], server["timestamp"] = True, at(sr)
        server.pop("duration", None)
        if ss is not None:
            server["duration"] = at(ss) - at(sr)
        if cr is None and not dur:
            client.pop("duration", None)
    elif cs is not None and cr is not None:
        timing(cs, cr)
    elif sr is not None and ss is not None:
        timing(sr, ss)
    else:  # an incomplete RPC
        for out in (first, *more):
            begin, end = (
                (cs, cr)
                if out.get("kind") == "CLIENT"
                else (sr, ss)
                if out.get("kind") == "SERVER"
                else (None, None)
            )
            if begin is not None:
                out["timestamp"] = at(begin)
            if end is not None:
                out.setdefault("annotations", []).append({"timestamp": at(end), "value": end.get("value")})
        if ts:
            first["timestamp"], first["duration"] = ts, dur
    if cs is None and sr is not None and (not ts or (ss is not None and not dur)):
        for_ep(_endpoint(sr.get("endpoint")))["shared"] = True
    if (ms := core.get("ms")) is not None:
        timing(ms, core.get("ws"))
    if (mr := core.get("mr")) is not None:
        wr = core.get("wr")
        timing(wr, mr) if wr is not None else timing(mr, None)
    for key in ("ws", "wr"):
        if key in core and core.get("ms" if key == "ws" else "mr") is None:
            note = core[key]
            for_ep(_endpoint(note.get("endpoint"))).setdefault("annotations", []).append(
                {"timestamp": at(note), "value": key}
            )

    addresses: dict[str, dict[str, Any] | None] = {}
    for b in rec.get("binaryAnnotations") or ():
        if not isinstance(b, dict):
            raise TypeError("a binary annotation is not an object")
        key, value, ep = str(b.get("key")), b.get("value"), _endpoint(b.get("endpoint"))
        if key in _ADDRESSES and not isinstance(value, str):
            addresses[key] = ep
            continue
        if key == "lc" and value == "":
            for_ep(ep)  # the local span's endpoint, no tag
            continue
        for_ep(ep).setdefault("tags", {})[key] = to_str(value)
    ca, sa, ma = (addresses.get(k) for k in _ADDRESSES)
    if cs is None and cr is None and ss is None and sr is None and (ca or sa):
        if ca and sa:
            for_ep(ca)["remoteEndpoint"] = sa
        elif sa:
            for_ep(None)["remoteEndpoint"] = sa
        else:
            out = for_ep(None)
            out["kind"], out["remoteEndpoint"] = "SERVER", ca
    else:
        server_note = sr or ss
        if ca and server_note is not None and ca != server_note.get("endpoint"):
            server_ep = _endpoint(server_note.get("endpoint"))
            if _service(ca) == _service(server_ep):
                ca = {k: v for k, v in ca.items() if k != "serviceName"}
            for_ep(server_ep)["remoteEndpoint"] = ca
        if sa and (cs or cr) is not None:
            for_ep(_endpoint((cs or cr or {}).get("endpoint")))["remoteEndpoint"] = sa
        if ma:
            for note in (core.get("ms"), core.get("mr")):
                if note is not None:
                    for_ep(_endpoint(note.get("endpoint")))["remoteEndpoint"] = ma
    return [first, *more]
