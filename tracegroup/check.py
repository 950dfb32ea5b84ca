"""Golden-file regression checks: ``tracegroup check FIXTURE… --expected DIR [--update]``.

Contract:

- A fixture is one dump argument (a file, or a directory loaded as one dump, as ``analyze`` does). Its
  golden file is ``DIR/<fixture name>.golden.jsonl``: plain text, one JSON object per line, keys sorted,
  lines in a fixed order, so a change to a grouping shows up as a small, reviewable line diff.
- :func:`golden_lines` computes the golden text of a fixture under :class:`CheckOptions`:

  1. a header line ``{"fixture", "golden", "format", "files", "batches", "spans", "traces", "services",
     "notes", "anomalies", "options"}``; ``options`` are the resolved grouping options (reference,
     compare, batches, routes, boundary, service_attribute; golden files written before the rename say
     ``batching`` and ``routing``, which :func:`read_golden` reads as ``batches`` and ``routes``);
  2. per grouping (reference first, then compared) a summary line ``{"grouping", "role", "transactions",
     "sent_spans", "dropped_spans", "one_span_transactions"}`` (the compared one also has ``verdicts``);
  3. one line per transaction ``{"grouping", "trace", "root", "service", "name", "kind", "reason",
     "spans", "members"}``: the root span's trace id, span id, service, name and kind, why it opened a
     transaction (the :class:`~tracegroup.grouping.Reason` name in lower case), its span count and
     ``members``, the first 16 hex chars of the sha256 of its sorted member span ids (8 bytes each);
  4. one line per group of dropped spans ``{"grouping", "dropped", "trace", "service", "reason", "spans",
     "members"}`` (grouped by trace, service and reason).

  Lines sort by (grouping, section, trace id, root span id, service, reason). Ids are lowercase hex.
- Options: a flag given on the command line wins; otherwise the option recorded in the existing golden
  header is used (so CI needs no per-fixture flags); otherwise the ``analyze`` default. ``--update`` writes
  the options it used into the header.
- Past a memory budget (``memory``, ``tracegroup check --memory SIZE``) a fixture is read through the
  on-disk spill of :mod:`tracegroup.spill` (partitions of whole traces, the exporter emulated per
  captured call in the streaming pass): the same lines; what the spill cannot do is an ``error``.
- :func:`check_fixture` compares or updates one fixture and returns a :class:`FixtureResult`; a missing
  golden file, an unreadable dump or a golden file that is not one is status ``error`` (exit 2), a
  difference ``differ`` (exit 1) with a unified diff of the golden lines. ``tracegroup check``
  (:mod:`tracegroup.cli.check`) runs every fixture, prints one summary line per fixture (and the diffs,
  truncated to ``--max-diff-lines``) and exits with the worst status: 0 equal/updated, 1 differ, 2 error.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tracegroup.grouping import Grouping, Reason
from tracegroup.model import held_text

GOLDEN_VERSION = 1
SUFFIX = ".golden.jsonl"
EXIT = {"ok": 0, "updated": 0, "created": 0, "differ": 1, "error": 2}


@dataclass(frozen=True)
class CheckOptions:
    """The grouping options a golden file is computed under (``None`` batches: the dump's default)."""

    reference: str = "service"
    compare: str = "sentryexporter"
    batches: str | None = None
    routes: str = "none"
    boundary: str = "service"
    service_attribute: str = "service.name"

    def merged(self, overrides: dict[str, Any]) -> CheckOptions:
        """These options with every non-None value of ``overrides`` applied (unknown keys are ignored)."""
        known = {f for f in asdict(self)}
        return replace(self, **{k: v for k, v in overrides.items() if k in known and v is not None})


@dataclass
class FixtureResult:
    """What :func:`check_fixture` found for one fixture."""

    fixture: str
    golden: str
    status: str  # ok | differ | updated | created | error
    message: str = ""
    diff: list[str] = field(default_factory=list)
    lines: int = 0
    warnings: list[str] = field(default_factory=list)  # the dump's load warnings

    @property
    def exit_code(self) -> int:
        return EXIT[self.status]

    def summary(self) -> dict[str, Any]:
        """This result as the plain dict ``check --format json`` prints (every field, the exit code)."""
        return {**asdict(self), "exit_code": self.exit_code}


def golden_path(fixture: str | Path, expected: str | Path) -> Path:
    """``DIR/<fixture name>.golden.jsonl`` (a directory fixture is named after the directory)."""
    return Path(expected) / (Path(fixture).resolve().name + SUFFIX)


def members_hash(span_ids: np.ndarray) -> str:
    """First 16 hex chars of the sha256 of the sorted span ids (8 big-endian bytes each)."""
    return hashlib.sha256(np.sort(span_ids).astype(">u8").tobytes()).hexdigest()[:16]


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def golden_lines(
    dump: str | Path,
    options: CheckOptions = CheckOptions(),
    name: str | None = None,
    warnings: list[str] | None = None,
    budget: int | None = None,
) -> list[str]:
    """The golden text of one fixture, one line per list item (see the module docstring); the dump's load
    warnings are appended to ``warnings`` when given. A dump needing more than ``budget`` bytes in memory
    (:func:`tracegroup.spill.memory_needed`) goes through the spill (:func:`_spilled_lines`): the same
    lines.

    Raises :class:`~tracegroup.load.LoadError` or ``ValueError`` (bad dump, unknown option value, what
    the spill cannot do).
    """
    from tracegroup.analysis import analyze
    from tracegroup.load import expand_paths, load
    from tracegroup.routes import Routes, load_routes
    from tracegroup.spill import memory_needed

    routes: str | Routes = options.routes
    if options.routes not in ("none", "service"):
        if not Path(options.routes).is_file():
            raise ValueError(
                f"{options.routes}: --routes is not 'none', 'service' or an existing routes file"
            )
        routes = load_routes(options.routes)
    if budget is not None and memory_needed(expand_paths([dump])) > budget:
        return _spilled_lines(dump, options, routes, budget, name, warnings)
    table = load([dump], service_attribute=options.service_attribute)
    if warnings is not None:
        _warnings(table.sources, warnings)
    an = analyze(
        table,
        compare=options.compare,
        reference=options.reference,
        batches=options.batches,
        routes=routes,
        boundary=options.boundary,
    )
    resolved = replace(options, batches=str(an.options["batches"]))
    header = _header(
        dump, name, table.sources, len(table.batches), len(table), table.n_traces, table.services
    )
    header["anomalies"] = {k: v for k, v in an.forest.counts().items() if v}
    header["options"] = asdict(resolved)
    keyed: list[tuple[tuple[Any, ...], str]] = []
    for gi, (role, g) in enumerate((("reference", an.reference), ("compared", an.compared))):
        summary: dict[str, Any] = {"grouping": g.strategy, "role": role, **_summary(g)}
        if role == "compared":
            summary["verdicts"] = an.diff.counts()
        keyed.append(((gi, 0, "", "", "", ""), _line(summary)))
        keyed.extend(((gi, *k), line) for k, line in _grouping_lines(table, g))
    keyed.sort(key=lambda kl: kl[0])
    return [_line(header)] + [line for _, line in keyed]


def _warnings(sources: list[Any], warnings: list[str]) -> None:
    for s in sources:
        warnings.extend(s.warnings)
        if held := held_text(s.as_dict()):
            warnings.append(f"{s.path}: {held}")


def _header(
    dump: str | Path,
    name: str | None,
    sources: list[Any],
    batches: int,
    spans: int,
    traces: int,
    services: list[str],
) -> dict[str, Any]:
    """The header line's facts of the dump (anomalies and options are added by the caller)."""
    notes: dict[str, int] = {}
    for s in sources:
        for k, v in s.notes.items():
            notes[k] = notes.get(k, 0) + int(v)
    return {
        "fixture": name or Path(dump).resolve().name,
        "golden": GOLDEN_VERSION,
        "format": sorted({s.format for s in sources}),
        "files": len(sources),
        "batches": batches,
        "spans": spans,
        "traces": traces,
        "services": sorted(services),
        "notes": notes,
        "anomalies": {},
        "options": {},
    }


def _spilled_lines(
    dump: str | Path,
    options: CheckOptions,
    routes: Any,
    budget: int,
    name: str | None,
    warnings: list[str] | None,
) -> list[str]:
    """:func:`golden_lines` through the spill (:func:`tracegroup.spill.spilled`, span names kept): each
    partition holds whole traces, so its transaction and dropped lines are the in-memory ones of its
    traces; the summary lines and the header add up. Holds the lines (one per transaction), never the
    dump."""
    from tracegroup.diff import VERDICTS
    from tracegroup.spill import partition_groupings, spilled

    with spilled(
        [str(dump)],
        budget=budget,
        service_attribute=options.service_attribute,
        compare=options.compare,
        reference=options.reference,
        batches=options.batches,
        routes=routes,
        boundary=options.boundary,
        names=True,
    ) as sp:
        if warnings is not None:
            _warnings(sp.sources, warnings)
        traces = 0
        anomalies: dict[str, int] = {}
        verdicts = np.zeros(len(VERDICTS), dtype=np.int64)
        sums: list[dict[str, int]] = [{}, {}]
        strategies = [options.reference, options.compare]
        keyed: list[tuple[tuple[Any, ...], str]] = []
        for part in partition_groupings(sp, options.compare, options.reference, routes, options.boundary, {}):
            traces += part.table.n_traces
            for k, v in part.forest.counts().items():
                anomalies[k] = anomalies.get(k, 0) + v
            verdicts += np.bincount(part.diff.verdict, minlength=len(VERDICTS))
            for gi, g in enumerate((part.ref, part.cmp)):
                strategies[gi] = g.strategy
                for k, v in _summary(g).items():
                    sums[gi][k] = sums[gi].get(k, 0) + v
                keyed.extend(((gi, *k), line) for k, line in _grouping_lines(part.table, g, part.names))
        header = _header(dump, name, sp.sources, sp.n_batches, sp.spans, traces, sp.services)
        header["anomalies"] = {k: v for k, v in anomalies.items() if v}
        header["options"] = asdict(replace(options, batches=sp.batches))
    empty = {"transactions": 0, "sent_spans": 0, "dropped_spans": 0, "one_span_transactions": 0}
    for gi, role in enumerate(("reference", "compared")):
        summary: dict[str, Any] = {"grouping": strategies[gi], "role": role, **(sums[gi] or empty)}
        if role == "compared":
            summary["verdicts"] = {v: int(verdicts[i]) for i, v in enumerate(VERDICTS)}
        keyed.append(((gi, 0, "", "", "", ""), _line(summary)))
    keyed.sort(key=lambda kl: kl[0])
    return [_line(header)] + [line for _, line in keyed]


def _summary(g: Grouping) -> dict[str, int]:
    n = len(g.root)
    roots = g.roots()
    one = int(((g.sizes() == 1) & (g.root == np.arange(n))).sum())
    sent = int(g.sent.sum())
    return {
        "transactions": len(roots),
        "sent_spans": sent,
        "dropped_spans": n - sent,
        "one_span_transactions": one,
    }


def _grouping_lines(
    table: Any, g: Grouping, span_names: list[str] | None = None
) -> list[tuple[tuple[Any, ...], str]]:
    """(sort key, line) of every transaction and dropped group of one grouping (``span_names``: of every
    row, when the table cannot decode them)."""
    from tracegroup.model import kind_name, span_hex

    out: list[tuple[tuple[Any, ...], str]] = []
    ids = table.span_id
    sent = g.root >= 0
    # transactions: members grouped by root row
    rows = np.flatnonzero(sent)
    order = rows[np.argsort(g.root[rows], kind="stable")]
    roots_sorted = g.root[order]
    starts = np.flatnonzero(np.r_[True, roots_sorted[1:] != roots_sorted[:-1]]) if len(order) else order
    bounds = np.r_[starts, len(order)]
    root_rows = roots_sorted[starts] if len(order) else roots_sorted
    if span_names is not None:
        names = [span_names[r] for r in root_rows.tolist()]
    else:
        names = table.names(root_rows) if len(root_rows) else []
    for k, r in enumerate(root_rows.tolist()):
        members = order[bounds[k] : bounds[k + 1]]
        trace = table.trace_hex[int(table.trace_code[r])]
        root = span_hex(ids[r])
        obj = {
            "grouping": g.strategy,
            "trace": trace,
            "root": root,
            "service": table.service_name(r),
            "name": names[k],
            "kind": kind_name(int(table.kind[r])),
            "reason": _reason(int(g.reason[r])),
            "spans": len(members),
            "members": members_hash(ids[members]),
        }
        out.append(((1, trace, root, "", ""), _line(obj)))
    # dropped spans: grouped by (trace, service, reason)
    dropped = np.flatnonzero(~sent)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for r in dropped.tolist():
        groups.setdefault((int(table.trace_code[r]), int(table.service[r]), int(g.reason[r])), []).append(r)
    for (tr, svc, why), members_ in groups.items():
        trace, service, reason = table.trace_hex[tr], table.services[svc], _reason(why)
        obj = {
            "grouping": g.strategy,
            "dropped": True,
            "trace": trace,
            "service": service,
            "reason": reason,
            "spans": len(members_),
            "members": members_hash(ids[np.array(members_, dtype=np.int64)]),
        }
        out.append(((2, trace, "", service, reason), _line(obj)))
    return out


def _reason(code: int) -> str:
    try:
        return Reason(code).name.lower()
    except ValueError:
        return f"reason_{code}"


# ----------------------------------------------------------------------------------------------- compare


#: Header option keys of golden files written before the options got their CLI names -> the names now.
OLD_OPTION_KEYS = {"batching": "batches", "routing": "routes"}


def read_golden(path: Path) -> tuple[list[str], dict[str, Any]]:
    """The lines of a golden file and the options in its header; ``ValueError`` if it is not one. A header
    with the old option keys (:data:`OLD_OPTION_KEYS`) is read, and returned, as if written with the new
    ones, so a golden file committed before the rename still checks ok (``--update`` rewrites it)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("golden") != GOLDEN_VERSION:
        raise ValueError(
            f"{path}: not a tracegroup golden file (version {GOLDEN_VERSION}): regenerate it with --update"
        )
    options = header.get("options")
    if isinstance(options, dict) and any(k in options for k in OLD_OPTION_KEYS):
        options = {OLD_OPTION_KEYS.get(k, k): v for k, v in options.items()}
        lines[0] = _line({**header, "options": options})
    return lines, options if isinstance(options, dict) else {}


def diff_lines(expected: Sequence[str], actual: Sequence[str], golden: str, fixture: str) -> list[str]:
    """Unified diff (one line of context) from the golden lines to the current ones."""
    return list(
        difflib.unified_diff(
            list(expected), list(actual), fromfile=golden, tofile=f"{fixture} (now)", lineterm="", n=1
        )
    )


def describe(expected: Sequence[str], actual: Sequence[str]) -> str:
    """One-line account of a difference: lines removed/added per grouping, header changes."""
    old_set, new_set = set(expected), set(actual)
    removed = [line for line in expected[1:] if line not in new_set]
    added = [line for line in actual[1:] if line not in old_set]
    parts: list[str] = []
    if expected[:1] != actual[:1]:
        parts.append("header changed")
    per: dict[str, list[int]] = {}
    for sign, lines in ((0, removed), (1, added)):
        for line in lines:
            try:
                g = str(json.loads(line).get("grouping", "?"))
            except (json.JSONDecodeError, AttributeError):
                g = "?"
            per.setdefault(g, [0, 0])[sign] += 1
    parts += [f"{g}: {r} line{'' if r == 1 else 's'} gone, {a} new" for g, (r, a) in per.items()]
    if not parts and list(expected) != list(actual):
        parts.append("same lines in another order")
    return "; ".join(parts)


def check_fixture(
    fixture: str | Path,
    expected: str | Path,
    overrides: dict[str, Any] | None = None,
    update: bool = False,
    accept_warnings: bool = False,
    memory: int | None = None,
) -> FixtureResult:
    """Compare (or with ``update`` rewrite) one fixture's golden file (see the module docstring). The
    dump's load warnings are in ``warnings`` of the result; ``update`` refuses (status ``error``) to write
    a golden file from a dump that loaded with warnings (damaged input) unless ``accept_warnings``.
    ``memory``: the budget past which the dump is read through the spill (:func:`golden_lines`)."""
    gpath = golden_path(fixture, expected)
    res = FixtureResult(str(fixture), str(gpath), "error")
    from tracegroup.load import LoadError

    try:
        old: list[str] | None = None
        recorded: dict[str, Any] = {}
        if gpath.exists():
            old, recorded = read_golden(gpath)
        elif not update:
            res.message = (
                f"no golden file {gpath}: create it with "
                f"`tracegroup check {fixture} --expected {expected} --update` and commit it"
            )
            return res
        options = CheckOptions().merged(recorded).merged(overrides or {})
        new = golden_lines(fixture, options, warnings=res.warnings, budget=memory)
    except (LoadError, ValueError) as err:
        res.message = str(err)
        return res
    except OSError as err:
        res.message = f"{getattr(err, 'filename', '') or fixture}: {err.strerror or err}"
        return res
    res.lines = len(new)
    if update and res.warnings and not accept_warnings:
        res.message = (
            f"not updating {gpath}: the dump loaded with {len(res.warnings)} warning(s), first: "
            f"{res.warnings[0]} (repair the dump, or accept them with --accept-warnings)"
        )
        return res
    if update:
        written = gpath.read_text(encoding="utf-8").splitlines() if old is not None else None
        if written == new:
            res.status, res.message = "ok", "unchanged"
            return res
        gpath.parent.mkdir(parents=True, exist_ok=True)
        gpath.write_text("\n".join(new) + "\n", encoding="utf-8")
        res.status = "updated" if written is not None else "created"
        res.message = describe(written, new) if written is not None else f"{len(new)} lines"
        return res
    assert old is not None
    if old == new:
        res.status = "ok"
        return res
    res.status = "differ"
    res.message = describe(old, new)
    res.diff = diff_lines(old, new, str(gpath), str(fixture))
    return res
