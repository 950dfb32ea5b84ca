"""Write a span DataFrame as CSV, JSON Lines or Parquet, to a file or stdout.

Contract: :func:`write_frame` writes the frame it is given (:func:`tracegroup.frames.spans_frame`, the
``tracegroup spans`` columns) without adding, dropping or reordering a column. Nested columns
(attributes, events, links) become JSON text in CSV and Parquet and stay nested objects in JSON Lines;
categorical columns are written as their labels. Parquet needs ``pyarrow`` (``pip install pyarrow``, or
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


def _flatten(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = frame.copy()
    for col in NESTED:
        if col in out:
            out[col] = [json.dumps(v, sort_keys=True, separators=(",", ":")) for v in out[col]]
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
    return out


def write_frame(frame: pd.DataFrame, fmt: str, output: str | None) -> None:
    if fmt == "parquet":
        if not output:
            raise ValueError("parquet output needs -o FILE")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("parquet output needs pyarrow: pip install pyarrow") from None
        _flatten(frame).to_parquet(output, index=False)
        return
    with contextlib.ExitStack() as stack:
        stream: Any = (
            stack.enter_context(open(output, "w", encoding="utf-8", newline="")) if output else sys.stdout
        )
        if fmt == "csv":
            _flatten(frame).to_csv(stream, index=False)
            return
        cols = list(frame.columns)
        for row in frame.itertuples(index=False, name=None):
            rec = {c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cols, row, strict=True)}
            stream.write(json.dumps(rec, separators=(",", ":")) + "\n")
