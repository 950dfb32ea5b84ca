"""HTML renderer: the report data as one self-contained HTML page (``tracegroup report``, the notebook's
trace view).

Contract: :func:`report_html` writes the dict :func:`tracegroup.report.report_data` built, as it is, into
one HTML document: the data as compact JSON in a ``<script type="application/json">`` element (``</``
escaped, so no string can close it), and the package's own ``report.css`` and ``report.js`` (hand-written,
no library) inlined. The page loads nothing: its Content-Security-Policy is ``default-src 'none'`` with
inline scripts, inline styles and ``data:`` images allowed, so opening it makes no request. Everything
the page shows is computed by the script from the data; this module computes nothing.
:func:`trace_iframe` wraps a page into an ``<iframe srcdoc>`` for a notebook cell (its styles and script
stay inside the frame). :func:`data_bytes` says how many bytes the embedded JSON takes.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from tracegroup.render.json import _default

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def _asset(name: str) -> str:
    return resources.files("tracegroup.render").joinpath(name).read_text(encoding="utf-8")


def data_json(data: dict[str, Any]) -> str:
    """The data as compact JSON safe inside a ``<script>`` element."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_default)
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")


def data_bytes(data: dict[str, Any]) -> int:
    """Bytes of the embedded JSON (UTF-8)."""
    return len(data_json(data).encode("utf-8"))


def report_html(data: dict[str, Any]) -> str:
    """The page (see the module docstring)."""
    title = html.escape(str(data.get("title", "tracegroup report")))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{title}</title>\n<style>\n{_asset('report.css')}</style>\n</head>\n<body>\n"
        '<div id="app"><p id="loading">Loading the report…</p></div>\n'
        f'<script id="tg-data" type="application/json">{data_json(data)}</script>\n'
        f"<script>\n{_asset('report.js')}</script>\n</body>\n</html>\n"
    )


def trace_iframe(data: dict[str, Any], height: int = 640) -> str:
    """The page in an ``<iframe srcdoc>`` (what a notebook cell shows)."""
    page = html.escape(report_html(data), quote=True)
    return (
        f'<iframe srcdoc="{page}" style="width:100%;height:{height}px;border:1px solid #ccc" '
        'title="tracegroup trace view"></iframe>'
    )
