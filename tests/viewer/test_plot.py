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


def test_the_timeline_names_its_levels_labels_wide_boxes_and_marks_the_start_and_end(release_file):
    from action100m.viewer.plot import clock, node_label, timeline_figure

    video = load_catalog([str(release_file)]).videos[0]
    nodes = video.nodes
    span = video.duration or max(n["end"] for n in nodes)
    axes = timeline_figure(video).axes[0]
    levels = max(n["level"] for n in nodes) + 1
    assert [t.get_text() for t in axes.get_yticklabels()] == [f"L{level}" for level in range(levels)]
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert ticks[0] == "0:00" and ticks[-1] == clock(span) and len(ticks) >= 4
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["annotated (gpt)", "not annotated"]
    texts = [t.get_text() for t in axes.texts]
    labels = [node_label(n) for n in nodes]
    assert 0 < len(texts) < len(nodes)  # the wide boxes say what they are, the slivers do not
    for text in texts:  # each is a node's label, cut with an ellipsis where the box ends
        assert any(label == text or label.startswith(text.removesuffix("…")) for label in labels), text
    root = max(nodes, key=lambda n: n["end"] - n["start"])
    assert node_label(root) in texts or any(node_label(root).startswith(t.removesuffix("…")) for t in texts)


def test_titles_and_labels_with_glyphs_the_font_lacks_draw_without_warnings(release_file, tmp_path):
    """Emoji and CJK in a title or an action (common in real videos) are drawn as `?`, not as empty
    boxes with one "missing from font" warning per character."""
    import warnings

    from action100m.common.release import read_rows, write_json
    from action100m.viewer.plot import drawable, plot_timeline

    (row, *_) = read_rows(release_file)
    row["metadata"]["title"] = "料理 🍳 Journal"
    row["nodes"][0]["plm_action"] = "Cook 🍳 rice"
    row["nodes"][0]["gpt"] = None
    source = write_json([row], tmp_path / "odd.json")
    (video,) = load_catalog([str(source)]).videos
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_timeline(video, tmp_path / "tree.png")
        plot_stats([video], tmp_path / "stats")
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
    assert drawable("Cook 🍳 rice") == "Cook ? rice" and drawable("Café → done…") == "Café → done…"
