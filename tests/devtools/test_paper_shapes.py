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
