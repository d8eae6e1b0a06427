"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A reader (or a resumed run) never sees a half-written file, and a failed write (full disk) leaves the old
file as it was and removes its temp file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from actionbank_env.errors import DataError

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "to_jsonable", "read_json", "parse_json"]


def _file_mode() -> int:
    """Mode of a normally created file under the current umask (mkstemp's temp files are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``writer(file)`` on a temp file beside ``path`` and rename it over ``path`` when it succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _MODE)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def write_frame_csv(handle: IO[bytes], frame: Any) -> None:
    """Write a pandas frame as CSV without its index; floats read back exactly.

    pyarrow's writer formats whole columns in C, floats as their shortest round-trip text. It is
    about 12x faster than pandas' per-value float formatting, which was a quarter of a 1e6-user run
    (``benchmarks/BASELINE.md``). A frame pyarrow cannot convert (an object column of mixed types) is written by
    pandas with 17 significant digits, which also reads back exactly.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        frame.to_csv(handle, index=False, float_format="%.17g")
        return
    # The header as pandas writes it (pyarrow quotes every name); the body unquoted unless a value needs quotes.
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([str(c) for c in frame.columns])
    handle.write(header.getvalue().encode("utf-8"))
    body = io.BytesIO()
    try:
        pcsv.write_csv(table, body, write_options=pcsv.WriteOptions(include_header=False, quoting_style="none"))
    except pa.ArrowInvalid:  # a value holds a comma, a quote or a line break
        body = io.BytesIO()
        pcsv.write_csv(table, body, write_options=pcsv.WriteOptions(include_header=False, quoting_style="needed"))
    handle.write(body.getvalue())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data))


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples, paths and non-finite floats to plain JSON values.

    Example:
        >>> to_jsonable({"a": np.float32(0.5), "b": (1, np.int64(2)), "c": float("nan")})
        {'a': 0.5, 'b': [1, 2], 'c': None}
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Path):
        return str(value)
    return value


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented, key-sorted JSON atomically (numpy values converted)."""
    return atomic_write_text(path, json.dumps(to_jsonable(data), indent=2, sort_keys=True) + "\n")


#: Largest JSON file read (configs, banks, results): far above any this package writes.
MAX_JSON_BYTES = 256 * 2**20


def parse_json(text: str | bytes, source: str) -> Any:
    """``json.loads`` with every way the text can be bad turned into one :class:`DataError` naming ``source``.

    Bad: not UTF-8, not JSON, nested too deeply for the parser (``RecursionError``), an integer past Python's
    digit limit (``ValueError``).

    Example:
        >>> parse_json("[" * 100000, "x.json")
        Traceback (most recent call last):
        ...
        actionbank_env.errors.DataError: x.json is not valid JSON: nested too deeply (Python's parser limit).
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise DataError(f"{source} is not valid JSON: not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{source} is not valid JSON: {exc}.") from None
    except RecursionError:
        raise DataError(f"{source} is not valid JSON: nested too deeply (Python's parser limit).") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise DataError(f"{source} is not valid JSON: {str(exc)[:200]}.") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file in the error when it is not valid JSON (:func:`parse_json`) or too large."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(f"{p} must be at most {MAX_JSON_BYTES} bytes of JSON, got {size}.")
    return parse_json(p.read_bytes(), str(p))
