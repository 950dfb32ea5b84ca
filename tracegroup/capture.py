"""``tracegroup capture``: an OTLP traces receiver that writes every export request it accepts as one
message of a collector file-exporter dump.

Contract:

- **Receivers.** OTLP/HTTP ``POST /v1/traces`` (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive):
  bodies ``application/x-protobuf`` or ``application/json``, ``Content-Encoding`` none, ``gzip``,
  ``deflate`` or ``zstd``, ``Content-Length`` or chunked. OTLP/gRPC ``TraceService/Export`` (grpcio,
  the ``capture`` extra; the request's bytes are taken as they came, not re-encoded).
- **Answers** (OTLP/HTTP specification): 200 with an ``ExportTraceServiceResponse`` in the request's
  content type; a body with strings that are not UTF-8 is kept as sent and answered with a partial success
  whose ``rejected_spans`` is 0 and whose ``error_message`` says so (a warning). 400 with a
  ``google.rpc.Status`` for a body that does not decode (bad compression, not protobuf ``TracesData``, bad
  OTLP/JSON); 413 over ``max_request_bytes`` (compressed or not); 415 for other content types or
  encodings; 411 without a length; 404 for other paths; 405 for other methods. 503 with ``Retry-After``
  when ``queue_bytes`` are already held (bodies being decoded plus messages waiting for the writer) or the
  capture is stopping. gRPC answers the same cases with INVALID_ARGUMENT, RESOURCE_EXHAUSTED (with a
  ``google.rpc.RetryInfo``) and UNAVAILABLE. Nothing is written for a refused request; every refusal is
  counted by reason.
- **Files.** Requests are accepted in one order (their arrival time is taken then, so it never decreases
  along the files) and written by one writer thread: a 4-byte big-endian length and the ``TracesData``
  bytes (an OTLP/JSON body converted with :func:`tracegroup.load.otlp_json.otlp_message`), exactly the
  file exporter's ``format: proto``, into ``capture-NNNNNN.pb`` (numbered on from the highest number
  already in the directory, so a directory loads in arrival order), with one line per message in its
  sidecar (:mod:`tracegroup.load.sidecar`). A file is closed once the next message would take it past
  ``rotate_bytes``. A request is answered 200 only once its message is written; an empty body is answered
  200 and counted, not written (an empty frame would read as damage).
- **Stopping.** :meth:`Capture.stop` (SIGINT/SIGTERM in :func:`capture`, ``duration_s``, ``max_spans``: the
  request reaching it is kept whole, later ones are refused) stops accepting; :meth:`Capture.close` writes
  every accepted request, fsyncs the files and their directory and answers the senders before closing
  their connections. A write that fails (disk full, file size limit) truncates the file and the sidecar
  back to the last whole message, refuses that request and every later one, and stops the capture with
  ``error`` set: what the files hold stays complete.
- **Cost.** Memory is bounded by ``queue_bytes`` plus one request per worker thread, whatever the traffic;
  a protobuf body is parsed once (C parser) to validate it and count its spans, and written as it came.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import signal
import socket
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import zstandard
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from tracegroup.load.base import LoadError
from tracegroup.load.lenient import count_spans, parse_message
from tracegroup.load.otlp_json import otlp_message
from tracegroup.load.sidecar import header_line, message_line, sidecar_path

__all__ = ["Capture", "CaptureError", "CaptureOptions", "CaptureStats", "capture", "parse_address"]

MiB = 1 << 20
DEFAULT_HTTP = "127.0.0.1:4318"
DEFAULT_GRPC = "127.0.0.1:4317"
#: Seconds a refused sender is asked to wait (``Retry-After``, ``RetryInfo``).
RETRY_AFTER_S = 1
#: Seconds an idle keep-alive connection is kept.
IDLE_TIMEOUT_S = 60.0
#: Longest wait at close for answers still being sent.
CLOSE_TIMEOUT_S = 10.0
FILE_PATTERN = re.compile(r"capture-(\d{6,})\.pb")
CONTENT_TYPES = {"application/x-protobuf": "protobuf", "application/json": "json"}
ENCODINGS = ("gzip", "deflate", "zstd")
TRACE_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name


class CaptureError(Exception):
    """The capture cannot start (address in use, grpcio missing, unusable directory): one line."""


@dataclass(frozen=True)
class CaptureOptions:
    """What ``tracegroup capture`` is told: the options by their CLI names (``--for`` is ``duration_s``)."""

    out: Path
    listen: str | None = DEFAULT_HTTP  # OTLP/HTTP address, None: no HTTP receiver
    grpc: str | None = None  # OTLP/gRPC address, None: no gRPC receiver
    duration_s: float | None = None
    max_spans: int | None = None
    rotate_bytes: int = 100 * MiB
    max_request_bytes: int = 64 * MiB
    queue_bytes: int = 64 * MiB


@dataclass
class CaptureStats:
    """Counts of a capture so far (a snapshot) or at its end."""

    out: str
    http: str | None
    grpc: str | None
    elapsed_s: float = 0.0
    messages: int = 0
    spans: int = 0
    bytes: int = 0  # written to the capture files (length prefixes included)
    files: list[str] = field(default_factory=list)
    transports: dict[str, int] = field(default_factory=dict)  # messages per transport
    senders: dict[str, int] = field(default_factory=dict)  # messages per User-Agent
    empty: int = 0  # empty requests: answered, not written
    warned: int = 0  # accepted with a partial-success warning
    refused: dict[str, int] = field(default_factory=dict)  # "<status> <reason>" -> requests
    first_arrival_ns: int | None = None
    last_arrival_ns: int | None = None
    stopped_by: str | None = None
    error: str | None = None  # the write failure that stopped the capture

    @property
    def spans_per_s(self) -> float:
        return self.spans / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "http": self.http,
            "grpc": self.grpc,
            "elapsed_s": round(self.elapsed_s, 3),
            "messages": self.messages,
            "spans": self.spans,
            "bytes": self.bytes,
            "spans_per_s": round(self.spans_per_s, 1),
            "files": self.files,
            "transports": self.transports,
            "senders": self.senders,
            "empty": self.empty,
            "warned": self.warned,
            "refused": self.refused,
            "first_arrival_ns": self.first_arrival_ns,
            "last_arrival_ns": self.last_arrival_ns,
            "stopped_by": self.stopped_by,
            "error": self.error,
        }


def parse_address(text: str, option: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:4318``; ``:4318`` for every interface; port 0 picks a free one)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{option} {text}: expected HOST:PORT, e.g. 127.0.0.1:4318")
    return host.strip("[]") or "0.0.0.0", int(port)


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Refused(Exception):
    """A request answered without writing: HTTP status, gRPC code, message, and the counter's reason."""

    def __init__(self, status: int, reason: str, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.close = status, reason, message, close


@dataclass
class _Item:
    """One accepted request on its way to the writer."""

    data: bytes | memoryview
    spans: int
    transport: str
    body: str
    encoding: str | None
    sender: str | None
    peer: str | None
    reserved: int
    arrival_ns: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


def validate(data: bytes | memoryview, body: str, where: str) -> tuple[bytes | memoryview, int, str | None]:
    """(``TracesData`` bytes, spans, warning or None) of one decoded request body; ``_Refused`` (400) when
    it does not decode."""
    if body == "json":
        try:
            doc = json.loads(bytes(data))
        except (ValueError, RecursionError) as err:
            raise _Refused(400, "bad JSON", f"body is not JSON: {err}") from None
        if not isinstance(doc, dict):
            raise _Refused(400, "bad OTLP/JSON", "body is not an OTLP/JSON ExportTraceServiceRequest object")
        try:
            data = otlp_message(doc, where)
        except LoadError as err:
            raise _Refused(400, "bad OTLP/JSON", str(err)) from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError) as err:
            raise _Refused(
                400, "bad OTLP/JSON", f"malformed OTLP/JSON: {type(err).__name__}: {err}"
            ) from None
    try:
        td, strings, _ = parse_message(data)
    except MemoryError:
        raise _Refused(413, "too large", "body too large to parse") from None
    if td is None:
        raise _Refused(400, "bad protobuf", "body is not an OTLP ExportTraceServiceRequest (protobuf)")
    spans = sum(len(ss.spans) for rs in td.resource_spans for ss in rs.scope_spans)
    if not spans and len(data):
        spans = count_spans(data)  # OTLP before 0.19: spans in ResourceSpans field 1000
    warning = (
        f"{strings} strings were not valid UTF-8; kept as sent (tracegroup decodes them with U+FFFD)"
        if strings
        else None
    )
    return data, spans, warning


