"""Delivery over HTTP that never hammers the server and never drops an outcome (see docs/send.md).

Contract: :func:`send_all` posts every :class:`Request` with bounded concurrency (daemon worker threads)
and returns one :class:`Outcome` per request, in request order, calling ``on_outcome`` as each is known:

- 2xx → ``sent``; 3xx → ``rejected`` (redirects are never followed: the detail names the redacted
  ``Location``); 413 → ``rejected`` ("too large"); any other 4xx but 429 → ``rejected`` with the answer's
  first line.
- 429, 5xx, network errors and malformed answers (not HTTP, bad headers) → tried again. An item is
  posted at most ``retries`` times; before each retry it waits at least the backoff
  (``max(min_wait, backoff·2^(k-1))``, at most 30 s) and longer when a rate limit says so:
  ``X-Sentry-Rate-Limits`` (``seconds:categories:…``, comma-separated; no categories = all) blocks those
  categories of that endpoint for every worker, else ``Retry-After`` (seconds or an HTTP date) blocks the
  endpoint; absent, negative or unreadable values mean 60 s; every block lasts at least ``min_wait``.
- an item that exhausts its attempts, would wait more than ``max_wait`` in total, or whose next attempt
  would start after ``deadline`` seconds (from the call) is ``failed`` with the last answer as its reason.
  Items not started by the deadline are ``failed`` without a request.
- one attempt (connect, send, the whole answer however slowly it trickles) lasts at most ``timeout``
  seconds, and never past the deadline.

``stop`` (an event) makes workers start nothing new; a ``KeyboardInterrupt`` in the caller sets it and is
re-raised, abandoning requests in flight. ``sleep`` and ``clock`` are injectable so tests run without
waiting. URLs printed anywhere go through :func:`tracegroup.routes.redact_dsn`; keys are never logged.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tracegroup.routes import Dsn as Dsn  # re-exported: DSNs are parsed in routes.py
from tracegroup.routes import redact_dsn

MIN_WAIT = 1.0  # seconds: the shortest wait before any retry and the shortest rate limit honoured
DEFAULT_RETRY_AFTER = 60.0  # seconds: a 429 without a readable limit
MAX_BACKOFF = 30.0


@dataclass
class Request:
    key: str  # what the report, the journal and --resume call it (an envelope file, an OTLP request file)
    url: str
    headers: dict[str, str]
    body: bytes
    service: str = ""
    category: str = "default"
    sha256: str = ""  # fingerprint of what the item was built from (the journal checks it on --resume)


@dataclass
class Outcome:
    key: str
    service: str
    status: str  # sent | rejected | failed (| would-send in a dry run, pending in the journal)
    code: int | None = None
    detail: str = ""
    attempts: int = 0
    sha256: str = ""


@dataclass
class _Limits:
    """Rate limits per (endpoint, category), shared by all workers."""

    until: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, endpoint: str, category: str, now: float) -> float:
        with self.lock:
            return max(self.until.get((endpoint, category), 0.0), self.until.get((endpoint, "*"), 0.0)) - now

    def block(self, endpoint: str, categories: Iterable[str], until: float) -> None:
        with self.lock:
            for c in categories:
                self.until[(endpoint, c)] = max(self.until.get((endpoint, c), 0.0), until)


def _seconds(text: str) -> float | None:
    """A non-negative finite number of seconds, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_rate_limits(header: str) -> list[tuple[float, list[str]]]:
    """``X-Sentry-Rate-Limits`` → [(seconds, categories)]; an empty category list means all ("*").
    Entries without a readable non-negative number of seconds are skipped."""
    out = []
    for part in header.split(","):
        fields = part.strip().split(":")
        seconds = _seconds(fields[0])
        if seconds is None:
            continue
        cats = [c.strip() for c in (fields[1].split(";") if len(fields) > 1 else []) if c.strip()]
        out.append((seconds, cats or ["*"]))
    return out


def parse_retry_after(value: str | None, now: float) -> float:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date); 60 when absent, negative or
    unreadable."""
    if not value:
        return DEFAULT_RETRY_AFTER
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return DEFAULT_RETRY_AFTER


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# --- one POST: no redirects, one deadline for connect + send + the whole answer ---


class _DeadlineIO(io.RawIOBase):
    """The answer's bytes, each read bounded by what is left of one deadline: a trickle cannot outlast it."""

    def __init__(self, raw: Any, sock: Any, deadline: float) -> None:
        super().__init__()
        self.raw, self.sock, self.deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete answer within --timeout")
        self.sock.settimeout(left)
        n: int = self.raw.readinto(buffer)
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Response(http.client.HTTPResponse):
    deadline = 0.0

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineIO(self.fp.detach(), sock, self.deadline))


