"""Issue 15: ``tracegroup plan`` — causes counted as analyze counts them, remedies verified by simulation,
configurations that parse and that the real collector accepts."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import tracegroup as tg
from tracegroup.analysis import analyze
from tracegroup.cli import main
from tracegroup.fit import fit
from tracegroup.fixplan import TARGETS, fix_plan
from tracegroup.routes import load_routes

ROOT = Path(__file__).resolve().parent.parent
POLYGLOT = ROOT / "fixtures" / "polyglot.pb"
RECORDINGS = sorted((ROOT / "fixtures" / "collector").iterdir())


@pytest.fixture(scope="module")
def table() -> tg.SpanTable:
    return tg.load(POLYGLOT)


@pytest.fixture(scope="module")
def plan(table: tg.SpanTable) -> Any:
    return fix_plan(table)


def test_causes_are_counted_as_analyze_counts_them(table: tg.SpanTable, plan: Any) -> None:
    s = analyze(table).summary()
    whole = analyze(table, batches="trace").summary()  # the rule's own faults: batching cannot hide them
    causes = {c.name: c for c in plan.causes}
    assert causes["batch-cuts"].spans == s["verdicts"]["orphaned"]
    assert causes["rootless-calls"].spans == s["verdicts"]["dropped"]
    assert causes["nested-server"].spans == whole["verdicts"]["split"] == 20
    assert causes["nested-server"].services == ["payments"]
    assert causes["non-server-entry"].spans == whole["verdicts"]["merged"] > s["verdicts"]["merged"]
    assert causes["non-server-entry"].services == ["search"]
    assert plan.captured["misgrouped_pct"] == pytest.approx(100 * s["misgrouped"]["ratio"], abs=1e-3)
    assert "replicas" not in causes and "missing-remote-flags" not in causes  # one project per service


def test_legacy_remedy_is_the_simulation_of_its_own_settings(table: tg.SpanTable, plan: Any) -> None:
    legacy = plan.remedy("legacy")
    config = yaml.safe_load(legacy.yaml())
    wait = config["processors"]["groupbytrace"]["wait_duration"]
    assert wait == "5s" and legacy.settings["wait_ms"] == 5000
    pipeline = dataclasses.replace(fit(table).pipeline, wait_ms=5000.0)
    an = analyze(table, batches="groupbytrace", routes="service", pipeline=pipeline)
    v, n = an.diff.verdict, len(table)
    misgrouped = 100 * np.isin(v, (1, 2, 3)).sum() / n
    assert legacy.residual["misgrouped_pct"] == pytest.approx(misgrouped, abs=1e-3)
    assert legacy.residual["dropped_pct"] == pytest.approx(100 * (an.compared.root < 0).sum() / n, abs=1e-3)
    # no worse than one exporter call per whole trace: the rest is the exporter's own rule
    best = legacy.settings["per_trace_residual"]
    assert sum(legacy.residual.values()) <= sum(best.values()) + 0.1
    assert sum(legacy.residual.values()) < sum(plan.captured.values()) / 5
    assert legacy.unfixed and "nested SERVER" in legacy.unfixed[0]
    # the routing connector sends each service to its own sentry exporter, keys from the environment
    table_rows = config["connectors"]["routing"]["table"]
    assert len(table_rows) == len(table.services) == len(config["exporters"])
    assert all(e["dsn"].startswith("${env:SENTRY_DSN_") for e in config["exporters"].values())
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["processors"] == ["groupbytrace", "batch"]


def test_otlp_remedies_need_the_remote_flags_when_services_share_a_project(
    table: tg.SpanTable, tmp_path: Path
) -> None:
    one = tmp_path / "one-project.toml"
    one.write_text('[default]\nname = "shop"\ndsn = "https://k@o1.ingest.sentry.io/42"\n')
    routes = load_routes(one)
    p = fix_plan(table, routes)
    otlp = p.remedy("otlphttp")
    s = analyze(table, compare="sentry-otlp", batches="trace", routes=routes).summary()
    assert otlp.residual["misgrouped_pct"] == pytest.approx(100 * s["misgrouped"]["ratio"], abs=1e-3)
    assert otlp.residual["misgrouped_pct"] > 1  # storefront and payments never set the flags
    assert otlp.settings["flags_corrected_residual"] == {"misgrouped_pct": 0.0, "dropped_pct": 0.0}
    assert p.remote_flags and set(p.remote_flags) <= set(table.services)
    assert any(c.name == "missing-remote-flags" for c in p.causes)
    config = yaml.safe_load(otlp.yaml())
    [exporter] = config["exporters"].values()
    assert exporter["traces_endpoint"] == "https://o1.ingest.sentry.io/api/42/integration/otlp/v1/traces"
    assert "k" not in exporter["headers"]["x-sentry-auth"].split("=")[-1].strip("}")  # no key in the file
    sentry = yaml.safe_load(p.remedy("sentry").yaml())["exporters"]["sentry"]
    assert set(sentry) == {"url", "org_slug", "auth_token", "routing"}
    assert set(sentry["routing"]["attribute_to_project_mapping"].values()) == {"shop"}


def test_replicas_add_a_loadbalancing_tier(table: tg.SpanTable, tmp_path: Path) -> None:
    p = fix_plan(table, replicas=3, targets=["legacy"])
    assert [r.target for r in p.remedies] == ["legacy"]
    legacy = p.remedy("legacy")
    assert legacy.settings["loadbalancing"] and "replicas" in {c.name for c in p.causes}
    tier = legacy.extra_configs["loadbalancing-tier"]
    assert tier["exporters"]["loadbalancing"]["routing_key"] == "traceID"
    written = p.write(tmp_path)
    assert sorted(w.name for w in written) == [
        "collector-legacy-loadbalancing-tier.yaml",
        "collector-legacy.yaml",
    ]


@pytest.mark.parametrize("rec", RECORDINGS, ids=lambda p: p.name)
def test_plans_for_the_real_collector_recordings(rec: Path) -> None:
    dump = next(p for p in sorted(rec.iterdir()) if p.name.startswith("collector-"))
    t = tg.load(dump)
    p = fix_plan(t)
    legacy = p.remedy("legacy")
    assert sum(legacy.residual.values()) <= sum(legacy.settings["per_trace_residual"].values()) + 0.1
    for r in p.remedies:
        assert yaml.safe_load(r.yaml()) == r.config


def test_cli_plan_text_json_and_out(tmp_path: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["plan", str(POLYGLOT), "-q"])
    assert text.exit_code == 0, text.output
    assert "Remedy 1: legacy sentry exporter" in text.output and "wait_duration: 5s" in text.output
    data = runner.invoke(main, ["plan", str(POLYGLOT), "-q", "--format", "json", "--target", "otlphttp"])
    assert data.exit_code == 0
    d = json.loads(data.output)
    assert [r["target"] for r in d["remedies"]] == ["otlphttp"] and d["causes"]
    out = runner.invoke(main, ["plan", str(POLYGLOT), "-q", "--out", str(tmp_path)])
    assert out.exit_code == 0 and sorted(p.name for p in tmp_path.iterdir()) == [
        f"collector-{t}.yaml" for t in sorted(TARGETS)
    ]


def test_the_real_collector_accepts_the_configurations(plan: Any, tmp_path: Path) -> None:
    """``otelcol validate --config`` on the legacy and otlphttp remedies (the collector built for the
    real-collector tests: legacy sentry exporter, groupbytrace, batch, routing, otlphttp)."""
    from test_collector import _binary

    binary = _binary()
    env = dict(os.environ)
    for project in plan.remedy("legacy").config["exporters"]:
        name = project.split("/")[1].upper()
        env[f"SENTRY_DSN_{name}"] = "https://public@o1.ingest.sentry.io/1"
        env[f"SENTRY_OTLP_TRACES_URL_{name}"] = "https://o1.ingest.sentry.io/api/1/integration/otlp/v1/traces"
        env[f"SENTRY_KEY_{name}"] = "public"
    for target in ("legacy", "otlphttp"):
        path = tmp_path / f"{target}.yaml"
        path.write_text(plan.remedy(target).yaml())
        r = subprocess.run(
            [str(binary), "validate", "--config", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert r.returncode == 0, (target, r.stderr[-2000:])
    broken = tmp_path / "broken.yaml"
    broken.write_text(plan.remedy("legacy").yaml().replace("wait_duration: 5s", "wait_duration: 5 s"))
    r = subprocess.run(
        [str(binary), "validate", "--config", str(broken)], capture_output=True, env=env, timeout=60
    )
    assert r.returncode != 0  # the check can fail
