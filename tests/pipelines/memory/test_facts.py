"""A model's weight and shapes, from its own files (the tiny models) or from the documented facts."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from action100m.pipelines.memory.facts import DOCUMENTED, UnknownModel, facts_from_dir, model_facts


def loaded_bytes(path) -> int:
    """Independently: every tensor's elements at 2 bytes (the tiny models are float32 on disk, bf16 loaded)."""
    total = 0
    with safe_open(str(path), "pt") as weights:
        for name in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
            shape = weights.get_slice(name).get_shape()
            count = 1
            for size in shape:
                count *= size
            total += count * 2
    return total


@pytest.mark.parametrize("role", ["vjepa2", "perception_lm", "mllama", "gpt_oss"])
def test_weights_are_counted_from_the_safetensors_headers(tiny_models, role):
    facts = model_facts(str(tiny_models[role]))
    assert facts.weight_bytes == loaded_bytes(tiny_models[role] / "model.safetensors")
    assert str(tiny_models[role]) in facts.source


def test_shapes_come_from_config_json(tiny_models):
    config = json.loads((tiny_models["gpt_oss"] / "config.json").read_text())
    text = model_facts(str(tiny_models["gpt_oss"])).text
    assert text is not None
    assert (text.layers, text.kv_heads, text.head_dim) == (
        config["num_hidden_layers"],
        config["num_key_value_heads"],
        config["head_dim"],
    )
    # sliding-window layers hold at most the window: a long sequence costs only the full layers more
    full = text.layers - text.sliding_layers
    grown = text.kv_bytes(text.sliding_window * 10) - text.kv_bytes(text.sliding_window * 9)
    assert grown == full * text.sliding_window * text.kv_bytes_per_layer_token
    mllama = model_facts(str(tiny_models["mllama"]))
    assert mllama.text is not None and mllama.text.cross_layers == len(
        json.loads((tiny_models["mllama"] / "config.json").read_text())["text_config"]["cross_attention_layers"]
    )


def test_a_sharded_checkpoint_is_sized_by_its_index(tiny_models, tmp_path):
    (tmp_path / "config.json").write_text((tiny_models["gpt_oss"] / "config.json").read_text())
    index = {"metadata": {"total_size": 123_456_789}, "weight_map": {}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert facts_from_dir(tmp_path).weight_bytes == 123_456_789


def test_the_papers_models_are_documented_with_their_sources():
    for name in (
        "facebook/vjepa2-vitg-fpc64-384",
        "facebook/Perception-LM-3B",
        "meta-llama/Llama-3.2-11B-Vision-Instruct",
        "openai/gpt-oss-120b",
        "openai/gpt-oss-20b",
    ):
        facts = model_facts(name)  # no local files here: the documented facts
        assert facts is DOCUMENTED[name] and facts.source and facts.weight_bytes > 0
    assert round(model_facts("openai/gpt-oss-120b").weight_bytes / 1e9) == 65  # MXFP4 as stored
    assert round(model_facts("meta-llama/Llama-3.2-11B-Vision-Instruct").weight_bytes / 1e9, 1) == 21.3  # bf16


def test_an_unknown_model_says_what_to_do():
    with pytest.raises(UnknownModel, match=r"not a local directory.*documented"):
        model_facts("someone/unknown-model")
