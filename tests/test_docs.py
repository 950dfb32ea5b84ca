"""The documentation matches the code (in the spirit of sqlite-utils' ``test_docs.py``).

Contract: every command is in README.md's commands table; every option of every command appears in
README.md or docs/; every ``--help`` shows an example; the README's tables of grouping and simulation
options, its list of ``analyze --format json`` keys and its list of ``spans`` columns equal what the code
has.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tracegroup.cli import main
from tracegroup.cli.common import pipeline_options

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))
HOTROD = str(ROOT / "fixtures" / "external" / "trace.json")
COMMANDS = main.list_commands(None)


def section(title: str) -> str:
    start = README.index(f"\n### {title}")
    end = README.find("\n#", start + 5)
    return README[start : end if end > 0 else None]


def table_options(text: str) -> set[str]:
    """The ``--option`` each row of a Markdown table starts with."""
    return set(re.findall(r"^\| `(--[a-z-]+)", text, re.M))


def top_level_names(text: str) -> list[str]:
    """Backticked names outside parentheses, comma lists split (``a, b`` -> a, b)."""
    depth, names = 0, []
    for token in re.finditer(r"[()]|`([^`]+)`", text):
        if token.group(0) == "(":
            depth += 1
        elif token.group(0) == ")":
            depth -= 1
        elif depth == 0:
            names += [n.strip() for n in token.group(1).split(",")]
    return names


def option_params(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden and p.name != "help"]


def options(command: click.Command) -> list[str]:
    return [max(p.opts, key=len) for p in option_params(command)]


def documented(opt: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", DOCS) is not None


def test_every_command_is_in_the_readme_commands_table() -> None:
    listed = set(re.findall(r"^\| `tracegroup ([a-z]+)", README, re.M))
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_documented(name: str) -> None:
    params = option_params(main.get_command(None, name))
    missing = [max(p.opts, key=len) for p in params if not any(documented(o) for o in p.opts)]
    assert missing == [], f"tracegroup {name}: options not in README.md or docs/"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_help_shows_an_example(name: str) -> None:
    text = CliRunner().invoke(main, [name, "--help"]).output
    assert re.search(rf"^ *Examples?:\n( +tracegroup {name} .+\n)+", text, re.M), text


def test_grouping_options_table_is_the_analyze_options() -> None:
    shown = table_options(section("Grouping options"))
    simulation = {max(deco(lambda: None).__click_params__[0].opts, key=len) for deco in pipeline_options}
    code = set(options(main.get_command(None, "analyze"))) - simulation - {"--format", "--top", "--quiet"}
    assert shown == code


def test_simulation_table_is_the_pipeline_options() -> None:
    text = section("Simulated pipelines")
    rows = [ln.split("|")[-2] for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    shown = set(re.findall(r"`(--[a-z-]+)[ `]", "".join(rows)))  # the table's options column
    simulation = {max(deco(lambda: None).__click_params__[0].opts, key=len) for deco in pipeline_options}
    assert shown == simulation


def test_analyze_json_keys_are_the_listed_ones() -> None:
    out = CliRunner().invoke(main, ["analyze", HOTROD, "--format", "json", "--heal"]).stdout
    listed = list(
        dict.fromkeys(top_level_names(section("`tracegroup analyze --format json` keys").split("\n", 2)[2]))
    )
    assert list(json.loads(out)) == [k for k in listed if k not in ("pipeline", "pipeline_result")]


def test_spans_columns_are_the_listed_ones() -> None:
    out = CliRunner().invoke(main, ["spans", HOTROD]).stdout
    text = section("`tracegroup spans` columns").split("\n", 2)[2].split("\n\n")[0]
    listed = top_level_names(text.split(".\n")[0])
    assert out.splitlines()[0].split(",") == listed
