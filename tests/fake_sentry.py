"""A local fake of Sentry's ingestion for tests: envelope and OTLP endpoints on 127.0.0.1.

Envelope endpoint ``/api/<project>/envelope/``: checks ``X-Sentry-Auth`` carries the project's key, parses
the body with ``sentry_sdk.envelope.Envelope.deserialize``, runs every event through Relay's own
normalizer (``sentry_relay.StoreNormalizer``) and Relay's time window, and keeps what it accepted.
OTLP endpoint ``/api/<project>/integration/otlp/v1/traces``: checks ``x-sentry-auth``, gunzips and decodes
the protobuf and keeps every span's flags. ``script[project]`` lists answers to give first, then
``default`` (None: accept, answering 200). An answer is (status code, headers), e.g.
``[(500, {}), (429, {"Retry-After": "0"})]``, or a misbehaviour: ``"garbage"`` (bytes that are not
HTTP), ``"bad-header"`` (a 200 whose header block is broken), ``"drop"`` (close without answering),
``"hang"`` (never answer, until the server stops), ``"trickle"`` (a 200 sent one byte every
``trickle_every`` seconds), ``"accept-then-drop"`` (keep the event, then close without answering).
Every POST is counted in ``posts`` by item (an envelope's event id, else the sha256 of the body), but
one whose body is cut short by its client going away (killed between sending the headers and the body),
which Relay never receives either;
``delay`` seconds pass before each answer. Start it with :func:`fake_sentry` (a threaded server on
127.0.0.1 stopped on exit).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from sentry_relay import StoreNormalizer
from sentry_sdk.envelope import Envelope

MAX_AGE = 30 * 24 * 3600  # Relay drops events that ended longer ago than its configured window
MAX_FUTURE = 60


Answer = tuple[int, dict[str, str]] | str


@dataclass
class FakeSentry:
    keys: dict[str, str]  # project id -> public key
    script: dict[str, list[Answer]] = field(default_factory=dict)
    default: Answer | None = None
    delay: float = 0.0
    trickle_every: float = 0.2
    posts: dict[str, int] = field(default_factory=dict)  # item -> POSTs received
    accepted: dict[str, int] = field(default_factory=dict)  # item -> times accepted
    stopping: threading.Event = field(default_factory=threading.Event)
    log: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), item) per POST
    gets: int = 0  # a followed redirect would show up here
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    otlp_flags: dict[str, dict[str, int]] = field(default_factory=dict)  # project -> span id hex -> flags
    problems: list[str] = field(default_factory=list)
    hits: int = 0
    active: int = 0  # POSTs being handled right now
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def dsn(self, project: str) -> str:
        return f"http://{self.keys[project]}@127.0.0.1:{self.port}/{project}"


def _item(body: bytes) -> str:
    """What a POST carries: an envelope's event id, else the sha256 of the body."""
    try:
        return str(json.loads(body.partition(b"\n")[0])["event_id"])
    except (ValueError, KeyError, TypeError):
        return hashlib.sha256(body).hexdigest()


def _handler(fake: FakeSentry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def answer(self, code: int, headers: dict[str, str] | None = None, body: bytes = b"{}") -> None:
            try:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client is gone (killed, timed out)
                self.close_connection = True

        def misbehave(self, how: str) -> None:
            with suppress(OSError):
                self._misbehave(how)
            self.close_connection = True

        def _misbehave(self, how: str) -> None:
            w = self.wfile
            if how == "garbage":
                w.write(b"\x00\x01SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")
            elif how == "bad-header":
                w.write(b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n")
            elif how == "hang":
                fake.stopping.wait()
            elif how == "trickle":
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
                    if fake.stopping.wait(fake.trickle_every):
                        break
                    w.write(bytes([byte]))
                    w.flush()

        def do_GET(self) -> None:  # noqa: N802
            with fake.lock:
                fake.gets += 1
            self.answer(200)

        def do_POST(self) -> None:  # noqa: N802
            with fake.lock:
                fake.active += 1
            try:
                self.post()
            finally:
                with fake.lock:
                    fake.active -= 1

        def post(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if len(body) < length:  # the client went away mid-body (killed): nothing arrived, as for Relay
                self.close_connection = True
                return
            m = re.fullmatch(r"/api/(\d+)/(envelope/|integration/otlp/v1/traces)", self.path)
            item = _item(body)
            if fake.delay:
                time.sleep(fake.delay)
            with fake.lock:
                fake.hits += 1
                fake.posts[item] = fake.posts.get(item, 0) + 1
                fake.log.append((time.monotonic(), item))
                if not m or m.group(1) not in fake.keys:
                    return self.answer(404)
                project = m.group(1)
                auth = self.headers.get("X-Sentry-Auth", "")
                if f"sentry_key={fake.keys[project]}" not in auth:
                    fake.problems.append(f"bad auth for {project}: {auth!r}")
                    return self.answer(401)
                pending = fake.script.get(project)
                todo = pending.pop(0) if pending else fake.default
                if isinstance(todo, tuple):
                    return self.answer(*todo)
                if todo is not None and todo != "accept-then-drop":
                    how = todo
                else:
                    how = None
                    fake.accepted[item] = fake.accepted.get(item, 0) + 1
                    if m.group(2) == "envelope/":
                        self.envelope(project, body)
                    else:
                        self.otlp(project, body)
                    if todo is None:
                        return self.answer(200)
            self.misbehave(how or "drop")

        def otlp(self, project: str, body: bytes) -> None:
            td = TracesData.FromString(gzip.decompress(body))
            flags = fake.otlp_flags.setdefault(project, {})
            for rs in td.resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        flags[s.span_id.hex()] = s.flags

        def envelope(self, project: str, body: bytes) -> None:
            env = Envelope.deserialize(body)
            if "sent_at" not in env.headers:
                fake.problems.append("envelope without sent_at")
            for item in env.items:
                event = item.get_event() or item.get_transaction_event()
                if event is None:
                    continue
                normalized = StoreNormalizer().normalize_event(json.loads(json.dumps(event)))
                if normalized.get("errors"):
                    fake.problems.append(f"relay errors: {normalized['errors']}")
                end = float(normalized.get("timestamp") or 0)
                if not time.time() - MAX_AGE < end < time.time() + MAX_FUTURE:
                    fake.problems.append(f"event {normalized.get('event_id')} outside Relay's time window")
                fake.events.setdefault(project, []).append(normalized)

    return Handler


@contextmanager
def fake_sentry(keys: dict[str, str], script: dict[str, list[Answer]] | None = None) -> Iterator[FakeSentry]:
    fake = FakeSentry(keys, script or {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
