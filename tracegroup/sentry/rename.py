"""Span renames, like the collector's span processor (``processors: span: name: from_attributes``).

Contract: a :class:`~tracegroup.routes.RenameRule` matches when its regular expression is found in the
span's current name (``re.search``) and, if it lists services, the span belongs to one of them; the new
name is the rule's ``from_attributes`` values joined by its ``separator``. As in the collector, a span
missing any of those attributes keeps its name. Rules apply in file order, each to the name the previous
ones left (a chain of span processors). Attribute values are formatted as the exporter formats tags
(strings as is, ``true``/``false``, integers, Go-formatted doubles); other value types count as missing.
Per span the cost is one dictionary lookup per rule: matches are cached by (rule, name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tracegroup.routes import RenameRule
from tracegroup.sentry.convert import tag_value


class Renamer:
    """Applies rename rules to spans of a table whose services are ``services`` (by service code)."""

    def __init__(self, rules: Sequence[RenameRule], services: Sequence[str]) -> None:
        self.rules = list(rules)
        # per rule: the service codes it applies to (None = all)
        self._codes: list[frozenset[int] | None] = [
            None if not r.services else frozenset(i for i, s in enumerate(services) if s in r.services)
            for r in self.rules
        ]
        self._match: list[dict[str, bool]] = [{} for _ in self.rules]
        self.renamed = 0

    def __bool__(self) -> bool:
        return bool(self.rules)

    def apply(self, name: str, service: int, attributes: Iterable[Any]) -> str:
        """The span's name after every rule (``attributes``: its OTLP ``KeyValue`` list)."""
        values: dict[str, str] | None = None
        new = name
        for k, rule in enumerate(self.rules):
            codes = self._codes[k]
            if codes is not None and service not in codes:
                continue
            cache = self._match[k]
            hit = cache.get(new)
            if hit is None:
                hit = cache[new] = rule.pattern.search(new) is not None
            if not hit:
                continue
            if values is None:
                values = {}
                for kv in attributes:
                    if kv.key not in values:
                        v = tag_value(kv.value)
                        if v is not None:
                            values[kv.key] = v
            parts = [values.get(a) for a in rule.from_attributes]
            if rule.from_attributes and all(p is not None for p in parts):
                new = rule.separator.join(p for p in parts if p is not None)
        if new != name:
            self.renamed += 1
        return new
