"""Reading and writing release rows (one dict per video) as parquet or as the official JSON layout.

The official JSON layout is columnar: `{"video_uid": [...], "metadata": [...], "nodes": [[...], ...]}`.
Both writers go through the Arrow schema, so JSON floats are the float32 values the parquet holds.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import RELEASE_SCHEMA

Row = dict[str, Any]
T = TypeVar("T")
ROW_GROUP_ROWS = 64  # videos per parquet row group: a reader (the viewer) takes one video without the whole file


def to_table(rows: Iterable[Row]) -> pa.Table:
    """Rows as an Arrow table of exactly the release schema (missing fields become null)."""
    return pa.Table.from_pylist(list(rows), schema=RELEASE_SCHEMA)


def _write_parquet(rows: Iterable[Row], sink: str | io.BytesIO) -> None:
    pq.write_table(to_table(rows), sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def write_parquet(rows: Iterable[Row], path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_parquet(rows, str(path))
    return path


def parquet_bytes(rows: Iterable[Row]) -> bytes:
    """The parquet file `write_parquet` writes, as bytes (for a store)."""
    buffer = io.BytesIO()
    _write_parquet(rows, buffer)
    return buffer.getvalue()


def write_json(rows: Iterable[Row], path: str | os.PathLike[str]) -> Path:
    table = to_table(rows)
    columnar = {name: table.column(name).to_pylist() for name in RELEASE_SCHEMA.names}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(columnar, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_rows(path: str | os.PathLike[str]) -> list[Row]:
    """Rows from a parquet file, or from JSON in the columnar layout, a list of rows, or one row."""
    path = Path(path)
    if path.suffix == ".parquet":
        rows: list[Row] = pq.read_table(path).to_pylist()
        return rows
    with open(path, encoding="utf-8") as handle:
        return _json_rows(json.load(handle), str(path))


def _json_rows(data: Any, name: str) -> list[Row]:
    if isinstance(data, dict) and isinstance(data.get("video_uid"), list):
        count = len(data["video_uid"])
        columns = {column: data.get(column) or [None] * count for column in RELEASE_SCHEMA.names}
        bad = [column for column, values in columns.items() if len(values) != count]
        if bad:
            raise ValueError(f"{name}: columns {bad} do not have {count} entries like video_uid")
        return [{column: columns[column][i] for column in RELEASE_SCHEMA.names} for i in range(count)]
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return data
    raise ValueError(f"{name}: expected a JSON object or list of rows, got {type(data).__name__}")


class NotReleaseFile(ValueError):
    """A file that is not in the release layout (a report, some other JSON or parquet)."""


def read_release_rows(path: str | os.PathLike[str]) -> list[Row]:
    """`read_rows`, refusing with a plain message anything that is not release rows."""
    try:
        rows = read_rows(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NotReleaseFile(f"{path}: not a release file (not JSON or parquet: {err})") from None
    except pa.ArrowException as err:
        raise NotReleaseFile(f"{path}: not a release file (unreadable parquet: {err})") from None
    return check_release_rows(rows, str(path))


def rows_from_bytes(data: bytes, name: str) -> list[Row]:
    """Release rows from a file's bytes (a parquet file when `name` ends in .parquet, else JSON), as
    `read_release_rows` reads them from a path: for files in an artifact store."""
    try:
        if name.endswith(".parquet"):
            return check_release_rows(pq.read_table(io.BytesIO(data)).to_pylist(), name)
        return check_release_rows(_json_rows(json.loads(data.decode("utf-8-sig")), name), name)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NotReleaseFile(f"{name}: not a release file (not JSON or parquet: {err})") from None
    except pa.ArrowException as err:
        raise NotReleaseFile(f"{name}: not a release file (unreadable parquet: {err})") from None


def check_release_rows(rows: list[Row], name: str) -> list[Row]:
    """The rows, or NotReleaseFile naming the first that is not a release row."""
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or "video_uid" not in row or not isinstance(row.get("nodes"), list):
            found = sorted(row)[:8] if isinstance(row, dict) else type(row).__name__
            raise NotReleaseFile(
                f"{name}: not a release file: row {number} needs a video_uid and a list of nodes (found {found})"
            )
    return rows


def dataset_files(location: str | os.PathLike[str]) -> list[Path]:
    """The release files of a dataset: a file, an `a100m run` output folder (its `dataset/data/`), a
    dataset folder (its `data/`), or any folder of parquet / JSON files."""
    path = Path(location)
    if path.is_file():
        return [path]
    for folder in (path / "dataset" / "data", path / "data", path):
        if folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.suffix in (".parquet", ".json") and p.is_file())
            if files:
                return files
    raise FileNotFoundError(f"{location}: no release file (parquet or JSON) found")


def read_dataset(location: str | os.PathLike[str]) -> list[Row]:
    """Release rows of a file or of every release file of a dataset folder (see `dataset_files`)."""
    return list(each_file(location, read_release_rows))


def iter_dataset(location: str | os.PathLike[str]) -> Iterator[Row]:
    """`read_dataset`'s rows, one file in memory at a time (for a pass over a large dataset)."""
    return each_file(location, read_release_rows)


def each_file(location: str | os.PathLike[str], read: Callable[[Path], list[T]]) -> Iterator[T]:
    """What `read` gives for each release file of `location` (see `dataset_files`), file after file;
    `read` raises NotReleaseFile for a file that is not release rows: a JSON file beside others is
    skipped (report.json beside the data), a parquet file (a truncated shard) or a file alone is an
    error naming it."""
    files = dataset_files(location)
    found = False
    for file in files:
        try:
            items = read(file)
        except NotReleaseFile:
            if len(files) == 1 or file.suffix == ".parquet":
                raise
            continue  # report.json and other JSON files beside the data
        found = found or bool(items)
        yield from items
    if not found:
        raise FileNotFoundError(f"{location}: no release file (parquet or JSON) found")