def _decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """The decoded body, at most ``limit`` bytes (413 beyond), 400 when it is not ``encoding`` data."""
    try:
        if encoding == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
                out = reader.read(limit + 1)
        else:
            out, rest = b"", data
            while rest:  # gzip may hold several members
                d = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
                out += d.decompress(rest, limit + 1 - len(out))
                if len(out) > limit or d.unconsumed_tail:
                    out += b"?"
                    break
                if not d.eof:
                    raise zlib.error("truncated")
                rest = d.unused_data if encoding == "gzip" else b""
    except (zlib.error, zstandard.ZstdError) as err:
        raise _Refused(400, f"bad {encoding}", f"body is not valid {encoding} data ({err})") from None
    if len(out) > limit:
        raise _Refused(413, "too large", f"decoded body exceeds {limit:,} bytes")
    return out


def _status_body(body: str | None, code: int, message: str, retry: bool = False) -> tuple[str, bytes]:
    """(content type, bytes) of a ``google.rpc.Status`` in the request's encoding."""
    status = status_pb2.Status(code=code, message=message)
    if retry:
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": RETRY_AFTER_S}))
    if body == "json":
        return "application/json", json_format.MessageToJson(status, indent=None).encode()
    return "application/x-protobuf", status.SerializeToString()


