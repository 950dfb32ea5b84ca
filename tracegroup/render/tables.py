"""Write a span DataFrame as CSV, JSON Lines or Parquet, to a file or stdout.

Contract: :func:`write_frame` writes the frame it is given (:func:`tracegroup.frames.spans_frame`, the
``tracegroup spans`` columns) without adding, dropping or reordering a column. Nested columns
(attributes, events, links) become JSON text in CSV and Parquet and stay nested objects in JSON Lines;
categorical columns are written as their labels; datetime columns (``start``, ``end``) are RFC 3339 UTC
text with nanoseconds (``2024-05-01T12:00:00.000000000Z``) in CSV and JSON Lines and timestamps in
Parquet. Parquet needs ``pyarrow`` (``pip install pyarrow``, or
the ``parquet`` extra); without it the call fails with a one-line error. pandas is imported when a frame
is written.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


NESTED = ("attributes", "resource_attributes", "events", "links")


def _labels(frame: pd.DataFrame, nested: bool, times: bool) -> pd.DataFrame:
    """``frame`` with categoricals as their labels, with ``nested`` the nested columns as JSON text and
    with ``times`` the datetime columns as RFC 3339 text."""
    import numpy as np
    import pandas as pd

    out = frame.copy()
    if nested:
        for col in NESTED:
            if col in out:
                out[col] = [json.dumps(v, sort_keys=True, separators=(",", ":")) for v in out[col]]
    for col in out.columns:
        dtype = out[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
        elif times and isinstance(dtype, pd.DatetimeTZDtype):
            ns = out[col].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="M8[ns]")
            out[col] = np.datetime_as_string(ns, unit="ns", timezone="UTC").astype(object)
    return out


def write_frame(frame: pd.DataFrame, fmt: str, output: str | None) -> None:
    """Write ``frame`` as ``fmt`` to the file ``output``; no output or ``-`` means standard output."""
    output = None if output == "-" else output
    if fmt == "parquet":
        if not output:
            raise ValueError("parquet output needs -o FILE (it is binary: not to standard output)")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("parquet output needs pyarrow: pip install pyarrow") from None
        _labels(frame, nested=True, times=False).to_parquet(output, index=False)
        return
    with contextlib.ExitStack() as stack:
        stream: Any = (
            stack.enter_context(open(output, "w", encoding="utf-8", newline="")) if output else sys.stdout
        )
        if fmt == "csv":
            _labels(frame, nested=True, times=True).to_csv(stream, index=False)
            return
        flat = _labels(frame, nested=False, times=True)
        cols = list(flat.columns)
        for row in flat.itertuples(index=False, name=None):
            rec = {c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cols, row, strict=True)}
            stream.write(json.dumps(rec, separators=(",", ":")) + "\n")
