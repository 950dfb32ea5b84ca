from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60k-span collector file-exporter stream from ``benchmarks/gen_dump.py`` (made once per run):
    big enough that a 16 MB ``--memory`` budget sends it through the spill."""
    spec = importlib.util.spec_from_file_location("gen_dump", "benchmarks/gen_dump.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    path = tmp_path_factory.mktemp("generated") / "dump.pb"
    gen.generate(str(path), 60_000)
    return path
