"""Settings from the environment, as the chart's ConfigMap sets them."""

from __future__ import annotations

import pytest

from action100m.captioner.service import CaptionerConfig
from action100m.common.grpc_server import ServerSettings
from action100m.embedder.service import EmbedderConfig


def test_named_and_default_variables_are_read_with_their_types():
    assert EmbedderConfig.from_env(
        {"A100M_EMBEDDER_MODEL": "/models/vjepa2", "A100M_WINDOWS_PER_BATCH": "16"}
    ) == EmbedderConfig(model="/models/vjepa2", windows_per_batch=16)
    assert CaptionerConfig.from_env({"A100M_CAPTION_BATCH_SIZE": "4", "A100M_DTYPE": "bfloat16"}).batch_size == 4
    settings = ServerSettings.from_env({"A100M_PORT": "6000", "A100M_GRACE_SECONDS": "2.5"}, max_queued=3)
    assert (settings.port, settings.grace_seconds, settings.max_queued) == (6000, 2.5, 3)


def test_a_malformed_value_names_its_variable():
    with pytest.raises(ValueError, match="A100M_MAX_QUEUED='many': expected a int"):
        ServerSettings.from_env({"A100M_MAX_QUEUED": "many"})
