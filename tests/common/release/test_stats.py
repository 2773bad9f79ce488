"""`a100m stats`: the figures of the released sample, computed here independently, and the command."""

from __future__ import annotations

import itertools
import json
import statistics
import subprocess
import sys

import pytest

from action100m.common.release import read_rows
from action100m.common.release.stats import dataset_figures


def independent_figures(row) -> dict[str, float]:
    nodes = row["nodes"]
    parents = {n["parent_id"] for n in nodes}
    minutes = (nodes[0]["end"] - nodes[0]["start"]) / 60  # the release sorts the root first
    leaves = [n["end"] - n["start"] for n in nodes if n["node_id"] not in parents]
    spans = [n["end"] - n["start"] for n in nodes]
    length = nodes[0]["end"]
    cuts = sorted({round(t, 2) for n in nodes for t in (n["start"], n["end"]) if 0 < t < length - 1e-6})

    def grid(fps):  # boundaries at (k - 0.5) * 4 / fps: the k of each boundary that sits on this grid
        ks = [round(t * fps / 4 + 0.5) for t in cuts]
        return [k for k, t in zip(ks, cuts, strict=True) if abs((k - 0.5) * 4 / fps - t) <= 0.006]

    best = max((23.976, 24, 25, 29.97, 30, 50, 59.94, 60), key=lambda fps: len(grid(fps)))
    ks = grid(best)
    eligible = [n for n in nodes if n["node_id"] in parents and n["end"] - n["start"] >= 4.0]
    return {
        "nodes per video-minute": len(nodes) / minutes,
        "leaves per video-minute": len(leaves) / minutes,
        "leaf duration p50": statistics.median(leaves),
        "leaf duration max": max(leaves),
        "node durations 0-3 s": 100 * sum(s < 3 for s in spans) / len(spans),
        "node durations > 60 s": 100 * sum(s >= 60 for s in spans) / len(spans),
        "internal boundaries tubelet-aligned": 100 * sum(k % 2 == 0 for k in ks) / len(ks),
        "gpt on non-leaf nodes >= 4 s": 100 * sum(n["gpt"] is not None for n in eligible) / len(eligible),
        "videos with a transcript": 100.0 if row["metadata"]["transcript"] else 0.0,
        "transcript words per minute (videos with one)": sum(
            len(e["text"].split()) for e in row["metadata"]["transcript"]
        )
        / minutes,
        "maximum depth, max over videos": max(n["level"] for n in nodes),
        "plm_action words, median": statistics.median(len(n["plm_action"].split()) for n in nodes if n["plm_action"]),
    }


def test_the_samples_figures_match_an_independent_computation(released_sample):
    (row,) = read_rows(released_sample)
    figures = {f.name: f.value for f in dataset_figures([row])}
    for name, expected in independent_figures(row).items():
        assert figures[name] == pytest.approx(expected, rel=1e-6), name
    # the release's character, on this one video: ~80 nodes and ~40 leaves per minute, most boundaries aligned
    assert 70 < figures["nodes per video-minute"] < 90 and 35 < figures["leaves per video-minute"] < 45
    assert figures["internal boundaries tubelet-aligned"] > 75


def test_videos_without_a_transcript_count_in_the_share_not_in_the_words_per_minute(synthetic_release):
    (row,) = read_rows(synthetic_release)
    silent = {**row, "video_uid": "silent", "metadata": {**row["metadata"], "transcript": None}}
    one = {f.name: f.value for f in dataset_figures([row])}
    both = {f.name: f.value for f in dataset_figures([row, silent])}
    assert one["videos with a transcript"] == 100 and both["videos with a transcript"] == 50
    rate = "transcript words per minute (videos with one)"
    assert both[rate] == pytest.approx(one[rate]) and one[rate] > 0


