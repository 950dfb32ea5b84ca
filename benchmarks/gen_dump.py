"""Deterministic generator of a realistic polyglot OTLP trace dump, framed like the collector file exporter.

Usable as a module (:func:`generate`) and as a script::

    python benchmarks/gen_dump.py OUT.pb --spans 1000000 [--seed 1] [--batch 8192] [--zstd]

The traffic imitates one shop whose services, written in different languages, export through one collector:

- ``frontend`` (Node/Express): SERVER ``GET /product/:id`` etc. -> ``middleware - …`` and ``request handler``
  INTERNAL spans -> CLIENT calls to ``storefront`` and ``search``. Node sets OTLP ``flags`` 0x101
  (0x100 plus the W3C sampled bit, as ``@opentelemetry/otlp-transformer`` does), |0x200 for remote parents.
- ``storefront`` (Ruby/Rails): Rack SERVER ``GET /products/:id`` -> ActionPack INTERNAL
  ``ProductsController#show`` -> ``sql.active_record`` INTERNAL (db.system) with a PG CLIENT child, gRPC
  CLIENT calls to ``inventory``, Net::HTTP CLIENT calls to ``payments``, a Bunny PRODUCER for ``mailer``,
  ActionView INTERNAL render spans. Also called directly by the mobile app (root SERVER spans).
  Ruby leaves flags 0.
- ``payments`` (Elixir/Phoenix): Cowboy SERVER ``HTTP POST`` -> nested Phoenix SERVER ``/api/charges`` in the
  same service -> Ecto CLIENT ``app.repo.query:payments`` (db.system, db.statement) and a Finch CLIENT to the
  card processor. Erlang leaves flags 0 and exports its whole queue (up to 2048 spans) every 5 s.
- ``inventory`` (Go gRPC): SERVER ``inventory.v1.InventoryService/GetStock`` (rpc.service) -> redis CLIENTs.
- ``search`` (Python): entry span is INTERNAL (a hand-made span around extracted context), not SERVER.
- ``mailer`` (Python): CONSUMER of storefront's PRODUCER span, starting after a queue delay.
- ``reports`` (Python): background jobs, a root INTERNAL span with hundreds to thousands of direct children,
  sometimes ~5k spans, running for many seconds.

Go and Python set flags 0x100, |0x200 on the entry span of a service called from another (remote parent).
About 0.5 % of spans have a parent that is never emitted: an entry span whose caller went through a mesh
proxy (or a mobile client) that propagated its own span id but exports nowhere this dump sees.

Delivery is tracegroup's own pipeline model (:func:`tracegroup.pipeline.simulate_columns`, the model of
``--batches simulate``, ``whatif`` and ``plan``): spans arrive at their service's SDK batch span processor
when they *end* (export at 512 spans, or 2048 for Erlang, or every 5 s), the exports go through an optional
groupbytrace and the collector's batch processor (a send once ``batch`` spans wait). Every batch is one
``TracesData`` with one ``ResourceSpans`` per service and one ``ScopeSpans`` per instrumentation scope, so
traces are cut across batches as in reality. Each message is written with a 4-byte big-endian length
prefix; with ``zstd`` each message is compressed into its own frame (without a content size) before being
length-prefixed.

Everything random comes from one ``random.Random(seed)`` (ids, timings, traffic mix), timestamps start at a
fixed epoch, so a given (spans, seed, batch, zstd) always yields the same bytes. Spans are protobuf-encoded
by hand at creation (static parts such as resources, scopes and attributes are encoded once with the
protobuf classes and cached); every span is held until the model has cut the batches.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tracegroup.pipeline import PipelineOptions, Simulation, simulate_columns

AttrValue = str | int | float | bool
#: One emitted span: (end time ns, scope index, encoded ``ScopeSpans.spans`` field).
SpanRec = tuple[int, int, bytes]

INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5

BASE_NS = 1_730_000_000_000_000_000  # 2024-10-27T03:33:20Z: fixed, so output does not depend on the clock
MS = 1_000_000
US = 1_000
NO_TIMEOUT_MS = 10 * 24 * 3600 * 1000.0  # "no batch timeout": longer than any generated traffic
SDK_DELAY_NS = 5_000 * MS  # OTEL_BSP_SCHEDULE_DELAY (and Erlang's scheduled_delay_ms) default
WEB_RATE = 250.0  # web/API traces started per second
JOB_RATE = 1.2  # report jobs started per second
HOLE_P = 0.075  # probability that an entry span's recorded parent is a never-exported proxy span

# ------------------------------------------------------------------------------------------- protobuf wire


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag byte(s), varint length, payload."""
    return tag + _varint(len(payload)) + payload


def _any(value: AttrValue) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def _kv(key: str, value: AttrValue) -> bytes:
    return KeyValue(key=key, value=_any(value)).SerializeToString()


_ATTR: dict[tuple[str, type, AttrValue], bytes] = {}
_NAME: dict[str, bytes] = {}
_STATUS: dict[str, bytes] = {}
_EVENT_ATTRS: dict[tuple[str, str], bytes] = {}
_TIMES = struct.Struct("<BQBQ")  # Span.start_time_unix_nano (7) and end_time_unix_nano (8), fixed64
_EVENT_TIME = struct.Struct("<BQ")
_KIND = {k: bytes((0x30, k)) for k in range(6)}
_FLAGS = {f: (b"\x85\x01" + struct.pack("<I", f) if f else b"") for f in (0, 0x100, 0x101, 0x300, 0x301)}
_ZERO8 = bytes(8)


def a(key: str, value: AttrValue) -> bytes:
    """One span attribute as an encoded ``Span.attributes`` (field 9) entry, cached per (key, value)."""
    k = (key, type(value), value)
    b = _ATTR.get(k)
    if b is None:
        b = _ATTR[k] = _field(b"\x4a", _kv(key, value))
    return b


def _name(name: str) -> bytes:
    b = _NAME.get(name)
    if b is None:
        b = _NAME[name] = _field(b"\x2a", name.encode())
    return b


def error_status(message: str = "") -> bytes:
    """``Span.status`` (field 15) with code ERROR and an optional message."""
    b = _STATUS.get(message)
    if b is None:
        b = _STATUS[message] = _field(
            b"\x7a", Status(code=Status.STATUS_CODE_ERROR, message=message).SerializeToString()
        )
    return b


_STACKS = {
    "ruby": "{file}:{line}:in `{fn}'\napp/controllers/application_controller.rb:41:in `block in around'\n"
    "actionpack (7.1.3) lib/action_controller/metal/basic_implicit_render.rb:6:in `send_action'",
    "erlang": "(payments 3.12.1) lib/payments/{file}.ex:{line}: {fn}/2\n"
    "(phoenix 1.7.14) lib/phoenix/router.ex:484: Phoenix.Router.__call__/5",
    "nodejs": "Error: {fn}\n    at {file} (/app/dist/routes.js:{line}:15)\n"
    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
    "python": 'Traceback (most recent call last):\n  File "/app/{file}.py", line {line}, in {fn}\n'
    '  File "/usr/local/lib/python3.12/site-packages/{file}/transport.py", line 88, in perform_request',
}


