"""Routes files: which Sentry project (DSN, sample rate) and which exporter each service goes to.

Contract: :func:`load_routes` reads a TOML or YAML file of this shape and raises ``LoadError`` (one line,
naming the file) on anything else::

    [default]                         # optional: services no route names; without it they are unrouted
    dsn = "https://PUBLIC_KEY@o1.ingest.sentry.io/1"

    [[route]]
    name = "shop"                     # the exporter / project name (defaults to the first service)
    services = ["storefront", "storefront-worker"]
    dsn = "https://PUBLIC_KEY@o1.ingest.sentry.io/2"
    sample_rate = 1.0                 # optional, default 1.0

A route is one exporter in the collector (and one Sentry project): services sharing a route share its
exporter calls. ``Routes.route_of(service)`` gives the route name, or None when the service is unrouted.
A DSN's secret part is never printed: use :func:`redact_dsn` for anything shown to users.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracegroup.load.base import LoadError


@dataclass
class Route:
    name: str
    services: list[str]
    dsn: str = ""
    sample_rate: float = 1.0


@dataclass
class Routes:
    routes: list[Route] = field(default_factory=list)
    default: Route | None = None
    path: str = ""

    def route_of(self, service: str) -> Route | None:
        for r in self.routes:
            if service in r.services:
                return r
        return self.default

    @classmethod
    def per_service(cls, services: list[str]) -> Routes:
        """One route per service: the seed's routing-processor setup."""
        return cls([Route(s, [s]) for s in services], None, "service")


def redact_dsn(dsn: str) -> str:
    """A DSN with its key(s) replaced by ``***``: safe to print."""
    return re.sub(r"//[^@/]*@", "//***@", dsn)


def _route(raw: Any, name: str, where: str) -> Route:
    if not isinstance(raw, dict):
        raise LoadError(f"{name}: {where} must be a table/mapping")
    services = raw.get("services", [])
    if isinstance(services, str):
        services = [services]
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise LoadError(f"{name}: {where}.services must be a list of service names")
    dsn = raw.get("dsn", "")
    if not isinstance(dsn, str) or (dsn and not re.match(r"^https?://[^@/]+@[^/]+/.*\d+$", dsn)):
        raise LoadError(f"{name}: {where}.dsn is not a DSN like https://KEY@HOST/PROJECT_ID")
    rate = raw.get("sample_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise LoadError(f"{name}: {where}.sample_rate must be a number in (0, 1]")
    route_name = raw.get("name") or (services[0] if services else where)
    return Route(str(route_name), services, dsn, float(rate))


def load_routes(path: str | Path) -> Routes:
    """Parse a routes file (see the module docstring)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LoadError(f"{name}: cannot read routes file ({err})") from None
    data: Any
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as toml_err:
        try:
            import yaml

            data = yaml.safe_load(text)
        except Exception:
            raise LoadError(f"{name}: routes file is neither valid TOML ({toml_err}) nor YAML") from None
    if not isinstance(data, dict) or not ("route" in data or "routes" in data or "default" in data):
        raise LoadError(f"{name}: routes file needs [[route]] entries and/or a [default] table")
    raw_routes = data.get("route", data.get("routes", []))
    if not isinstance(raw_routes, list):
        raise LoadError(f"{name}: 'route' must be a list of routes")
    routes = [_route(r, name, f"route[{i}]") for i, r in enumerate(raw_routes)]
    seen: dict[str, str] = {}
    for r in routes:
        for s in r.services:
            if s in seen:
                raise LoadError(f"{name}: service {s!r} is in two routes ({seen[s]!r} and {r.name!r})")
            seen[s] = r.name
    default = _route(data["default"], name, "default") if "default" in data else None
    if default is not None and not data["default"].get("name"):
        default.name = "default"
    names = [r.name for r in routes] + ([default.name] if default else [])
    for route_name in names:
        if names.count(route_name) > 1:
            raise LoadError(f"{name}: two routes are named {route_name!r}: each route is one exporter")
    return Routes(routes, default, name)
