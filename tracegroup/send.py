"""Send what ``tracegroup emit`` wrote (envelopes) or corrected OTLP, and account for every item.

Contract:
- :func:`envelope_requests` turns every ``*.envelope`` file under a directory (name order) into a request
  to its DSN's envelope endpoint (the DSN comes from the envelope header; ``sent_at`` is set at sending,
  nothing else in the file changes). Envelopes without a DSN cannot be sent and are reported as such.
- :func:`otlp_requests` turns corrected OTLP batches into one gzip-compressed OTLP/HTTP protobuf request
  per (batch, route) to the route's Sentry OTLP traces endpoint, with ``x-sentry-auth: sentry
  sentry_key=…``; spans of unrouted services are reported, never posted nowhere.
- :func:`send` runs them through :func:`tracegroup.transport.send_all`, writes the outcomes that were not
  ``sent`` to a JSON-lines *not-sent* file (removed when everything went through) and, with ``resume``,
  sends only what that file lists. ``dry_run`` sends nothing and reports what would go where.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tracegroup.load.base import LoadError
from tracegroup.otlp_out import per_route
from tracegroup.routes import Routes, redact_dsn
from tracegroup.transport import Dsn, Outcome, Request, report, send_all

CLIENT = "tracegroup/0.1.0"
NOT_SENT = "not-sent.jsonl"


@dataclass
class SendResult:
    outcomes: list[Outcome]
    per_service: dict[str, dict[str, int]]
    not_sent_file: str | None

    @property
    def ok(self) -> bool:
        return all(o.status == "sent" for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "per_service": self.per_service,
            "not_sent": [asdict(o) for o in self.outcomes if o.status != "sent"],
            "not_sent_file": self.not_sent_file,
        }


def _category(item_type: str) -> str:
    return {"transaction": "transaction", "event": "error"}.get(item_type, item_type or "default")


def envelope_requests(directory: Path, now: dt.datetime | None = None) -> tuple[list[Request], list[Outcome]]:
    """Requests for every envelope under ``directory``, and outcomes for those that cannot be sent."""
    files = sorted(directory.rglob("*.envelope"))
    if not files:
        raise LoadError(f"{directory}: no .envelope files (write some with `tracegroup emit --out DIR`)")
    sent_at = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    requests, unsendable = [], []
    for path in files:
        key = str(path.relative_to(directory))
        service = path.parent.name if path.parent != directory else ""
        head, _, rest = path.read_bytes().partition(b"\n")
        try:
            header = json.loads(head)
            item_type = json.loads(rest.partition(b"\n")[0] or b"{}").get("type", "")
        except ValueError:
            raise LoadError(f"{path}: not an envelope (its header line is not JSON)") from None
        if not header.get("dsn"):
            unsendable.append(
                Outcome(key, service, "rejected", None, "no DSN in the envelope header (unrouted)")
            )
            continue
        try:
            dsn = Dsn.parse(header["dsn"])
        except ValueError as err:
            raise LoadError(f"{path}: {err}") from None
        header["sent_at"] = sent_at
        body = json.dumps(header, separators=(",", ":")).encode() + b"\n" + rest
        headers = {
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": dsn.auth_header(CLIENT),
        }
        requests.append(Request(key, dsn.envelope_url(), headers, body, service, _category(item_type)))
    return requests, unsendable


def otlp_requests(
    messages: Iterator[TracesData], routes: Routes, attribute: str = "service.name"
) -> tuple[list[Request], list[Outcome]]:
    """One request per (batch, route); outcomes for the parts of batches no route takes."""
    requests, unsendable = [], []
    for b, td in enumerate(messages):
        for route, part in per_route(td, routes, attribute).items():
            spans = sum(len(ss.spans) for rs in part.resource_spans for ss in rs.scope_spans)
            key = f"batch-{b}/{route or '(unrouted)'}"
            dsn_text = _dsn_of(routes, route)
            if not dsn_text:
                why = f"{spans} spans of services without a route or DSN"
                unsendable.append(Outcome(key, route or "", "rejected", None, why))
                continue
            dsn = Dsn.parse(dsn_text)
            headers = {
                "Content-Type": "application/x-protobuf",
                "Content-Encoding": "gzip",
                "x-sentry-auth": f"sentry sentry_key={dsn.public_key}",
            }
            body = gzip.compress(part.SerializeToString(), mtime=0)
            requests.append(Request(key, dsn.otlp_traces_url(), headers, body, route or "", "span"))
    return requests, unsendable


def _dsn_of(routes: Routes, name: str | None) -> str:
    for r in [*routes.routes, *([routes.default] if routes.default else [])]:
        if r.name == name:
            return r.dsn
    return ""


def send(
    requests: list[Request],
    unsendable: list[Outcome],
    not_sent_file: Path,
    *,
    resume: bool = False,
    dry_run: bool = False,
    **options: Any,
) -> SendResult:
    """Send (see the module docstring); ``options`` go to :func:`tracegroup.transport.send_all`."""
    if resume:
        if not not_sent_file.exists():
            raise LoadError(f"{not_sent_file}: nothing to resume (no not-sent file)")
        wanted = {json.loads(line)["key"] for line in not_sent_file.read_text().splitlines() if line.strip()}
        requests = [r for r in requests if r.key in wanted]
        unsendable = [o for o in unsendable if o.key in wanted]
    if dry_run:
        outcomes = [
            Outcome(r.key, r.service, "would-send", None, f"POST {redact_dsn(r.url)}") for r in requests
        ]
        return SendResult(outcomes + unsendable, report(outcomes + unsendable), None)
    outcomes = send_all(requests, **options) + unsendable
    failed = [o for o in outcomes if o.status != "sent"]
    if failed:
        not_sent_file.write_text("".join(json.dumps(asdict(o), sort_keys=True) + "\n" for o in failed))
    elif not_sent_file.exists():
        not_sent_file.unlink()
    return SendResult(outcomes, report(outcomes), str(not_sent_file) if failed else None)
