"""Progress on long work (issue 21): on a terminal's stderr every command says what it is doing (files and
spans loaded, chunks written, what-if rows, plan steps, partitions spilled), rewriting one line; nothing
with ``--quiet``, nothing when stderr is not a terminal. Run as a user runs it: a child process whose
stderr is a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POLYGLOT = str(ROOT / "fixtures" / "polyglot.pb")
CLI = [
    sys.executable,
    "-c",
    "import sys; from tracegroup.cli import main; sys.argv[0] = 'tracegroup'; main()",
]


def run_on_terminal(*args: str, tty: bool = True) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``tracegroup ARGS``, stderr a pseudo-terminal when ``tty``."""
    if not tty:
        p = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT
    )
    os.close(slave)
    err = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            proc.kill()
            raise AssertionError("no output for 300 s")
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    out = proc.stdout.read().decode() if proc.stdout else ""
    os.close(master)
    return proc.wait(timeout=60), out, err.decode(errors="replace")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["analyze", POLYGLOT], ["loaded ", "3,013 spans so far", "grouping 3,013 spans"]),
        (
            ["whatif", POLYGLOT, "--vary", "batch-size=64,512"],
            ["fitting the capture", "what-if row 3 of 7: batch-size 64"],
        ),
        (["plan", POLYGLOT, "--target", "legacy"], ["finding the causes", "legacy remedy: what-if row 1 of"]),
        (["report", POLYGLOT, "-o", "{tmp}/r.html"], ["building the report", "writing the page"]),
        (["spans", POLYGLOT, "--format", "csv", "-o", "{tmp}/s.csv"], ["wrote 3,013 of 3,013 spans"]),
        (
            ["emit", POLYGLOT, "--out", "{tmp}/e{run}", "--now", "2026-01-01T00:00:00Z"],
            ["emitting 3,013 spans"],
        ),
        (
            ["spans", POLYGLOT, "-o", "{tmp}/m.csv", "--memory", "1MB"],
            ["spilled", "wrote 3,013 of 3,013 spans"],
        ),
    ],
    ids=["analyze", "whatif", "plan", "report", "spans", "emit", "spans-spilled"],
)
def test_a_terminal_sees_progress_and_quiet_or_a_pipe_do_not(
    args: list[str], says: list[str], tmp_path: Path
) -> None:
    def argv(run: str) -> list[str]:  # emit wants a new directory per run
        return [a.replace("{tmp}", str(tmp_path)).replace("{run}", run) for a in args]

    code, out, err = run_on_terminal(*argv("1"))
    assert code == 0, err
    for text in says:
        assert text in err, err
    assert "\r" in err  # one line rewritten in place, not a scroll of lines
    code, quiet_out, quiet_err = run_on_terminal(*argv("2"), "--quiet")
    assert code == 0 and not any(text in quiet_err for text in says), quiet_err
    assert quiet_out.replace("/e2", "/e1") == out  # progress never changes the result
    code, piped_out, piped_err = run_on_terminal(*argv("3"), tty=False)
    assert code == 0 and not any(text in piped_err for text in says) and "\r" not in piped_err, piped_err
    assert piped_out.replace("/e3", "/e1") == out