def exception_event(t: int, language: str, etype: str, message: str) -> bytes:
    """An ``exception`` span event (field 11) at time ``t`` with type, message and a short stacktrace."""
    k = (etype, message)
    attrs = _EVENT_ATTRS.get(k)
    if attrs is None:
        stack = _STACKS[language].format(file=etype.split(".")[0].lower(), line=len(message) + 17, fn=etype)
        attrs = b"".join(
            _field(b"\x1a", _kv(key, val))
            for key, val in (
                ("exception.type", etype),
                ("exception.message", message),
                ("exception.stacktrace", stack),
            )
        )
        attrs = _EVENT_ATTRS[k] = _field(b"\x12", b"exception") + attrs
    return _field(b"\x5a", _EVENT_TIME.pack(0x09, t) + attrs)


# ------------------------------------------------------------------------------------ services and scopes

# name, telemetry.sdk.language, service.version, telemetry.sdk.version, SDK export size, flags base,
# resource schema url, extra resource attributes
_SERVICE_SPECS: list[tuple[str, str, str, str, int, int, str, dict[str, str]]] = [
    ("storefront", "ruby", "2024.10.3", "1.4.0", 512, 0, "", {"process.runtime.version": "3.3.5"}),
    ("payments", "erlang", "3.12.1", "1.4.0", 2048, 0, "", {"process.runtime.name": "BEAM"}),
    ("frontend", "nodejs", "5.2.0", "1.26.0", 512, 0x101, "", {"process.runtime.version": "20.17.0"}),
    ("inventory", "go", "1.8.4", "1.31.0", 512, 0x100, "https://opentelemetry.io/schemas/1.26.0", {}),
    ("mailer", "python", "0.9.12", "1.27.0", 512, 0x100, "", {"process.runtime.version": "3.12.6"}),
    ("reports", "python", "2.3.0", "1.27.0", 512, 0x100, "", {"process.runtime.version": "3.11.9"}),
    ("search", "python", "4.1.0", "1.27.0", 512, 0x100, "", {"process.runtime.version": "3.12.6"}),
]
SERVICES = [s[0] for s in _SERVICE_SPECS]
_SVC = {name: i for i, name in enumerate(SERVICES)}
_LANG = [s[1] for s in _SERVICE_SPECS]
_EXPORT_SIZE = [s[4] for s in _SERVICE_SPECS]
_SVC_FLAGS = [s[5] for s in _SERVICE_SPECS]


def _resource_head(i: int) -> tuple[bytes, bytes]:
    name, lang, version, sdk_version, _, _, schema, extra = _SERVICE_SPECS[i]
    attrs = {
        "service.name": name,
        "service.namespace": "shop",
        "service.version": version,
        "deployment.environment": "production",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": lang,
        "telemetry.sdk.version": sdk_version,
        "host.name": f"{name}-{zlib.crc32(name.encode()) & 0xFFFFFF:06x}",
        **extra,
    }
    res = Resource(attributes=[KeyValue(key=k, value=_any(v)) for k, v in attrs.items()])
    tail = _field(b"\x1a", schema.encode()) if schema else b""
    return _field(b"\x0a", res.SerializeToString()), tail


_RES_HEAD: list[bytes] = []
_RES_TAIL: list[bytes] = []
for _i in range(len(SERVICES)):
    _h, _t = _resource_head(_i)
    _RES_HEAD.append(_h)
    _RES_TAIL.append(_t)

_SCOPE_SVC: list[int] = []
_SCOPE_HEAD: list[bytes] = []
_SCOPE_FLAGS: list[int] = []


def _scope(service: str, name: str, version: str) -> int:
    _SCOPE_SVC.append(_SVC[service])
    _SCOPE_FLAGS.append(_SVC_FLAGS[_SVC[service]])
    _SCOPE_HEAD.append(_field(b"\x0a", InstrumentationScope(name=name, version=version).SerializeToString()))
    return len(_SCOPE_SVC) - 1


SF_RACK = _scope("storefront", "OpenTelemetry::Instrumentation::Rack", "0.24.6")
SF_PACK = _scope("storefront", "OpenTelemetry::Instrumentation::ActionPack", "0.10.0")
SF_VIEW = _scope("storefront", "OpenTelemetry::Instrumentation::ActionView", "0.7.3")
SF_ASUP = _scope("storefront", "OpenTelemetry::Instrumentation::ActiveSupport", "0.6.0")
SF_PG = _scope("storefront", "OpenTelemetry::Instrumentation::PG", "0.29.0")
SF_GRPC = _scope("storefront", "OpenTelemetry::Instrumentation::Grpc", "0.1.3")
SF_HTTP = _scope("storefront", "OpenTelemetry::Instrumentation::Net::HTTP", "0.22.8")
SF_BUNNY = _scope("storefront", "OpenTelemetry::Instrumentation::Bunny", "0.21.4")
PAY_COWBOY = _scope("payments", "opentelemetry_cowboy", "0.3.0")
PAY_PHX = _scope("payments", "opentelemetry_phoenix", "1.2.0")
PAY_ECTO = _scope("payments", "opentelemetry_ecto", "1.2.0")
PAY_FINCH = _scope("payments", "opentelemetry_finch", "0.2.0")
FE_HTTP = _scope("frontend", "@opentelemetry/instrumentation-http", "0.53.0")
FE_EXPRESS = _scope("frontend", "@opentelemetry/instrumentation-express", "0.42.0")
INV_GRPC = _scope(
    "inventory", "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", "0.55.0"
)
INV_REDIS = _scope("inventory", "github.com/redis/go-redis/extra/redisotel", "9.5.1")
ML_PIKA = _scope("mailer", "opentelemetry.instrumentation.pika", "0.48b0")
ML_JINJA = _scope("mailer", "opentelemetry.instrumentation.jinja2", "0.48b0")
ML_REQ = _scope("mailer", "opentelemetry.instrumentation.requests", "0.48b0")
RP_JOB = _scope("reports", "reports.jobs", "2.3.0")
RP_PG = _scope("reports", "opentelemetry.instrumentation.psycopg2", "0.48b0")
SR_API = _scope("search", "search.api", "4.1.0")
SR_ES = _scope("search", "opentelemetry.instrumentation.elasticsearch", "0.48b0")

# ------------------------------------------------------------------------------------------ trace builder