def _left(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


class _Http(http.client.HTTPConnection):
    deadline = 0.0

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(_left(self.deadline))  # bounds sending the body too


class _Https(http.client.HTTPSConnection):
    deadline = 0.0

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(_left(self.deadline))


def _factory(base: type[_Http] | type[_Https], deadline: float) -> Callable[..., http.client.HTTPConnection]:
    def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
        conn = base(host, **kwargs)
        conn.deadline = deadline
        conn.response_class = type("Response", (_Response,), {"deadline": deadline})
        return conn

    return make


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_factory(_Http, self.deadline), req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_factory(_Https, self.deadline), req, context=getattr(self, "_context", None))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx comes back as an ``HTTPError``: a redirected POST would lose its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int | None, Any, str]:
    """POST once → (status or None, answer headers or None, detail); never raises for network or protocol
    trouble. Environment proxies apply as with ``urllib``; redirects are not followed."""
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(_NoRedirect(), _HttpHandler(deadline), _HttpsHandler(deadline))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, answer.headers, ""
    except urllib.error.HTTPError as err:
        try:
            lines = err.read(300).decode("utf-8", "replace").splitlines()
        except Exception:  # a body that trickles past the deadline or breaks off
            lines = []
        finally:
            err.close()
        return err.code, err.headers, (lines[0] if lines else str(err.reason))[:200]
    except urllib.error.URLError as err:
        return None, None, f"network error: {err.reason}"
    except (OSError, http.client.HTTPException) as err:
        return None, None, f"network error: {type(err).__name__}: {err}"[:200]
    except Exception as err:  # anything else the answer provokes is an outcome too, never a traceback
        return None, None, f"malformed answer: {type(err).__name__}: {err}"[:200]


def wait(stop: threading.Event, seconds: float) -> None:
    """How workers wait between attempts (until ``stop``); tests replace it to skip the waiting."""
    stop.wait(seconds)


def send_all(
    requests: Iterable[Request],
    *,
    concurrency: int = 4,
    retries: int = 5,
    backoff: float = 0.5,
    min_wait: float = MIN_WAIT,
    max_wait: float = 300.0,
    timeout: float = 30.0,
    deadline: float = 3600.0,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    poster: Callable[[str, dict[str, str], bytes, float], tuple[int | None, Any, str]] = post,
) -> list[Outcome]:
    """Send every request (see the module docstring); outcomes come back in request order."""
    limits = _Limits()
    stop = stop or threading.Event()
    end = clock() + deadline
    retries = max(1, retries)

    def pause_for(seconds: float) -> None:
        if sleep:
            sleep(seconds)
        else:
            wait(stop, seconds)

    def one(req: Request) -> Outcome:
        endpoint = _endpoint(req.url)
        waited, attempts, not_before = 0.0, 0, 0.0
        code: int | None = None
        detail = ""

        def out(status: str, why: str = "") -> Outcome:
            return Outcome(req.key, req.service, status, code, why, attempts, req.sha256)

        def failed(why: str) -> Outcome:
            return out("failed", f"{detail if attempts else 'not attempted'}; {why}")

        while True:
            now = clock()
            pause = max(limits.wait_for(endpoint, req.category, now), not_before - now)
            if pause > 0:
                if waited + pause > max_wait:
                    return failed(f"next attempt in {pause:.0f} s would exceed --max-wait")
                if now + pause >= end:
                    return failed(f"next attempt in {pause:.0f} s would pass --deadline")
                pause_for(pause)
                waited, not_before = (
                    waited + pause,
                    0.0,
                )  # the backoff is served; rate limits are checked again
                if stop.is_set():
                    return failed("interrupted")
                continue
            if now >= end:
                return failed("--deadline passed")
            attempts += 1
            code, headers, detail = poster(req.url, req.headers, req.body, min(timeout, end - now))
            if code is not None and 200 <= code < 300:
                return out("sent")
            if code is not None and 300 <= code < 400:
                where = redact_dsn(str(headers.get("Location") or "")) if headers else ""
                return out("rejected", f"redirect to {where or '(no Location)'} not followed")
            if code == 413:
                return out("rejected", "too large")
            if code is not None and 400 <= code < 500 and code != 429:
                return out("rejected", detail)
            if code == 429:
                detail = "rate limited"
                _rate_limit(limits, endpoint, headers, clock(), min_wait)
            if attempts >= retries:
                return out("failed", f"{detail} (after {attempts} attempts)")
            wait = min(max(min_wait, backoff * 2 ** (attempts - 1)), max(MAX_BACKOFF, min_wait))
            not_before = clock() + wait

    items = list(requests)
    results: list[Outcome | None] = [None] * len(items)
    todo = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                i = next(todo, None)
            if i is None:
                return
            outcome = one(items[i])
            results[i] = outcome
            if on_outcome:
                on_outcome(outcome)

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(concurrency, len(items))))
    ]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException:
        stop.set()  # start nothing new; requests in flight are abandoned with the process
        raise
    return [
        o or Outcome(r.key, r.service, "failed", None, "not attempted: interrupted", 0, r.sha256)
        for o, r in zip(results, items, strict=True)
    ]


def _rate_limit(limits: _Limits, endpoint: str, headers: Any, now: float, min_wait: float) -> None:
    """Apply a 429's limits (each at least ``min_wait``): the categories it names, else the endpoint."""
    found = parse_rate_limits(str(headers.get("X-Sentry-Rate-Limits") or "")) if headers else []
    if not found:
        found = [(parse_retry_after(headers.get("Retry-After") if headers else None, now), ["*"])]
    for seconds, cats in found:
        limits.block(endpoint, cats, now + max(min_wait, seconds))


def report(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Counts per service: sent / rejected / failed (and would-send in a dry run)."""
    out: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = out.setdefault(o.service, {"sent": 0, "rejected": 0, "failed": 0})
        row[o.status] = row.get(o.status, 0) + 1
    return out
