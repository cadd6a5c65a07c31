"""Reading and writing the user's own data files.

These functions sit behind the command-line tool, whose users have a spreadsheet saved as CSV
and may never have written Python.  So every problem with a file becomes a :class:`DataError`
with a one-line message that names the file, the column, the row and the value, and says what
was expected.  Row numbers count data rows the way a person reads the file: row 1 is the first
line after the header.

Formats
-------
* Delimited text (``.csv``, ``.tsv``, ``.txt``, anything else): the first non-empty line is the
  header.  The delimiter is ``delimiter=`` when given, a tab for ``.tsv``/``.tab``, and otherwise
  detected among comma, semicolon, tab and ``|`` (then spaces).  UTF-8 (with or without a BOM),
  UTF-16 with a BOM, and Windows-1252 text are read.
* ``.npz`` (numpy.savez): array ``X`` of shape (n_samples, n_features), optional ``y`` of shape
  (n_samples,) and optional ``feature_names``.  Columns are named ``x1``..``xd`` (or
  ``feature_names``) and ``y``.
* ``.parquet``: needs the optional package pyarrow.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import numbers
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from chainrule._files import write_atomic
from chainrule.errors import DataError

__all__ = [
    "Table",
    "read_table",
    "prepare",
    "infer_task",
    "write_table",
    "MISSING_MARKERS",
    "MAX_CLASSES",
]

#: Cell contents (compared case-insensitively, after stripping spaces) that mean "no value".
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a"})

#: A numeric target with at most this many distinct values, all whole numbers, is taken as
#: class labels by :func:`infer_task`.
MAX_CLASSES = 20

_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
_SPREADSHEET_EXTENSIONS = (".xlsx", ".xls", ".xlsm", ".xlsb", ".ods", ".numbers")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")


@dataclass(repr=False)
class Table:
    """The raw contents of a data file, column by column.

    Attributes
    ----------
    path : str
        The file as the user named it (used in error messages).
    columns : list of str
        Column names in file order.
    data : dict of str to ndarray of shape (n_rows,)
        ``data[name]`` holds that column: an object array of stripped strings for text files,
        float64 (NaN for missing) or object arrays for ``.npz`` and ``.parquet`` files.
    row_numbers : ndarray of shape (n_rows,), int64
        Data row number of each stored row as a person counts them (1 = first row after the
        header); defaults to 1..n_rows.  Lines that are entirely empty are not stored, but they
        are counted, so the numbers still match the file.
    delimiter : str or None
        The delimiter of a text file, None for other formats.
    """

    path: str
    columns: list[str]
    data: dict[str, np.ndarray]
    row_numbers: np.ndarray | None = None
    delimiter: str | None = field(default=None)

    def __post_init__(self):
        if self.row_numbers is None:
            self.row_numbers = np.arange(1, self.n_rows + 1, dtype=np.int64)

    @property
    def n_rows(self) -> int:
        return len(self.data[self.columns[0]]) if self.columns else 0

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return f"Table(path={self.path!r}, n_rows={self.n_rows}, columns={self.columns!r})"


# ---------------------------------------------------------------------------------------------
# read_table
# ---------------------------------------------------------------------------------------------


def read_table(path, delimiter: str | None = None) -> Table:
    """Read a CSV/TSV/delimited text, ``.npz`` or ``.parquet`` file into a :class:`Table`.

    Parameters
    ----------
    path : str or os.PathLike
    delimiter : str or None
        One character (``"\\t"`` or ``"tab"`` mean a tab).  None: a tab for ``.tsv`` files,
        otherwise detected from the first lines of the file.

    Raises
    ------
    DataError
        File missing, a folder, empty, header without data rows, a header cell without a name,
        a repeated column name, a row with more or fewer fields than the header, or a file
        that cannot be decoded.
    """
    name = os.fspath(path)
    if not isinstance(name, str):
        name = os.fsdecode(name)
    if not os.path.exists(name):
        raise DataError(f"file not found: {name}")
    if os.path.isdir(name):
        raise DataError(f"{name} is a folder, not a file; expected a data file such as data.csv")
    if not os.path.isfile(name):
        raise DataError(
            f"{name} is not a regular file (a pipe, device or socket); expected a "
            "data file such as data.csv"
        )
    ext = os.path.splitext(name)[1].lower()
    if ext in _SPREADSHEET_EXTENSIONS:
        raise DataError(
            f"{name} is a spreadsheet file, which cannot be read directly; "
            "expected CSV: save it as CSV from your spreadsheet program and use that file"
        )
    if ext == ".npy":
        raise DataError(
            f"{name} is a .npy file, which cannot be read; expected .csv, .tsv, .npz "
            "(numpy.savez(path, X=..., y=...)) or .parquet"
        )
    if ext == ".npz":
        return _read_npz(name)
    if ext in (".parquet", ".pq"):
        return _read_parquet(name)
    if delimiter is None and ext in (".tsv", ".tab"):
        delimiter = "\t"
    return _read_text(name, delimiter)


def _read_bytes(name: str) -> bytes:
    try:
        with open(name, "rb") as f:
            return f.read()
    except PermissionError:
        raise DataError(f"cannot read {name}: permission denied") from None
    except OSError as exc:
        raise DataError(f"cannot read {name}: {exc.strerror or exc}") from None


def _decode(name: str, raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16").lstrip("\ufeff")
        except UnicodeDecodeError:
            raise DataError(
                f"{name} starts like UTF-16 text but cannot be decoded; "
                "expected a text file saved as CSV"
            ) from None
    if b"\x00" in raw:
        raise DataError(
            f"{name} does not look like a text file (it contains NUL bytes); "
            "expected a CSV text file"
        )
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def _resolve_delimiter(delimiter: str) -> str:
    if not isinstance(delimiter, str):
        raise DataError(f"delimiter must be a single character, got {delimiter!r}")
    if delimiter.lower() in ("\\t", "tab"):
        return "\t"
    if len(delimiter) != 1 or delimiter in ('"', "\n", "\r"):
        raise DataError(
            f"delimiter must be a single character such as ',' or ';', got {delimiter!r}"
        )
    return delimiter


def _field_counts(lines: list[str], delimiter: str) -> list[int]:
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=(delimiter == " "))
    counts = []
    try:
        for record in reader:
            while record and record[-1].strip() == "":  # trailing delimiters do not count
                record = record[:-1]
            if record:
                counts.append(len(record))
    except csv.Error:
        return []
    return counts


def _detect_delimiter(text: str) -> str:
    """Pick the candidate that splits the header into most columns that the rows agree with."""
    lines = [ln for ln in text.splitlines() if ln.strip()][:50]
    best, best_score = ",", None
    for rank, cand in enumerate(_CANDIDATE_DELIMITERS):
        counts = _field_counts(lines, cand)
        if not counts or counts[0] < 2:
            continue
        agree = sum(c == counts[0] for c in counts) / len(counts)
        score = (agree, counts[0], -rank)
        if best_score is None or score > best_score:
            best, best_score = cand, score
    if best_score is None:
        counts = _field_counts(lines, " ")
        if counts and counts[0] >= 2 and all(c == counts[0] for c in counts):
            return " "
    return best


def _read_text(name: str, delimiter: str | None) -> Table:
    raw = _read_bytes(name)
    if not raw.strip():
        raise DataError(f"{name} is empty; expected a header line and data rows")
    text = _decode(name, raw)
    if not text.strip():
        raise DataError(f"{name} is empty; expected a header line and data rows")
    delim = _resolve_delimiter(delimiter) if delimiter is not None else _detect_delimiter(text)
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delim, skipinitialspace=(delim == " ")
    )
    header = None
    rows: list[list[str]] = []
    numbers_: list[int] = []
    row_number = 0
    try:
        for record in reader:
            cells = [c.strip() for c in record]
            blank = not any(cells)
            if header is None:
                if not blank:
                    header = cells
                    while header and header[-1] == "":
                        header.pop()
                    _check_header(name, header)
                continue
            row_number += 1
            if blank:
                continue
            if len(cells) > len(header) and not any(cells[len(header) :]):
                cells = cells[: len(header)]  # trailing empty fields, e.g. "1,2,3,"
            if len(cells) != len(header):
                hint = ""
                if len(cells) > len(header) and delim in ",;":
                    hint = f" (a value that contains '{delim}' must be in double quotes)"
                raise DataError(
                    f"row {row_number} of {name} has {len(cells)} fields, the header has "
                    f"{len(header)}{hint}"
                )
            rows.append(cells)
            numbers_.append(row_number)
    except csv.Error as exc:
        raise DataError(f"{name}: cannot read line {reader.line_num}: {exc}") from None
    if not rows:
        raise DataError(f"{name} has a header but no data rows")
    assert header is not None  # data rows are only read after the header
    data = {col: np.array([r[j] for r in rows], dtype=object) for j, col in enumerate(header)}
    return Table(
        path=name,
        columns=header,
        data=data,
        row_numbers=np.asarray(numbers_, dtype=np.int64),
        delimiter=delim,
    )


def _check_header(name: str, columns: list[str]) -> None:
    seen: dict[str, int] = {}
    for j, col in enumerate(columns, start=1):
        if col == "":
            raise DataError(
                f"column {j} of {name} has no name in the header line; expected a name for "
                "every column"
            )
        if col in seen:
            raise DataError(
                f"column name '{col}' appears twice in {name} (columns {seen[col]} and {j}); "
                "expected every column name to be different"
            )
        seen[col] = j


def _column_array(values: np.ndarray) -> np.ndarray:
    """Numbers become float64, anything else an object array of strings (None stays None)."""
    if values.dtype == bool or np.issubdtype(values.dtype, np.number):
        return values.astype(np.float64)
    return np.array([None if v is None else str(v).strip() for v in values.tolist()], dtype=object)


def _check_npz_sizes(name: str, archive) -> None:
    """Refuse an archive whose arrays unpack to more memory than there is (a small .npz can
    declare gigabytes): the sizes are read from the zip directory before anything is unpacked."""
    from chainrule._memory import check_memory

    zf = getattr(archive, "zip", None)
    if zf is None:
        return
    total = sum(info.file_size for info in zf.infolist())
    check_memory(total, f"{name} (its arrays unpack to {total:,} bytes)", DataError)
    packed = sum(info.compress_size for info in zf.infolist())
    if total > 1 << 26 and total > 200 * max(packed, 1):
        raise DataError(
            f"{name} unpacks {packed:,} bytes into {total:,} (more than 200 times "
            "larger): refusing a likely decompression bomb"
        )


def _npz_reader(archive, name: str):
    """get(key): one array of the archive; anything unreadable (damaged, pickled objects) is a
    DataError naming the array and the file."""
    import zipfile
    import zlib

    def get(key):
        try:
            return archive[key]
        except ValueError as exc:
            if "allow_pickle" not in str(exc):
                raise DataError(
                    f"array '{key}' in {name} cannot be read ({exc}); the file "
                    "is damaged or not made by numpy.savez"
                ) from None
            raise DataError(
                f"array '{key}' in {name} holds Python objects, which are not loaded for "
                "safety; expected plain numeric or text arrays"
            ) from None
        except (
            OSError,
            EOFError,
            zipfile.BadZipFile,
            NotImplementedError,
            RuntimeError,
            MemoryError,
            zlib.error,
        ) as exc:
            raise DataError(
                f"array '{key}' in {name} cannot be read ({type(exc).__name__}: "
                f"{str(exc)[:100]}); the file is damaged or not made by "
                "numpy.savez"
            ) from None

    return get


def _check_npz_arrays(name: str, X, y) -> None:
    """X and y hold real numbers or text, and X is a non-empty 2-D table."""
    for key, arr in (("X", X), ("y", y)):
        if arr is not None and arr.dtype.kind == "c":
            bad = np.argwhere(np.imag(arr) != 0)
            where = (
                f" (element {tuple(int(i) for i in bad[0])} is {arr[tuple(bad[0])]})"
                if len(bad)
                else ""
            )
            raise DataError(
                f"array '{key}' in {name} holds complex numbers{where}; expected "
                "real numbers (take the real part or the magnitude yourself)"
            )
        if arr is not None and arr.dtype.kind not in "biufUS":
            raise DataError(
                f"array '{key}' in {name} has dtype {arr.dtype}; expected numbers or text"
            )
    if X.ndim != 2:
        raise DataError(
            f"array 'X' in {name} has shape {X.shape}; expected 2-D (n_samples, n_features)"
        )
    if X.shape[1] == 0:
        raise DataError(f"array 'X' in {name} has no columns; expected at least one feature")
    if X.shape[0] == 0:
        raise DataError(f"{name} has no data rows (array 'X' has shape {X.shape})")


def _npz_feature_names(name: str, X, names) -> list:
    """The archive's feature_names (one per column of X), or x1, x2, ..."""
    if names is None:
        return [f"x{j + 1}" for j in range(X.shape[1])]
    names = np.asarray(names).reshape(-1)
    if names.shape[0] != X.shape[1]:
        raise DataError(
            f"array 'feature_names' in {name} has {names.shape[0]} names but 'X' has "
            f"{X.shape[1]} columns; expected one name per column"
        )
    return [str(v).strip() for v in names.tolist()]


