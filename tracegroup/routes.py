r"""Routes files: which Sentry project (DSN, sample rate) and which exporter each service goes to.

Contract: :func:`load_routes` reads a TOML or YAML file of this shape and raises ``LoadError`` (one line,
naming the file) on anything else::

    [default]                         # optional: services no route names; without it they are unrouted
    dsn = "https://PUBLIC_KEY@o1.ingest.sentry.io/1"

    [[route]]
    name = "shop"                     # the exporter / project name (defaults to the first service)
    services = ["storefront", "storefront-worker"]
    dsn = "https://PUBLIC_KEY@o1.ingest.sentry.io/2"
    sample_rate = 1.0                 # optional, default 1.0

    [[rename]]                        # optional, any number, applied in order (tracegroup emit)
    match = '\.repo\.query'           # regular expression searched in the span name
    from_attributes = ["db.statement"]  # new name: these attribute values ...
    separator = " "                   # ... joined by this (default "")
    services = ["payments"]           # optional: only spans of these services

A route is one exporter in the collector (and one Sentry project): services sharing a route share its
exporter calls. ``Routes.route_of(service)`` gives the route name, or None when the service is unrouted.
DSNs are parsed in one place, :meth:`Dsn.parse` (``https://PUBLIC_KEY[:SECRET]@HOST[:PORT][/PATH]/PROJECT_ID``,
``http`` or ``https``, a numeric project id): a route's ``dsn`` must parse, its public key is the parsed one,
and sending builds its URLs and auth header from it. A DSN's secret part is never printed: use
:func:`redact_dsn` for anything shown to users.
Rename rules (:class:`RenameRule`, the collector span processor's ``name.from_attributes``) may live in the
routes file or in a file of their own (:func:`load_renames`, the same ``[[rename]]`` tables); a bad
regular expression is a ``LoadError`` naming the file and the rule. A rule matches when its regular
expression is found in the span's current name (``re.search``) and, if it lists services, the span belongs
to one of them; the new name is the rule's ``from_attributes`` values joined by its ``separator``, and a
span missing any of those attributes keeps its name. Rules apply in file order (the routes file's, then a
renames file's), each to the name the previous ones left, like a chain of span processors.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracegroup.load.base import LoadError


@dataclass
class Route:
    name: str
    services: list[str]
    dsn: str = ""
    sample_rate: float = 1.0

    @property
    def public_key(self) -> str:
        """The DSN's public key ("" without a valid DSN): goes into envelope headers, never printed."""
        try:
            return Dsn.parse(self.dsn).public_key
        except ValueError:
            return ""


@dataclass
class RenameRule:
    """Rename spans whose name matches ``pattern`` to their ``from_attributes`` values joined by
    ``separator`` (only spans of ``services`` when given). See the module docstring; applied to OTLP spans
    by :class:`tracegroup.sentry.rename.Renamer`."""

    pattern: re.Pattern[str]
    from_attributes: list[str]
    separator: str = ""
    services: list[str] = field(default_factory=list)

    def applies_to(self, service: str) -> bool:
        return not self.services or service in self.services

    def matches(self, name: str) -> bool:
        """Whether the rule's regular expression is found in ``name``."""
        return self.pattern.search(name) is not None

    def new_name(self, values: Mapping[str, str]) -> str | None:
        """The name from the span's attribute ``values``, or None (keep the name) when one is missing."""
        parts = [values.get(a) for a in self.from_attributes]
        if not self.from_attributes or any(p is None for p in parts):
            return None
        return self.separator.join(p for p in parts if p is not None)


