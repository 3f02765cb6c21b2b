"""Reading survey files; writing results atomically, file by file and folder by folder.

* :func:`read_table` reads CSV, Parquet, Stata and SPSS files (duplicated column names refused);
* :func:`check_output_dir` refuses an output folder that cannot be created or written, before
  any work starts, and creates nothing;
* :class:`StagedFolder` builds a results folder in a temporary folder and moves it into place at
  the end, so that an interrupted or failed command leaves the previous results as they were
  (what a results folder may hold about respondents: :mod:`bayes_nsum.disclosure`);
* :func:`atomic_write` and the ``write_*`` helpers write one file through a temporary file.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DataError, OutputError

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
            header = _csv_header(path)
            df = pd.read_csv(path)
        else:
            if kind == "parquet":
                df = pd.read_parquet(path)
            elif kind == "stata":
                df = pd.read_stata(path, convert_categoricals=False)
            else:
                import pyreadstat

                df, _meta = pyreadstat.read_sav(str(path))
            header = [str(c) for c in df.columns]
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear line
        text = " ".join(str(exc).split())[:200]
        raise DataError(f"{what} file {path}: could not be read as {kind}: {text}") from None
    twice = [c for c, k in Counter(header).items() if k > 1 and c.strip()]
    if twice:
        raise DataError(
            f"{what} file {path}: column name(s) {', '.join(repr(c) for c in twice[:5])} appear "
            "more than once; give every column its own name"
        )
    return df


def read_rows(path: Path, what: str, kind: str, index_name: str) -> tuple[pd.DataFrame, str]:
    """:func:`read_table` for a table of people (respondents, hidden-sample members): refused
    when empty, rows labelled by position (1 = first row) under ``index_name``, so that every
    message names rows by position, never by an id. Returns the table and the place name
    ("survey survey.csv") messages start with."""
    df = read_table(path, kind)
    where = f"{what} {path.name}"
    if len(df) == 0:
        raise DataError(f"{where}: the {what} has no rows")
    df = df.reset_index(drop=True)
    df.index = pd.RangeIndex(1, len(df) + 1, name=index_name)
    return df, where


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file as written (pandas renames a repeated name ``a.1``)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        return next(csv.reader(fh), [])


# ---------------------------------------------------------------------------------------------
# output folders
# ---------------------------------------------------------------------------------------------


def _fail(what: str, path: Path, why: str) -> OutputError:
    return OutputError(f"{what} {path}: {why}; choose another folder (--out or [output] dir)")


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Refuse an output folder that cannot be created or written; create nothing.

    Checked: no file, broken symbolic link or symbolic-link loop in the way; the folder itself
    (when it exists) or else its nearest existing parent is a writable folder (tried with an
    unnamed temporary file, which leaves no trace).

    Returns
    -------
    Path
        The folder as an absolute path.

    Raises
    ------
    OutputError
        One line naming the folder and why it cannot be written.
    """
    given = Path(path)
    target = Path(os.path.abspath(given))
    probe = target
    while True:
        try:
            st = os.stat(probe)
        except FileNotFoundError:
            if os.path.lexists(probe):
                raise _fail(what, given, f"{probe} is a broken symbolic link") from None
            if probe.parent == probe:
                raise _fail(what, given, "no existing parent folder") from None
            probe = probe.parent
            continue
        except NotADirectoryError:
            in_way = next((p for p in [*reversed(target.parents), target] if p.is_file()), probe)
            raise _fail(what, given, f"{in_way} is a file, not a folder") from None
        except OSError as exc:
            why = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror
            raise _fail(what, given, f"cannot be reached ({why})") from None
        break
    if not stat.S_ISDIR(st.st_mode):
        raise _fail(what, given, f"{probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _fail(what, given, f"{probe} is not writable")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise _fail(what, given, f"cannot write in {probe} ({exc.strerror})") from None
    return target


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) for the duration of a short critical step (moving a finished
    results folder into place), then raise it. Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if got:
        raise KeyboardInterrupt


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StagedFolder:
    """Build a results folder beside (or inside) its target and move it into place at the end.

    Used as a context manager: files are written into :attr:`path`; on a normal exit the
    entries move into ``target`` (a new folder is renamed into place in one step; in an
    existing folder every entry the command owns is replaced and other entries, e.g. another
    command's results or subfolders, are left alone). On an exception, Ctrl-C included, the
    staging folder is removed (unless :attr:`keep` was set) and ``target`` is untouched.

    Parameters
    ----------
    target : path
        The results folder.
    owns : collection of str
        Names of entries the command writes: in an existing ``target`` these are removed
        (stale files of an earlier run, e.g. a ``restricted/`` folder that this run does not
        write) and replaced by the new entries.
    """

    def __init__(self, target: str | Path, owns: Collection[str] = ()) -> None:
        self.target = Path(target)
        self.owns = set(owns)
        self.path: Path | None = None
        #: keep the staging folder on failure (e.g. it holds a posterior that must not be lost)
        self.keep = False

    def __enter__(self) -> StagedFolder:
        t = self.target
        if t.is_dir():
            self.path = Path(tempfile.mkdtemp(prefix=".partial-", dir=t))
        else:
            t.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f".{t.name}.partial-", dir=t.parent))
        os.chmod(self.path, 0o777 & ~_umask())
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            with deferred_interrupt():
                self._commit()  # on failure the staging folder stays, for the caller to name
        elif not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)

    def _commit(self) -> None:
        t, stage = self.target, self.path
        if not os.path.lexists(t):
            os.rename(stage, t)
            return
        new = {e.name for e in stage.iterdir()}
        trash = Path(tempfile.mkdtemp(prefix=".replaced-", dir=t))
        for entry in list(t.iterdir()):
            if entry.name in new or entry.name in self.owns:
                if entry != stage and entry != trash:
                    os.rename(entry, trash / entry.name)
        for name in new:
            os.rename(stage / name, t / name)
        stage.rmdir()
        shutil.rmtree(trash, ignore_errors=True)


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