def _read_npz(name: str) -> Table:
    import zipfile
    import zlib

    try:
        archive = np.load(name, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{name} is not a readable .npz file ({exc}); expected a file made "
            "by numpy.savez(path, X=..., y=...)"
        ) from None
    with archive:
        keys = list(archive.files)
        get = _npz_reader(archive, name)
        if "X" not in keys:
            raise DataError(
                f"{name} has no array named 'X' (it has: {', '.join(keys) or 'nothing'}); "
                "expected X of shape (n_samples, n_features) and optionally y"
            )
        _check_npz_sizes(name, archive)
        X = get("X")
        y = get("y") if "y" in keys else None
        names = get("feature_names") if "feature_names" in keys else None
    _check_npz_arrays(name, X, y)
    columns = _npz_feature_names(name, X, names)
    data = {col: _column_array(X[:, j]) for j, col in enumerate(columns)}
    if y is not None:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataError(
                f"array 'y' in {name} has shape {y.shape} but 'X' has {X.shape[0]} rows; "
                f"expected y of shape ({X.shape[0]},)"
            )
        columns = columns + ["y"]
        _check_header(name, columns)
        data["y"] = _column_array(y)
    else:
        _check_header(name, columns)
    return Table(path=name, columns=columns, data=data)


def _read_parquet(name: str) -> Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"reading {name} needs pyarrow, which is not installed: pip install pyarrow"
        ) from None
    try:
        table = pq.read_table(name)
    except Exception as exc:  # pyarrow raises several of its own error types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name} is not a readable Parquet file ({reason})") from None
    columns = [str(c) for c in table.column_names]
    if not columns:
        raise DataError(f"{name} is empty; expected at least one column")
    _check_header(name, columns)
    if table.num_rows == 0:
        raise DataError(f"{name} has a header but no data rows")
    data = {}
    for col, chunked in zip(columns, table.columns, strict=False):
        t = chunked.type
        if (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_decimal(t)
        ):
            # safe=False: a uint64 or int64 beyond 2**53 becomes the nearest float64
            values = chunked.cast(pa.float64(), safe=False).to_numpy()  # nulls become NaN
            data[col] = np.asarray(values, dtype=np.float64)
        elif not (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_dictionary(t)
            or pa.types.is_null(t)
        ):
            raise DataError(
                f"column '{col}' of {name} has Parquet type {t}; expected numbers, "
                "true/false or text in each cell (lists, structs, dates and binary "
                "columns are not read)"
            )
        else:
            data[col] = np.array(
                [v.strip() if isinstance(v, str) else v for v in chunked.to_pylist()],
                dtype=object,
            )
    return Table(path=name, columns=columns, data=data)


# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------


def _missing_mask(values: np.ndarray) -> np.ndarray:
    if values.dtype != object:
        if np.issubdtype(values.dtype, np.floating):
            return np.isnan(values)
        return np.zeros(len(values), dtype=bool)
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        if v is None:
            out[i] = True
        elif isinstance(v, str):
            out[i] = v.strip().lower() in MISSING_MARKERS
        elif isinstance(v, float) and math.isnan(v):
            out[i] = True
    return out


def _describe_missing(value) -> str:
    if isinstance(value, str):
        return "empty cell" if value.strip() == "" else f"missing value '{value}'"
    return f"missing value ({value})"


def _parse_number(value, decimal_comma: bool) -> float | None:
    """The float a cell holds, or None when it is not a number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if decimal_comma and _DECIMAL_COMMA.fullmatch(text):
        return float(text.replace(",", "."))
    return None


def _to_float(
    values: np.ndarray, col: str, rows: np.ndarray, name: str, decimal_comma: bool
) -> np.ndarray:
    """Parse one feature column into float64, or raise naming the first bad cell."""
    if values.dtype != object:
        out = values.astype(np.float64)
    else:
        try:
            out = values.astype(np.float64)  # fast path: every cell is plain numeric text
        except (ValueError, TypeError):
            out = np.empty(len(values), dtype=np.float64)
            for i, v in enumerate(values.tolist()):
                number = _parse_number(v, decimal_comma)
                if number is None:
                    raise DataError(
                        f"column '{col}', row {rows[i]} of {name}: '{v}' is not a number "
                        "(feature columns must hold numbers)"
                    ) from None
                out[i] = number
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"column '{col}', row {rows[i]} of {name}: '{values[i]}' is not a finite number; "
            "expected an ordinary number"
        )
    return out


def _target_values(
    values: np.ndarray, col: str, rows: np.ndarray, name: str, decimal_comma: bool
) -> np.ndarray:
    """float64 when every target cell is a number, else an object array of strings."""
    if values.dtype != object:
        out = values.astype(np.float64)
    else:
        parsed = [_parse_number(v, decimal_comma) for v in values.tolist()]
        if any(p is None for p in parsed):
            return np.array([str(v).strip() for v in values.tolist()], dtype=object)
        out = np.asarray(parsed, dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"column '{col}', row {rows[i]} of {name}: '{values[i]}' is not a finite number; "
            "expected an ordinary number or a label"
        )
    return out


def _as_names(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        names = list(value)
    except TypeError:
        raise DataError(
            f"{what} must be a column name or a list of column names, got {value!r}"
        ) from None
    for v in names:
        if not isinstance(v, str):
            raise DataError(f"{what} must be column names (text), got {v!r}")
    return names


def _column_finder(table: Table):
    """need(col, role): raise naming the file's columns (and a near miss) when ``col`` is not
    one of them."""
    known = set(table.columns)

    def need(col: str, role: str) -> None:
        if col not in known:
            near = [c for c in table.columns if c.strip().lower() == col.strip().lower()]
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise DataError(
                f"{role} column '{col}' not found in {table.path}{hint}; columns are: "
                f"{', '.join(table.columns)}"
            )

    return need


def _choose_columns(table: Table, target, features, id_columns) -> list:
    """The feature columns: those given (each once, neither the target nor an id), or every
    column except the target and the id columns. Checks the target and id columns exist."""
    name, need = table.path, _column_finder(table)
    if target is not None:
        if not isinstance(target, str):
            raise DataError(f"target must be a column name, got {target!r}")
        need(target, "target")
    ids = _as_names(id_columns, "id_columns")
    for col in ids:
        need(col, "id")
        if col == target:
            raise DataError(
                f"column '{col}' of {name} is both the target and an id column; "
                "expected the target to be a column that is not an id"
            )
    if features is None:
        feats = [c for c in table.columns if c != target and c not in ids]
        if not feats:
            raise DataError(
                f"{name} has no feature columns left: every column is the target or an id "
                f"column; columns are: {', '.join(table.columns)}"
            )
        return feats
    feats = _as_names(features, "features")
    if not feats:
        raise DataError("features is an empty list; expected at least one column name")
    for col in feats:
        need(col, "feature")
    seen = set()
    for col in feats:
        if col in seen:
            raise DataError(f"feature column '{col}' is listed twice; expected each once")
        seen.add(col)
        if col == target:
            raise DataError(
                f"column '{col}' of {name} is both the target and a feature; "
                "expected the target to be left out of the features"
            )
        if col in ids:
            raise DataError(f"column '{col}' of {name} is both an id column and a feature")
    return feats


def _complete_rows(table: Table, used: list, target, drop_missing: bool) -> np.ndarray:
    """The rows to keep (a boolean mask): those without a missing value in the ``used``
    columns. A missing value is an error naming its column and row, unless ``drop_missing``."""
    name = table.path
    rows = np.asarray(table.row_numbers, dtype=np.int64)
    masks = {col: _missing_mask(table.data[col]) for col in used}
    any_missing = np.zeros(table.n_rows, dtype=bool)
    for m in masks.values():
        any_missing |= m
    if any_missing.any() and not drop_missing:
        i = int(np.argmax(any_missing))
        ordered = [c for c in table.columns if c in masks]  # report in file order
        col = next(c for c in ordered if masks[c][i])
        expected = "a number" if col != target else "a target value"
        n_bad = int(any_missing.sum())
        raise DataError(
            f"column '{col}', row {rows[i]} of {name}: {_describe_missing(table.data[col][i])}; "
            f"expected {expected} ({n_bad} {'rows have' if n_bad != 1 else 'row has'} missing "
            "values: fill them in or drop those rows)"
        )
    keep = ~any_missing
    if not keep.any():
        raise DataError(
            f"every row of {name} has a missing value in the columns used "
            f"({', '.join(used)}); no rows are left after dropping them"
        )
    return keep


def _feature_matrix(table: Table, feats, keep, kept_rows, decimal_comma) -> np.ndarray:
    """The kept rows of the feature columns as float32 (a value beyond float32 is an error)."""
    name = table.path
    X = np.empty((int(keep.sum()), len(feats)), dtype=np.float32)
    for j, col in enumerate(feats):
        values = table.data[col][keep]
        column = _to_float(values, col, kept_rows, name, decimal_comma)
        too_big = np.abs(column) > np.finfo(np.float32).max  # checked before the cast warns
        if not too_big.any():
            X[:, j] = column
        else:
            i = int(np.argmax(too_big))
            raise DataError(
                f"column '{col}', row {kept_rows[i]} of {name}: '{values[i]}' is too large; "
                "expected a number within +-3.4e38"
            )
    return X


def prepare(
    table: Table,
    target: str | None = None,
    features=None,
    drop_missing: bool = False,
    id_columns=(),
):
    """Turn a :class:`Table` into a float32 feature matrix and the raw target values.

    Parameters
    ----------
    table : Table
        From :func:`read_table`.
    target : str or None
        Name of the column to predict; None when there is none (e.g. for prediction).
    features : list of str or None
        Columns to use as inputs, in this order.  Default: every column except the target and
        the id columns.
    drop_missing : bool
        Drop every row with a missing value in a feature or the target column instead of
        raising.  Missing values are empty cells and NA, N/A, NaN, null, None, ?, #N/A (any case).
    id_columns : str or sequence of str
        Columns that identify rows (names, ids) and must not be used as features.

    Returns
    -------
    X : ndarray of shape (n_kept, n_features), float32
    y : ndarray of shape (n_kept,) or None
        float64 when every target value is a number, otherwise an object array of strings;
        None when ``target`` is None.
    feature_names : list of str, length n_features
    kept_row_numbers : ndarray of shape (n_kept,), int64
        Data row numbers (1 = first row after the header) of the rows that were kept.

    Notes
    -----
    When the text file's delimiter is not a comma, numbers written with a decimal comma
    (``1,5``) are read as ``1.5``.
    """
    if not isinstance(table, Table):
        raise DataError(f"prepare expects a Table from read_table, got {type(table).__name__}")
    feats = _choose_columns(table, target, features, id_columns)
    used = feats + ([target] if target is not None else [])
    keep = _complete_rows(table, used, target, drop_missing)
    kept_rows = np.asarray(table.row_numbers, dtype=np.int64)[keep]
    decimal_comma = table.delimiter not in (None, ",")
    X = _feature_matrix(table, feats, keep, kept_rows, decimal_comma)
    y = None
    if target is not None:
        y = _target_values(table.data[target][keep], target, kept_rows, table.path, decimal_comma)
    return X, y, list(feats), kept_rows


# ---------------------------------------------------------------------------------------------
# infer_task
# ---------------------------------------------------------------------------------------------


def infer_task(y_raw) -> str:
    """Guess whether a target column asks for classification or regression.

    The rule: text labels (any value that is not a number) or true/false values mean
    ``"classification"``; numbers that are all whole and take at most ``MAX_CLASSES`` (20)
    distinct values also mean ``"classification"``; any other numbers mean ``"regression"``.
    So ``0/1``, ``1..5`` or ``"cat"/"dog"`` are classes, while ``3.7`` or 50 distinct whole
    numbers are a quantity.

    Parameters
    ----------
    y_raw : array-like of shape (n_samples,)
        Raw target values, e.g. the ``y`` returned by :func:`prepare`.
    """
    arr = np.asarray(y_raw)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataError(f"infer_task expects a 1-D target, got shape {arr.shape}")
    if arr.size == 0:
        raise DataError("cannot tell the task from an empty target; expected at least one value")
    if arr.dtype == bool:
        return "classification"
    if np.issubdtype(arr.dtype, np.number):
        values = arr.astype(np.float64)
    else:
        parsed = []
        for v in arr.tolist():
            if isinstance(v, bool):
                return "classification"
            number = _parse_number(v, decimal_comma=False)
            if number is None:
                return "classification"
            parsed.append(number)
        values = np.asarray(parsed, dtype=np.float64)
    whole = np.all(np.isfinite(values) & (values == np.round(values)))
    if whole and len(np.unique(values)) <= MAX_CLASSES:
        return "classification"
    return "regression"


# ---------------------------------------------------------------------------------------------
# write_table
# ---------------------------------------------------------------------------------------------


def _format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "NaN"
        if isinstance(value, np.floating):
            return str(value)  # numpy prints the shortest form for its own precision
        return repr(value)
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    ):
        return str(int(value))
    return str(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a
    carriage return; OWASP's CSV-injection advice) gets a leading apostrophe, so that it is shown
    as text; numbers such as -1.5 are left as they are."""
    if text and text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def write_table(path, columns: Mapping, safe: bool = True) -> str:
    """Write columns to a CSV file (a tab-separated file when the name ends in ``.tsv``).

    The file is written to a temporary file in the same folder and then moved over ``path``
    in one step (``os.replace``), so a reader never sees half a file and an existing file is
    either fully replaced or left untouched.

    Parameters
    ----------
    path : str or os.PathLike
    columns : mapping of str to array-like of shape (n_rows,)
        Column name to values, in the order they should appear.  All the same length.
    safe : bool
        Text cells that start with ``=``, ``+``, ``-``, ``@`` (a spreadsheet would run them as
        formulas) are written with a leading apostrophe; numbers are left alone. ``False``
        writes every cell as it is.

    Returns
    -------
    str
        The path written.
    """
    name = os.fspath(path)
    if not isinstance(columns, Mapping) or not columns:
        raise DataError(
            "write_table needs a dict of column name -> values with at least one column"
        )
    arrays = {}
    n_rows = None
    first = None
    for col, values in columns.items():
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise DataError(
                f"column '{col}' for {name} has shape {arr.shape}; expected a 1-D list of values"
            )
        if n_rows is None:
            n_rows, first = len(arr), col
        elif len(arr) != n_rows:
            raise DataError(
                f"column '{col}' for {name} has {len(arr)} values but column "
                f"'{first}' has {n_rows}; expected the same number"
            )
        arrays[str(col)] = arr
    if os.path.isdir(name):
        raise DataError(
            f"cannot write {name}: it is a folder; expected a file name such as predictions.csv"
        )
    delimiter = "\t" if os.path.splitext(name)[1].lower() == ".tsv" else ","
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow([_safe_cell(c) if safe else c for c in arrays])
    cells = [[_format_cell(v) for v in arr] for arr in arrays.values()]
    if safe:
        cells = [[_safe_cell(v) for v in col] for col in cells]
    writer.writerows(zip(*cells, strict=False))
    write_atomic(name, buf.getvalue(), DataError)
    return name
