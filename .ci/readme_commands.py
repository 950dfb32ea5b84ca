"""Print a shell block of README.md, so CI runs what the README says rather than a hand copy.

Contract: ``python .ci/readme_commands.py quickstart`` prints the two commands of README.md's first
``sh`` block (comment and blank lines dropped), one per line, in order; ``python .ci/readme_commands.py
system-tools`` prints the ``sh`` block of the "Full test suite" section. Exits 1 with one line if README.md
does not have that shape.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


def commands(block: str) -> list[str]:
    return [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def quickstart(text: str) -> list[str]:
    first = BLOCK.search(text)
    found = commands(first.group(1)) if first else []
    if len(found) != 2:
        raise ValueError(f"README.md: the first sh block must hold exactly two commands, found {len(found)}")
    return found


def system_tools(text: str) -> list[str]:
    start = text.find("\n### Full test suite\n")
    block = BLOCK.search(text, start) if start >= 0 else None
    if block is None:
        raise ValueError("README.md: no sh block under '### Full test suite'")
    return commands(block.group(1))


def main() -> int:
    text = README.read_text(encoding="utf-8")
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        lines = {"quickstart": quickstart, "system-tools": system_tools}[which](text)
    except KeyError:
        print("usage: readme_commands.py quickstart|system-tools", file=sys.stderr)
        return 2
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
