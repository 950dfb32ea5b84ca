"""Renderers: an analysis summary or a load report as one screen of text, or as JSON.

Contract: renderers take the plain dicts that :meth:`tracegroup.analysis.Analysis.summary` and
:func:`info` build and only format them; they compute nothing of their own. :func:`plural` and
:data:`MAX_INDENT` are shared with the other renderers (the text tree of :mod:`tracegroup.explore`, the
figures of :mod:`tracegroup.plot`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tracegroup.model import SpanTable
from tracegroup.tree import ANOMALY_KINDS, Forest

#: Traces deeper than this are indented no further in text trees and waterfalls; the depth is printed instead.
MAX_INDENT = 24


def plural(n: int, word: str, words: str = "") -> str:
    """``1 span``, ``2 spans``, ``1,000 spans``."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def info(table: SpanTable, forest: Forest, examples: int = 5) -> dict[str, Any]:
    """What ``tracegroup info`` reports: files, formats, batches, spans, traces, services, anomalies."""
    per_service = np.bincount(table.service, minlength=len(table.services))
    anomalies = {}
    for kind, rows in forest.anomalies.items():
        anomalies[kind] = {
            "count": int(len(rows)),
            "meaning": ANOMALY_KINDS[kind],
            "examples": [
                {
                    "trace_id": table.trace_hex[int(table.trace_code[r])],
                    "span_id": f"{int(table.span_id[r]):016x}",
                    "service": table.service_name(r),
                }
                for r in rows[:examples].tolist()
            ],
        }
    notes: dict[str, int] = {}
    for s in table.sources:
        for k, v in s.notes.items():
            notes[k] = notes.get(k, 0) + v
    return {
        "files": [s.as_dict() for s in table.sources],
        "batches": len(table.batches),
        "spans": len(table),
        "traces": table.n_traces,
        "services": {name: int(c) for name, c in zip(table.services, per_service, strict=True)},
        "cross_service_links": int(
            (table.service[forest.parent[forest.parent >= 0]] != table.service[forest.parent >= 0]).sum()
        ),
        "notes": notes,
        "anomalies": anomalies,
    }


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n"


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating | np.bool_):
        return o.item()
    raise TypeError(type(o).__name__)


def _pct(x: int, n: int) -> str:
    return f"{100 * x / n:.1f}%" if n else "0%"


def _files_line(files: list[dict[str, Any]]) -> list[str]:
    out = []
    for f in files:
        out.append(f"  {f['path']}: {f['format']}, {f['batches']:,} batches, {f['spans']:,} spans")
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
        f"batching {o['batching']}, routing {o['routing']}, {cmp['exporter_calls']:,} exporter calls"
        if cmp.get("per_exporter_call")
        else f"whole traces, routing {o['routing']}"
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
