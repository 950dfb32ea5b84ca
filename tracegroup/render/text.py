"""Text renderers: every report tracegroup prints, one screen of plain text per result.

Contract:
- Every function takes what a library call returned — the plain dicts of
  :meth:`tracegroup.analysis.Analysis.summary`, :func:`tracegroup.info.info`, ``WhatIf.rows``, the send
  report, a capture's counts (``CaptureStats.as_dict()``), the emit summary, the redact result, the fix
  plan, a :class:`~tracegroup.check.FixtureResult`, or one trace's spans frame and header facts
  (:class:`tracegroup.explore.TraceView`) — and only lays it out: it computes nothing of its own, reads
  no file and prints nothing. Each ``*_text`` returns the text with a final newline, exactly what the
  command writes to stdout.
- :func:`plural` and :data:`MAX_INDENT` are shared with the other renderers (the figures of
  :mod:`tracegroup.render.plot`) and with :mod:`tracegroup.explore`.
- :func:`trace_lines` (``tracegroup show``, ``TraceView.text``): a header (:func:`trace_header`, the whole
  trace's facts), a legend, then one line per row of a :class:`~tracegroup.layout.TraceLayout` in the
  order given: name indented by depth (at most :data:`MAX_INDENT` levels, a deeper span shows
  ``[depth]``; ``×N`` on a collapsed row), service, kind, duration, exporter call, its transaction root
  under the reference and the compared grouping (``*`` marks a span that is its own root, ``(dropped)`` a
  span never sent), the verdict and the reason; then what was collapsed and left out
  (:func:`left_out_text`). :func:`trace_records` is the same layout as the ``show --format json`` dict.
- Nothing here imports pandas, matplotlib or the emitter at module import.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tracegroup.model import held_text

if TYPE_CHECKING:
    from tracegroup.check import FixtureResult
    from tracegroup.layout import TraceLayout

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
        if held := held_text(f):
            out.append(f"  {held}")
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
    if "capture" in d:
        lines += _capture_lines(d["capture"])
    lines.append("Services")
    for name, c in sorted(d["services"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {c:>10,}  {name or '(no service name)'}")
    found = {k: v for k, v in d["anomalies"].items() if v["count"]}
    lines.append("Anomalies" + ("" if found else ": none"))
    for k, v in found.items():
        ex = ", ".join(f"{e['trace_id']}/{e['span_id']}" for e in v["examples"][:3])
        lines.append(f"  {v['count']:>10,}  {k}: {v['meaning']} (e.g. {ex})")
    return "\n".join(lines) + "\n"


def _utc(ns: int | None) -> str:
    if ns is None:
        return "-"
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 10**9 // 10**6:03d}Z"
    )


def _capture_lines(c: dict[str, Any]) -> list[str]:
    lines = [
        f"Captured by tracegroup capture ({plural(c['files'], 'file')}): {plural(c['messages'], 'message')} "
        f"arrived from "
        f"{_utc(c['first_arrival_ns'])} to {_utc(c['last_arrival_ns'])} ({c['duration_s']:,.3f} s, longest "
        f"gap {c['max_gap_s']:,.3f} s)",
        f"  position: {c['position_meaning']}",
    ]
    transports = ", ".join(f"{n:,} {t}" for t, n in sorted(c["transports"].items()))
    lines.append(f"  transports: {transports or '-'}")
    for sender, n in sorted(c["senders"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>10,}  {sender}")
    return lines


def capture_ready(d: dict[str, Any]) -> str:
    """The line a capture prints once it listens (no newline)."""
    where = [f"http://{d['http']}/v1/traces"] if d["http"] else []
    where += [f"grpc {d['grpc']}"] if d["grpc"] else []
    return f"tracegroup capture: listening on {', '.join(where)}; writing to {d['out']} (Ctrl-C to stop)"


def capture_status(d: dict[str, Any]) -> str:
    """The one-line status of a running capture (no newline)."""
    refused = sum(d["refused"].values())
    return (
        f"capturing to {d['out']}: {d['spans']:,} spans in {plural(d['messages'], 'message')}, "
        f"{plural(len(d['files']), 'file')}, {d['bytes'] / 1e6:,.1f} MB, {d['spans_per_s']:,.0f} spans/s, "
        f"{refused:,} refused, {d['elapsed_s']:,.0f} s"
    )


def capture_text(d: dict[str, Any]) -> str:
    """The summary of a finished capture."""
    files = d["files"]
    lines = [
        f"Captured {plural(d['spans'], 'span')} in {plural(d['messages'], 'message')} to {d['out']} "
        f"({plural(len(files), 'file')}, "
        f"{d['bytes'] / 1e6:,.1f} MB) in {d['elapsed_s']:,.1f} s ({d['spans_per_s']:,.0f} spans/s); "
        f"stopped by {d['stopped_by']}"
    ]
    listening = ", ".join(f"{k} {d[k]}" for k in ("http", "grpc") if d[k])
    lines.append(f"  listened on: {listening}")
    if files:
        lines.append(f"  files: {files[0]}" + (f" … {files[-1]}" if len(files) > 1 else ""))
    if d["transports"]:
        lines.append("  transports: " + ", ".join(f"{n:,} {t}" for t, n in sorted(d["transports"].items())))
    for sender, n in sorted(d["senders"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>10,}  {sender}")
    if d["empty"]:
        lines.append(f"  empty requests (answered, not written): {d['empty']:,}")
    if d["warned"]:
        lines.append(f"  accepted with a warning (strings not UTF-8, kept as sent): {d['warned']:,}")
    refused = d["refused"]
    lines.append(
        f"  refused requests: {sum(refused.values()):,}"
        + (" (" + ", ".join(f"{r}: {n:,}" for r, n in sorted(refused.items())) + ")" if refused else "")
    )
    if d["error"]:
        lines.append(f"  stopped by a failed write: {d['error']}; the files hold every message answered 200")
    if files:
        lines.append(f"Read it with: tracegroup info {d['out']}")
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


def whatif_text(rows: list[dict[str, Any]], recommendation: str, fit: Mapping[str, Any] | None = None) -> str:
    """The what-if grid as a table (the capture and its fitted simulation first), how each fitted
    setting was found, then the recommendation."""
    lines = [
        f"{'setting':<16}{'value':>10}  {'strategy':<20}{'mis-grouped':>12}{'dropped':>10}{'incomplete':>11}"
        f"{'events':>9}{'calls':>8}"
    ]
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:g}"
        lines.append(
            f"{r['setting']:<16}{value:>10}  {r['strategy']:<20}{r['misgrouped_pct']:>11.2f}%"
            f"{r['dropped_pct']:>9.2f}%{r['incomplete_pct']:>10.2f}%{r['sentry_events']:>9,}"
            f"{r.get('exporter_calls', 0):>8,}"
        )
    if fit:
        lines.append(f"Fitted to the capture ({fit['batches']}, routes {fit['routes']}):")
        for st in fit["settings"]:
            value = (
                "-"
                if st["value"] is None
                else (f"{st['value']:g}" if isinstance(st["value"], float) else st["value"])
            )
            lines.append(f"  {st['name']:<14}{value!s:>8}  {st['status']:<13}{st['evidence']}")
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
        held = "<service>.envelopes" if out.get("layout") == "packed" else "<service>/<event_id>.envelope"
        lines.append(f"wrote {out['out']}/ ({held}, manifest.jsonl, summary.json)")
    if out.get("jsonl"):
        lines.append(f"wrote {out['jsonl']} (one event per line)")
    if not out.get("out") and not out.get("jsonl"):
        lines.append("dry run: give --out DIR and/or --jsonl FILE to write events")
    return "\n".join(lines) + "\n"


CHECK_LABELS = {"ok": "ok", "differ": "FAIL", "updated": "updated", "created": "created"}


PLAN_TITLES = {
    "legacy": "legacy sentry exporter (collector-contrib ≤ v0.144: builds transactions)",
    "sentry": "sentry exporter (collector-contrib ≥ v0.145: OTLP forwarding, per-project routing)",
    "otlphttp": "otlphttp exporters to Sentry's OTLP endpoint, one per project",
}


def plan_text(p: Mapping[str, Any]) -> str:
    """``tracegroup plan`` (a ``FixPlan.as_dict()``): the causes, then each remedy with its simulated
    residual, what it leaves and its configuration; SDK settings; services to fix the flags of."""
    cap = p["captured"]
    lines = [f"As captured: mis-grouped {cap['misgrouped_pct']:g}%, dropped {cap['dropped_pct']:g}% of spans"]
    lines.append("Causes")
    for c in p["causes"]:
        where = ", ".join(c["services"])
        count = f"{c['spans']:>9,} {c['share_pct']:>7g}%" if c["spans"] else f"{'':>18}"
        lines.append(f"  {count}  {c['name']:<21} {where}")
        lines.append(f"  {'':>18}  {c['detail']} (fixed by: {c['fixed_by']})")
    for k, r in enumerate(p["remedies"], 1):
        res = r["residual"]
        lines += ["", f"Remedy {k}: {PLAN_TITLES[r['target']]}"]
        lines.append(
            f"  verified by simulation: mis-grouped {res['misgrouped_pct']:g}%, "
            f"dropped {res['dropped_pct']:g}% of spans after the change"
        )
        st = r["settings"]
        if "wait_ms" in st:
            wait, longest = _duration(st["wait_ms"]), _duration(st["longest_trace_ms"])
            lb = f"; {st['replicas']} replicas behind a loadbalancing tier" if st["loadbalancing"] else ""
            lines.append(f"  groupbytrace wait {wait} (longest trace {longest}){lb}")
        if "flags_corrected_residual" in st:
            fixed = st["flags_corrected_residual"]
            lines.append(
                f"  with every service's parent-remote flags set: mis-grouped {fixed['misgrouped_pct']:g}%, "
                f"dropped {fixed['dropped_pct']:g}%"
            )
        lines += [f"  left: {u}" for u in r["unfixed"]]
        lines += [f"  --- collector-{r['target']}.yaml", *("  " + x for x in r["yaml"].splitlines())]
        for tier, text in r["extra_yaml"].items():
            lines += [f"  --- collector-{r['target']}-{tier}.yaml", *("  " + x for x in text.splitlines())]
    if p["sdk"]:
        lines += ["", "SDK settings the legacy remedy assumes (per service, by SDK language)"]
        for svc, s in p["sdk"].items():
            env = " ".join(f"{k}={v}" for k, v in s["env"].items())
            lines.append(f"  {svc} ({s['language']}): {env}")
    if p["remote_flags"]:
        lines += [
            "",
            f"Parent-remote flags missing on entry spans of: {', '.join(p['remote_flags'])} — update their "
            "SDKs/instrumentation; stop-gap: tracegroup emit --otlp",
        ]
    return "\n".join(lines) + "\n"


def redact_text(r: dict[str, Any]) -> str:
    """``tracegroup redact``: a line per file written in another format than it came in, then a summary."""
    lines = [
        f"{f['input']}: {f['format']} written as {f['written_as']}"
        for f in r["files"]
        if f["written_as"] != f["format"]
    ]
    files = plural(len(r["files"]), "file")
    lines.append(
        f"redacted {r['spans']:,} spans in {r['batches']:,} batches ({r['batches_changed']:,} changed) "
        f"into {files} under {r['output']}"
    )
    return "\n".join(lines) + "\n"


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
    """Lines summing one trace up (``TraceView.facts()``, always the whole trace): spans, services,
    batches, exporter calls, transactions under both groupings, verdicts."""
    verdicts = ", ".join(f"{v} {n:,}" for v, n in facts["verdicts"].items())
    calls = facts.get("exporter_calls")
    notes = [
        plural(n, word) + " " + what
        for n, word, what in (
            (facts.get("parent_missing", 0), "span", "with a parent not in the dump"),
            (facts.get("no_timestamp", 0), "span", "without a timestamp (drawn at the parent's start)"),
        )
        if n
    ]
    return [
        f"trace {facts['trace_id']}: {plural(facts['spans'], 'span')}, "
        f"{plural(facts['services'], 'service')}, {plural(facts['batches'], 'batch', 'batches')}"
        + (f", {plural(calls, 'exporter call')}" if calls is not None else ""),
        f"  {facts['reference']}: {plural(facts['transactions'], 'transaction')}; {facts['compared']}: "
        f"{plural(facts['compared_transactions'], 'transaction')} "
        f"(batching {facts['batching']}, routing {facts['routing']})",
        f"  verdicts: {verdicts}",
        *(f"  {note}" for note in notes),
    ]


def _tx_cell(tx: str, opens: bool, count: int) -> str:
    if not tx:
        return "(dropped)"
    if opens and count > 1:
        return f"*each its own ({count:,})"
    return ("*" if opens else " ") + tx


def left_out_text(layout: TraceLayout) -> list[str]:
    """What a layout left out (``layout.left_out`` and its settings), as lines; none when nothing was."""
    left, st = layout.left_out, layout.settings
    out = []
    if st.get("collapsed_rows"):
        out.append(
            f"{plural(st['collapsed_rows'], 'row')} ×N: N alike siblings collapsed into one row "
            f"(at least {st['collapse']}; --collapse 0 lists every span)"
        )
    if left["spans"]:
        verdicts = ", ".join(f"{v} {n:,}" for v, n in left["verdicts"].items())
        why = []
        if left["filtered"]:
            why.append(f"{left['filtered']:,} filtered out")
        if left["max_spans"]:
            why.append(
                f"{left['max_spans']:,} beyond --max-spans {st['max_spans']:,} (spans not ok and their "
                "paths to the root came first; 0 = all)"
            )
        out.append(
            f"... {plural(left['spans'], 'span')} of {layout.facts['spans']:,} not shown: "
            f"{'; '.join(why)}. Not shown: {verdicts}."
        )
    return out


def trace_lines(layout: TraceLayout) -> list[str]:
    """One trace as an indented tree (see the module contract), one line per row of a
    :class:`~tracegroup.layout.TraceLayout` (``TraceView.layout()``), header from its whole-trace facts,
    then what it collapsed and left out."""
    facts, part = layout.facts, layout.rows
    ref, cmp = facts["reference"], facts["compared"]
    trees = [
        "  " * min(d, MAX_INDENT)
        + (f"[{d}] " if d > MAX_INDENT else "")
        + name
        + (f" ×{c:,}" if c > 1 else "")
        for d, name, c in zip(
            part["depth"].tolist(), part["name"].tolist(), part["count"].tolist(), strict=True
        )
    ]
    width = min(max([len(t) for t in trees] + [4]), 64)
    svc_w = min(max([len(s) for s in part["service"].tolist()] + [7]), 24)
    ref_w = max(len(ref), 18)
    cmp_w = max(len(cmp), 20)
    head = f"{'span':<{width}}  {'service':<{svc_w}}  {'kind':<11} {'duration':>9} {'call':>5}  "
    head += f"{ref + ' tx':<{ref_w + 3}} {cmp + ' tx':<{cmp_w + 3}} {'verdict':<9} reason"
    legend = "  * = the span opens its transaction; call = the exporter call it came in (- = never delivered)"
    out = [*trace_header(facts), legend, "", head]
    for t, svc, kind, dur, call, tx, ctx, op, opc, cnt, verdict, reason, missing, untimed, ctxrow in zip(
        trees,
        part["service"].tolist(),
        part["kind"].tolist(),
        part["duration_ms"].tolist(),
        part["batch"].tolist(),
        part["transaction"].tolist(),
        part["compared_transaction"].tolist(),
        part["opens"].tolist(),
        part["opens_compared"].tolist(),
        part["count"].tolist(),
        part["verdict"].tolist(),
        part["reason"].tolist(),
        part["parent_missing"].tolist(),
        part["no_time"].tolist(),
        part["context"].tolist(),
        strict=True,
    ):
        name = t if len(t) <= width else t[: width - 2] + ".."
        notes = []
        if missing:
            notes.append("parent not in dump")
        if untimed:
            notes.append("no timestamp")
        if ctxrow:
            notes.append("context")
        note = f"  ({', '.join(notes)})" if notes else ""
        dtext = "-" if untimed == cnt else _duration(dur)
        ctext = str(call) if call >= 0 else "-"
        out.append(
            f"{name:<{width}}  {svc[:svc_w]:<{svc_w}}  {kind:<11} {dtext:>9} {ctext:>5}  "
            f"{_tx_cell(tx, op, cnt):<{ref_w + 3}} {_tx_cell(ctx, opc, cnt):<{cmp_w + 3}} {verdict:<9} "
            f"{reason}{note}"
        )
    out.extend(left_out_text(layout))
    return out


def trace_text(layout: TraceLayout) -> str:
    """:func:`trace_lines` as one text with a final newline (what ``tracegroup show`` prints)."""
    return "\n".join(trace_lines(layout)) + "\n"


def trace_records(layout: TraceLayout) -> dict[str, Any]:
    """What ``tracegroup show --format json`` prints: ``trace`` (the whole trace's facts), ``left_out``
    and ``spans``, one object per row (``count`` > 1 on a collapsed row): ``span_id``, ``parent``
    (position of the parent row in ``spans``, -1 at a root), ``depth``, ``name``, ``service``, ``kind``,
    ``count``, ``start_ns``, ``duration_ms``, ``transaction``, ``compared_transaction``, ``verdict``,
    ``reason``, ``batch`` (exporter call, -1 never delivered), ``parent_missing``, ``no_timestamp``,
    ``context``."""
    r = layout.rows
    keys = (
        "span_id", "parent", "depth", "name", "service", "kind", "count", "start_ns", "duration_ms",
        "transaction", "compared_transaction", "verdict", "reason", "batch", "parent_missing", "no_time",
        "context",
    )  # fmt: skip
    cols = {k: r[k].tolist() for k in keys}
    spans = [{("no_timestamp" if k == "no_time" else k): cols[k][i] for k in keys} for i in range(len(r))]
    for s in spans:
        s["parent_missing"] = bool(s["parent_missing"])
        s["no_timestamp"] = bool(s["no_timestamp"])
    return {"trace": dict(layout.facts), "left_out": dict(layout.left_out), "spans": spans}


def _duration(ms: float) -> str:
    if ms >= 999.95:
        return f"{ms / 1000:.2f}s"
    if ms >= 0.9995:
        return f"{ms:.1f}ms"
    return f"{ms * 1000:.0f}us"
