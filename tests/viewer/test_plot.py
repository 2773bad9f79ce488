"""`a100m plot`: a video's timeline and a dataset's distributions as PNGs."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

from action100m.viewer.catalog import load_catalog
from action100m.viewer.plot import STATS_FILES, action_verb, plot_stats


def a100m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "action100m.cli", *args], capture_output=True, text=True, timeout=300)


def test_a_video_timeline_is_drawn(demo_output, tmp_path):
    answer = a100m("plot", str(demo_output / "out"), "--video-uid", "garden", "--out", str(tmp_path / "tree.png"))
    assert answer.returncode == 0, answer.stderr
    image = Image.open(tmp_path / "tree.png")
    assert image.format == "PNG" and image.size[0] > 1000
    assert len(image.convert("RGB").getcolors(1 << 20) or []) > 20  # bars, axes, text


def test_an_unknown_video_is_one_line(demo_output, tmp_path):
    answer = a100m("plot", str(demo_output / "out"), "--video-uid", "nope", "--out", str(tmp_path / "x.png"))
    assert answer.returncode == 2 and answer.stderr.startswith("error: no video 'nope'")


def test_the_dataset_distributions_are_drawn(release_file, tmp_path):
    paths = plot_stats(load_catalog([str(release_file)]).videos, tmp_path / "stats")
    assert [p.name for p in paths] == list(STATS_FILES)
    for path in paths:
        assert Image.open(path).format == "PNG"


def test_the_action_verb_is_the_first_word_of_the_brief_action():
    assert action_verb("Stir the mixture") == "stir"
    assert action_verb("N/A") is None and action_verb("") is None
