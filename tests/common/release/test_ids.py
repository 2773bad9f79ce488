"""Node ids as the release makes them: the recipe reproduces every released id."""

from __future__ import annotations

import subprocess
import sys
import uuid

from action100m.common.release import read_rows, write_json
from action100m.common.release.ids import release_node_id
from action100m.segmenter.tree import node_id


def test_every_released_id_is_reproduced_from_uid_start_and_end(released_sample):
    (row,) = read_rows(released_sample)
    nodes = row["nodes"]
    reproduced = [n for n in nodes if release_node_id(row["video_uid"], n["start"], n["end"]) == n["node_id"]]
    assert len(nodes) == 917 and len(reproduced) == 917
    by_id = {n["node_id"] for n in nodes}
    assert all(n["parent_id"] in by_id for n in nodes if n["parent_id"] is not None)


def test_the_segmenter_makes_ids_with_the_recipe():
    assert node_id("hySSAAw4t24", 0.0, 690.03) == release_node_id("hySSAAw4t24", 0.0, 690.03)
    # 0.01 s rounding: the float32 a parquet holds gives the same id as the decimal it stands for
    import numpy as np

    assert release_node_id("v", float(np.float32(3.45)), 7.1) == release_node_id("v", 3.45, 7.1)


def old_recipe(uid: str, start: float, end: float) -> str:
    """Ids of trees made by 0.2 (a private namespace): what --strict-ids must refuse."""
    return str(uuid.uuid5(uuid.UUID("6f3c1c3e-52a5-4d0f-9a8e-a100a100a100"), f"{uid}/{start:.2f}/{end:.2f}"))


def test_validate_warns_of_foreign_ids_and_refuses_them_with_strict_ids(released_sample, tmp_path):
    def validate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "action100m.cli", "validate", *args], capture_output=True, text=True
        )

    strict = validate("--strict-ids", str(released_sample))
    assert strict.returncode == 0 and "OK" in strict.stderr and "warning" not in strict.stdout

    (row,) = read_rows(released_sample)
    renamed = {n["node_id"]: old_recipe(row["video_uid"], n["start"], n["end"]) for n in row["nodes"]}
    for n in row["nodes"]:
        n["node_id"], n["parent_id"] = renamed[n["node_id"]], renamed.get(n["parent_id"])
    old = write_json([row], tmp_path / "old_ids.json")

    lenient = validate(str(old))
    assert lenient.returncode == 0 and "1 warning(s)" in lenient.stderr
    assert "warning:" in lenient.stdout and "917 of 917 node ids do not follow the release's recipe" in lenient.stdout
    refused = validate("--strict-ids", str(old))
    assert refused.returncode == 1 and "917 of 917 node ids do not follow" in refused.stdout
    assert "1 problem(s)" in refused.stderr
