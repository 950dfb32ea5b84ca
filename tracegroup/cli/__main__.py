"""``python -m tracegroup.cli``: the ``tracegroup`` command."""

from tracegroup.cli import main

main()
