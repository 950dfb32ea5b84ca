"""``tracegroup report`` without a browser: the embedded data, the cap, redaction, the page's shape, the
notebook's inline view (tests/test_report_browser.py drives the page in Chromium)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from builders import S, stream, wide_trace
from click.testing import CliRunner

from tracegroup.cli import main
from tracegroup.explore import Explorer
from tracegroup.render.html import CSP, data_bytes, report_html

ROOT = Path(__file__).resolve().parent.parent
POLYGLOT = str(ROOT / "fixtures" / "polyglot.pb")


def page_data(page: str) -> dict:
    m = re.search(r'<script id="tg-data" type="application/json">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def polyglot() -> Explorer:
    return Explorer.load(POLYGLOT)


def test_data_is_the_analysis(polyglot: Explorer) -> None:
    an = polyglot.analyze()
    data = polyglot.report(whatif={"rows": [], "recommendation": "none"})
    assert data["summary"] == json.loads(json.dumps(an.summary()))
    assert data["whatif"] == {"rows": [], "recommendation": "none"}
    traces = polyglot.traces()
    assert data["traces"]["id"] == traces["trace_id"].tolist()  # every trace, worst first
    assert data["traces"]["spans"] == traces["spans"].tolist()
    assert data["embedded"]["spans"] == len(polyglot.table) and data["embedded"]["left_out_traces"] == 0
    spans = data["spans"]
    n = len(polyglot.table)
    assert {k: len(v) for k, v in spans.items() if k != "no_time"} == {k: n for k in spans if k != "no_time"}
    # one trace's spans, as positions within it, are the TraceView's depth-first order
    worst = data["traces"]["id"][0]
    view = polyglot.trace(worst)
    o, c = data["traces"]["offset"][0], data["traces"]["count"][0]
    assert spans["span_id"][o : o + c] == view.spans["span_id"].tolist()
    assert spans["parent"][o : o + c] == view.parent_pos.tolist()
    verdicts = [data["verdicts"][v] for v in spans["verdict"][o : o + c]]
    assert verdicts == view.spans["verdict"].astype(str).tolist()
    ref = np.asarray(spans["ref"][o : o + c])
    ids = np.asarray(spans["span_id"][o : o + c])
    assert (ref >= 0).all() and (ids[ref] == view.spans["transaction"]).all()
    calls = polyglot.analyze().delivery.call[view.rows]
    assert spans["call"][o : o + c] == calls.tolist()
    assert data["colors"][data["services"].index("reports")] == "#c5b0d5"  # the plots' palette


def test_bytes_per_span_stay_small(polyglot: Explorer) -> None:
    bare, full = polyglot.report(details=False), polyglot.report()
    per_span = data_bytes(bare) / bare["embedded"]["spans"]
    with_details = data_bytes(full) / full["embedded"]["spans"]
    print(f"polyglot: {per_span:.0f} bytes of data per span, {with_details:.0f} with details")
    assert per_span < 60 and with_details < 110
    assert bare["details"] is None and "detail" not in bare["spans"]


def test_details_are_each_spans_attributes_status_events_and_resource(polyglot: Explorer) -> None:
    """Every embedded span's details equal the notebook's decoding of the same span (`spans(details=True)`),
    each distinct set embedded once."""
    data = polyglot.report(keep_secrets=True)
    spans, details, resources = data["spans"], data["details"], data["resources"]
    frame = polyglot.spans(details=True).set_index("span_id")
    assert len(details) < len(spans["span_id"]) and len(resources) == len(polyglot.table.services)
    seen_events = 0
    for k, span_id in enumerate(spans["span_id"]):
        row, d = frame.loc[span_id], details[spans["detail"][k]]
        assert d["attributes"] == row["attributes"], span_id
        assert resources[spans["resource"][k]] == row["resource_attributes"]
        assert ["UNSET", "OK", "ERROR"][d["status"][0]] == row["status_code"] and d["status"][1] == (
            row["status_message"] or ""
        )
        assert [e["name"] for e in d["events"]] == [e["name"] for e in row["events"]]
        assert [e["attributes"] for e in d["events"]] == [e["attributes"] for e in row["events"]]
        start = int(row["start"].value)
        assert [e["time"] for e in d["events"]] == [(e["time_ns"] - start) // 1000 for e in row["events"]]
        seen_events += len(d["events"])
    assert seen_events > 0  # the fixture's exception events


def test_details_are_redacted_as_emit_redacts(tmp_path: Path) -> None:
    dump = tmp_path / "secret.pb"
    attrs = {
        "http.url": "https://alice:hunter2@db.example/orders?token=s3cr3tvalue&page=2",
        "http.request.header.authorization": "Bearer abcdef",
        "app.note": "plain",
    }
    dump.write_bytes(stream([S(1, None, "shop", "SERVER", name="GET /orders", attrs=attrs)]))
    data = Explorer.load(dump).report()
    (d,) = data["details"]
    assert d["attributes"] == {
        "http.url": "https://[Filtered]:[Filtered]@db.example/orders?token=[Filtered]&page=2",
        "http.request.header.authorization": "[Filtered]",
        "app.note": "plain",
    }
    assert Explorer.load(dump).report(keep_secrets=True)["details"][0]["attributes"] == attrs


def test_cap_embeds_the_worst_traces_and_counts_the_rest(polyglot: Explorer) -> None:
    data = polyglot.report(max_spans=500)
    e, t = data["embedded"], data["traces"]
    assert 0 < e["spans"] <= 500 and len(data["spans"]["span_id"]) == e["spans"]
    assert e["spans"] + e["left_out_spans"] == len(polyglot.table)
    assert e["traces"] + e["left_out_traces"] == polyglot.table.n_traces
    assert sum(c for c in t["count"]) == e["spans"]
    assert sum(e["left_out_verdicts"].values()) == e["left_out_spans"]
    assert t["offset"][0] == -1  # the 1,403-span worst trace does not fit: smaller bad ones do
    assert t["offset"][1] == 0 and t["spans"][1] - t["ok"][1] > 0


SECRET_NAME = "GET https://alice:hunter2@db.example/orders?token=s3cr3tvalue&page=2"


def test_secrets_are_redacted_unless_kept(tmp_path: Path) -> None:
    dump = tmp_path / "secret.pb"
    dump.write_bytes(
        stream([S(1, None, "shop", "SERVER", name=SECRET_NAME), S(2, 1, "shop", name="child?api_key=k3yk3y")])
    )
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", str(dump), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    for secret in ("hunter2", "s3cr3tvalue", "k3yk3y"):
        assert secret not in page
    names = page_data(page)["names"]
    assert "GET https://[Filtered]:[Filtered]@db.example/orders?token=[Filtered]&page=2" in names
    res = CliRunner().invoke(main, ["report", str(dump), "-o", str(out), "-q", "--keep-secrets"])
    assert res.exit_code == 0
    assert SECRET_NAME in page_data(out.read_text(encoding="utf-8"))["names"]


def test_page_loads_nothing_and_cannot_be_closed_by_a_name(tmp_path: Path) -> None:
    dump = tmp_path / "x.pb"
    dump.write_bytes(stream([S(1, None, "a", "SERVER", name="</script><script>alert(1)</script>")]))
    page = report_html(Explorer.load(dump).report())
    assert f'content="{CSP}"' in page and "default-src 'none'" in CSP
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", page, re.I)
    assert page.count("</script>") == 2  # the data's and the code's: the name cannot end either
    assert page_data(page)["names"] == ["</script><script>alert(1)</script>"]


def test_cli_writes_the_file_and_says_its_size(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["report", POLYGLOT, "-o", str(out), "--max-spans", "500", "--top", "3"])
    assert res.exit_code == 0, res.output
    said = r"wrote .* \([\d,]+ bytes; \d+ traces, [\d,]+ spans embedded, \d+ bytes of data per span; left"
    assert re.search(said, res.stderr)
    assert "left out" in res.stderr
    data = page_data(out.read_text(encoding="utf-8"))
    assert len(data["summary"]["worst_traces"]) == 3 and data["whatif"] is None


def test_cli_whatif_is_the_whatif_command(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    args = [POLYGLOT, "--vary", "batch-size=64,8192"]
    res = CliRunner().invoke(main, ["report", *args, "-o", str(out), "-q", "--whatif"])
    assert res.exit_code == 0, res.output
    expected = json.loads(CliRunner().invoke(main, ["whatif", *args, "--format", "json"]).stdout)
    assert page_data(out.read_text(encoding="utf-8"))["whatif"] == expected


@pytest.mark.parametrize(
    "args",
    [["missing.pb"], [POLYGLOT, "--vary", "batch-size=64"], [POLYGLOT, "--whatif", "--vary", "nope=1"]],
    ids=["missing-dump", "vary-without-whatif", "bad-vary"],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str]) -> None:
    res = CliRunner().invoke(main, ["report", *args, "-o", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("tracegroup: error: ")


def test_page_is_deterministic_and_max_spans_0_embeds_everything(polyglot: Explorer) -> None:
    data = polyglot.report(max_spans=0)
    assert data["embedded"]["spans"] == len(polyglot.table) and data["embedded"]["left_out_traces"] == 0
    assert report_html(data) == report_html(Explorer(polyglot.table).report(max_spans=0))


def test_notebook_view_is_the_same_page_in_a_frame(tmp_path: Path) -> None:
    dump = tmp_path / "w.pb"
    dump.write_bytes(stream(*wide_trace(300)))
    view = Explorer.load(dump).trace(7)
    frame = view._repr_html_()
    assert frame.startswith("<iframe srcdoc=") and "&lt;script id=&quot;tg-data&quot;" in frame
    data = view.report()
    assert data["summary"] is None and data["traces"]["id"] == [view.trace_id]
    assert data["embedded"]["spans"] == 300