_RPC_CODES = {400: code_pb2.INVALID_ARGUMENT, 413: code_pb2.RESOURCE_EXHAUSTED, 503: code_pb2.UNAVAILABLE}


class Capture:
    """The receivers, the queue and the writer (see the module docstring). ``start()``, then ``stop()``
    from anywhere, then ``close()``; or use it as a context manager."""

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options
        self._lock = threading.Condition()
        self._items: deque[_Item | None] = deque()
        self._reserved = 0
        self._accepted_spans = 0
        self._last_arrival = 0
        self._stopped = threading.Event()
        self._closed = False
        self._busy = 0  # HTTP requests being answered
        self._conns: set[socket.socket] = set()
        self._stats = CaptureStats(str(options.out), None, None)
        self._senders: Counter[str] = Counter()
        self._transports: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._started, self._started_ns, self._ended = 0.0, 0, 0.0
        self._http: ThreadingHTTPServer | None = None
        self._grpc: Any = None
        self._threads: list[threading.Thread] = []
        # the writer's state
        self._index = self._first_index()
        self._fd = self._sfd = -1
        self._path: Path | None = None
        self._size = self._sc_size = self._in_file = 0

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        out = self.options.out
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CaptureError(f"{out}: cannot create the output directory ({err.strerror})") from None
        if not os.access(out, os.W_OK):
            raise CaptureError(f"{out}: the output directory is not writable")
        self._started, self._started_ns = time.monotonic(), time.time_ns()
        try:
            if self.options.listen is not None:
                self._start_http(parse_address(self.options.listen, "--listen"))
            if self.options.grpc is not None:
                self._start_grpc(parse_address(self.options.grpc, "--grpc"))
        except BaseException:
            self._shutdown_servers()
            raise
        self._spawn(self._write_loop, "tracegroup-capture-writer")
        if self.options.duration_s is not None:
            timer = threading.Timer(
                self.options.duration_s, self.stop, args=(f"--for {self.options.duration_s:g}s",)
            )
            timer.daemon = True
            timer.start()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def __enter__(self) -> Capture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def http_address(self) -> tuple[str, int] | None:
        return self._http.server_address[:2] if self._http is not None else None  # type: ignore[return-value]

    @property
    def grpc_address(self) -> tuple[str, int] | None:
        return self._grpc_addr if self._grpc is not None else None

    def stop(self, reason: str = "stopped") -> None:
        """Stop accepting requests (safe from a signal handler and any thread); ``close()`` finishes."""
        if not self._stopped.is_set():
            self._stats.stopped_by = self._stats.stopped_by or reason
            self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the capture was stopped (``stop()``, ``--for``, ``--max-spans``, a failed write)."""
        return self._stopped.wait(timeout)

    def close(self) -> CaptureStats:
        """Stop, write every accepted request, fsync, answer the senders, close; the final counts."""
        self.stop("closed")
        if not self._closed:
            self._closed = True
            with self._lock:
                self._items.append(None)  # the writer ends after everything accepted before
                self._lock.notify_all()
            for t in self._threads:
                t.join()
            self._shutdown_servers()
            self._ended = time.monotonic()
        return self.stats()

    def stats(self) -> CaptureStats:
        with self._lock:
            s = self._stats
            s.elapsed_s = (self._ended or time.monotonic()) - self._started if self._started else 0.0
            s.senders, s.transports, s.refused = (
                dict(self._senders),
                dict(self._transports),
                dict(self._refused),
            )
            return dataclasses.replace(s, files=list(s.files))

    # ------------------------------------------------------------------------------------ accepting
    def _reserve(self, n: int) -> bool:
        """Hold ``n`` bytes of the queue budget; False when it is spent (one request always fits)."""
        with self._lock:
            if self._reserved and self._reserved + n > self.options.queue_bytes:
                return False
            self._reserved += n
            return True

    def _release(self, n: int) -> None:
        with self._lock:
            self._reserved -= n

    def _refuse(self, reason: str) -> None:
        with self._lock:
            self._refused[reason] += 1

    def _accept(self, item: _Item) -> None:
        """Queue ``item`` for the writer and wait until it is written; ``_Refused`` when stopping or the
        write failed. ``item.reserved`` is released here, whatever happens."""
        with self._lock:
            if self._stopped.is_set():
                self._reserved -= item.reserved
                raise _Refused(503, "stopping", "the capture is stopping")
            item.arrival_ns = self._last_arrival = max(time.time_ns(), self._last_arrival)  # never back
            self._items.append(item)
            self._accepted_spans += item.spans
            if self.options.max_spans is not None and self._accepted_spans >= self.options.max_spans:
                self.stop(f"--max-spans {self.options.max_spans}")
            self._lock.notify_all()
        item.done.wait()
        if item.error is not None:
            raise _Refused(503, "write failed", f"the capture stopped: {item.error}")

    def _receive(
        self,
        raw: bytes,
        reserved: int,
        transport: str,
        body: str,
        encoding: str | None,
        sender: str | None,
        peer: str | None,
    ) -> tuple[int, str | None]:
        """Decode, validate and write one request body holding ``reserved`` bytes of the budget:
        (spans, warning); ``_Refused`` when it is not written. The budget is released in every case."""
        try:
            data: bytes | memoryview = raw
            if encoding is not None:
                data = _decompress(raw, encoding, self.options.max_request_bytes)
                extra = len(data) - reserved
                if not self._reserve(extra):
                    raise _Refused(503, "queue full", "the capture's queue is full")
                reserved += extra
            data, spans, warning = validate(data, body, f"{transport} request")
            if not len(data):
                with self._lock:
                    self._stats.empty += 1
                return 0, None
        except BaseException:
            self._release(reserved)
            raise
        if reserved != len(data):  # JSON converted: hold what is queued
            self._release(reserved - len(data))
            reserved = len(data)
        self._accept(_Item(data, spans, transport, body, encoding, sender, peer, reserved))
        if warning:
            with self._lock:
                self._stats.warned += 1
        return spans, warning

    # ------------------------------------------------------------------------------------ the writer
    def _first_index(self) -> int:
        out = self.options.out
        found = [
            int(m.group(1))
            for p in (out.iterdir() if out.is_dir() else ())
            if (m := FILE_PATTERN.fullmatch(p.name))
        ]
        return max(found, default=0)

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._items:
                    self._lock.wait()
                item = self._items.popleft()
            if item is None:
                break
            if self._stats.error is None:
                try:
                    self._write(item)
                except OSError as err:
                    where = err.filename or self._path
                    self._stats.error = f"{where}: {err.strerror or err}"
                    self.stop("write failed")
            if self._stats.error is not None and item.error is None and not item.done.is_set():
                item.error = self._stats.error
            with self._lock:
                self._reserved -= item.reserved
                if item.error is None:
                    s = self._stats
                    s.messages += 1
                    s.spans += item.spans
                    s.bytes += 4 + len(item.data)
                    s.first_arrival_ns = s.first_arrival_ns or item.arrival_ns
                    s.last_arrival_ns = item.arrival_ns
                    self._senders[item.sender or "(no User-Agent)"] += 1
                    self._transports[item.transport] += 1
            item.done.set()
        self._close_file()

    def _write(self, item: _Item) -> None:
        size = len(item.data)
        if self._fd >= 0 and self._in_file and self._size + 4 + size > self.options.rotate_bytes:
            self._close_file()
        if self._fd < 0:
            self._open_file()
        assert self._path is not None
        self._in_file += 1
        line = message_line(
            self._in_file,
            self._size,
            size,
            item.spans,
            item.arrival_ns,
            item.transport,
            item.body,
            item.encoding,
            item.sender,
            item.peer,
        )
        try:
            _write_all(self._fd, [size.to_bytes(4, "big"), item.data], self._path)
            _write_all(self._sfd, [line], sidecar_path(self._path))
        except OSError:
            self._in_file -= 1
            for fd, size in ((self._fd, self._size), (self._sfd, self._sc_size)):
                with contextlib.suppress(OSError):  # back to the last whole message, in both files
                    os.ftruncate(fd, size)
            raise
        self._size += 4 + size
        self._sc_size += len(line)

    def _open_file(self) -> None:
        out = self.options.out
        while True:
            self._index += 1
            path = out / f"capture-{self._index:06d}.pb"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                continue
            break
        self._path, self._fd, self._size, self._in_file = path, fd, 0, 0
        with self._lock:
            self._stats.files.append(str(path))
        try:
            self._sfd = os.open(
                sidecar_path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
            )
            head = header_line(path.name, self._started_ns, self._stats.http, self._stats.grpc)
            _write_all(self._sfd, [head], sidecar_path(path))
        except OSError:
            self._close_file()  # an empty capture file would not load: removed
            raise
        self._sc_size = len(head)

    def _close_file(self) -> None:
        """fsync and close the current file and its sidecar; remove them when no message made it in."""
        if self._fd < 0:
            return
        for fd in (self._fd, self._sfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.fsync(fd)
                os.close(fd)
        self._fd = self._sfd = -1
        if not self._in_file and self._path is not None:
            for path in (self._path, sidecar_path(self._path)):
                with contextlib.suppress(OSError):
                    path.unlink()
            with self._lock:
                self._stats.files.remove(str(self._path))
        with contextlib.suppress(OSError):  # the new names are durable too
            dfd = os.open(self.options.out, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    # ------------------------------------------------------------------------------------ OTLP/HTTP
    def _start_http(self, addr: tuple[str, int]) -> None:
        capture = self
        family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            address_family = family

        class Handler(_HttpHandler):
            pass

        Handler.capture = capture
        try:
            self._http = Server(addr, Handler)
        except OSError as err:
            raise CaptureError(f"--listen {_show(*addr)}: {err.strerror or err}") from None
        self._stats.http = _show(*self._http.server_address[:2])  # type: ignore[arg-type]
        thread = threading.Thread(
            target=self._http.serve_forever, name="tracegroup-capture-http", daemon=True
        )
        thread.start()

    def _shutdown_servers(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            deadline = time.monotonic() + CLOSE_TIMEOUT_S
            with self._lock:  # answers being sent go out before their connections close
                while self._busy and time.monotonic() < deadline:
                    self._lock.wait(0.05)
                conns = list(self._conns)
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(grace=CLOSE_TIMEOUT_S).wait()
            self._grpc = None

    def _http_post(self, h: _HttpHandler) -> None:
        if h.path.split("?", 1)[0] != "/v1/traces":
            self._refuse("404 not found")
            h.reply(404, "text/plain", b"404 not found: tracegroup capture receives POST /v1/traces\n", True)
            return
        ctype = (h.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        body = CONTENT_TYPES.get(ctype)
        if body is None:
            self._refuse("415 content type")
            text = (
                f"415 unsupported media type {ctype or '(none)'}, "
                "supported: [application/json, application/x-protobuf]\n"
            )
            h.reply(415, "text/plain", text.encode(), True)
            return
        encoding = (h.headers.get("Content-Encoding") or "").strip().lower() or None
        if encoding == "identity":
            encoding = None
        reserved = 0
        try:
            if encoding is not None and encoding not in ENCODINGS:
                raise _Refused(
                    415, "encoding", f"unsupported Content-Encoding {encoding!r} (gzip, deflate, zstd)", True
                )
            limit = self.options.max_request_bytes
            if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
                if not self._reserve(limit):
                    raise _Refused(503, "queue full", "the capture's queue is full", True)
                reserved = limit
                raw = h.read_chunked(limit)
            else:
                length = h.headers.get("Content-Length")
                if length is None or not length.strip().isdigit():
                    self._refuse("411 length required")
                    h.reply(411, "text/plain", b"411 length required\n", True)
                    return
                n = int(length)
                if n > limit:
                    raise _Refused(413, "too large", f"body of {n:,} bytes exceeds {limit:,} bytes", True)
                if not self._reserve(n):
                    h.discard(n)
                    raise _Refused(503, "queue full", "the capture's queue is full")
                reserved = n
                raw = h.rfile.read(n)
                if len(raw) < n:
                    self._release(reserved)
                    h.close_connection = True  # the sender went away mid-body
                    return
            if len(raw) < reserved:
                self._release(reserved - len(raw))
                reserved = len(raw)
            held, reserved = reserved, 0  # _receive releases it
            _, warning = self._receive(
                raw, held, "http", body, encoding, h.headers.get("User-Agent"), _show(*h.client_address[:2])
            )
        except _Refused as r:
            self._release(reserved)
            self._refuse(f"{r.status} {r.reason}")
            ctype_out, data = _status_body(
                body, _RPC_CODES.get(r.status, code_pb2.INVALID_ARGUMENT), r.message, retry=r.status == 503
            )
            extra = {"Retry-After": str(RETRY_AFTER_S)} if r.status == 503 else {}
            h.reply(r.status, ctype_out, data, r.close, extra)
            return
        response = ExportTraceServiceResponse()
        if warning:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=0, error_message=warning)
            )
        if body == "json":
            h.reply(200, "application/json", json_format.MessageToJson(response, indent=None).encode())
            return
        h.reply(200, "application/x-protobuf", response.SerializeToString())

    # ------------------------------------------------------------------------------------ OTLP/gRPC
    def _start_grpc(self, addr: tuple[str, int]) -> None:
        try:
            import grpc
        except ImportError:
            raise CaptureError("--grpc needs grpcio: pip install 'tracegroup[capture]'") from None
        from concurrent.futures import ThreadPoolExecutor

        capture = self

        def export(request: bytes, context: Any) -> bytes:
            return capture._grpc_export(request, context, grpc)

        handler = grpc.method_handlers_generic_handler(
            TRACE_SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(export)}
        )
        limit = self.options.max_request_bytes
        server = grpc.server(
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="tracegroup-capture-grpc"),
            handlers=[handler],
            options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
            maximum_concurrent_rpcs=64,
        )
        target = _show(*addr)
        if addr[1]:  # ask the OS first: grpc's own refusal comes with a log line of its C core
            family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(addr)
                except OSError as err:
                    server.stop(None)
                    raise CaptureError(f"--grpc {target}: {err.strerror or err}") from None
        try:
            port = server.add_insecure_port(target)
        except RuntimeError:
            port = 0
        if not port:
            server.stop(None)
            raise CaptureError(f"--grpc {target}: cannot listen (address in use?)")
        server.start()
        self._grpc, self._grpc_addr = server, (addr[0], port)
        self._stats.grpc = _show(addr[0], port)

    def _grpc_export(self, request: bytes, context: Any, grpc: Any) -> bytes:
        meta = dict(context.invocation_metadata())
        peer = re.sub(r"^ipv[46]:", "", context.peer() or "") or None
        try:
            if not self._reserve(len(request)):
                raise _Refused(503, "queue full", "the capture's queue is full")
            _, warning = self._receive(
                request,
                len(request),
                "grpc",
                "protobuf",
                None,  # grpc decompressed it already
                meta.get("user-agent"),
                peer,
            )
        except _Refused as r:
            self._refuse(f"{r.status} {r.reason}")
            code = grpc.StatusCode.INVALID_ARGUMENT
            status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=r.message)
            if r.reason in ("queue full", "stopping", "write failed"):
                code = (
                    grpc.StatusCode.RESOURCE_EXHAUSTED
                    if r.reason == "queue full"
                    else grpc.StatusCode.UNAVAILABLE
                )
                status.code = code.value[0]
                status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": RETRY_AFTER_S}))
            elif r.status == 413:
                code = grpc.StatusCode.RESOURCE_EXHAUSTED
                status.code = code.value[0]
            context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
            context.abort(code, r.message)
            raise AssertionError("grpc's context.abort returns only by raising") from None
        response = ExportTraceServiceResponse()
        if warning:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=0, error_message=warning)
            )
        return response.SerializeToString()


def _write_all(fd: int, parts: list[bytes | memoryview], path: Path) -> None:
    """Write every byte of ``parts`` (short writes continued); OSError names ``path``."""
    views = [memoryview(p) for p in parts if len(p)]
    try:
        while views:
            n = os.writev(fd, views)
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if views and n:
                views[0] = views[0][n:]
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None


class _HttpHandler(BaseHTTPRequestHandler):
    """One keep-alive connection; every request goes to ``capture._http_post``."""

    protocol_version = "HTTP/1.1"
    server_version = "tracegroup-capture"
    timeout = IDLE_TIMEOUT_S
    capture: Capture

    def setup(self) -> None:
        super().setup()
        # headers and body are two writes: without this, Nagle's algorithm and the sender's delayed ACK
        # hold every answer ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.capture._lock:
            self.capture._conns.add(self.connection)

    def finish(self) -> None:
        with self.capture._lock:
            self.capture._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        capture = self.capture
        with capture._lock:  # a request being answered: close() lets it finish (idle connections do not)
            capture._busy += 1
        try:
            capture._http_post(self)
        finally:
            with capture._lock:
                capture._busy -= 1
                capture._lock.notify_all()

    def _not_post(self) -> None:
        if self.path.split("?", 1)[0] != "/v1/traces":
            self.capture._refuse("404 not found")
            self.reply(
                404, "text/plain", b"404 not found: tracegroup capture receives POST /v1/traces\n", True
            )
        else:
            self.capture._refuse("405 method")
            self.reply(
                405, "text/plain", b"405 method not allowed, supported: [POST]\n", True, {"Allow": "POST"}
            )

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_post  # noqa: N815

    def reply(
        self, status: int, ctype: str, body: bytes, close: bool = False, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if close or self.capture._stopped.is_set():  # a stopping capture hangs up after each answer
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def discard(self, n: int) -> None:
        """Read and drop ``n`` body bytes, 64 KiB at a time, keeping the connection usable."""
        while n > 0:
            chunk = self.rfile.read(min(n, 1 << 16))
            if not chunk:
                self.close_connection = True
                return
            n -= len(chunk)

    def read_chunked(self, limit: int) -> bytes:
        """A ``Transfer-Encoding: chunked`` body, 413 beyond ``limit``, 400 when malformed."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Refused(400, "bad chunked", "malformed chunked body", True) from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise _Refused(413, "too large", f"body exceeds {limit:,} bytes", True)
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


def capture(
    options: CaptureOptions,
    *,
    status: Callable[[CaptureStats], None] | None = None,
    ready: Callable[[Capture], None] | None = None,
    interval: float = 0.5,
) -> CaptureStats:
    """Run a capture until ``--for``, ``--max-spans``, SIGINT/SIGTERM or a failed write; ``ready(capture)``
    once it listens, ``status(stats)`` every ``interval`` seconds; the final counts."""
    cap = Capture(options)
    cap.start()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, _frame: cap.stop(signal.Signals(signum).name))
    try:
        if ready is not None:
            ready(cap)
        while not cap.wait(interval):
            if status is not None:
                status(cap.stats())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        result = cap.close()
    return result
