"""Delivery over HTTP where nothing may be lost: retries, backoff, rate limits, a report of every outcome.

Contract: :func:`send_all` posts every :class:`Request` with bounded concurrency and returns one
:class:`Outcome` per request, never dropping one silently:

- 2xx → ``sent``;
- 429 → wait as the answer says, then try again: ``X-Sentry-Rate-Limits`` (``seconds:categories:scope…``,
  several comma-separated; no categories = all) blocks those categories of that endpoint for everyone,
  else ``Retry-After`` (seconds or an HTTP date) blocks the endpoint; a request still blocked after
  ``max_wait`` seconds in total is ``failed`` ("rate limited");
- 5xx and network errors → retry with exponential backoff, ``failed`` after ``retries`` attempts;
- 413 → ``rejected`` (too large); any other 4xx → ``rejected`` with the answer's first line.

``sleep`` and ``urlopen`` are injectable so tests run without waiting. URLs and DSNs printed anywhere go
through :func:`tracegroup.routes.redact_dsn`; this module never logs keys.
"""

from __future__ import annotations

import email.utils
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tracegroup.routes import redact_dsn


@dataclass
class Request:
    key: str  # what the report and --resume call it (an envelope file, an OTLP batch/route)
    url: str
    headers: dict[str, str]
    body: bytes
    service: str = ""
    category: str = "default"


@dataclass
class Outcome:
    key: str
    service: str
    status: str  # sent | rejected | failed (| would-send in a dry run)
    code: int | None = None
    detail: str = ""
    attempts: int = 0


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


def parse_rate_limits(header: str) -> list[tuple[float, list[str]]]:
    """``X-Sentry-Rate-Limits`` → [(seconds, categories)]; an empty category list means all ("*")."""
    out = []
    for part in header.split(","):
        fields = part.strip().split(":")
        try:
            seconds = float(fields[0])
        except ValueError:
            continue
        cats = [c for c in (fields[1].split(";") if len(fields) > 1 else []) if c]
        out.append((seconds, cats or ["*"]))
    return out


def parse_retry_after(value: str | None, now: float) -> float:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date); 60 when absent/unreadable."""
    if not value:
        return 60.0
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - now) if parsed else 60.0


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def send_all(
    requests: Iterable[Request],
    *,
    concurrency: int = 4,
    retries: int = 5,
    backoff: float = 0.5,
    max_wait: float = 300.0,
    timeout: float = 30.0,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.time,
    urlopen: Callable[..., Any] = urllib.request.urlopen,
) -> list[Outcome]:
    """Send every request (see the module docstring); outcomes come back in request order."""
    limits = _Limits()
    pause_for = sleep or time.sleep

    def one(req: Request) -> Outcome:
        endpoint = _endpoint(req.url)
        waited = 0.0
        attempts = 0
        while True:
            pause = limits.wait_for(endpoint, req.category, clock())
            if pause > 0:
                if waited + pause > max_wait:
                    return Outcome(req.key, req.service, "failed", 429, "rate limited", attempts)
                pause_for(pause)
                waited += pause
                continue
            attempts += 1
            try:
                http = urllib.request.Request(req.url, data=req.body, headers=req.headers, method="POST")
                with urlopen(http, timeout=timeout) as answer:
                    return Outcome(req.key, req.service, "sent", answer.status, "", attempts)
            except urllib.error.HTTPError as err:
                code, headers = err.code, err.headers
                body = err.read(300).decode("utf-8", "replace").splitlines()
                detail = body[0] if body else err.reason
                err.close()
            except (urllib.error.URLError, OSError) as err:
                code, headers, detail = None, None, f"network error: {getattr(err, 'reason', err)}"
            if code == 429:
                now = clock()
                limits_header = headers.get("X-Sentry-Rate-Limits") if headers else None
                if limits_header:
                    for seconds, cats in parse_rate_limits(limits_header):
                        limits.block(endpoint, cats, now + seconds)
                else:
                    limits.block(
                        endpoint,
                        ["*"],
                        now + parse_retry_after(headers.get("Retry-After") if headers else None, now),
                    )
                continue
            if code == 413:
                return Outcome(req.key, req.service, "rejected", 413, "too large", attempts)
            if code is not None and 400 <= code < 500:
                return Outcome(req.key, req.service, "rejected", code, str(detail), attempts)
            if attempts >= retries:
                return Outcome(req.key, req.service, "failed", code, str(detail), attempts)
            pause_for(min(backoff * 2 ** (attempts - 1), 30.0))

    items = list(requests)
    if concurrency <= 1:
        return [one(r) for r in items]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, items))


def report(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    """Counts per service: sent / rejected / failed (and would-send in a dry run)."""
    out: dict[str, dict[str, int]] = {}
    for o in outcomes:
        row = out.setdefault(o.service, {"sent": 0, "rejected": 0, "failed": 0})
        row[o.status] = row.get(o.status, 0) + 1
    return out


@dataclass(frozen=True)
class Dsn:
    scheme: str
    public_key: str
    host: str
    project_id: str

    @classmethod
    def parse(cls, dsn: str) -> Dsn:
        """``https://PUBLIC_KEY@HOST/PROJECT_ID`` (a path before the project id is kept with the host)."""
        parts = urlsplit(dsn)
        path, _, project = parts.path.rpartition("/")
        if not parts.username or not project.isdigit() or parts.scheme not in ("http", "https"):
            raise ValueError(f"not a DSN like https://KEY@HOST/PROJECT_ID: {redact_dsn(dsn)}")
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return cls(parts.scheme, parts.username, host + path, project)

    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.host}/api/{self.project_id}/envelope/"

    def otlp_traces_url(self) -> str:
        return f"{self.scheme}://{self.host}/api/{self.project_id}/integration/otlp/v1/traces"

    def auth_header(self, client: str) -> str:
        return f"Sentry sentry_version=7, sentry_client={client}, sentry_key={self.public_key}"
