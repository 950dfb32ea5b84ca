"""Write span DataFrames as CSV, JSON Lines or Parquet, to a file or stdout.

Contract: :func:`write_frames` writes the frames it is given, one after the other, as one table
(:func:`tracegroup.frames.spans_frames`, the ``tracegroup spans`` columns, a chunk of whole batches at a
time; :func:`write_frame` writes one frame) without adding, dropping or reordering a column, and without
holding more than one frame's text at once: Parquet gets one row group per frame (``pyarrow``'s
``ParquetWriter``), CSV and JSON Lines are appended. :class:`~tracegroup.frames.SpanColumns` chunks
(:func:`tracegroup.frames.span_columns`) are written the same, to the byte, column by column through
Arrow: each distinct value is formatted once and the lines are joined in Arrow, with no Python object
per value. Nested columns (attributes, events, links) become
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
import io
import json
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tracegroup.frames import Coded, SpanColumns

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


def write_frames(frames: Iterable[pd.DataFrame | SpanColumns], fmt: str, output: str | None) -> None:
    """Write ``frames`` (same columns: pandas frames or :class:`~tracegroup.frames.SpanColumns`, which are
    written column by column without a Python object per value) as one table (see the module
    docstring)."""
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
        memo = _Texts(_SORTED)
        try:
            for frame in frames:
                schema = None if writer is None else writer.schema
                if isinstance(frame, SpanColumns):
                    part = _arrow_table(frame, schema, memo)
                else:
                    part = pa.Table.from_pandas(
                        _labels(frame, nested=True, times=False), preserve_index=False, schema=schema
                    )
                if writer is None:
                    writer = pq.ParquetWriter(output, part.schema, use_dictionary=_dictionary(part.schema))
                writer.write_table(part)
        finally:
            if writer is not None:
                writer.close()
        return
    with contextlib.ExitStack() as stack:
        stream: Any = (
            stack.enter_context(open(output, "w", encoding="utf-8", newline="")) if output else sys.stdout
        )
        memo = _Texts(_SORTED if fmt == "csv" else _PLAIN)
        for k, frame in enumerate(frames):
            if isinstance(frame, SpanColumns):
                if fmt == "csv" and k == 0:
                    csv.writer(stream, lineterminator="\n").writerow(list(frame.columns))
                if len(frame):
                    _write_text(
                        _csv_lines(frame, memo) if fmt == "csv" else _jsonl_lines(frame, memo), stream
                    )
            elif fmt == "csv":
                _csv(_labels(frame, nested=True, times=True), stream, header=k == 0)
            else:
                stream.write(_jsonl(_labels(frame, nested=False, times=True)))


# ------------------------------------------------------------------- SpanColumns, column by column
class _Texts:
    """JSON texts of the nested values (dicts and lists) met so far in one write: chunks share their
    distinct values (:func:`tracegroup.frames.span_columns`), so each is encoded once. A value is held
    while remembered, so its ``id`` cannot be reused by another."""

    def __init__(self, encode: Callable[[Any], str]) -> None:
        self.encode = encode
        self.seen: dict[int, tuple[Any, str]] = {}

    def texts(self, values: Iterable[Any]) -> list[str]:
        seen = self.seen
        if len(seen) >= _REMEMBER:
            seen.clear()
        out = []
        for v in values:
            hit = seen.get(id(v))
            if hit is None or hit[0] is not v:
                hit = seen[id(v)] = (v, self.encode(v))
            out.append(hit[1])
        return out


#: Most nested values whose text :class:`_Texts` remembers.
_REMEMBER = 1 << 16
#: Parquet columns whose values are (nearly) all distinct: no dictionary page tried for them.
_DISTINCT = ("span_id", "start_ns", "end_ns", "start", "end", "duration_ms", "position")


def _dictionary(schema: Any) -> list[str]:
    """The columns Parquet dictionary-encodes: all but :data:`_DISTINCT`."""
    return [name for name in schema.names if name not in _DISTINCT]


def _arrow_table(chunk: SpanColumns, schema: Any, memo: _Texts) -> Any:
    """``chunk`` as the Arrow table ``pa.Table.from_pandas`` makes of its frame after :func:`_labels`
    (``schema``: the first chunk's, with the same pandas metadata)."""
    import pyarrow as pa

    arrays = [_arrow_values(name, col, memo) for name, col in chunk.columns.items()]
    if schema is None:
        schema = _pandas_schema(list(chunk.columns), arrays)
    return pa.Table.from_arrays(arrays, schema=schema)


def _pandas_schema(names: list[str], arrays: list[Any]) -> Any:
    """The schema (pandas metadata included) ``pa.Table.from_pandas`` gives a frame of these columns."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    empty: dict[str, Any] = {}
    for name, arr in zip(names, arrays, strict=True):
        if pa.types.is_large_string(arr.type):
            empty[name] = pd.array([], dtype="str")
        elif pa.types.is_timestamp(arr.type):
            empty[name] = pd.Series(np.array([], dtype="M8[ns]")).dt.tz_localize("UTC")
        else:
            empty[name] = np.array([], dtype=arr.type.to_pandas_dtype())
    return pa.Table.from_pandas(pd.DataFrame(empty), preserve_index=False).schema


def _arrow_values(name: str, col: Any, memo: _Texts) -> Any:
    """One column as Parquet gets it: labels as text, nested values as sorted JSON, times as timestamps."""
    import numpy as np
    import pyarrow as pa

    if isinstance(col, Coded):
        values = memo.texts(col.values) if name in NESTED else [str(v) for v in col.values]
        return _take(values, col.codes)
    if isinstance(col, np.ndarray):
        if col.dtype.kind == "M":
            return pa.array(col.view(np.int64), type=pa.timestamp("ns", tz="UTC"))
        return pa.array(col)
    return col


def _take(values: list[str], codes: Any) -> Any:
    """``values[codes[i]]`` for every row, as one ``large_string`` array."""
    import pyarrow as pa

    return pa.array(values, type=pa.large_string()).take(pa.array(codes, type=pa.int64()))


def _csv_field(value: str) -> str:
    """``value`` as :mod:`csv` writes it in a row of several fields (quoted only when needed)."""
    if "," not in value and '"' not in value and "\n" not in value and "\r" not in value:
        return value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([value, "a"])
    return out.getvalue()[:-3]


def _csv_lines(chunk: SpanColumns, memo: _Texts) -> Any:
    """The CSV rows of ``chunk`` (what :func:`_csv` writes for its frame) as one text array, a line a row."""
    import numpy as np

    parts: list[Any] = []
    last = len(chunk.columns) - 1
    for k, (name, col) in enumerate(chunk.columns.items()):
        end = "\n" if k == last else ""
        if isinstance(col, Coded):
            values = memo.texts(col.values) if name in NESTED else [str(v) for v in col.values]
            parts.append(_take([_csv_field(v) + end for v in values], col.codes))
        elif not isinstance(col, np.ndarray):
            parts.append(_affix(col, "", end))  # hex ids: nothing to quote
        elif col.dtype.kind == "b":
            parts.append(_take(["False" + end, "True" + end], col.astype(np.int64)))
        elif col.dtype.kind in "iu":
            parts.append(_ints(col, "", end))
        elif col.dtype.kind == "f":
            text = col.astype(str)
            text[np.isnan(col)] = ""
            parts.append(_affix(_text(text), "", end))
        else:
            parts.append(_fixed(_rfc3339(col), "", end))
    return _join(parts, ",")


def _jsonl_lines(chunk: SpanColumns, memo: _Texts) -> Any:
    """The JSON Lines of ``chunk`` (what :func:`_jsonl` writes for its frame) as one text array."""
    import math

    import numpy as np

    parts: list[Any] = []
    last = len(chunk.columns) - 1
    for k, (name, col) in enumerate(chunk.columns.items()):
        key = ("{" if k == 0 else "") + _PLAIN(str(name)) + ":"
        end = "}\n" if k == last else ""
        if isinstance(col, Coded):
            values = memo.texts(col.values) if name in NESTED else list(map(_PLAIN, col.values))
            parts.append(_take([key + v + end for v in values], col.codes))
        elif not isinstance(col, np.ndarray):
            parts.append(_affix(col, key + '"', '"' + end))  # hex ids: nothing to escape
        elif col.dtype.kind == "b":
            parts.append(_take([key + "false" + end, key + "true" + end], col.astype(np.int64)))
        elif col.dtype.kind in "iu":
            parts.append(_ints(col, key, end))
        elif col.dtype.kind == "f":
            floats = col.tolist()
            text = map(float.__repr__, floats) if all(map(math.isfinite, floats)) else map(_PLAIN, floats)
            parts.append(_affix(_text(list(text)), key, end))
        else:
            parts.append(_fixed(_rfc3339(col), key + '"', '"' + end))
    return _join(parts, ",")


def _text(values: Any) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.large_string())


def _ints(col: Any, prefix: str, suffix: str) -> Any:
    """Integers as decimal text (what ``str`` gives) between ``prefix`` and ``suffix``, one ``large_string``
    array: few distinct values are formatted once each; non-negative values of one length digit by
    digit; others by Arrow."""
    import numpy as np
    import pyarrow as pa

    if not len(col):
        return _text([])
    uniq, which = np.unique(col, return_inverse=True)
    if len(uniq) <= len(col) // 8:
        return _take([f"{prefix}{v}{suffix}" for v in uniq.tolist()], which.reshape(-1))
    low, high = int(uniq[0]), int(uniq[-1])
    if low < 0 or len(str(low)) != len(str(high)):
        return _affix(pa.array(col).cast(pa.large_string()), prefix, suffix)
    width = len(str(high))
    digits = np.empty((len(col), width), dtype=np.uint8)
    values = col.astype(np.uint64)
    for d in range(width):
        digits[:, d] = values // np.uint64(10 ** (width - 1 - d)) % np.uint64(10) + np.uint64(48)
    return _fixed(digits, prefix, suffix)


def _affix(text: Any, prefix: str, suffix: str) -> Any:
    """``prefix + value + suffix`` for every value of a text array (built in place when every value is
    ASCII of one length or empty, as hex ids are)."""
    import numpy as np
    import pyarrow as pa

    if not prefix and not suffix:
        return text
    n = len(text)
    bufs = text.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[text.offset : text.offset + n + 1]
    lengths = np.diff(offsets)
    width = int(lengths.max()) if n else 0
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, dtype=np.uint8)
    body = data[int(offsets[0]) : int(offsets[-1])] if n else data[:0]
    if not n or not ((lengths == 0) | (lengths == width)).all() or (body >= 128).any():
        return _join([prefix, text, suffix], "")
    full = lengths == width
    rows = np.zeros((n, width), dtype=np.uint8)
    if width:
        rows[full] = body.reshape(-1, width)
    out = _fixed(rows, prefix, suffix)
    if full.all():
        return out
    head, tail = len(prefix.encode()), len(suffix.encode())
    keep = np.ones((n, head + width + tail), dtype=bool)
    keep[~full, head : head + width] = False
    size = np.where(full, head + width + tail, head + tail)
    new = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(size, out=new[1:])
    packed = np.frombuffer(out.buffers()[2], dtype=np.uint8).reshape(n, -1)[keep]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(new), pa.py_buffer(packed))


def _join(parts: list[Any], sep: str) -> Any:
    """Row by row, the text of every part joined by ``sep`` (parts: text arrays or ``str`` constants)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    return pc.binary_join_element_wise(
        *(pa.scalar(p, type=text) if isinstance(p, str) else p for p in parts), pa.scalar(sep, type=text)
    )


def _fixed(rows: Any, prefix: str, suffix: str) -> Any:
    """A ``(n, width)`` array of ASCII bytes, each row between ``prefix`` and ``suffix``, as one
    ``large_string`` array built in place."""
    import numpy as np
    import pyarrow as pa

    n, width = rows.shape
    head, tail = prefix.encode(), suffix.encode()
    size = len(head) + width + len(tail)
    out = np.empty((n, size), dtype=np.uint8)
    out[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    out[:, len(head) : len(head) + width] = rows
    out[:, len(head) + width :] = np.frombuffer(tail, dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int64) * size
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


#: Nanoseconds in a day.
_DAY = 86_400_000_000_000


def _rfc3339(ns: Any) -> Any:
    """``datetime64[ns]`` (UTC) as RFC 3339 text with nanoseconds, ``2024-05-01T12:00:00.000000000Z`` (what
    ``numpy.datetime_as_string(ns, unit="ns", timezone="UTC")`` gives), as a ``(n, 30)`` array of ASCII
    bytes: each distinct day is formatted by numpy once, the time of day digit by digit."""
    import numpy as np

    t = ns.view(np.int64)
    if not len(t) or t.min() < 0:
        return np.frombuffer(
            np.datetime_as_string(ns, unit="ns", timezone="UTC").astype("S30").tobytes(), dtype=np.uint8
        ).reshape(len(t), 30)
    days, rest = np.divmod(t, _DAY)
    uniq, which = np.unique(days, return_inverse=True)
    dates = np.frombuffer(np.datetime_as_string(uniq.astype("M8[D]")).astype("S10").tobytes(), dtype=np.uint8)
    out = np.empty((len(t), 30), dtype=np.uint8)
    out[:, :10] = dates.reshape(-1, 10)[which.reshape(-1)]
    for col, char in ((10, "T"), (13, ":"), (16, ":"), (19, "."), (29, "Z")):
        out[:, col] = ord(char)
    for col, digits, value in (
        (11, 2, rest // 3_600_000_000_000),
        (14, 2, rest // 60_000_000_000 % 60),
        (17, 2, rest // 1_000_000_000 % 60),
        (20, 9, rest % 1_000_000_000),
    ):
        for d in range(digits):
            out[:, col + d] = value // 10 ** (digits - 1 - d) % 10 + 48
    return out


def _write_text(lines: Any, stream: Any) -> None:
    """The text of a ``large_string`` array, each value after the other, to ``stream`` (its bytes as they
    are when it has a binary buffer)."""
    import numpy as np

    bufs = lines.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(bufs[2])[int(offsets[0]) : int(offsets[-1])]
    raw = getattr(stream, "buffer", None)
    if raw is None:
        stream.write(bytes(data).decode("utf-8"))
        return
    stream.flush()
    raw.write(data)


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
