"""`a100m sample` (the paper's Sec. 5.4) with real embeddings (WordLlama's, inside its package): exact
duplicate groups as an independent count finds them, near-synonyms in one cluster, the same seed the
same sample byte for byte, clusters drawn uniformly, and one clear line for what cannot be sampled."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from action100m.cli import main
from action100m.common.release import read_rows, write_json
from action100m.sampling import SampleSettings, SegmentFilter, sample

from ..support import synthetic_release_row

pytestmark = pytest.mark.slow


def dataset_of(path: Path, texts: list[str], video: str = "v") -> Path:
    """A release file whose nodes carry these action texts (the tree of the synthetic release)."""
    row = synthetic_release_row(video_uid=video)
    annotated = [n for n in row["nodes"] if n["gpt"] is not None]
    assert len(annotated) >= len(texts), len(annotated)
    for node, text in zip(annotated, texts, strict=False):
        node["gpt"] = {**node["gpt"], "action": {**node["gpt"]["action"], "brief": text}}
    for node in annotated[len(texts) :]:
        node["gpt"] = None
    return write_json([row], path)


def test_the_duplicate_groups_of_the_release_are_those_an_independent_count_finds(released_sample, tmp_path):
    (row,) = read_rows(released_sample)
    briefs = [n["gpt"]["action"]["brief"] for n in row["nodes"] if n["gpt"] is not None]
    independent = Counter(" ".join(b.lower().split()).rstrip(".!?,;: ") for b in briefs if b.strip() != "N/A")
    report = sample([str(released_sample)], tmp_path / "out", SampleSettings(ks=(10,), strategy="dedup"))
    assert report["segments"] == sum(independent.values()) and report["unique_texts"] == len(independent)
    assert report["duplicate_groups"] == sum(1 for n in independent.values() if n > 1)
    top = [(g["text"].lower(), g["segments"]) for g in report["top_groups"]]
    assert [n for _, n in top] == sorted(independent.values(), reverse=True)[: len(top)]
    assert all(independent[" ".join(t.split()).rstrip(".!?,;: ")] == n for t, n in top)
    # dedup: one segment per group
    rows = pq.read_table(tmp_path / "out" / "samples-k10.parquet").to_pylist()
    assert len(rows) == len(independent) and all(r["times_drawn"] == 1 for r in rows)
    assert sorted(r["group_size"] for r in rows) == sorted(independent.values())
    assert "## Sampling (Action100M, Sec. 5.4)" in (tmp_path / "out" / "README.md").read_text()


def test_near_synonyms_land_in_one_cluster_and_it_is_named_by_its_most_central_text(tmp_path):
    meanings = [
        ["Apply glue", "Glue paper", "Spread glue on paper"],
        ["Stir mixture", "Stir the batter", "Stir soup in pot"],
        ["Speak to camera", "Talk to the camera", "Speak to the viewer"],
    ]
    source = dataset_of(tmp_path / "d.json", [t for m in meanings for t in m])
    sample([str(source)], tmp_path / "out", SampleSettings(ks=(3,), strategy="none"))
    rows = pq.read_table(tmp_path / "out" / "samples-k3.parquet").to_pylist()
    cluster = {r["text"]: r["cluster"] for r in rows}
    assert [len({cluster[t] for t in m}) for m in meanings] == [1, 1, 1]  # each meaning one cluster ...
    assert len({cluster[m[0]] for m in meanings}) == 3  # ... and three meanings three clusters
    names = {r["cluster"]: r["cluster_name"] for r in rows}
    assert all(names[cluster[m[0]]] in m for m in meanings)
    print({names[cluster[m[0]]]: m for m in meanings})


def test_the_same_seed_gives_the_same_sample_byte_for_byte_and_another_seed_another(released_sample, tmp_path):
    def run(seed: int, out: str) -> bytes:
        settings = SampleSettings(ks=(8,), seed=seed, size=300, cache=tmp_path / "cache")
        sample([str(released_sample)], tmp_path / out, settings)
        return (tmp_path / out / "samples-k8.parquet").read_bytes()

    assert run(1, "a") == run(1, "b")
    assert run(2, "c") != run(1, "a")
    assert len(json.loads((tmp_path / "a" / "report.json").read_text())["k"]["8"]["draws_per_cluster_after"]) == 8


def test_semantic_draws_are_uniform_over_the_clusters(released_sample, tmp_path):
    """Chi-square test of the draws per cluster against the uniform: 20,000 draws over 10 clusters."""
    from scipy.stats import chisquare

    report = sample([str(released_sample)], tmp_path / "out", SampleSettings(ks=(10,), size=20000, seed=3))
    after = report["k"]["10"]["draws_per_cluster_after"]
    before = report["k"]["10"]["segments_per_cluster_before"]
    assert sum(after) == 20000 and chisquare(after).pvalue > 0.001, after
    assert chisquare(before).pvalue < 0.001  # the segments themselves are far from uniform
    assert report["k"]["10"]["entropy_bits_after"] > report["k"]["10"]["entropy_bits_before"]


def test_what_cannot_be_sampled_is_one_line(tmp_path, capsys, synthetic_release):
    empty = write_json([{**synthetic_release_row(video_uid="e"), "nodes": []}], tmp_path / "empty.json")
    cases = [
        ([str(empty)], "no segment has gpt.action.brief"),
        ([str(synthetic_release), "--field", "gpt.action.actor", "--k", "100000"], "--k 100000 is more than the"),
        ([str(synthetic_release), "--levels", "40"], "no segment has gpt.action.brief"),
    ]
    for args, says in cases:
        assert main(["sample", *args, "--out", str(tmp_path / "out")]) == 2
        error = capsys.readouterr().err
        assert error.startswith("error: ") and says in error and len(error.splitlines()) == 1, error


def test_a_megabyte_of_text_is_one_more_unique_text(tmp_path):
    source = dataset_of(tmp_path / "d.json", ["Cut paper", "Cut paper.", "w" * 1_000_000])
    report = sample([str(source)], tmp_path / "out", SampleSettings(ks=(2,), strategy="dedup"))
    assert report["unique_texts"] == 2 and report["top_groups"][0] == {"text": "Cut paper", "segments": 2}


def test_filters_keep_the_levels_and_durations_asked_and_not_an_action(tmp_path):
    source = dataset_of(tmp_path / "d.json", ["N/A", "Cut paper", "Fold paper"])
    kept = sample([str(source)], tmp_path / "a", SampleSettings(ks=(1,), strategy="none"))
    with_na = sample(
        [str(source)], tmp_path / "b", SampleSettings(SegmentFilter(keep_not_an_action=True), ks=(1,), strategy="none")
    )
    assert kept["segments"] == 2 and with_na["segments"] == 3
    level = pq.read_table(tmp_path / "a" / "samples-k1.parquet").to_pylist()[0]["level"]
    one_level = sample(
        [str(source)], tmp_path / "c", SampleSettings(SegmentFilter(levels=(level,)), ks=(1,), strategy="none")
    )
    assert 1 <= one_level["segments"] <= 2