class Trace:
    """The spans of one trace under construction, in creation order (a parent after its children)."""

    __slots__ = ("rng", "start", "tid", "spans", "holes")

    def __init__(self, rng: random.Random, start: int) -> None:
        self.rng = rng
        self.start = start
        self.tid = rng.randbytes(16)
        self.spans: list[SpanRec] = []
        self.holes = 0

    def id(self) -> bytes:
        s = self.rng.randbytes(8)
        while s == _ZERO8:
            s = self.rng.randbytes(8)
        return s

    def ms(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * MS)

    def us(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * US)

    def lat(self, median_ms: float, sigma: float = 0.6) -> int:
        """A log-normal latency around ``median_ms``."""
        return int(self.rng.lognormvariate(0.0, sigma) * median_ms * MS) + 20 * US

    def entry_parent(self, caller: bytes) -> bytes:
        """The parent id recorded by a service's entry span: the caller's span, or (sometimes) the id of a
        proxy span that is never exported, leaving a hole in the trace."""
        if self.rng.random() < HOLE_P:
            self.holes += 1
            return self.id()
        return caller

    def span(
        self,
        scope: int,
        sid: bytes,
        pid: bytes | None,
        name: str,
        kind: int,
        start: int,
        end: int,
        attrs: bytes,
        *,
        remote: bool = False,
        events: bytes = b"",
        status: bytes = b"",
    ) -> None:
        flags = _SCOPE_FLAGS[scope]
        if remote and flags:
            flags |= 0x200
        body = b"".join(
            (
                b"\x0a\x10",
                self.tid,
                b"\x12\x08",
                sid,
                b"\x22\x08" + pid if pid else b"",
                _name(name),
                _KIND[kind],
                _TIMES.pack(0x39, start, 0x41, end),
                attrs,
                events,
                status,
                _FLAGS[flags],
            )
        )
        self.spans.append((end, scope, b"\x12" + _varint(len(body)) + body))


# ---------------------------------------------------------------------------------------------- storefront

_SF_SQL = {
    "products": ("Product Load", 'SELECT "products".* FROM "products" WHERE "products"."id" = $1 LIMIT $2'),
    "variants": ("Variant Load", 'SELECT "variants".* FROM "variants" WHERE "variants"."product_id" = $1'),
    "reviews": (
        "Review Load",
        'SELECT "reviews".* FROM "reviews" WHERE "reviews"."product_id" = $1 '
        'ORDER BY "reviews"."created_at" DESC LIMIT $2',
    ),
    "prices": ("Price Load", 'SELECT "prices".* FROM "prices" WHERE "prices"."variant_id" IN ($1, $2, $3)'),
    "users": ("User Load", 'SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2'),
    "carts": ("Cart Load", 'SELECT "carts".* FROM "carts" WHERE "carts"."user_id" = $1 LIMIT $2'),
    "cart_items": (
        "CartItem Load",
        'SELECT "cart_items".* FROM "cart_items" WHERE "cart_items"."cart_id" = $1',
    ),
    "orders": (
        "Order Load",
        'SELECT "orders".* FROM "orders" WHERE "orders"."user_id" = $1 '
        'ORDER BY "orders"."created_at" DESC LIMIT $2 OFFSET $3',
    ),
    "order_insert": (
        "Order Create",
        'INSERT INTO "orders" ("user_id", "total_cents", "currency", "created_at", '
        '"updated_at") VALUES ($1, $2, $3, $4, $5) RETURNING "id"',
    ),
    "items_insert": (
        "OrderItem Create",
        'INSERT INTO "order_items" ("order_id", "variant_id", "quantity", '
        '"price_cents") VALUES ($1, $2, $3, $4) RETURNING "id"',
    ),
    "order_update": (
        "Order Update",
        'UPDATE "orders" SET "status" = $1, "updated_at" = $2 WHERE "orders"."id" = $3',
    ),
    "transaction": ("TRANSACTION", "BEGIN"),
}

_SF_ACTIONS: dict[str, tuple[str, str, str, str]] = {
    # action: (method, route, controller#action, view)
    "show": ("GET", "/products/:id", "ProductsController#show", "products/show.html.erb"),
    "cart": ("GET", "/cart", "CartsController#show", "carts/show.html.erb"),
    "create_order": ("POST", "/orders", "OrdersController#create", ""),
    "api_orders": ("GET", "/api/v2/orders", "Api::V2::OrdersController#index", ""),
    "api_product": ("GET", "/api/v2/products/:id", "Api::V2::ProductsController#show", ""),
    "api_batch": ("GET", "/api/v2/products", "Api::V2::ProductsController#index", ""),
}

_SF_PLANS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # action: (sql tables always run, tables some of which run)
    "show": (("products", "variants"), ("reviews", "prices", "users")),
    "cart": (("users", "carts", "cart_items"), ("prices", "variants")),
    "create_order": (
        ("users", "carts", "cart_items", "transaction", "order_insert", "items_insert"),
        ("prices",),
    ),
    "api_orders": (("users", "orders"), ("products", "variants", "prices")),
    "api_product": (("products",), ("variants", "prices", "reviews")),
    "api_batch": (("products",), ("variants", "prices")),
}


def _sql(tr: Trace, parent: bytes, t: int, table: str, fail: bool = False) -> int:
    """``sql.active_record`` INTERNAL span with the PG driver's CLIENT span inside; returns its end."""
    qname, stmt = _SF_SQL[table]
    ar, pg = tr.id(), tr.id()
    p0 = t + tr.us(15, 80)
    p1 = p0 + (tr.ms(5000, 5001) if fail else tr.lat(0.9, 0.8))
    end = p1 + tr.us(10, 90)
    op = stmt.split(" ", 1)[0]
    pg_name = op + " shop_production." + stmt.split('"')[1] if '"' in stmt else op
    status = (
        error_status("PG::QueryCanceled: ERROR:  canceling statement due to statement timeout")
        if fail
        else b""
    )
    tr.span(
        SF_PG,
        pg,
        ar,
        pg_name,
        CLIENT,
        p0,
        p1,
        a("db.system", "postgresql")
        + a("db.name", "shop_production")
        + a("db.user", "storefront")
        + a("db.statement", stmt)
        + a("db.operation", op)
        + a("net.peer.name", "pg-primary.shop.internal")
        + a("net.peer.port", 5432),
        status=status,
    )
    tr.span(
        SF_ASUP,
        ar,
        parent,
        "sql.active_record",
        INTERNAL,
        t,
        end,
        a("db.system", "postgresql")
        + a("db.statement", stmt)
        + a("name", qname)
        + a("db.name", "shop_production"),
        status=status,
    )
    return end


def _grpc_call(tr: Trace, parent: bytes, t: int, method: str) -> tuple[int, int]:
    """storefront's gRPC CLIENT span around an ``inventory`` SERVER span; returns (end, grpc status)."""
    cid = tr.id()
    s0 = t + tr.us(300, 900)
    s1, code = _inventory(tr, tr.entry_parent(cid), s0, method)
    end = s1 + tr.us(300, 900)
    full = f"inventory.v1.InventoryService/{method}"
    tr.span(
        SF_GRPC,
        cid,
        parent,
        full,
        CLIENT,
        t,
        end,
        a("rpc.system", "grpc")
        + a("rpc.service", "inventory.v1.InventoryService")
        + a("rpc.method", method)
        + a("rpc.grpc.status_code", code)
        + a("net.peer.name", "inventory.shop.svc.cluster.local"),
        status=error_status("14:connection refused") if code else b"",
    )
    return end, code


