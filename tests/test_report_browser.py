"""``tracegroup report`` pages in a real browser: Debian's chromium, headless, through chromedriver and
Selenium (pointed at the system binaries, so Selenium Manager never downloads a browser or a driver).

The page's verdict counts equal ``analyze --format json``; expanding a collapsed run shows its spans;
"only not ok" hides exactly the ok spans; the search finds a trace; no request leaves the page; a
5,000-span trace view renders (measured with the page's own clock, printed, bound generously: CI must not
depend on timing); the report of a 100,000-span dump opens. Screenshots go to ``test-artifacts/``
(git-ignored).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import stream, wide_trace
from click.testing import CliRunner
from tools import missing, require_executable

from tracegroup.cli import main
from tracegroup.explore import Explorer

ROOT = Path(__file__).resolve().parent.parent
POLYGLOT = str(ROOT / "fixtures" / "polyglot.pb")
ARTIFACTS = ROOT / "test-artifacts"
INSTALL = "apt-get install chromium chromium-driver (README.md, Full test suite)"
CHROME_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = require_executable("chromium", INSTALL)
    chromedriver = require_executable("chromedriver", INSTALL)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed: pip install -e '.[test]' -c constraints/test.txt")
    profile = tempfile.mkdtemp(prefix="tracegroup-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def report(tmp: Path, *args: str) -> Path:
    out = tmp / "report.html"
    res = CliRunner().invoke(main, ["report", *args, "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return out


def open_page(driver: Any, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors
    assert driver.execute_script("return !!window.tgReport")


def shot(driver: Any, tmp: Path, name: str, trace_view: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    if trace_view:
        driver.execute_script("document.getElementById('trace-view').scrollIntoView()")
    driver.save_screenshot(str(tmp / name))
    shutil.copy(tmp / name, ARTIFACTS / name)


@pytest.fixture(scope="module")
def polyglot_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report(tmp_path_factory.mktemp("polyglot"), POLYGLOT, "--whatif")


def test_verdict_counts_are_analyze_json(browser: Any, polyglot_page: Path, tmp_path: Path) -> None:
    open_page(browser, polyglot_page)
    expected = json.loads(CliRunner().invoke(main, ["analyze", POLYGLOT, "--format", "json"]).stdout)
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#verdicts tr[data-verdict]'))"
        ".map(tr => [tr.dataset.verdict, tr.cells[1].textContent])"
    )
    assert {v: int(text.replace(",", "")) for v, text in cells} == expected["verdicts"]
    services = browser.execute_script(
        "return Array.from(document.querySelectorAll('#per-service tbody tr'))"
        ".map(tr => tr.cells[0].textContent)"
    )
    assert services == [s["name"] for s in expected["per_service"]]
    worst = browser.execute_script(
        "return Array.from(document.querySelectorAll('#worst-traces tbody tr code')).map(c => c.textContent)"
    )
    assert worst == [w["trace_id"] for w in expected["worst_traces"]]
    assert browser.find_element("id", "recommendation").text.startswith("Recommendation:")
    shot(browser, tmp_path, "report-summary.png", trace_view=False)


def test_expanding_a_collapsed_run_shows_its_spans(browser: Any, polyglot_page: Path, tmp_path: Path) -> None:
    open_page(browser, polyglot_page)
    rows = browser.execute_script("return tgReport.rows()")
    run_at = next(i for i, r in enumerate(rows) if r["run"] and r["count"] >= 5)
    run = rows[run_at]
    browser.execute_script(f"tgReport.scrollToRow({run_at})")
    row = browser.find_element("css selector", f'.row[data-run="{run["run"]}"]')
    assert row.get_attribute("data-count") == str(run["count"]) and f"×{run['count']}" in row.text
    row.find_element("css selector", ".tog").click()
    after = browser.execute_script("return tgReport.rows()")
    members = [r for r in after if r["in_run"] == run["run"]]
    assert len(members) == run["count"] == len({r["span_id"] for r in members})
    assert after[run_at + 1] == members[0] and all(r["depth"] == run["depth"] + 1 for r in members)
    end = max(i for i, r in enumerate(after) if r["in_run"] == run["run"])
    assert all(r["depth"] > run["depth"] for r in after[run_at + 1 : end + 1])  # the run's members, subtrees
    dom = browser.find_elements("css selector", f'.row[data-in-run="{run["run"]}"]')  # those in sight
    assert dom and [d.get_attribute("data-span") for d in dom] == [r["span_id"] for r in members[: len(dom)]]
    shot(browser, tmp_path, "report-trace-view.png")
    row = browser.find_element("css selector", f'.row[data-run="{run["run"]}"]')
    row.find_element("css selector", ".tog").click()
    assert browser.find_elements("css selector", f'.row[data-in-run="{run["run"]}"]') == []


def test_only_not_ok_hides_exactly_the_ok_spans(browser: Any, polyglot_page: Path) -> None:
    open_page(browser, polyglot_page)
    trace_id = browser.find_element("id", "trace-id").text
    spans = Explorer.load(POLYGLOT).trace(trace_id).spans
    browser.find_element("id", "expand-all").click()  # every span on its own row
    rows = browser.execute_script("return tgReport.rows()")
    assert sorted(r["span_id"] for r in rows) == sorted(spans["span_id"])
    browser.find_element("id", "only-bad").click()
    rows = browser.execute_script("return tgReport.rows()")
    shown = [r for r in rows if not r["context"]]
    not_ok = spans[spans["verdict"] != "ok"]
    assert sorted(r["span_id"] for r in shown) == sorted(not_ok["span_id"])
    assert all(r["verdict"] == "ok" for r in rows if r["context"])  # ok ancestors kept only as context
    dom = browser.find_elements("css selector", "#rows .row:not(.context)")
    assert dom and all(r.get_attribute("data-verdict") != "ok" for r in dom)
    browser.find_element("id", "context").click()  # without the ok ancestors: exactly the spans not ok
    rows = browser.execute_script("return tgReport.rows()")
    assert sorted(r["span_id"] for r in rows) == sorted(not_ok["span_id"])
    assert {r.get_attribute("data-verdict") for r in browser.find_elements("css selector", "#rows .row")} <= {
        "split",
        "merged",
        "orphaned",
        "dropped",
    }


def test_search_finds_a_trace(browser: Any, polyglot_page: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    open_page(browser, polyglot_page)
    traces = Explorer.load(POLYGLOT).traces()
    wanted = traces["trace_id"].iloc[len(traces) // 2]
    box = browser.find_element("id", "trace-search")
    box.send_keys(wanted[-12:])
    assert "1 of" in browser.find_element("id", "search-status").text
    box.send_keys(Keys.ENTER)
    assert browser.find_element("id", "trace-id").text == wanted
    rows = browser.execute_script("return tgReport.rows()")
    assert sum(r["count"] for r in rows) <= int(traces["spans"].iloc[len(traces) // 2])


def test_zoom_and_row_details(browser: Any, polyglot_page: Path) -> None:
    open_page(browser, polyglot_page)
    whole = browser.execute_script("var v = tgReport.view(); return [v.v0, v.v1]")
    browser.find_element("id", "zoom-in").click()
    v0, v1 = browser.execute_script("var v = tgReport.view(); return [v.v0, v.v1]")
    assert v1 - v0 == pytest.approx((whole[1] - whole[0]) / 2)
    browser.find_element("id", "zoom-reset").click()
    assert browser.execute_script("var v = tgReport.view(); return [v.v0, v.v1]") == whole
    row = browser.find_elements("css selector", "#rows .row")[1]
    span_id = row.get_attribute("data-span")
    row.find_element("css selector", ".label").click()  # the rows are drawn again
    assert span_id in browser.find_element("id", "detail").text
    data = browser.execute_script("return tgReport.data")
    g = data["spans"]["span_id"].index(span_id)
    attrs = data["details"][data["spans"]["detail"][g]]["attributes"]
    shown = browser.find_element("id", "detail-attributes").text
    assert attrs and all(key in shown for key in attrs)  # the span's own attributes, on click
    assert "service.name" in browser.find_element("id", "detail-resource").text
    assert browser.find_element("css selector", f'#rows .row.sel[data-span="{span_id}"]')
    assert browser.find_elements("css selector", "#rows .bar.same")  # its transactions, outlined


def test_no_request_leaves_the_page(browser: Any, polyglot_page: Path) -> None:
    open_page(browser, polyglot_page)
    for button in ("zoom-in", "zoom-out", "zoom-reset", "only-bad", "expand-all"):
        browser.find_element("id", button).click()
    browser.find_element("css selector", "#worst-traces tbody tr:nth-child(2)").click()
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    csp = browser.execute_script(
        "return document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]').content"
    )
    assert csp.startswith("default-src 'none';")


def test_a_5000_span_trace_renders(browser: Any, tmp_path: Path) -> None:
    dump = tmp_path / "wide.pb"
    dump.write_bytes(stream(*wide_trace(5000)))
    open_page(browser, report(tmp_path, str(dump)))
    first = browser.execute_script("return tgReport.renderMs()")
    assert browser.execute_script("return tgReport.view().n") == 5000
    browser.find_element("id", "expand-all").click()
    again = browser.execute_script("return tgReport.refreshMs()")  # the rows again, every span on its own
    rows = browser.execute_script("return tgReport.view().rows.length")
    dom_rows = len(browser.find_elements("css selector", "#rows .row"))
    print(f"5,000-span trace view: {first:.0f} ms collapsed, {again:.0f} ms with {rows} rows (page clock)")
    assert rows == 5000 and dom_rows < 200  # virtual rows: only those in sight are in the DOM
    assert first < 30_000 and again < 30_000  # generous: the measured figure is in docs/report.md
    shot(browser, tmp_path, "report-5000-spans.png")


def test_a_100k_span_dump_opens(browser: Any, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_dump", ROOT / "benchmarks" / "gen_dump.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules["gen_dump"] = gen
    spec.loader.exec_module(gen)
    dump = tmp_path / "100k.pb"
    gen.generate(str(dump), 100_000)
    page = report(tmp_path, str(dump))  # the default cap, 100,000 spans: the dump holds a few more
    size = page.stat().st_size
    open_page(browser, page)
    data = browser.execute_script("return tgReport.data.embedded")
    print(f"100k-span dump: {size:,} bytes of HTML with {data['spans']:,} spans embedded")
    assert 99_000 < data["spans"] <= 100_000 and data["left_out_spans"] > 0
    assert "left out" in browser.find_element("id", "left-out").text
    print(f"worst trace of it: {browser.execute_script('return tgReport.renderMs()'):.0f} ms (page clock)")
    left = browser.execute_script("return tgReport.data.traces.id[tgReport.data.traces.offset.indexOf(-1)]")
    assert browser.execute_script(f"return tgReport.open('{left}')") is False
    assert "not embedded" in browser.find_element("id", "not-embedded").text


def test_the_notebook_view_renders_in_its_frame(browser: Any, tmp_path: Path) -> None:
    ex = Explorer.load(POLYGLOT)
    trace_id = ex.traces()["trace_id"].iloc[1]
    page = tmp_path / "cell.html"
    page.write_text(f"<!DOCTYPE html><html><body>{ex.trace(trace_id)._repr_html_()}</body></html>")
    browser.get(page.as_uri())
    browser.switch_to.frame(browser.find_element("tag name", "iframe"))
    try:
        assert browser.find_element("id", "trace-id").text == trace_id
        browser.find_element("id", "expand-all").click()
        rows = browser.execute_script("return tgReport.rows()")
        assert [r["span_id"] for r in rows] == ex.trace(trace_id).spans["span_id"].tolist()  # same order
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    finally:
        browser.switch_to.default_content()
