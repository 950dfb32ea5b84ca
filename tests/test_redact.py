"""``tracegroup redact`` and the redaction policy (``tracegroup.redact``) for sharing dumps and ``spans``.

Contract tested: the scrubbed copy keeps each file's format (OTLP protobuf stream, bare protobuf, OTLP/JSON,
JSON Lines, compression), every id, batch and service, so every grouping of the copy equals the
original's (golden-equal on the fixtures, every strategy and delivery); secrets, e-mail and IP addresses
are gone; ``spans --redact`` scrubs the same way and changes no transaction.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_sentry_go_ports import pb_span, pb_table

import tracegroup as tg
from tracegroup import tree
from tracegroup.batching import deliver
from tracegroup.cli import main
from tracegroup.grouping import STRATEGIES, Context, group
from tracegroup.model import SpanTable
from tracegroup.redact import Policy, redact_table

FIXTURES = [
    "fixtures/polyglot.pb",
    "fixtures/recorded/sdk-python.jsonl",
    "fixtures/recorded/sdk-node-python.pb",
    "fixtures/collector/batch-default/collector-batch-default.pb.zst",
    "fixtures/external/trace.json",
    "fixtures/external/getTrace-response.json",
    "fixtures/external/yelp.json",
]


def groupings(table: SpanTable) -> dict[str, tuple[list[int], list[int]]]:
    forest = tree.build(table, timing=False)
    out = {}
    for batches in ("captured", "trace"):
        for routes in ("none", "service"):
            ctx = Context(table, forest, deliver(table, batches, routes))
            for name in STRATEGIES:
                g = group(ctx, name)
                out[f"{name}/{batches}/{routes}"] = (g.root.tolist(), np.asarray(g.reason).tolist())
    return out


@pytest.mark.parametrize("path", FIXTURES)
def test_redacted_dump_groups_exactly_like_the_original(path: str, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    result = CliRunner().invoke(main, ["redact", path, "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    before, after = tg.load([path]), tg.load([out])
    assert len(after) == len(before) and len(after.batches) == len(before.batches)
    assert after.services == before.services
    assert np.array_equal(after.span_id, before.span_id) and np.array_equal(after.parent_id, before.parent_id)
    assert np.array_equal(after.start_ns, before.start_ns) and np.array_equal(after.flags, before.flags)
    if before.sources[0].format.endswith(("otlp-proto-stream", "otlp-proto", "otlp-json", "otlp-jsonl")):
        assert after.sources[0].format == before.sources[0].format
    assert groupings(after) == groupings(before)
    analyze = ["analyze", "--format", "json", "-q"]
    runner = CliRunner()
    summaries = [json.loads(runner.invoke(main, [*analyze, p]).output) for p in (str(out), path)]
    for s in summaries:
        s.pop("input", None)  # file names and formats
    assert summaries[0] == summaries[1]


def secret_dump(tmp_path: Path) -> Path:
    sp = pb_span(
        "1000000000000001",
        trace="0af7651916cd43dd8448eb211c80319c",
        name="GET https://bob:hunter2@api.example.com/x?token=tok3n",
        kind="CLIENT",
        attrs={
            "http.url": "https://bob:hunter2@api.example.com/x?token=tok3n&page=2",
            "enduser.email": "ann@example.com",
            "client.address": "10.1.2.3",
            "user.id": "u-123",
            "http.request.header.authorization": ["Bearer s3cr3t"],
        },
    )
    table = pb_table([({"service.name": "svc"}, ("lib", "1"), [sp])])
    path = tmp_path / "dump.pb"
    raw = table.batches[0].raw
    path.write_bytes(len(raw).to_bytes(4, "big") + bytes(raw))
    return path


def test_redact_scrubs_secrets_pii_and_keys(tmp_path: Path) -> None:
    dump = secret_dump(tmp_path)
    out = tmp_path / "shared.pb"
    result = CliRunner().invoke(main, ["redact", str(dump), "-o", str(out), "--redact-key", "user.*"])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    for secret in (b"hunter2", b"tok3n", b"ann@example.com", b"10.1.2.3", b"u-123", b"s3cr3t"):
        assert secret not in data
    assert b"[Filtered]" in data and b"[email]" in data and b"[ip]" in data and b"page=2" in data
    kept = CliRunner().invoke(main, ["redact", str(dump), "-o", str(tmp_path / "k.pb"), "--keep-pii"])
    assert kept.exit_code == 0 and b"ann@example.com" in (tmp_path / "k.pb").read_bytes()
    refused = CliRunner().invoke(main, ["redact", str(dump), "-o", str(dump)])
    assert refused.exit_code == 2 and "would overwrite the input" in refused.output


def test_spans_redact_scrubs_and_keeps_transactions(tmp_path: Path) -> None:
    dump = secret_dump(tmp_path)
    runner = CliRunner()
    plain = runner.invoke(main, ["spans", str(dump), "--format", "jsonl", "-q"]).output
    red = runner.invoke(main, ["spans", str(dump), "--format", "jsonl", "-q", "--redact"]).output
    assert (
        "hunter2" in plain and "hunter2" not in red and "ann@example.com" not in red and "s3cr3t" not in red
    )
    cols = ["trace_id", "span_id", "transaction", "compared_transaction", "verdict"]
    a, b = (pd.read_json(io.StringIO(x), lines=True) for x in (plain, red))
    keep = [c for c in cols if c in a.columns]
    assert len(keep) >= 3 and a[keep].equals(b[keep])


def test_redact_table_keeps_the_service_attribute() -> None:
    sp = pb_span("1000000000000001", attrs={"peer": "10.0.0.1"})
    table = pb_table([({"service.name": "10.0.0.9", "host.ip": "10.0.0.9"}, ("lib", "1"), [sp])])
    red = redact_table(table, Policy(pii=True))
    assert red.services == ["10.0.0.9"]
    rs = next(iter(red.iter_spans()))[1]
    attrs = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert attrs == {"service.name": "10.0.0.9", "host.ip": "[ip]"}
    assert json.dumps(attrs)