@dataclass
class Routes:
    routes: list[Route] = field(default_factory=list)
    default: Route | None = None
    path: str = ""
    renames: list[RenameRule] = field(default_factory=list)

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
    """A DSN or URL (or text holding some) with its key(s) replaced by ``***``: safe to print. Everything
    before the last ``@`` of each authority goes, so a secret containing ``@`` is masked whole; so do
    ``sentry_key=`` / ``sentry_secret=`` values."""

    def mask(m: re.Match[str]) -> str:
        _, at, host = m.group(1).rpartition("@")
        return f"//***@{host}" if at else m.group(0)

    out = re.sub(r"//([^/\s]*)", mask, dsn)
    return re.sub(r"(sentry_(?:key|secret)=)[^&,\s]+", r"\1***", out)


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN: what sending needs (endpoint URLs, auth header) and the public key of envelope
    headers."""

    scheme: str
    public_key: str
    host: str
    project_id: str

    @classmethod
    def parse(cls, dsn: str) -> Dsn:
        """``https://PUBLIC_KEY@HOST/PROJECT_ID`` (a path before the project id is kept with the host);
        ``ValueError`` (the DSN redacted) on anything else."""
        parts = urlsplit(dsn)
        path, _, project = parts.path.rpartition("/")
        try:
            port = parts.port
        except ValueError:
            port = None
            project = ""
        key, host = parts.username, parts.hostname
        if not key or not host or not project.isdigit() or parts.scheme not in ("http", "https"):
            raise ValueError(f"not a DSN like https://KEY@HOST/PROJECT_ID: {redact_dsn(dsn)}")
        if port:
            host += f":{port}"
        return cls(parts.scheme, key, host + path, project)

    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.host}/api/{self.project_id}/envelope/"

    def otlp_traces_url(self) -> str:
        return f"{self.scheme}://{self.host}/api/{self.project_id}/integration/otlp/v1/traces"

    def auth_header(self, client: str) -> str:
        return f"Sentry sentry_version=7, sentry_client={client}, sentry_key={self.public_key}"


def _services(raw: dict[str, Any], name: str, where: str) -> list[str]:
    """``services``: one name or a list of names (default: none)."""
    services = raw.get("services", [])
    if isinstance(services, str):
        services = [services]
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise LoadError(f"{name}: {where}.services must be a list of service names")
    return services


def _parses(dsn: str) -> bool:
    try:
        Dsn.parse(dsn)
    except ValueError:
        return False
    return True


def _route(raw: Any, name: str, where: str) -> Route:
    if not isinstance(raw, dict):
        raise LoadError(f"{name}: {where} must be a table/mapping")
    services = _services(raw, name, where)
    dsn = raw.get("dsn", "")
    if not isinstance(dsn, str) or (dsn and not _parses(dsn)):
        raise LoadError(f"{name}: {where}.dsn is not a DSN like https://KEY@HOST/PROJECT_ID")
    rate = raw.get("sample_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise LoadError(f"{name}: {where}.sample_rate must be a number in (0, 1]")
    route_name = raw.get("name") or (services[0] if services else where)
    return Route(str(route_name), services, dsn, float(rate))


def _read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LoadError(f"{name}: cannot read {what} ({err})") from None
    data: Any
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as toml_err:
        try:
            import yaml

            data = yaml.safe_load(text)
        except Exception:
            raise LoadError(f"{name}: {what} is neither valid TOML ({toml_err}) nor YAML") from None
    if not isinstance(data, dict):
        raise LoadError(f"{name}: {what} must be a TOML document or a YAML mapping")
    return data


def _rename(raw: Any, name: str, where: str) -> RenameRule:
    if not isinstance(raw, dict):
        raise LoadError(f"{name}: {where} must be a table/mapping")
    unknown = sorted(set(raw) - {"match", "from_attributes", "separator", "services"})
    if unknown:
        raise LoadError(f"{name}: {where} has unknown key(s) {', '.join(unknown)}")
    match = raw.get("match")
    if not isinstance(match, str) or not match:
        raise LoadError(f"{name}: {where}.match must be a regular expression (a non-empty string)")
    try:
        pattern = re.compile(match)
    except re.error as err:
        raise LoadError(f"{name}: {where}.match: bad regular expression {match!r} ({err})") from None
    attrs = raw.get("from_attributes")
    if isinstance(attrs, str):
        attrs = [attrs]
    if not isinstance(attrs, list) or not attrs or not all(isinstance(a, str) and a for a in attrs):
        raise LoadError(f"{name}: {where}.from_attributes must be a non-empty list of attribute names")
    sep = raw.get("separator", "")
    if not isinstance(sep, str):
        raise LoadError(f"{name}: {where}.separator must be a string")
    services = _services(raw, name, where)
    return RenameRule(pattern, list(attrs), sep, list(services))


def _renames(data: dict[str, Any], name: str) -> list[RenameRule]:
    key = "rename" if "rename" in data else "renames"
    raw = data.get(key, [])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise LoadError(f"{name}: '{key}' must be a list of rename rules")
    return [_rename(r, name, f"{key}[{i}]") for i, r in enumerate(raw)]


def load_renames(path: str | Path) -> list[RenameRule]:
    """Parse a file holding only ``[[rename]]`` rules (see the module docstring)."""
    name = str(path)
    data = _read_mapping(path, "renames file")
    if not ("rename" in data or "renames" in data):
        raise LoadError(f"{name}: renames file needs [[rename]] entries")
    return _renames(data, name)


def load_routes(path: str | Path) -> Routes:
    """Parse a routes file (see the module docstring)."""
    name = str(path)
    data = _read_mapping(path, "routes file")
    if not ("route" in data or "routes" in data or "default" in data):
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
    return Routes(routes, default, name, _renames(data, name))