def _storefront(tr: Trace, pid: bytes | None, remote: bool, t0: int, action: str) -> tuple[int, int]:
    """A Rails request; returns (end of the Rack SERVER span, HTTP status)."""
    rng = tr.rng
    method, route, controller, view = _SF_ACTIONS[action]
    always, maybe = _SF_PLANS[action]
    rack, ctl = tr.id(), tr.id()
    c0 = t0 + tr.us(120, 600)
    t = c0 + tr.us(80, 400)
    code = 201 if action == "create_order" else 200
    error: tuple[int, str, str] | None = None  # (time, exception type, message) raised in the controller
    tables = list(always) + [m for m in maybe if rng.random() < 0.6]
    if action in ("api_orders", "api_batch"):
        tables += ["products", "variants"] * rng.randint(0, 3)  # N+1 queries
    failing = rng.randrange(len(tables)) if rng.random() < 0.008 else -1
    for i, table in enumerate(tables):
        t = _sql(tr, ctl, t, table, fail=i == failing) + tr.us(30, 400)
        if i == failing:
            code = 500
            error = (
                t,
                "ActiveRecord::QueryCanceled",
                "PG::QueryCanceled: ERROR:  canceling statement due to statement timeout",
            )
            break
        if i == 0 and action in ("show", "api_product") and rng.random() < 0.02:
            code = 404
            error = (
                t,
                "ActiveRecord::RecordNotFound",
                f"Couldn't find Product with 'id'={rng.randint(1, 3000)}",
            )
            break
    if code < 400 and action in ("show", "cart", "create_order"):
        grpc = "ReserveStock" if action == "create_order" else "GetStock"
        for _ in range(1 if action != "cart" else rng.randint(1, 3)):
            t, gcode = _grpc_call(tr, ctl, t, grpc)
            t += tr.us(50, 300)
            if gcode:
                code = 503
                error = (t, "GRPC::Unavailable", "14:connection refused. debug_error_string:{}")
                break
    if code < 400 and action == "create_order":
        t, pcode = _charge(tr, ctl, t)
        t += tr.us(50, 300)
        if pcode >= 400:
            code = 422
        else:
            t = _sql(tr, ctl, t, "order_update") + tr.us(30, 200)
            t = _publish(tr, ctl, t) + tr.us(30, 200)
    if view and code < 400:
        vid = tr.id()
        v0 = t
        t += tr.us(200, 900)
        for _ in range(rng.randint(1, 6)):
            pid_ = tr.id()
            d = tr.lat(0.6)
            partial = rng.choice(("_variant", "_price", "_review", "_breadcrumbs", "_recommendations"))
            tr.span(
                SF_VIEW,
                pid_,
                vid,
                f"{view.split('/')[0]}/{partial}.html.erb",
                INTERNAL,
                t,
                t + d,
                a("code.filepath", f"app/views/{view.split('/')[0]}/{partial}.html.erb"),
            )
            t += d + tr.us(20, 200)
        t += tr.us(100, 600)
        tr.span(SF_VIEW, vid, ctl, view, INTERNAL, v0, t, a("code.filepath", f"app/views/{view}"))
    c1 = t + tr.us(50, 300)
    cls, fn = controller.split("#")
    tr.span(
        SF_PACK,
        ctl,
        rack,
        controller,
        INTERNAL,
        c0,
        c1,
        a("code.namespace", cls) + a("code.function", fn),
        events=exception_event(error[0], "ruby", error[1], error[2]) if error else b"",
        status=error_status(f"{error[1]}: {error[2]}") if error else b"",
    )
    end = c1 + tr.us(100, 500)
    target = route.replace(":id", str(rng.randint(1, 3000)))
    tr.span(
        SF_RACK,
        rack,
        pid,
        f"{method} {route}",
        SERVER,
        t0,
        end,
        a("http.method", method)
        + a("http.scheme", "http")
        + a("http.host", "storefront.shop.svc.cluster.local:3000")
        + a("http.target", target)
        + a("http.route", route)
        + a("http.status_code", code)
        + a("http.user_agent", "node" if remote else "ShopApp/5.14.2 (iPhone; iOS 17.6.1)"),
        remote=remote,
        status=error_status() if code >= 500 else b"",
    )
    return end, code


def _charge(tr: Trace, parent: bytes, t: int) -> tuple[int, int]:
    """storefront's Net::HTTP CLIENT span around ``payments``; returns (end, HTTP status)."""
    cid = tr.id()
    s0 = t + tr.us(400, 1500)
    s1, code = _payments(tr, tr.entry_parent(cid), True, s0, "charge")
    end = s1 + tr.us(400, 1500)
    tr.span(
        SF_HTTP,
        cid,
        parent,
        "HTTP POST",
        CLIENT,
        t,
        end,
        a("http.method", "POST")
        + a("http.scheme", "http")
        + a("net.peer.name", "payments.shop.svc.cluster.local")
        + a("net.peer.port", 4000)
        + a("http.target", "/api/charges")
        + a("http.status_code", code),
        status=error_status() if code >= 400 else b"",
    )
    return end, code


def _publish(tr: Trace, parent: bytes, t: int) -> int:
    """Bunny PRODUCER span; the ``mailer`` CONSUMER runs later, after a queue delay."""
    pid = tr.id()
    end = t + tr.us(150, 900)
    tr.span(
        SF_BUNNY,
        pid,
        parent,
        "orders.confirmed publish",
        PRODUCER,
        t,
        end,
        a("messaging.system", "rabbitmq")
        + a("messaging.destination.name", "orders")
        + a("messaging.rabbitmq.destination.routing_key", "orders.confirmed")
        + a("messaging.operation", "publish"),
    )
    _mailer(tr, pid, end + tr.lat(40.0, 1.2))
    return end


# ------------------------------------------------------------------------------------------------ payments

_ECTO = (
    (
        "payments",
        'SELECT p0."id", p0."status", p0."amount" FROM "payments" AS p0 WHERE (p0."order_ref" = $1)',
    ),
    (
        "payments",
        'INSERT INTO "payments" ("amount","currency","order_ref","status","inserted_at","updated_at") '
        'VALUES ($1,$2,$3,$4,$5,$6) RETURNING "id"',
    ),
    ("payments", 'UPDATE "payments" SET "status" = $1, "updated_at" = $2 WHERE "id" = $3'),
    ("customers", 'SELECT c0."id", c0."processor_ref" FROM "customers" AS c0 WHERE (c0."user_ref" = $1)'),
)


