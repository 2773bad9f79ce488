"""The paper-shaped models of `benchmarks/gpu_check.py --shapes paper` have the published sizes
(counted on the meta device: no memory, no GPU)."""

from __future__ import annotations

import pytest

from action100m.devtools.paper_shapes import PAPER_SHAPES, configs, parameter_count
from action100m.pipelines.memory.facts import DOCUMENTED

# parameters as published: the model cards' counts (DOCUMENTED's weight bytes are bf16 except GPT-OSS's MXFP4)
PUBLISHED = {role: DOCUMENTED[model].weight_bytes / 2 for role, model in PAPER_SHAPES.items() if role != "gpt_oss"}
PUBLISHED["gpt_oss"] = 21e9  # gpt-oss-20b model card: 21B parameters
# Whisper's stand-in tokenizer (the tiny one) has fewer rows than large-v3's 51,866: 66M parameters fewer
TOLERANCE = {"whisper": 0.06}


@pytest.fixture(scope="module")
def paper_configs(tiny_models):
    return configs(tiny_models)


@pytest.mark.parametrize("role", list(PAPER_SHAPES))
def test_each_paper_shaped_model_has_the_published_parameter_count(paper_configs, role):
    config, model_class = paper_configs[role]
    counted = parameter_count(config, model_class)
    assert counted == pytest.approx(PUBLISHED[role], rel=TOLERANCE.get(role, 0.02)), (role, counted)


@pytest.mark.parametrize("role", ["vjepa2", "perception_lm", "mllama"])
def test_the_paper_shaped_processors_take_the_published_settings(tiny_models, tmp_path, role):
    """What `a100m models check` says of them: nothing differs from the published checkpoint but
    Perception-LM's chat template (the tiny tokenizer's stands in: no default system turn)."""
    import shutil

    from action100m.devtools.model_check import DIFFERS, check_models
    from action100m.devtools.paper_shapes import _published_processor

    folder = tmp_path / role
    folder.mkdir()
    shutil.copy(tiny_models[role] / "config.json", folder)
    _published_processor(role, tiny_models[role], folder)
    (report,) = check_models(folder)
    expected = (
        [(DIFFERS, "no system turn: the published template adds its default system prompt")]
        if role == "perception_lm"
        else []
    )
    assert report.findings == expected
