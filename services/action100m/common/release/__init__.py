"""The released Action100M format: its Arrow schema, its files (parquet and JSON), its tree rules."""

from .files import read_rows, write_json, write_parquet
from .rules import Violation, check_video
from .schema import GPT_SCHEMA, METADATA_SCHEMA, NODE_SCHEMA, RELEASE_SCHEMA

__all__ = [
    "GPT_SCHEMA",
    "METADATA_SCHEMA",
    "NODE_SCHEMA",
    "RELEASE_SCHEMA",
    "Violation",
    "check_video",
    "read_rows",
    "write_json",
    "write_parquet",
]
