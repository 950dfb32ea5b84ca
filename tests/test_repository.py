"""The repository stands alone: every relative link resolves, nothing names a path outside it.

Contract: every relative Markdown link in a tracked ``*.md`` file points to a tracked file or directory;
no tracked file outside ``tests/`` names an absolute path of a developer's machine (``/tmp``, ``/home``,
``/root``, ``/work``, ``/Users``, ``/var/folders``, ``/mnt``) or the steering notes beside the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
OUTSIDE = re.compile(r"(?<![\w.~-])/(?:tmp|home|root|work|Users|var/folders|mnt)/|\.\./shared\b")


def tracked() -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.fail("tests/test_repository.py needs a git checkout (it reads the tracked files)")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p and (ROOT / p).exists()]


def test_every_relative_link_in_the_docs_resolves() -> None:
    files = tracked()
    docs = [p for p in files if p.endswith(".md")]
    assert "README.md" in docs and any(p.startswith("docs/") for p in docs)
    broken = []
    for doc in docs:
        text = (ROOT / doc).read_text(encoding="utf-8")
        text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # links inside code blocks are code
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # http:, mailto:, in-page anchors
            path = (ROOT / doc).parent / target.split("#", 1)[0]
            if not path.resolve().is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc}: {target}")
    assert broken == []


def test_no_tracked_file_outside_tests_points_outside_the_repository() -> None:
    hits = []
    for name in tracked():
        if name.startswith("tests/") or name.startswith("fixtures/"):
            continue  # tests may name temporary paths; fixtures are data (binary dumps, recorded bodies)
        data = (ROOT / name).read_bytes()
        if b"\0" in data[:8192]:
            continue
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{name}:{n}: {line.strip()[:120]}")
    assert hits == []