def test_stats_prints_a_table_and_json_rows_beside_the_reference(released_sample, synthetic_release):
    def stats(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "action100m.cli", "stats", *args], capture_output=True, text=True)

    table = stats(str(synthetic_release), "--against", str(released_sample))
    assert table.returncode == 0, table.stderr
    header, rule, *lines = table.stdout.splitlines()
    assert header.split() == ["figure", synthetic_release.name, "reference"] and set(rule) <= {"-", " "}
    assert any(line.startswith("nodes per video-minute") and "79.76" in line for line in lines)

    rows = json.loads(stats(str(released_sample), "--json").stdout)["rows"]
    by_name = {r["figure"]: r for r in rows}
    assert by_name["videos"][released_sample.name] == 1 and by_name["node durations 0-3 s"]["unit"] == "%"
    missing = stats(str(released_sample.parent / "nothing-here"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr


@pytest.mark.parametrize("fps", [15.0, 20.0, 25.0, 29.97, 30.0, 60.0])
def test_the_frame_rate_is_inferred_from_the_boundary_grid_not_a_finer_one_that_also_holds_it(fps):
    from action100m.common.release.stats import infer_fps

    step = 4 / fps  # a boundary sits midway between sampled frames (every 4th frame)
    boundaries = [round((k - 0.5) * step, 2) for k in (3, 5, 8, 13, 21, 34, 55, 89)]
    assert infer_fps(boundaries) == fps  # 20 fps was read as 60, 15 as 25


def test_stats_takes_the_frame_rate_when_known_and_says_it(release_file):
    rows = list(read_rows(release_file))
    given = {f.name: f.value for f in dataset_figures(rows, fps=30.0)}
    assert given["frame rate, median over videos"] == 30.0
    assert 0 <= given["internal boundaries on that frame grid"] <= 100


def flat_row(uid: str, fps: float, seconds: float = 120.0, seed: int = 0) -> dict:
    """A video at `fps` whose leaves cut it where the tree rules put boundaries: midway between
    sampled frames, (k - 0.5) * 4 / fps, rounded to 0.01 s."""
    import random

    rng = random.Random(seed)
    ks = sorted(rng.sample(range(2, int(seconds * fps / 4) - 1), 40))
    cuts = [0.0, *(round((k - 0.5) * 4 / fps, 2) for k in ks), seconds]
    leaves = [
        {"node_id": f"{uid}-{i}", "parent_id": f"{uid}-root", "level": 1, "start": a, "end": b}
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    root = {"node_id": f"{uid}-root", "parent_id": None, "level": 0, "start": 0.0, "end": seconds}
    return {"video_uid": uid, "metadata": {}, "nodes": [root, *leaves]}


def test_an_unlisted_frame_rate_withholds_the_grid_figures_unless_the_rate_is_given_or_read(tmp_path):
    from action100m.common.release import write_json
    from action100m.common.release.stats import GRID_FIGURES, frame_rates_in
    from action100m.devtools.synthetic_video import write_video

    rows = [flat_row(f"v{i}", 12.5, seed=i) for i in range(3)]
    figures = {f.name: f for f in dataset_figures(rows)}
    for name in GRID_FIGURES:
        assert figures[name].value is None and figures[name].text() == "withheld"
        assert "of the boundaries lie on the grid of any listed frame rate" in figures[name].withheld
    assert figures["nodes per video-minute"].value is not None  # the rest stands

    given = {f.name: f.value for f in dataset_figures(rows, fps=12.5)}
    assert given[GRID_FIGURES[0]] == 12.5 and given[GRID_FIGURES[1]] == 100.0

    for i in range(3):
        write_video(tmp_path / "videos" / f"v{i}.mp4", frames=25, fps=12.5, size=(64, 48))
    read = {f.name: f.value for f in dataset_figures(rows, fps_of=frame_rates_in(tmp_path / "videos"))}
    assert read[GRID_FIGURES[0]] == pytest.approx(12.5) and read[GRID_FIGURES[1]] == 100.0

    listed = {f.name: f.value for f in dataset_figures([flat_row("w", 25.0)])}
    assert listed[GRID_FIGURES[0]] == 25.0 and listed[GRID_FIGURES[1]] == 100.0  # a listed rate is inferred

    write_json(rows, tmp_path / "odd.json")
    shown = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "stats", str(tmp_path / "odd.json")], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "odd.json: grid figures withheld: only" in shown.stdout
    assert "give --fps, or --videos" in shown.stdout