def _payments(tr: Trace, pid: bytes | None, remote: bool, t0: int, op: str) -> tuple[int, int]:
    """Cowboy SERVER -> nested Phoenix SERVER -> Ecto/Finch CLIENTs; returns (end, HTTP status)."""
    rng = tr.rng
    cowboy, phx = tr.id(), tr.id()
    route, plug, action = (
        ("/api/charges", "Elixir.PaymentsWeb.ChargeController", "create")
        if op == "charge"
        else ("/webhooks/processor", "Elixir.PaymentsWeb.WebhookController", "handle")
    )
    p0 = t0 + tr.us(60, 250)
    t = p0 + tr.us(40, 200)
    code = 201 if op == "charge" else 200
    events = b""
    queries = [_ECTO[3], _ECTO[1]] if op == "charge" else [_ECTO[0]] + [_ECTO[2]] * rng.randint(1, 3)
    for source, stmt in queries:
        sid = tr.id()
        d = tr.lat(0.8)
        tr.span(
            PAY_ECTO,
            sid,
            phx,
            f"app.repo.query:{source}",
            CLIENT,
            t,
            t + d,
            a("db.system", "postgresql")
            + a("db.statement", stmt)
            + a("db.instance", "payments_prod")
            + a("db.type", "sql")
            + a("source", source)
            + a("total_time_microseconds", d // US),
        )
        t += d + tr.us(30, 300)
    if op == "charge":
        fid = tr.id()
        d = tr.lat(180.0, 0.5)
        declined = rng.random() < 0.04
        tr.span(
            PAY_FINCH,
            fid,
            phx,
            "HTTP POST",
            CLIENT,
            t,
            t + d,
            a("http.method", "POST")
            + a("http.url", "https://api.cardprocessor.example/v1/payment_intents")
            + a("net.peer.name", "api.cardprocessor.example")
            + a("http.status_code", 402 if declined else 200),
            status=error_status() if declined else b"",
        )
        t += d + tr.us(50, 400)
        if declined:
            code = 402
            events = exception_event(
                t, "erlang", "Payments.CardDeclinedError", "card_declined: Your card was declined."
            )
        sid = tr.id()
        d = tr.lat(0.8)
        tr.span(
            PAY_ECTO,
            sid,
            phx,
            "app.repo.query:payments",
            CLIENT,
            t,
            t + d,
            a("db.system", "postgresql")
            + a("db.statement", _ECTO[2][1])
            + a("db.instance", "payments_prod")
            + a("db.type", "sql")
            + a("source", "payments")
            + a("total_time_microseconds", d // US),
        )
        t += d + tr.us(30, 300)
    p1 = t + tr.us(40, 200)
    tr.span(
        PAY_PHX,
        phx,
        cowboy,
        route,
        SERVER,
        p0,
        p1,
        a("phoenix.plug", plug)
        + a("phoenix.action", action)
        + a("http.route", route)
        + a("http.method", "POST"),
        events=events,
        status=error_status("card_declined") if events else b"",
    )
    end = p1 + tr.us(30, 150)
    tr.span(
        PAY_COWBOY,
        cowboy,
        pid,
        "HTTP POST",
        SERVER,
        t0,
        end,
        a("http.method", "POST")
        + a("http.target", route)
        + a("http.scheme", "http")
        + a("http.flavor", "1.1")
        + a("net.host.name", "payments.shop.svc.cluster.local")
        + a("net.host.port", 4000)
        + a("http.status_code", code)
        + a("http.user_agent", "Ruby" if remote else "CardProcessor-Webhooks/1.0"),
        remote=remote,
    )
    return end, code


# ----------------------------------------------------------------------------------------------- inventory

_REDIS = {"GetStock": ("hmget", "mget"), "ReserveStock": ("watch", "hincrby", "exec"), "SyncStock": ("hset",)}


def _inventory(tr: Trace, pid: bytes | None, t0: int, method: str) -> tuple[int, int]:
    """Go gRPC SERVER with redis CLIENT children; returns (end, grpc status code)."""
    rng = tr.rng
    sid = tr.id()
    t = t0 + tr.us(30, 120)
    code = 0
    cmds = _REDIS[method] * (rng.randint(3, 20) if method == "SyncStock" else 1)
    for cmd in cmds:
        rid = tr.id()
        fail = rng.random() < 0.002
        d = tr.ms(1000, 1001) if fail else tr.lat(0.25, 0.5)
        tr.span(
            INV_REDIS,
            rid,
            sid,
            cmd,
            CLIENT,
            t,
            t + d,
            a("db.system", "redis")
            + a("db.statement", f"{cmd} stock:*")
            + a("server.address", "redis-stock")
            + a("server.port", 6379)
            + a("db.redis.database_index", 0),
            status=error_status("dial tcp 10.42.7.12:6379: connect: connection refused") if fail else b"",
        )
        t += d + tr.us(10, 80)
        if fail:
            code = 14
            break
    end = t + tr.us(20, 100)
    tr.span(
        INV_GRPC,
        sid,
        pid,
        f"inventory.v1.InventoryService/{method}",
        SERVER,
        t0,
        end,
        a("rpc.system", "grpc")
        + a("rpc.service", "inventory.v1.InventoryService")
        + a("rpc.method", method)
        + a("rpc.grpc.status_code", code)
        + a("net.sock.peer.addr", "10.42.3.17"),
        remote=pid is not None,
        status=error_status("connection refused") if code else b"",
    )
    return end, code


# -------------------------------------------------------------------------------------------------- search


def _search(tr: Trace, pid: bytes, t0: int, op: str) -> tuple[int, bool]:
    """Python service whose entry span is INTERNAL; returns (end, failed)."""
    rng = tr.rng
    sid = tr.id()
    t = t0 + tr.us(50, 300)
    failed = False
    events = b""
    for _ in range(rng.randint(1, 3)):
        eid = tr.id()
        failed = rng.random() < 0.01
        d = tr.ms(2000, 2001) if failed else tr.lat(6.0, 0.7)
        tr.span(
            SR_ES,
            eid,
            sid,
            "Elasticsearch/products/_search",
            CLIENT,
            t,
            t + d,
            a("db.system", "elasticsearch")
            + a("elasticsearch.url", "/products/_search")
            + a("elasticsearch.method", "POST")
            + a("net.peer.name", "es-search.shop.internal")
            + a("db.statement", '{"query":{"multi_match":{"query":"?","fields":["name^3","description"]}}}'),
            status=error_status("ConnectionTimeout caused by - ReadTimeoutError") if failed else b"",
        )
        t += d + tr.us(50, 300)
        if failed:
            events = exception_event(
                t,
                "python",
                "elasticsearch.exceptions.ConnectionTimeout",
                "ConnectionTimeout caused by - ReadTimeoutError(HTTPConnectionPool(port=9200))",
            )
            break
    if not failed and rng.random() < 0.6:
        rid = tr.id()
        d = tr.lat(1.5)
        tr.span(SR_API, rid, sid, "rank_results", INTERNAL, t, t + d, a("search.results", rng.randint(0, 48)))
        t += d + tr.us(20, 100)
    end = t + tr.us(30, 150)
    tr.span(
        SR_API,
        sid,
        pid,
        f"search.{op}",
        INTERNAL,
        t0,
        end,
        a("search.index", "products") + a("search.operation", op),
        remote=True,
        events=events,
        status=error_status("ConnectionTimeout") if failed else b"",
    )
    return end, failed


# -------------------------------------------------------------------------------------------------- mailer


def _mailer(tr: Trace, producer: bytes, t0: int) -> None:
    """Python CONSUMER of storefront's PRODUCER span."""
    rng = tr.rng
    cid = tr.id()
    t = t0 + tr.us(100, 500)
    for template in ("order_confirmation.html", "order_confirmation.txt")[: rng.randint(1, 2)]:
        jid = tr.id()
        d = tr.lat(3.0)
        tr.span(ML_JINJA, jid, cid, "jinja2.render", INTERNAL, t, t + d, a("jinja2.template_name", template))
        t += d + tr.us(20, 200)
    hid = tr.id()
    d = tr.lat(120.0, 0.5)
    failed = rng.random() < 0.01
    code = 503 if failed else 202
    tr.span(
        ML_REQ,
        hid,
        cid,
        "POST",
        CLIENT,
        t,
        t + d,
        a("http.method", "POST")
        + a("http.url", "https://api.mailprovider.example/v3/mail/send")
        + a("http.status_code", code),
        status=error_status() if failed else b"",
    )
    t += d + tr.us(50, 300)
    events = b""
    if failed:
        events = exception_event(
            t,
            "python",
            "requests.exceptions.HTTPError",
            "503 Server Error: Service Unavailable for url: https://api.mailprovider.example/v3/mail/send",
        )
    end = t + tr.us(50, 300)
    tr.span(
        ML_PIKA,
        cid,
        tr.entry_parent(producer),
        "orders.confirmed process",
        CONSUMER,
        t0,
        end,
        a("messaging.system", "rabbitmq")
        + a("messaging.destination.name", "orders")
        + a("messaging.rabbitmq.destination.routing_key", "orders.confirmed")
        + a("messaging.operation", "process")
        + a("net.peer.name", "rabbitmq.shop.internal"),
        remote=True,
        events=events,
        status=error_status("503 Server Error") if failed else b"",
    )


# ------------------------------------------------------------------------------------------------ frontend

_FE_PAGES: dict[str, tuple[str, str]] = {
    "product": ("GET", "/product/:id"),
    "search": ("GET", "/search"),
    "cart": ("GET", "/cart"),
    "checkout": ("POST", "/checkout"),
}


def _frontend(tr: Trace, t0: int, page: str) -> None:
    """Node/Express: SERVER -> middleware/request handler INTERNAL -> CLIENT calls to storefront/search."""
    rng = tr.rng
    method, route = _FE_PAGES[page]
    root, handler = tr.id(), tr.id()
    t = t0 + tr.us(40, 200)
    mws = ["query", "expressInit", "corsMiddleware", "session"] + (["jsonParser"] if method == "POST" else [])
    for mw in mws:
        mid = tr.id()
        d = tr.us(15, 250) if mw != "session" else tr.lat(0.4)
        tr.span(
            FE_EXPRESS,
            mid,
            root,
            f"middleware - {mw}",
            INTERNAL,
            t,
            t + d,
            a("express.name", mw) + a("express.type", "middleware") + a("http.route", route),
        )
        t += d + tr.us(5, 60)
    h0 = t
    t += tr.us(20, 150)
    calls: list[tuple[str, str, str]] = []  # (target service, method, path or op)
    if page == "product":
        calls.append(("storefront", "GET", "show"))
        if rng.random() < 0.5:
            calls.append(("search", "POST", "recommendations"))
    elif page == "search":
        calls.append(("search", "POST", "query"))
        if rng.random() < 0.7:
            calls.append(("storefront", "GET", "api_batch"))
    elif page == "cart":
        calls.append(("storefront", "GET", "cart"))
    else:
        calls.append(("storefront", "POST", "create_order"))
    status = 200
    events = b""
    ends = [t]
    parallel = page == "product"
    for target, cmethod, op in calls:
        cid = tr.id()
        c0 = (h0 + tr.us(30, 300)) if parallel else ends[-1] + tr.us(30, 300)
        s0 = c0 + tr.us(300, 1200)
        if target == "storefront":
            s1, code = _storefront(tr, tr.entry_parent(cid), True, s0, op)
            host, path = "storefront.shop.svc.cluster.local", _SF_ACTIONS[op][1].replace(":id", "1")
        else:
            s1, failed = _search(tr, tr.entry_parent(cid), s0, op)
            code = 504 if failed else 200
            host, path = "search.shop.svc.cluster.local", f"/{op}"
        c1 = s1 + tr.us(300, 1200)
        tr.span(
            FE_HTTP,
            cid,
            handler,
            cmethod,
            CLIENT,
            c0,
            c1,
            a("http.request.method", cmethod)
            + a("server.address", host)
            + a("server.port", 80)
            + a("url.full", f"http://{host}{path}")
            + a("http.response.status_code", code)
            + a("network.protocol.version", "1.1"),
            status=error_status() if code >= 400 else b"",
        )
        ends.append(c1)
        if code >= 500 and target == "storefront":
            status = 502
            events = exception_event(c1, "nodejs", "Error", f"Request failed with status code {code}")
        elif code >= 400 and target == "storefront" and status == 200:
            status = code
    t = max(ends) + tr.us(100, 2000)
    tr.span(
        FE_EXPRESS,
        handler,
        root,
        f"request handler - {route}",
        INTERNAL,
        h0,
        t,
        a("express.name", route) + a("express.type", "request_handler") + a("http.route", route),
    )
    end = t + tr.us(50, 400)
    path = route.replace(":id", str(rng.randint(1, 3000)))
    tr.span(
        FE_HTTP,
        root,
        None,
        f"{method} {route}",
        SERVER,
        t0,
        end,
        a("http.request.method", method)
        + a("http.route", route)
        + a("url.path", path)
        + a("url.scheme", "https")
        + a("server.address", "shop.example.com")
        + a("http.response.status_code", status)
        + a("network.protocol.version", "1.1")
        + a(
            "user_agent.original",
            rng.choice(
                (
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/129.0",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) Mobile",
                )
            ),
        ),
        events=events,
        status=error_status() if status >= 500 else b"",
    )


# ------------------------------------------------------------------------------------------------- reports

_REPORT_SQL = (
    (
        "SELECT",
        "SELECT date_trunc('hour', created_at), sum(total_cents) FROM orders WHERE created_at >= %s "
        "AND created_at < %s GROUP BY 1",
    ),
    (
        "SELECT",
        "SELECT variant_id, sum(quantity) FROM order_items WHERE order_id = ANY(%s) GROUP BY variant_id",
    ),
    ("SELECT", "SELECT id, sku, name FROM products WHERE id = ANY(%s)"),
    ("INSERT", "INSERT INTO report_rows (report_id, bucket, metric, value) VALUES (%s, %s, %s, %s)"),
)
_REPORTS = ("daily_sales", "inventory_turnover", "customer_cohorts", "refund_audit")


def _report_job(tr: Trace, t0: int, max_children: int | None = None) -> None:
    """A background job: one root INTERNAL span with hundreds to thousands of direct children (100-900,
    1000-3000 for a fifth of jobs, ~5k for 5 %; at most ``max_children`` when given)."""
    rng = tr.rng
    root = tr.id()
    r = rng.random()
    n = (
        rng.randint(4700, 5100)
        if r < 0.05
        else rng.randint(1000, 3000)
        if r < 0.25
        else rng.randint(100, 900)
    )
    if max_children is not None:
        n = min(n, max_children)
    report = rng.choice(_REPORTS)
    t = t0 + tr.ms(1, 8)
    pg_attrs = [
        a("db.system", "postgresql")
        + a("db.name", "analytics")
        + a("db.user", "reports")
        + a("db.statement", stmt)
        + a("net.peer.name", "pg-replica.shop.internal")
        + a("net.peer.port", 5432)
        for _, stmt in _REPORT_SQL
    ]
    chunk = 0
    for _ in range(n):
        r = rng.random()
        sid = tr.id()
        if r < 0.6:
            q = rng.randrange(len(_REPORT_SQL))
            d = tr.lat(2.0, 0.9)
            tr.span(RP_PG, sid, root, _REPORT_SQL[q][0], CLIENT, t, t + d, pg_attrs[q])
        else:
            chunk += 1
            c0 = t
            t += tr.us(50, 300)
            if r < 0.7:  # a chunk that queries on its own
                for _ in range(rng.randint(1, 2)):
                    q = rng.randrange(len(_REPORT_SQL))
                    d = tr.lat(1.5, 0.8)
                    tr.span(RP_PG, tr.id(), sid, _REPORT_SQL[q][0], CLIENT, t, t + d, pg_attrs[q])
                    t += d + tr.us(20, 200)
            d = t - c0 + tr.lat(1.2, 0.8)
            tr.span(
                RP_JOB,
                sid,
                root,
                "aggregate_chunk",
                INTERNAL,
                c0,
                c0 + d,
                a("report.name", report) + a("report.chunk", chunk % 4096),
            )
            t = c0
        t += d + tr.us(30, 400)
    end = t + tr.ms(2, 30)
    failed = rng.random() < 0.03
    events = (
        exception_event(
            end - 1000,
            "python",
            "psycopg2.errors.QueryCanceled",
            "canceling statement due to conflict with recovery",
        )
        if failed
        else b""
    )
    tr.span(
        RP_JOB,
        root,
        None,
        f"reports.generate {report}",
        INTERNAL,
        t0,
        end,
        a("report.name", report) + a("job.queue", "reports") + a("job.attempt", 1 + (rng.random() < 0.05)),
        events=events,
        status=error_status("QueryCanceled") if failed else b"",
    )


# ----------------------------------------------------------------------------------------------- traffic

_WEB_MIX: tuple[tuple[float, str], ...] = (
    (0.36, "fe:product"),
    (0.50, "fe:search"),
    (0.58, "fe:cart"),
    (0.65, "fe:checkout"),
    (0.78, "sf:api_orders"),
    (0.90, "sf:api_product"),
    (0.95, "pay:webhook"),
    (1.00, "inv:sync"),
)


def _web_trace(tr: Trace, t0: int) -> None:
    r = tr.rng.random()
    kind = next(k for p, k in _WEB_MIX if r < p)
    where, what = kind.split(":")
    if where == "fe":
        _frontend(tr, t0, what)
    elif where == "sf":
        # the mobile app: mostly a root span; sometimes it propagates its own (unexported) span id
        mobile = tr.id() if tr.rng.random() < 0.05 else None
        if mobile is not None:
            tr.holes += 1
        _storefront(tr, mobile, mobile is not None, t0, what)
    elif where == "pay":
        _payments(tr, None, False, t0, "webhook")
    else:
        _inventory(tr, None, t0, "SyncStock")


def traces(
    rng: random.Random,
    web_rate: float = WEB_RATE,
    job_rate: float = JOB_RATE,
    max_job_children: int | None = None,
) -> Iterator[Trace]:
    """An endless stream of traces in start-time order (web traffic and report jobs, two Poisson streams
    of ``web_rate`` and ``job_rate`` traces per second)."""
    t_web = BASE_NS + int(rng.expovariate(web_rate) * 1e9)
    t_job = BASE_NS + int(rng.expovariate(job_rate) * 1e9)
    while True:
        if t_web <= t_job:
            tr = Trace(rng, t_web)
            _web_trace(tr, t_web)
            t_web += int(rng.expovariate(web_rate) * 1e9) + 1
        else:
            tr = Trace(rng, t_job)
            _report_job(tr, t_job, max_job_children)
            t_job += int(rng.expovariate(job_rate) * 1e9) + 1
        yield tr


# ---------------------------------------------------------------------------------------------- pipeline


class Writer:
    """The collector's file exporter: each batch one message (``out``), or with ``group_by`` one stream per
    service, each batch split by resource as the file exporter's ``group_by`` on ``service.name`` writes
    after a routing processor."""

    def __init__(self, out: BinaryIO | None, zstd: bool, group_by: str | None = None) -> None:
        self.out = out
        self.group_by = group_by
        self.files: dict[int, BinaryIO] = {}
        self.batches = 0
        self.spans = 0
        self.bytes = 0
        self._compress: Any = None
        if zstd:
            import zstandard

            self._compress = zstandard.ZstdCompressor(level=3, write_content_size=False).compress

    def write(self, chunk: list[tuple[int, bytes]]) -> None:
        """One collector batch: (scope index, encoded span) pairs in arrival order."""
        by_scope: dict[int, list[bytes]] = {}
        for scope, data in chunk:
            lst = by_scope.get(scope)
            if lst is None:
                by_scope[scope] = [data]
            else:
                lst.append(data)
        by_svc: dict[int, list[bytes]] = {}
        for scope, spans in by_scope.items():
            body = _SCOPE_HEAD[scope] + b"".join(spans)
            by_svc.setdefault(_SCOPE_SVC[scope], []).append(b"\x12" + _varint(len(body)) + body)
        parts: list[tuple[int, bytes]] = []
        for svc, scope_spans in by_svc.items():
            body = _RES_HEAD[svc] + b"".join(scope_spans) + _RES_TAIL[svc]
            parts.append((svc, b"\x0a" + _varint(len(body)) + body))
        if self.group_by is None:
            assert self.out is not None
            self._message(self.out, b"".join(p for _, p in parts))
        else:
            for svc, part in parts:
                out = self.files.get(svc)
                if out is None:
                    path = os.path.join(self.group_by, f"{SERVICES[svc]}.pb")
                    out = self.files[svc] = open(path, "wb")  # noqa: SIM115 - closed in close()
                self._message(out, part)
        self.spans += len(chunk)

    def _message(self, out: BinaryIO, msg: bytes) -> None:
        if self._compress is not None:
            msg = self._compress(msg)
        out.write(len(msg).to_bytes(4, "big"))
        out.write(msg)
        self.batches += 1
        self.bytes += 4 + len(msg)

    def close(self) -> None:
        for f in self.files.values():
            f.close()


def deliver(
    recs: list[SpanRec], options: PipelineOptions, export_size: list[int]
) -> tuple[Simulation, np.ndarray]:
    """tracegroup's own pipeline model (:func:`tracegroup.pipeline.simulate_columns`) over the emitted
    spans: each span arrives at its service's SDK when it ends; per-service SDK export sizes; the rows of
    each collector batch in order (``Simulation.order`` cut at each batch)."""
    ends = np.fromiter((r[0] for r in recs), dtype=np.int64, count=len(recs))
    services = np.fromiter((_SCOPE_SVC[r[1]] for r in recs), dtype=np.int32, count=len(recs))
    codes: dict[bytes, int] = {}
    trace = np.fromiter(
        (codes.setdefault(_trace_id(r[2]), len(codes)) for r in recs), dtype=np.int64, count=len(recs)
    )
    sizes = {svc: size for svc, size in enumerate(export_size) if size != options.sdk_batch}
    sim = simulate_columns(ends, services, len(SERVICES), trace, options, sizes)
    return sim, np.flatnonzero(np.diff(sim.batch[sim.order])) + 1


def _trace_id(data: bytes) -> bytes:
    """The trace id of an encoded ``ScopeSpans.spans`` entry: tag, varint length, then field 1 (16 bytes)."""
    i = 1
    while data[i] & 0x80:
        i += 1
    return data[i + 3 : i + 19]


def generate(
    path: str,
    spans: int,
    seed: int = 1,
    batch: int = 8192,
    zstd: bool = False,
    *,
    web_rate: float = WEB_RATE,
    job_rate: float = JOB_RATE,
    max_job_children: int | None = None,
    export_size: int | None = None,
    batch_timeout_ms: float | None = None,
    batch_max_size: int = 0,
    groupbytrace_ms: float | None = None,
    group_by_service: bool = False,
) -> dict[str, int]:
    """Write a dump of about ``spans`` spans to ``path``; return its counts.

    New traces stop starting once ``spans`` spans were generated; the traces already started finish, so the
    dump holds ``spans`` plus at most one trace's worth. Returns ``spans``, ``traces``, ``batches``,
    ``bytes`` (file size), ``exports`` (SDK export calls), ``orphans`` (spans whose parent is never
    emitted) and ``duration_ms`` (traffic time covered).

    Knobs: ``web_rate``/``job_rate`` traces per second; ``max_job_children`` caps the direct children of a
    report job; ``export_size`` caps every SDK's export size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE);
    ``batch_timeout_ms`` the collector batch processor's ``timeout`` (None: none); ``batch_max_size`` its
    ``send_batch_max_size`` (0: a size trigger sends everything buffered); ``groupbytrace_ms`` puts a
    groupbytrace processor with that ``wait_duration`` before the batch processor; ``group_by_service``
    makes ``path`` a directory with one file per service (``<service>.pb``), as the file exporter's
    ``group_by`` writes after a routing processor. The batches are cut by :func:`deliver`
    (tracegroup's pipeline model).
    """
    if spans < 1 or batch < 1:
        raise ValueError("spans and batch must be positive")
    rng = random.Random(seed)
    heap: list[tuple[int, int, int, list[SpanRec]]] = []
    made = n_traces = orphans = 0
    last_end = BASE_NS
    if group_by_service:
        os.makedirs(path, exist_ok=True)
        for name in SERVICES:  # a stale file of an earlier run would be read as part of this dump
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, f"{name}.pb"))
    else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    for _ in SERVICES:  # SDK timer phases of an earlier model: drawn still, so the traffic stays the same
        rng.uniform(0.5, 5.0)
    recs: list[SpanRec] = []

    def emit_next() -> None:
        """Emit the span ending first among the traces still in the heap."""
        _, seq, i, lst = heap[0]
        recs.append(lst[i])
        if i + 1 < len(lst):
            heapq.heapreplace(heap, (lst[i + 1][0], seq, i + 1, lst))
        else:
            heapq.heappop(heap)

    for tr in traces(rng, web_rate, job_rate, max_job_children):
        spans_of = tr.spans
        # every later trace starts at or after tr.start, so spans ending by then can be emitted
        while heap and heap[0][0] <= tr.start:
            emit_next()
        spans_of.sort(key=_end_key)
        heapq.heappush(heap, (spans_of[0][0], n_traces, 0, spans_of))
        n_traces += 1
        made += len(spans_of)
        orphans += tr.holes
        last_end = max(last_end, spans_of[-1][0])
        if made >= spans:
            break
    while heap:
        emit_next()
    options = PipelineOptions(
        sdk_delay_ms=SDK_DELAY_NS / MS,
        sdk_batch=export_size or 512,
        sdk_queue=max(2048, *_EXPORT_SIZE),
        batch_size=batch,
        batch_max_size=batch_max_size,
        batch_timeout_ms=NO_TIMEOUT_MS if batch_timeout_ms is None else batch_timeout_ms,
        wait_ms=groupbytrace_ms,
    )
    sim, cuts = deliver(recs, options, [min(n, export_size or n) for n in _EXPORT_SIZE])
    with contextlib.ExitStack() as stack:
        out = None if group_by_service else stack.enter_context(open(path, "wb"))
        writer = Writer(out, zstd, path if group_by_service else None)
        for rows in np.split(sim.order, cuts):
            writer.write([(recs[r][1], recs[r][2]) for r in rows.tolist()])
        writer.close()
    return {
        "spans": writer.spans,
        "traces": n_traces,
        "batches": writer.batches,
        "bytes": writer.bytes,
        "exports": sim.sdk_exports,
        "orphans": orphans,
        "duration_ms": (last_end - BASE_NS) // MS,
    }


def _end_key(rec: SpanRec) -> int:
    return rec[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("out", help="output file (file exporter proto framing)")
    p.add_argument("--spans", type=int, default=1_000_000, help="about this many spans (default 1000000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=8192, help="collector send_batch_size (default 8192)")
    p.add_argument("--zstd", action="store_true", help="compress each message into its own zstd frame")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(args.out, args.spans, seed=args.seed, batch=args.batch, zstd=args.zstd)
    counts_out: dict[str, Any] = {"path": args.out, **counts, "seconds": round(time.perf_counter() - t0, 2)}
    json.dump(counts_out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
