"""Build (or reuse) the recording collector: ``collector/main.go`` against the pinned ``go.mod``/``go.sum``.

Usage::

    python collector/build.py [--download-only] [--rebuild] [--goservice]

prints the binary's path (``--goservice``: the Go SDK service of the recordings, ``collector/goservice``,
its own module, built the same way into ``<cache>/tracegroup/goservice-<key>``). Two steps, each with its
own one-line error:

1. ``go mod download`` (needs the Go module proxy, unless Go's module cache already holds everything):
   a failure raises :class:`RegistryError` — the one failure a live test may skip on. A checksum that
   disagrees with ``go.sum`` is not a registry failure: it raises :class:`BuildError`.
2. ``go build -mod=readonly`` with ``GOTOOLCHAIN=local`` (never the builder, never ``go mod tidy``) into
   the user cache directory, ``<cache>/tracegroup/otelcol-<key>``, where ``<key>`` is the first 16 hex
   digits of the sha256 of ``go.sum`` (then ``go.mod`` and ``main.go``, so an edited ``main.go`` is
   rebuilt too). An existing binary with that key is reused without calling Go at all. Go's own module
   and build caches stay at their defaults.

``<cache>`` is ``$XDG_CACHE_HOME`` or ``~/.cache``. Go missing, or older than ``go.mod`` asks for, raises
:class:`GoMissing`. Every call has a timeout, so nothing hangs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOWNLOAD_TIMEOUT_S = 900.0
BUILD_TIMEOUT_S = 1800.0  # a cold build is ~5 minutes of 2 busy cores
#: The pinned release, for reports (go.mod is the truth).
CONTRIB_VERSION = "v0.141.0"
CORE_VERSION = "v0.141.0"
STABLE_VERSION = "v1.47.0"


class CollectorError(Exception):
    """Base of the errors below; ``str()`` is one line."""


class GoMissing(CollectorError):
    """No usable ``go`` command."""


class RegistryError(CollectorError):
    """``go mod download`` failed: the module proxy could not be reached or did not serve a module."""


class BuildError(CollectorError):
    """Anything else: a failed compile, a checksum mismatch, a timeout."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tracegroup"


#: The Go SDK service the recorder can add (``--go``): its own module beside the collector's.
GOSERVICE = HERE / "goservice"


def cache_key(src: Path = HERE) -> str:
    h = hashlib.sha256()
    for name in ("go.sum", "go.mod", "main.go"):
        h.update((src / name).read_bytes())
    return h.hexdigest()[:16]


def binary_path(src: Path = HERE) -> Path:
    prefix = "otelcol" if src == HERE else src.name
    return cache_dir() / f"{prefix}-{cache_key(src)}"


def go_executable() -> str:
    go = shutil.which("go")
    if go is None:
        raise GoMissing("go not found on PATH: install Go 1.24 or newer (https://go.dev/dl/)")
    return go


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"  # the installed Go, never a downloaded toolchain
    env["GOFLAGS"] = "-mod=readonly"
    return env


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:400] if lines else "(no output)"


def _run(cmd: list[str], timeout: float, what: str, error: type[CollectorError], cwd: Path = HERE) -> str:
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what} did not finish within {timeout:.0f} s") from None
    except OSError as err:
        raise GoMissing(f"{what}: cannot run go: {err}") from None
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if "requires go >=" in out or "toolchain not available" in out:
            raise GoMissing(f"{what}: {_last_line(out)}")
        if "SECURITY ERROR" in out or "checksum mismatch" in out:
            raise BuildError(f"{what}: checksum mismatch against go.sum: {_last_line(out)}")
        raise error(f"{what} failed: {_last_line(out)}")
    return out


def download(src: Path = HERE) -> None:
    """``go mod download`` every module go.sum pins (a no-op when Go's module cache has them)."""
    go = go_executable()
    _run([go, "mod", "download"], DOWNLOAD_TIMEOUT_S, "go mod download", RegistryError, src)


def build(rebuild: bool = False, src: Path = HERE) -> Path:
    """The binary of the Go main package in ``src`` (default: the collector): reused from the cache, or
    downloaded and built (see the module docstring)."""
    target = binary_path(src)
    if target.exists() and not rebuild:
        return target
    download(src)
    go = go_executable()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        _run(
            [go, "build", "-mod=readonly", "-trimpath", "-buildvcs=false", "-o", tmp, "."],
            BUILD_TIMEOUT_S,
            "go build",
            BuildError,
            src,
        )
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)  # atomic: a concurrent build never leaves half a binary under the key
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--download-only", action="store_true", help="only run go mod download")
    p.add_argument("--rebuild", action="store_true", help="build even when the cached binary exists")
    p.add_argument("--goservice", action="store_true", help="the Go SDK service (collector/goservice)")
    args = p.parse_args(argv)
    src = GOSERVICE if args.goservice else HERE
    try:
        if args.download_only:
            download(src)
            print("go mod download: ok")
        else:
            print(build(rebuild=args.rebuild, src=src))
    except CollectorError as err:
        print(f"collector/build.py: {type(err).__name__}: {err}", file=sys.stderr)
        return 3 if isinstance(err, RegistryError) else 2 if isinstance(err, GoMissing) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
