"""Tests that need a system tool (Chromium, Go, Node.js…): skip on a user's machine, fail in CI.

Contract: `require_executable(name, hint)` returns the tool's path. When it is missing, the test skips with
a one-line reason naming the tool and how to get it — unless the `CI` environment variable is set, where it
fails instead, so CI can never go green by skipping. `registry_unreachable(reason)` is the one skip CI
allows: a live smoke test whose package registry cannot be reached says so and skips.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skip (a user's machine) or fail (CI) because a tool the test needs is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing tool fails the run)", pytrace=False)
    pytest.skip(reason)


def require_executable(name: str, hint: str) -> str:
    """The path of executable `name`, or skip/fail with `hint` (how to install it)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not found on PATH: {hint}")
    return path


def registry_unreachable(reason: str) -> NoReturn:
    """A live smoke test whose registry cannot be reached skips, also in CI, saying so."""
    pytest.skip(f"registry unreachable, live smoke test skipped: {reason}")
