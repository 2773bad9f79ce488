"""Checking files against the release: readable, exactly the release's Arrow schema, one row per
video, every tree rule. Each problem is one line naming the file; a file that cannot be read is one
problem, never the end of the check.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from action100m.common import paper

from .files import NotReleaseFile, read_release_rows, to_table
from .ids import NODE_ID_RECIPE, release_node_id
from .rules import check_video
from .schema import RELEASE_SCHEMA


def schema_problems(schema: pa.Schema) -> list[str]:
    """How a parquet file's schema differs from the release's: missing, extra and mistyped columns
    (nested fields named by their path, e.g. `nodes.start: float64, the release has float`)."""
    problems = []
    for name in RELEASE_SCHEMA.names:
        if schema.get_field_index(name) == -1:
            problems.append(f"column {name} is missing")
    for index, name in enumerate(schema.names):
        if RELEASE_SCHEMA.get_field_index(name) == -1:
            problems.append(f"column {name} is not in the release")
        else:
            problems.extend(_type_problems(name, schema.field(index).type, RELEASE_SCHEMA.field(name).type))
    return problems


def _type_problems(path: str, found: pa.DataType, wanted: pa.DataType) -> list[str]:
    if pa.types.is_list(wanted) and pa.types.is_list(found):
        return _type_problems(path, found.value_type, wanted.value_type)
    if pa.types.is_struct(wanted) and pa.types.is_struct(found):
        problems = []
        found_fields = {found.field(i).name: found.field(i).type for i in range(found.num_fields)}
        for i in range(wanted.num_fields):
            child = wanted.field(i)
            if child.name not in found_fields:
                problems.append(f"{path}.{child.name} is missing")
            else:
                problems.extend(_type_problems(f"{path}.{child.name}", found_fields[child.name], child.type))
        wanted_names = {wanted.field(i).name for i in range(wanted.num_fields)}
        problems.extend(f"{path}.{name} is not in the release" for name in found_fields if name not in wanted_names)
        return problems
    if found != wanted:
        return [f"{path}: {found}, the release has {wanted}"]
    return []


@dataclass
class Validation:
    """What `a100m validate` found over its files."""

    videos: int = 0
    problems: int = 0
    warnings: int = 0
    files: int = 0
    seen: dict[str, str] = field(default_factory=dict)  # video_uid -> the file it was first seen in


def validate_file(
    path: str | os.PathLike[str],
    result: Validation,
    min_leaf_seconds: float = paper.MIN_LEAF_SECONDS,
    min_gpt_seconds: float = paper.MIN_ANNOTATED_SECONDS,
    strict_ids: bool = False,
) -> Iterator[str]:
    """The problems of one file, one line each (updating `result`); node ids that do not follow the
    release's recipe are a warning, or a problem with `strict_ids`."""
    name = str(path)
    result.files += 1
    if Path(path).suffix == ".parquet":
        try:
            problems = schema_problems(pq.read_schema(path))
        except (OSError, pa.ArrowException) as err:
            problems = [f"not a readable parquet file ({err})"]
        for problem in problems:
            result.problems += 1
            yield f"{name}: schema: {problem}"
        if problems:
            return
    try:
        rows = read_release_rows(path)
    except (OSError, NotReleaseFile, ValueError) as err:
        result.problems += 1
        yield f"{name}: cannot read: {err}" if isinstance(err, OSError) else str(err)
        return
    for number, row in enumerate(rows, start=1):
        result.videos += 1
        uid = str(row.get("video_uid"))
        try:
            to_table([row])  # the row's values fit the release's types
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as err:
            result.problems += 1
            yield f"{name}: row {number} (video {uid}) does not fit the release schema: {err}"
            continue
        if uid in result.seen:
            result.problems += 1
            where = "earlier in this file" if result.seen[uid] == name else f"also in {result.seen[uid]}"
            yield f"{name}: video {uid} appears twice ({where}): a dataset has one row per video"
        result.seen.setdefault(uid, name)
        try:
            violations = check_video(row, min_leaf_seconds=min_leaf_seconds, min_gpt_seconds=min_gpt_seconds)
        except Exception as err:  # a row the rules cannot read is a problem of this row, not of the check
            result.problems += 1
            yield f"{name}: row {number} (video {uid}) cannot be checked: {type(err).__name__}: {err}"
            continue
        for violation in violations:
            result.problems += 1
            yield f"{name}: {violation}"
        foreign = foreign_ids(row)
        if foreign:
            node, expected = foreign[0]
            line = (
                f"{name}: video {uid}: {len(foreign)} of {len(row['nodes'])} node ids do not follow the release's "
                f"recipe ({NODE_ID_RECIPE}); first: {node} should be {expected}"
            )
            if strict_ids:
                result.problems += 1
                yield line
            else:
                result.warnings += 1
                yield f"warning: {line} (--strict-ids makes this an error)"


def foreign_ids(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(node_id, the recipe's id) of each node of a row whose id is not the release recipe's."""
    uid = str(row.get("video_uid"))
    found = []
    for node in row.get("nodes") or []:
        if node.get("start") is None or node.get("end") is None:
            continue
        expected = release_node_id(uid, node["start"], node["end"])
        if node.get("node_id") != expected:
            found.append((str(node.get("node_id")), expected))
    return found
