"""JSON renderer: any result dict as the indented JSON every ``--format json`` prints.

Contract: :func:`to_json` writes the dict it is given as it is — keys in their insertion order (the
order :meth:`tracegroup.analysis.Analysis.summary` and the other library calls build), two-space
indentation, a final newline; numpy integers, floats and booleans become JSON numbers and booleans; any
other object that is not JSON is a ``TypeError``. It shapes nothing: the dicts are built by the library.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n"


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating | np.bool_):
        return o.item()
    raise TypeError(type(o).__name__)
