"""`a100m compare`: two datasets node by node (the synthetic release, and the released sample where present)."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys

from sacrebleu.metrics import CHRF

from action100m.common.release import read_rows, write_json
from action100m.common.release.compare import compare_rows


def test_a_dataset_compared_with_itself_is_identical_everywhere(release_file):
    rows = read_rows(release_file)
    comparison = compare_rows(rows, rows)
    for row in comparison.fields + comparison.by_level + comparison.by_band:
        assert row["coverage_a"] == row["coverage_b"]
        if row["both"]:
            assert row["exact"] == row["chrf"] == row["length_ratio"] == 1.0, row
    assert sum(r["both"] for r in comparison.fields) > 0
    assert comparison.most_different == []
    tree = comparison.tree
    assert (tree.nodes_only_in_a, tree.nodes_only_in_b, tree.boundaries_moved) == (0, 0, 0)
    assert tree.nodes_matched == sum(len(r["nodes"]) for r in rows)


def test_known_edits_give_the_figures_computed_here_independently(release_file):
    (a,) = read_rows(release_file)
    b = copy.deepcopy(a)
    rng = random.Random(7)
    nodes = b["nodes"]
    edited = set(rng.sample(range(len(nodes)), k=len(nodes) // 4))
    for i in edited:
        nodes[i]["plm_caption"] = (nodes[i]["plm_caption"] or "") + " and then the person does something else"
    with_llama = [i for i in range(len(nodes) - 1) if i not in edited and nodes[i]["llama3_caption"] is not None]
    for i in rng.sample(with_llama, k=5):
        nodes[i]["llama3_caption"] = None
    nodes[1]["end"] = nodes[1]["end"] + 0.5
    nodes.pop()  # a node only in A
    comparison = compare_rows([a], [b], fields=("plm_caption", "llama3_caption"), most_different=3)
    by_id = {n["node_id"]: n for n in a["nodes"]}
    pairs = [(by_id[n["node_id"]], n) for n in nodes]
    plm = [(x["plm_caption"], y["plm_caption"]) for x, y in pairs if x["plm_caption"] and y["plm_caption"]]
    chrf = CHRF()
    expected_chrf = sum(1.0 if p == q else chrf.sentence_score(q, [p]).score / 100 for p, q in plm) / len(plm)
    caption, llama = comparison.fields
    assert caption["matched"] == len(pairs) == len(a["nodes"]) - 1
    assert caption["exact"] == round(sum(p == q for p, q in plm) / len(plm), 4) < 1
    assert caption["chrf"] == round(expected_chrf, 4)
    assert caption["length_ratio"] == round(sum(len(q) for _, q in plm) / sum(len(p) for p, _ in plm), 4)
    in_a = sum(x["llama3_caption"] is not None for x, _ in pairs)
    assert llama["coverage_b"] == round((in_a - 5) / len(pairs), 4) < llama["coverage_a"]
    assert llama["exact"] == 1.0  # where both have it, nothing changed
    assert [d.chrf for d in comparison.most_different] == sorted(d.chrf for d in comparison.most_different)
    assert all(d.field == "plm_caption" and d.b.endswith("something else") for d in comparison.most_different)
    tree = comparison.tree
    assert (tree.nodes_only_in_a, tree.nodes_only_in_b, tree.boundaries_moved) == (1, 0, 1)
    assert tree.largest_shift_seconds == 0.5


def test_the_command_prints_tables_or_json(synthetic_release, tmp_path):
    (row,) = read_rows(synthetic_release)
    row["nodes"][0]["plm_action"] = "something else entirely"
    other = write_json([row], tmp_path / "other.json")
    command = [sys.executable, "-m", "action100m.cli", "compare", str(synthetic_release), str(other)]
    table = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "nodes matched by id" in table.stdout and "by level (chrF)" in table.stdout
    assert "most different" in table.stdout and "something else entirely" in table.stdout
    answer = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120)
    figures = json.loads(answer.stdout)
    assert set(figures) == {"choices", "fields", "by_level", "by_band", "most_different", "tree"}
    assert figures["choices"] == {"a": None, "b": None}  # neither records them (no report.json)
    (action,) = [f for f in figures["fields"] if f["field"] == "plm_action"]
    assert action["exact"] == round(1 - 1 / action["both"], 4)


def test_the_command_reads_parquet_lazily_and_agrees_with_the_rows_in_memory(synthetic_release, tmp_path):
    from action100m.common.release import write_parquet

    rows = read_rows(synthetic_release)
    edited = copy.deepcopy(rows)
    edited[0]["nodes"][3]["plm_caption"] = "changed"
    parquet = write_parquet(edited, tmp_path / "b" / "train-00000-of-00001.parquet")
    command = [sys.executable, "-m", "action100m.cli", "compare", str(synthetic_release), str(parquet.parent), "--json"]
    answer = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    in_memory = compare_rows(rows, edited).to_dict()
    assert json.loads(answer.stdout) == {"choices": {"a": None, "b": None}, **json.loads(json.dumps(in_memory))}


def test_datasets_with_no_video_in_common_are_one_line_and_a_failure(synthetic_release, tmp_path):
    (row,) = read_rows(synthetic_release)
    other = write_json([{**row, "video_uid": "someone-else"}], tmp_path / "other.json")
    answer = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "compare", str(synthetic_release), str(other)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 2 and answer.stdout == ""
    assert answer.stderr.count("\n") == 1 and "have no video in common: nothing to compare" in answer.stderr
