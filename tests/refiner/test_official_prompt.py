"""The official prompt as a profile: what we render equals, byte for byte, what the authors' own
helpers render (loaded here from ../shared/fixtures/official_repo, their license's test data)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import yaml

from action100m.common import paper
from action100m.common.release import read_rows
from action100m.refiner.profiles import load_profile
from action100m.refiner.prompts import PromptLimits
from action100m.refiner.render import render_prompt

from ..support import REPO

OFFICIAL = REPO.parent / "shared" / "fixtures" / "official_repo"
pytestmark = pytest.mark.skipif(not OFFICIAL.exists(), reason=f"{OFFICIAL} is absent (it comes with ../shared)")
NO_BUDGET = PromptLimits(subtree_token_budget=10**9)


def load(relative: str):
    spec = importlib.util.spec_from_file_location(f"official_{relative.replace('/', '_')[:-3]}", OFFICIAL / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_messages(row, node_id: str) -> list[dict[str, str]]:
    """The request as the authors' helpers build it, with the choices the README states."""
    prompt, tree_helpers = load("utils/prompt.py"), load("utils/tree.py")
    tree = tree_helpers.nodes_list_to_tree(row["nodes"], caption_fn=lambda n: n.get("plm_caption") or "")
    stack, by_id = [tree], {}
    while stack:  # the middle-frame captions, which nodes_list_to_tree leaves empty
        node = stack.pop()
        node["captions"]["mid_frame_caption"] = node.get("llama3_caption")
        by_id[node["node_id"]] = node
        stack.extend(node.get("children", []))
    current = by_id[node_id]

    def depth_below(node) -> int:
        return 1 + max(map(depth_below, node["children"])) if node.get("children") else 0

    depth = min(paper.MAX_SUBTREE_DEPTH, depth_below(current))
    task = prompt.TASK_TEMPLATE.format(
        start_time=f"{current['start']:.2f}",
        end_time=f"{current['end']:.2f}",
        global_start_time=f"{tree['start']:.2f}",
        global_end_time=f"{tree['end']:.2f}",
        response_strucutre=prompt.RESPONSE_STRUCTURE,
    )
    metadata = {k: v for k, v in row["metadata"].items() if v is not None}
    given = prompt.INPUT_TEMPLATE.format(
        video_metadata=yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True),
        global_tree=tree_helpers.format_tree(tree, max_layers=paper.GLOBAL_TREE_DEPTH),
        current_tree=tree_helpers.format_tree(current, max_layers=depth),
    )
    return [{"role": "user", "content": task + given}]


def test_our_official_rendering_equals_the_official_helpers(released_sample):
    (row,) = read_rows(released_sample)
    parents = {n["parent_id"] for n in row["nodes"]}
    eligible = [n for n in row["nodes"] if n["node_id"] in parents and n["end"] - n["start"] >= 4]
    for node in (eligible[0], eligible[1], eligible[len(eligible) // 2], eligible[-1]):  # root, a child, deeper
        ours = render_prompt(
            str(released_sample), row["video_uid"], node["node_id"], len, NO_BUDGET, prompt=f"official:{OFFICIAL}"
        )
        assert ours == official_messages(row, node["node_id"]), node["node_id"]


def test_render_prompt_prints_the_official_profile_and_refuses_a_wrong_path(released_sample, tiny_models, tmp_path):
    (row,) = read_rows(released_sample)
    root = row["nodes"][0]["node_id"]

    def render(prompt: str) -> subprocess.CompletedProcess[str]:
        command = ["refiner", "render-prompt", str(released_sample), "--video-uid", row["video_uid"], "--node-id", root]
        command += ["--tokenizer", str(tiny_models["gpt_oss"]), "--prompt", prompt, "--budget", "1000000000"]
        return subprocess.run([sys.executable, "-m", "action100m.cli", *command], capture_output=True, text=True)

    done = render(f"official:{OFFICIAL}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "=== user ===\n" + official_messages(row, root)[0]["content"] + "\n"
    wrong = render(f"official:{tmp_path}")
    assert (
        wrong.returncode == 2 and f"{tmp_path / 'utils/prompt.py'}" in wrong.stderr and "Traceback" not in wrong.stderr
    )


def test_the_profile_is_part_of_what_the_refiner_reports():
    ours, official = load_profile("ours"), load_profile(f"official:{OFFICIAL}")
    assert ours.fingerprint() != official.fingerprint() and official.name == f"official:{OFFICIAL}"
    with pytest.raises(ValueError, match="expected 'ours' or 'official:/path/to/Action100M'"):
        load_profile("theirs")
