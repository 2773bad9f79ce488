"""The released Action100M format: its Arrow schema, its files (parquet and JSON), its tree rules."""

from .files import (
    NotReleaseFile,
    dataset_files,
    iter_dataset,
    parquet_bytes,
    read_dataset,
    read_release_rows,
    read_rows,
    write_json,
    write_parquet,
)
from .rules import Violation, check_video
from .schema import GPT_SCHEMA, METADATA_SCHEMA, NODE_SCHEMA, RELEASE_SCHEMA

__all__ = [
    "GPT_SCHEMA",
    "METADATA_SCHEMA",
    "NODE_SCHEMA",
    "RELEASE_SCHEMA",
    "NotReleaseFile",
    "Violation",
    "check_video",
    "dataset_files",
    "iter_dataset",
    "parquet_bytes",
    "read_dataset",
    "read_release_rows",
    "read_rows",
    "write_json",
    "write_parquet",
]
