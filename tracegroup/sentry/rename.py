"""Span renames applied to OTLP spans, like the collector's span processor (``processors: span: name:
from_attributes``).

Contract: the rules and what they mean (:class:`~tracegroup.routes.RenameRule`: match, services, new name,
order) are :mod:`tracegroup.routes`'s, which reads them; :class:`Renamer` applies them to the spans of one
table, in order. Attribute values are formatted as the exporter formats tags (strings as is,
``true``/``false``, integers, Go-formatted doubles); other value types count as missing. Per span the cost
is one dictionary lookup per rule: matches are cached by (rule, name); ``renamed`` counts renamed spans.
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
            None if not r.services else frozenset(i for i, s in enumerate(services) if r.applies_to(s))
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
                hit = cache[new] = rule.matches(new)
            if not hit:
                continue
            if values is None:
                values = {}
                for kv in attributes:
                    if kv.key not in values:
                        v = tag_value(kv.value)
                        if v is not None:
                            values[kv.key] = v
            renamed = rule.new_name(values)
            if renamed is not None:
                new = renamed
        if new != name:
            self.renamed += 1
        return new
