"""Write span DataFrames as CSV, JSON Lines or Parquet, to a file or stdout.

Contract: :func:`write_frames` writes the frames it is given, one after the other, as one table
(:func:`tracegroup.frames.spans_frames`, the ``tracegroup spans`` columns, a chunk of whole batches at a
time; :func:`write_frame` writes one frame) without adding, dropping or reordering a column, and without
holding more than one frame's text at once: Parquet gets one row group per frame (``pyarrow``'s
``ParquetWriter``), CSV and JSON Lines are appended. Nested columns (attributes, events, links) become
JSON text (keys sorted, compact) in CSV and Parquet and stay nested objects in JSON Lines; categorical
columns are written as their labels; datetime columns (``start``, ``end``) are RFC 3339 UTC text with
nanoseconds (``2024-05-01T12:00:00.000000000Z``) in CSV and JSON Lines and timestamps in Parquet. The
bytes do not depend on how the rows are cut into frames (Parquet: the values do not). Parquet needs
``pyarrow`` (``pip install pyarrow``, or the ``parquet`` extra); without it the call fails with a one-line
error. pandas is imported when a frame is written.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


NESTED = ("attributes", "resource_attributes", "events", "links")


def _encoder(sort_keys: bool) -> Callable[[Any], str]:
    """``json.dumps(value, sort_keys=sort_keys, separators=(",", ":"))``, one reusable encoder."""
    return json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":")).encode


_SORTED = _encoder(True)
_PLAIN = _encoder(False)


def _json_texts(values: Iterable[Any], encode: Callable[[Any], str]) -> list[str]:
    """Each value as JSON text; an object met again (spans share attribute and resource dicts, see
    :func:`tracegroup.frames.decode_details`) is encoded once, an empty list is ``[]``."""
    memo: dict[int, str] = {}  # by id: every value stays alive in its column meanwhile
    out: list[str] = []
    for v in values:
        if type(v) is list and not v:
            out.append("[]")
            continue
        text = memo.get(id(v))
        if text is None:
            text = memo[id(v)] = encode(v)
        out.append(text)
    return out


def _labels(frame: pd.DataFrame, nested: bool, times: bool) -> pd.DataFrame:
    """``frame`` with categoricals as their labels, with ``nested`` the nested columns as JSON text and
    with ``times`` the datetime columns as RFC 3339 text."""
    import numpy as np
    import pandas as pd

    out = frame.copy(deep=False)
    if nested:
        for col in NESTED:
            if col in out:
                out[col] = _json_texts(out[col], _SORTED)
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
    write_frames([frame], fmt, output)


def write_frames(frames: Iterable[pd.DataFrame], fmt: str, output: str | None) -> None:
    """Write ``frames`` (same columns) as one table (see the module docstring)."""
    output = None if output == "-" else output
    if fmt == "parquet":
        if not output:
            raise ValueError("parquet output needs -o FILE (it is binary: not to standard output)")
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError("parquet output needs pyarrow: pip install pyarrow") from None
        writer: Any = None
        try:
            for frame in frames:
                part = pa.Table.from_pandas(
                    _labels(frame, nested=True, times=False),
                    preserve_index=False,
                    schema=None if writer is None else writer.schema,
                )
                if writer is None:
                    writer = pq.ParquetWriter(output, part.schema)
                writer.write_table(part)
        finally:
            if writer is not None:
                writer.close()
        return
    with contextlib.ExitStack() as stack:
        stream: Any = (
            stack.enter_context(open(output, "w", encoding="utf-8", newline="")) if output else sys.stdout
        )
        for k, frame in enumerate(frames):
            if fmt == "csv":
                _csv(_labels(frame, nested=True, times=True), stream, header=k == 0)
            else:
                stream.write(_jsonl(_labels(frame, nested=False, times=True)))


def _csv(flat: pd.DataFrame, stream: Any, header: bool) -> None:
    """The rows of ``flat`` as ``DataFrame.to_csv(stream, index=False, header=header)`` writes them (the
    same ``csv`` writer and the same text of each value: floats as numpy's ``str``, missing values empty),
    a whole column converted at a time."""
    import numpy as np

    writer = csv.writer(stream, lineterminator="\n")
    if header:
        writer.writerow([str(c) for c in flat.columns])
    parts = []
    for col in flat.columns:
        values = flat[col]
        kind = values.dtype.kind
        if kind == "b":
            parts.append(np.where(values.to_numpy(), "True", "False").tolist())
        elif kind in "iu":
            parts.append(values.to_numpy().tolist())
        elif kind == "f":
            text = values.to_numpy().astype(str)
            text[values.isna().to_numpy()] = ""
            parts.append(text.tolist())
        else:
            missing = values.isna().to_numpy()
            parts.append(values.fillna("").tolist() if missing.any() else values.tolist())
    writer.writerows(zip(*parts, strict=True))


def _jsonl(flat: pd.DataFrame) -> str:
    """The rows of ``flat`` as JSON Lines (``json.dumps(row, separators=(",", ":"))`` each): every column
    is turned into JSON text at once, then each line is one format of a template."""
    import numpy as np

    if not len(flat):
        return ""
    parts = []
    for col in flat.columns:
        values = flat[col]
        dtype = values.dtype
        if dtype == np.bool_:
            parts.append(np.where(values.to_numpy(), "true", "false").tolist())
        elif dtype == np.int64:
            parts.append(list(map(str, values.to_numpy().tolist())))
        elif col in NESTED:
            parts.append(_json_texts(values, _PLAIN))
        else:
            parts.append(list(map(_PLAIN, _items(values))))
    keys = [_PLAIN(str(c)).replace("{", "{{").replace("}", "}}") for c in flat.columns]
    template = "{{" + ",".join(k + ":{}" for k in keys) + "}}\n"
    return "".join(map(template.format, *parts))


def _items(values: pd.Series) -> list[Any]:
    """The values of a column as plain Python objects (what ``.item()`` gives for numpy scalars)."""
    return [v.item() if hasattr(v, "item") else v for v in values]
