"""Reading survey files and writing results atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DataError

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".dta": "stata", ".sav": "spss"}


def read_table(path: str | Path, what: str = "file") -> pd.DataFrame:
    """Read a CSV, Parquet, Stata (.dta) or SPSS (.sav) file into a DataFrame.

    Parameters
    ----------
    path : path to the file; the format is chosen by its extension.
    what : what the file is (for error messages), e.g. ``"survey"``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{what} file {path}: unsupported format '{path.suffix}' "
            f"(use {', '.join(sorted(READERS))})"
        )
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "stata":
            return pd.read_stata(path, convert_categoricals=False)
        import pyreadstat

        df, _meta = pyreadstat.read_sav(str(path))
        return df
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear line
        raise DataError(f"{what} file {path}: could not be read as {kind}: {exc}") from None


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def frame_hash(df: pd.DataFrame) -> str:
    """A content hash of a DataFrame (values, index and column names)."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(df, index=True).values.tobytes())
    h.update(",".join(map(str, df.columns)).encode())
    return h.hexdigest()[:16]


def atomic_write(path: str | Path, writer: Callable[[Path], Any]) -> Path:
    """Write a file through ``writer(tmp_path)`` then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def write_json(obj: Any, path: str | Path) -> Path:
    return atomic_write(
        path,
        lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable)),
    )


def write_text(text: str, path: str | Path) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
