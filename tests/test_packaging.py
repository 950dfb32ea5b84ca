"""The install a new user does: README's commands, the pinned test environment, a wheel that works.

Contract: ``constraints/test.txt`` pins every package that ``pip install -e '.[test]'`` brings, at versions
inside ``pyproject.toml``'s ranges, and the environment running these tests is exactly that pinned set
(the README installs with ``-c constraints/test.txt``); ``.ci/run`` runs README.md's own commands, not a
copy; a wheel built from the repository installs into a fresh venv and runs.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import runpy
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints" / "test.txt"


def pins() -> dict[str, str]:
    """Name → pinned version, for this interpreter and platform (markers evaluated)."""
    out: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints/test.txt: {line!r} is not an exact pin"
            out[canonicalize_name(req.name)] = spec.version
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_pyproject_ranges_are_ranges_and_every_requirement_is_pinned_inside_its_range() -> None:
    pinned = pins()
    for req in declared():
        assert not any(s.operator == "==" for s in req.specifier), f"pyproject.toml pins {req} (use a range)"
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is in pyproject.toml but not pinned: run constraints/update.sh"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{req.name}=={pinned[name]} (constraints/test.txt) is outside pyproject.toml '{req.specifier}': "
            "run constraints/update.sh"
        )


def test_the_installed_test_environment_is_exactly_the_pinned_one() -> None:
    """Walk tracegroup[test]'s requirements through the installed metadata: every package reached is pinned,
    at the version installed (so the lock is complete and this run used it)."""
    pinned = pins()
    visited: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("tracegroup", frozenset({"test"}))]
    while todo:
        name, extras = todo.pop()
        for text in md.distribution(name).requires or []:
            req = Requirement(text)
            envs = [{**default_environment(), "extra": e} for e in sorted(extras) or [""]]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            key = canonicalize_name(req.name)
            assert key in pinned, f"{req.name} (needed by {name}) is not in constraints/test.txt"
            installed = md.version(req.name)
            assert installed == pinned[key], (
                f"{req.name} {installed} is installed but constraints/test.txt pins {pinned[key]}: "
                "install with pip install -e '.[test]' -c constraints/test.txt"
            )
            if (key, frozenset(req.extras)) not in visited:
                visited.add((key, frozenset(req.extras)))
                todo.append((key, frozenset(req.extras)))
    assert len({key for key, _ in visited}) > 50  # the walk reached the whole environment


def test_ci_runs_the_readme_commands_verbatim() -> None:
    commands = runpy.run_path(str(ROOT / ".ci" / "readme_commands.py"))
    readme = (ROOT / "README.md").read_text()
    one, two = commands["quickstart"](readme)
    assert one.startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install . -c constraints/test.txt"
    )
    assert "tracegroup analyze fixtures/" in one
    assert two == "pip install -e '.[test]' -c constraints/test.txt && python -m pytest"
    assert commands["system_tools"](readme)  # the "Full test suite" block exists
    ci = (ROOT / ".ci" / "run").read_text()
    assert "readme_commands.py quickstart" in ci and "readme_commands.py system-tools" in ci
    assert "pip install" not in ci and "--upgrade pip" not in ci  # no hand copy, no newer pip than a user's


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (
        f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    return proc


def test_a_wheel_built_from_the_repository_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    # Build from a copy of the tracked files: what a clone holds, and no stale build/ directory of ours.
    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)], source)
    (wheel,) = (tmp_path / "dist").glob("tracegroup-*.whl")
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    assert "tracegroup/py.typed" in names and "tracegroup/grouping/service.py" in names
    assert "tests/" not in names and "fixtures/" not in names
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    run([str(venv / "bin" / "pip"), "install", "-q", str(wheel), "-c", str(CONSTRAINTS)], tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    exe = str(venv / "bin" / "tracegroup")
    version = run([exe, "--version"], tmp_path, env).stdout
    assert md.version("tracegroup") in version
    out = run(
        [exe, "analyze", str(ROOT / "fixtures" / "polyglot.pb"), "--format", "json"], tmp_path, env
    ).stdout
    assert '"misgrouped"' in out
    where = run(
        [str(venv / "bin" / "python"), "-c", "import tracegroup; print(tracegroup.__file__)"], tmp_path, env
    )
    assert str(venv) in where.stdout  # the wheel's copy, not the source tree


def test_the_pins_say_how_they_were_made() -> None:
    header = CONSTRAINTS.read_text().splitlines()[:2]
    assert header[1].strip("# ") == "constraints/update.sh"
    assert os.access(ROOT / "constraints" / "update.sh", os.X_OK)
