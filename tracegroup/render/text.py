"""Text renderers: every report tracegroup prints, one screen of plain text per result.

Contract:
- Every function takes what a library call returned — the plain dicts of
  :meth:`tracegroup.analysis.Analysis.summary`, :func:`tracegroup.info.info`, ``WhatIf.rows``, the send
  report, the emit summary, a :class:`~tracegroup.check.FixtureResult`, or one trace's spans frame and
  header facts (:class:`tracegroup.explore.TraceView`) — and only lays it out: it computes nothing of its
  own, reads no file and prints nothing. Each ``*_text`` returns the text with a final newline, exactly
  what the command writes to stdout.
- :func:`plural` and :data:`MAX_INDENT` are shared with the other renderers (the figures of
  :mod:`tracegroup.render.plot`) and with :mod:`tracegroup.explore`.
- :func:`trace_lines` (``tracegroup show``, ``TraceView.text``): a header (:func:`trace_header`), a legend,
  then one line per span in the order given: name indented by depth (at most :data:`MAX_INDENT` levels, a
  deeper span shows ``[depth]``), service, kind, duration, its transaction root under the reference and
  the compared grouping (``*`` marks a span that is its own root, ``(dropped)`` a span never sent) and the
  verdict. With ``max_spans`` (None or 0: all) it lists the first spans and says what it left out.
- Nothing here imports pandas, matplotlib or the emitter at module import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tracegroup.diff import VERDICTS

if TYPE_CHECKING:
    import pandas as pd

    from tracegroup.check import FixtureResult

#: Traces deeper than this are indented no further in text trees and waterfalls; the depth is printed instead.
MAX_INDENT = 24


def plural(n: int, word: str, words: str = "") -> str:
    """``1 span``, ``2 spans``, ``1,000 spans``."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def _pct(x: int, n: int) -> str:
    return f"{100 * x / n:.1f}%" if n else "0%"


def _files_line(files: list[dict[str, Any]]) -> list[str]:
    out = []
    for f in files:
        out.append(f"  {f['path']}: {f['format']}, {f['batches']:,} batches, {f['spans']:,} spans")
        held, spans_held = f.get("messages_held", 0), f.get("spans_held", 0)
        if held > f["batches"] or spans_held > f["spans"] or f.get("bytes_skipped"):
            out.append(
                f"  loaded {f['batches']:,} of {held:,} messages, {f['spans']:,} of at least "
                f"{spans_held:,} spans; {f.get('bytes_skipped', 0):,} bytes skipped"
            )
        out.extend(f"  warning: {w}" for w in f["warnings"])
    return out


