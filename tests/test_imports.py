"""Imports run one way: from the data model at the bottom up to the CLI, never back, never in a loop.

Contract: every ``import`` in the package — lazy ones inside functions included — is an edge from the
importing module to the ``tracegroup`` module it names. Each module belongs to exactly one layer of
``LAYERS`` (bottom first; the most specific pattern wins). An edge to a higher layer is an ``up``
violation; a set of modules importing each other in a loop is a ``cycle``. There are none (the list of
allowed violations this test started from has shrunk to nothing and is gone). docs/design.md draws these
layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent

LAYERS: list[tuple[str, list[str]]] = [
    ("model", ["tracegroup.model", "tracegroup.reasons", "tracegroup.otlp"]),
    ("model", ["tracegroup.redact"]),
    ("load", ["tracegroup.load", "tracegroup.load.*"]),
    ("load", ["tracegroup.capture"]),
    ("tree", ["tracegroup.tree", "tracegroup.routes", "tracegroup.rewrite"]),
    (
        "delivery",
        ["tracegroup.delivery", "tracegroup.delivery.*", "tracegroup.pipeline", "tracegroup.batching"],
    ),
    ("delivery", ["tracegroup.fit"]),
    ("grouping", ["tracegroup.grouping", "tracegroup.grouping.*"]),
    ("analysis", ["tracegroup.diff", "tracegroup.analysis", "tracegroup.whatif", "tracegroup.check"]),
    ("analysis", ["tracegroup.info", "tracegroup.spill"]),
    ("frames", ["tracegroup.frames", "tracegroup.layout"]),
    ("frames", ["tracegroup.spill_frames"]),
    ("sentry", ["tracegroup.sentry", "tracegroup.sentry.*", "tracegroup.otlp_out", "tracegroup.send"]),
    ("sentry", ["tracegroup.transport", "tracegroup.fixplan"]),
    ("sentry", ["tracegroup.spill_emit"]),
    ("render", ["tracegroup.render", "tracegroup.render.*"]),
    ("explore", ["tracegroup.explore"]),
    ("explore", ["tracegroup.report"]),
    ("cli", ["tracegroup.cli", "tracegroup.cli.*"]),
    ("package", ["tracegroup"]),
]
ORDER = list(dict.fromkeys(name for name, _ in LAYERS))


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "tracegroup").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    """The index in ORDER of the most specific pattern matching ``module``."""
    best: tuple[int, str] | None = None
    for name, patterns in LAYERS:
        for pattern in patterns:
            exact = pattern == module
            prefix = pattern.endswith(".*") and module.startswith(pattern[:-1])
            if (exact or prefix) and (best is None or len(pattern) + exact > best[0]):
                best = (len(pattern) + exact, name)
    assert best is not None, f"{module} is in no layer: add it to LAYERS in tests/test_imports.py"
    return ORDER.index(best[1])


def import_graph() -> nx.DiGraph:
    mods = modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for target in targets:
                if target == "tracegroup" or target.startswith("tracegroup."):
                    while target not in mods:
                        target = target.rpartition(".")[0]
                    if target != module:
                        graph.add_edge(module, target)
    return graph


def violations(graph: nx.DiGraph) -> set[str]:
    found = {f"up {a} -> {b}" for a, b in graph.edges if layer(a) < layer(b)}
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            found.add("cycle " + " ".join(sorted(component)))
    return found


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer(module)


def test_imports_run_one_way() -> None:
    assert sorted(violations(import_graph())) == [], "import downwards only (LAYERS), never in a loop"


def test_the_walk_sees_lazy_imports_and_loops() -> None:
    graph = import_graph()
    assert graph.has_edge("tracegroup.cli.common", "tracegroup.analysis")  # a top-level import
    assert graph.has_edge("tracegroup.cli.analyze", "tracegroup.whatif")  # a lazy one, inside a function
    assert graph.has_edge("tracegroup", "tracegroup.load")
    probe = nx.DiGraph([("tracegroup.model", "tracegroup.cli"), ("tracegroup.cli", "tracegroup.model")])
    assert violations(probe) == {
        "up tracegroup.model -> tracegroup.cli",
        "cycle tracegroup.cli tracegroup.model",
    }


def test_public_names_and_lazy_loading() -> None:
    """``tracegroup.load`` is the function even after the subpackage is imported; the package's other
    names load their modules on first use; ``tracegroup info`` loads no analysis, plotting, capture or
    Sentry code (commands load when they run)."""
    import subprocess
    import sys

    code = """
import sys
import tracegroup.load, tracegroup as tg
assert callable(tg.load) and tg.LoadError.__name__ == "LoadError", tg.load
assert "tracegroup.analysis" not in sys.modules and "tracegroup.explore" not in sys.modules
from tracegroup.cli import main
try:
    main(["info", "fixtures/polyglot.pb", "--quiet"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = ("tracegroup.explore", "tracegroup.capture", "tracegroup.sentry", "matplotlib", "pandas")
print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)
assert tg.analyze.__module__ == "tracegroup.analysis" and tg.Explorer.__name__ == "Explorer"
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "[]"