def info_text(d: dict[str, Any]) -> str:
    lines = ["Input"] + _files_line(d["files"])
    lines.append(
        f"{d['spans']:,} spans in {d['traces']:,} traces, {len(d['services'])} services, "
        f"{d['batches']:,} batches, {d['cross_service_links']:,} cross-service parent links"
    )
    for k, v in d["notes"].items():
        lines.append(f"  {k.replace('_', ' ')}: {v:,}")
    lines.append("Services")
    for name, c in sorted(d["services"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {c:>10,}  {name or '(no service name)'}")
    found = {k: v for k, v in d["anomalies"].items() if v["count"]}
    lines.append("Anomalies" + ("" if found else ": none"))
    for k, v in found.items():
        ex = ", ".join(f"{e['trace_id']}/{e['span_id']}" for e in v["examples"][:3])
        lines.append(f"  {v['count']:>10,}  {k}: {v['meaning']} (e.g. {ex})")
    return "\n".join(lines) + "\n"


def analysis_text(s: dict[str, Any], top: int = 10) -> str:
    inp, ref, cmp, v = s["input"], s["reference"], s["compared"], s["verdicts"]
    n = inp["spans"]
    o = s["options"]
    lines = ["Input"] + _files_line(inp["files"])
    anomalies = ", ".join(f"{c:,} {k.replace('_', ' ')}" for k, c in s["anomalies"].items() if c) or "none"
    lines.append(
        f"{n:,} spans, {inp['traces']:,} traces, {inp['services']} services, {inp['batches']:,} batches; "
        f"anomalies: {anomalies}"
    )
    where = (
        f"batching {o['batches']}, routing {o['routes']}, {cmp['exporter_calls']:,} exporter calls"
        if cmp.get("per_exporter_call")
        else f"whole traces, routing {o['routes']}"
    )
    lines.append(f"Compared {cmp['strategy']} ({where}) with {ref['strategy']} (boundary {o['boundary']})")
    if "pipeline" in o:
        p, r = o["pipeline"], o["pipeline_result"]
        gbt = (
            f" -> groupbytrace wait {p['wait_ms']:g}ms ({r['groupbytrace_groups']:,} groups)"
            if p["wait_ms"]
            else ""
        )
        lines.append(
            f"Pipeline: SDK batch {p['sdk_batch']} / delay {p['sdk_delay_ms']:g}ms / queue {p['sdk_queue']} "
            f"-> {r['sdk_exports']:,} SDK exports ({r['sdk_dropped']:,} spans dropped by full queues){gbt} "
            f"-> collector batch {p['batch_size']} / max {p['batch_max_size'] or 'none'} / timeout "
            f"{p['batch_timeout_ms']:g}ms"
        )
    if s.get("repairs"):
        lines.append(f"Healed {len(s['repairs']):,} incomplete transactions (--heal), e.g.:")
        for rep in s["repairs"][:3]:
            lines.append(f"  trace {rep['trace_id']}: {rep['root']} joined {rep['joined']}")
    lines.append(f"  {'':<22}{ref['strategy']:>18}{cmp['strategy']:>22}")
    lines.append(f"  {'transactions':<22}{ref['transactions']:>18,}{cmp['transactions']:>22,}")
    lines.append(
        f"  {'Sentry events':<22}{ref['transactions']:>18,}{cmp['sentry_events']:>22,}"
        f"   ({cmp['one_span_transactions']:,} one-span)"
    )
    lines.append(f"  {'incomplete':<22}{ref['incomplete_transactions']:>18,}")
    if cmp.get("services_without_remote_bits"):
        lines.append(
            "Services that never set the parent-remote bits (Sentry's OTLP ingestion merges them with their "
            f"callers in the same project): {', '.join(cmp['services_without_remote_bits'])}"
        )
    lines.append("Verdicts: " + ", ".join(f"{k} {c:,} ({_pct(c, n)})" for k, c in v.items()))
    lines.append(
        f"Mis-grouped {s['misgrouped']['spans']:,} ({_pct(s['misgrouped']['spans'], n)}), "
        f"dropped {s['dropped']['spans']:,} ({_pct(s['dropped']['spans'], n)}); "
        f"blamed on {cmp['strategy']}: {s['blamed']['spans']:,} ({_pct(s['blamed']['spans'], n)}), "
        f"{s['in_incomplete_transactions']:,} more in incomplete transactions"
    )
    t = s["transactions"]
    lines.append(
        f"Transactions: {t['total']:,}, intact {t['intact']:,}, broken {t['broken']:,}"
        + (f" (worst cut into {t['cut_into_max']:,} pieces)" if t["cut_into_max"] > 1 else "")
    )
    if s["causes"]:
        lines.append("Causes")
        merged: dict[tuple[str, str], list[int]] = {}
        for c in s["causes"]:
            acc = merged.setdefault((c["verdict"], c["cause"]), [0, 0])
            acc[0] += c["spans"]
            acc[1] += c["in_incomplete"]
        for (verdict, cause), (spans, inc) in sorted(merged.items(), key=lambda kv: -kv[1][0])[: top + 5]:
            extra = f" ({inc:,} in incomplete transactions)" if inc else ""
            lines.append(f"  {spans:>10,} {verdict:<9} {cause}{extra}")
    lines.append("Per service")
    lines.append(
        f"  {'service':<24}{'spans':>10}{'tx':>8}{'cmp tx':>8}{'split':>8}{'merged':>8}{'orphan':>8}"
        f"{'dropped':>8}{'bad':>8}"
    )
    for r in s["per_service"]:
        bad = r["spans"] - r["ok"]
        lines.append(
            f"  {(r['name'] or '(no service)')[:23]:<24}{r['spans']:>10,}{r['transactions']:>8,}"
            f"{r['compared_transactions']:>8,}{r['split']:>8,}{r['merged']:>8,}{r['orphaned']:>8,}"
            f"{r['dropped']:>8,}{_pct(bad, r['spans']):>8}"
        )
    if s["worst_traces"]:
        lines.append("Worst traces")
        for w in s["worst_traces"][:top]:
            lines.append(
                f"  {w['trace_id']}  {w['not_ok']:,}/{w['spans']:,} spans not ok (split {w['split']:,}, "
                f"merged {w['merged']:,}, orphaned {w['orphaned']:,}, dropped {w['dropped']:,}); "
                f"{w['transactions']} -> {w['compared_transactions']} transactions; {w['head']}"
            )
    return "\n".join(lines) + "\n"


def whatif_text(rows: list[dict[str, Any]], recommendation: str) -> str:
    """The what-if grid as a table, then the recommendation."""
    lines = [
        f"{'setting':<16}{'value':>10}  {'strategy':<20}{'mis-grouped':>12}{'dropped':>10}{'incomplete':>11}"
        f"{'events':>9}"
    ]
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:g}"
        lines.append(
            f"{r['setting']:<16}{value:>10}  {r['strategy']:<20}{r['misgrouped_pct']:>11.2f}%"
            f"{r['dropped_pct']:>9.2f}%{r['incomplete_pct']:>10.2f}%{r['sentry_events']:>9,}"
        )
    lines.append(f"Recommendation: {recommendation}")
    return "\n".join(lines) + "\n"


def send_text(d: dict[str, Any]) -> str:
    """Per-service sent / rejected / failed counts, then every item not sent and where the list is."""
    lines = [f"{'service':<28}{'sent':>8}{'rejected':>10}{'failed':>8}"]
    for service, c in sorted(d["per_service"].items()):
        extra = f"  ({c['would-send']} would be sent)" if c.get("would-send") else ""
        lines.append(f"{service or '(none)':<28}{c['sent']:>8}{c['rejected']:>10}{c['failed']:>8}{extra}")
    for o in d["not_sent"][:20]:
        if o["status"] != "would-send":
            lines.append(f"  {o['status']}: {o['key']} ({o['code'] or '-'}: {o['detail']})")
    if d["not_sent_file"]:
        lines.append(f"Not sent: listed in {d['not_sent_file']}; rerun with --resume to send only those.")
    elif d["ok"]:
        lines.append("Everything was accepted.")
    return "\n".join(lines) + "\n"


def emit_text(s: dict[str, Any]) -> str:
    """The ``tracegroup emit`` summary (:meth:`tracegroup.sentry.emit.EmitResult.summary` plus its
    ``output`` paths) as a short report."""
    from tracegroup.sentry.emit import NOT_WRITTEN

    o, sp, tx, er = s["options"], s["spans"], s["transactions"], s["errors"]
    lines = [
        f"tracegroup emit: style {o['style']}, errors {o['errors']}"
        + (f", now {o['now']}" if o["now"] else "")
        + (
            f", newest span rebased to {o['rebased_to']} ({o['shift_ns'] / 1e9:+,.0f} s)"
            if o["rebased_to"]
            else ""
        ),
        f"spans: {sp['in']:,} in, {sp['written']:,} written in {tx['events']:,} transaction events "
        f"({tx['written']:,} transactions, {tx['split']:,} split into continuations), "
        f"{er['written']:,} error event(s) of {er['exception_events']:,} exception span event(s)",
    ]
    nw = sum(sp["not_written"].values())
    if nw or er["not_written"]:
        lines.append(f"not written: {nw:,} spans")
        for reason, n in sp["not_written"].items():
            lines.append(
                f"  {n:>9,} spans in {tx['not_written'].get(reason, 0):,} transactions: {reason} — "
                f"{NOT_WRITTEN.get(reason, '')}"
            )
        for reason, n in er["not_written"].items():
            lines.append(f"  {n:>9,} error events: {reason} — {NOT_WRITTEN.get(reason, '')}")
    if s["routes"]:
        lines.append("routes:")
        for r in s["routes"]:
            svcs = ", ".join(r["services"]) or "(no service of these dumps)"
            lines.append(f"  {r['name']}: {r['dsn']} sample_rate {r['sample_rate']:g} <- {svcs}")
    if s["unrouted_services"]:
        lines.append(f"unrouted services (not written): {', '.join(s['unrouted_services'])}")
    lines.append("per service:")
    for p in s["per_service"]:
        lines.append(
            f"  {p['service'] or '(no service)'}: {p['transactions']:,} transactions, {p['spans']:,} spans, "
            f"{p['errors']:,} error event(s)"
            + (f", {p['not_written_spans']:,} spans not written" if p["not_written_spans"] else "")
            + (f" -> {p['route']}" if p["route"] else "")
        )
    for note, n in s["notes"].items():
        lines.append(f"note: {note}" + (f" ({n:,})" if n > 1 else ""))
    out = s.get("output", {})
    if out.get("out"):
        lines.append(f"wrote {out['out']}/ (<service>/<event_id>.envelope, manifest.jsonl, summary.json)")
    if out.get("jsonl"):
        lines.append(f"wrote {out['jsonl']} (one event per line)")
    if not out.get("out") and not out.get("jsonl"):
        lines.append("dry run: give --out DIR and/or --jsonl FILE to write events")
    return "\n".join(lines) + "\n"


CHECK_LABELS = {"ok": "ok", "differ": "FAIL", "updated": "updated", "created": "created"}


def check_text(r: FixtureResult, max_diff_lines: int = 80) -> str:
    """One ``tracegroup check`` fixture that was checked (status other than ``error``): its summary line,
    then its diff, the first ``max_diff_lines`` lines (0: all) and how many more there are."""
    tail = f": {r.message}" if r.message else ""
    lines = [f"{CHECK_LABELS[r.status]:8} {r.fixture} ({r.lines} lines, {r.golden}){tail}"]
    if r.diff:
        shown = r.diff if max_diff_lines == 0 else r.diff[:max_diff_lines]
        lines.extend(shown)
        if len(shown) < len(r.diff):
            lines.append(f"... {len(r.diff) - len(shown)} more diff lines (--max-diff-lines 0 shows all)")
    return "\n".join(lines) + "\n"


def trace_header(facts: Mapping[str, Any]) -> list[str]:
    """Lines summing one trace up (``TraceView.facts()``): spans, services, batches, transactions under
    both groupings, verdicts."""
    verdicts = ", ".join(f"{v} {n:,}" for v, n in facts["verdicts"].items())
    return [
        f"trace {facts['trace_id']}: {plural(facts['spans'], 'span')}, "
        f"{plural(facts['services'], 'service')}, {plural(facts['batches'], 'batch', 'batches')}",
        f"  {facts['reference']}: {plural(facts['transactions'], 'transaction')}; {facts['compared']}: "
        f"{plural(facts['compared_transactions'], 'transaction')} "
        f"(batching {facts['batching']}, routing {facts['routing']})",
        f"  verdicts: {verdicts}",
    ]


def trace_lines(facts: Mapping[str, Any], spans: pd.DataFrame, max_spans: int | None = None) -> list[str]:
    """One trace as an indented tree (see the module contract): ``facts`` as :func:`trace_header` takes
    them, ``spans`` one row per span in tree order with the ``TraceView.spans`` columns (``depth``,
    ``name``, ``service``, ``kind``, ``duration_ms``, ``span_id``, ``transaction``,
    ``compared_transaction``, ``verdict``, ``parent_missing``)."""
    ref, cmp = facts["reference"], facts["compared"]
    f = spans
    n = len(f)
    shown = n if not max_spans or max_spans >= n else max_spans
    part = f.iloc[:shown]
    trees = [
        "  " * min(d, MAX_INDENT) + (f"[{d}] " if d > MAX_INDENT else "") + name
        for d, name in zip(part["depth"].tolist(), part["name"].tolist(), strict=True)
    ]
    width = min(max([len(t) for t in trees] + [4]), 64)
    svc_w = min(max([len(s) for s in map(str, part["service"])] + [7]), 24)
    ref_w = max(len(ref), 18)
    head = f"{'span':<{width}}  {'service':<{svc_w}}  {'kind':<11} {'duration':>9}  "
    head += f"{ref + ' tx':<{ref_w + 3}} {cmp + ' tx':<{max(len(cmp), 18) + 3}} verdict"
    out = [*trace_header(facts), "  * = the span opens its transaction", "", head]
    for t, svc, kind, dur, sid, tx, htx, verdict, missing in zip(
        trees,
        map(str, part["service"]),
        map(str, part["kind"]),
        part["duration_ms"].tolist(),
        part["span_id"],
        part["transaction"],
        part["compared_transaction"],
        map(str, part["verdict"]),
        part["parent_missing"].tolist(),
        strict=True,
    ):
        name = t if len(t) <= width else t[: width - 2] + ".."
        rtx = ("*" if tx == sid else " ") + tx
        ctx = "(dropped)" if not htx else ("*" if htx == sid else " ") + htx
        note = "  (parent not in dump)" if missing else ""
        out.append(
            f"{name:<{width}}  {svc[:svc_w]:<{svc_w}}  {kind:<11} {_duration(dur):>9}  "
            f"{rtx:<{ref_w + 3}} {ctx:<{max(len(cmp), 18) + 3}} {verdict}{note}"
        )
    if shown < n:
        rest = f["verdict"].iloc[shown:].value_counts()
        verdicts = ", ".join(f"{v} {int(rest[v]):,}" for v in VERDICTS if rest.get(v, 0))
        out.append(
            f"... {n - shown:,} more spans not shown: the first {shown:,} of {n:,} in tree order are "
            f"listed (raise max_spans / --max-spans, 0 = all). Not shown: {verdicts}."
        )
    return out


def trace_text(facts: Mapping[str, Any], spans: pd.DataFrame, max_spans: int | None = None) -> str:
    """:func:`trace_lines` as one text with a final newline (what ``tracegroup show`` prints)."""
    return "\n".join(trace_lines(facts, spans, max_spans)) + "\n"


def _duration(ms: float) -> str:
    if ms >= 999.95:
        return f"{ms / 1000:.2f}s"
    if ms >= 0.9995:
        return f"{ms:.1f}ms"
    return f"{ms * 1000:.0f}us"
