"""Settings from the environment, as the chart's ConfigMap sets them."""

from __future__ import annotations

import re

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
    with pytest.raises(ValueError, match="A100M_MAX_QUEUED='many': expected an integer"):
        ServerSettings.from_env({"A100M_MAX_QUEUED": "many"})


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("A100M_MAX_CONCURRENT", "0", "must be in [1, 1024]"),  # every call would wait out its deadline
        ("A100M_MAX_QUEUED", "-1", "must be in [0, 100000]"),
        ("A100M_PORT", "70000", "must be in [0, 65535]"),
        ("A100M_GRACE_SECONDS", "nan", "expected a finite number"),
    ],
)
def test_a_server_setting_out_of_bounds_is_refused(variable, value, says):
    with pytest.raises(ValueError, match=f"{variable}='{value}': {re.escape(says)}"):
        ServerSettings.from_env({variable: value})


def test_service_settings_are_bounded_and_booleans_strict():
    from action100m.refiner.service import RefinerConfig

    with pytest.raises(ValueError, match="A100M_CAPTION_BATCH_SIZE='0': must be in"):
        CaptionerConfig.from_env({"A100M_CAPTION_BATCH_SIZE": "0"})
    with pytest.raises(
        ValueError, match=re.escape("A100M_REFINER_GPU_MEMORY_UTILIZATION='1.5': must be in [0.01, 1.0]")
    ):
        RefinerConfig.from_env({"A100M_REFINER_GPU_MEMORY_UTILIZATION": "1.5"})
    with pytest.raises(ValueError, match="A100M_REFINER_ENFORCE_EAGER='maybe': expected 1/true/yes or 0/false/no"):
        RefinerConfig.from_env({"A100M_REFINER_ENFORCE_EAGER": "maybe"})
    assert RefinerConfig.from_env({"A100M_REFINER_ENFORCE_EAGER": "off"}).enforce_eager is False


def test_a_service_with_a_bad_setting_stops_at_start_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "A100M_ALLOWED_ROOTS": f"file://{tmp_path}", "A100M_MAX_CONCURRENT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "action100m.segmenter"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: the segmenter cannot start: A100M_MAX_CONCURRENT='0': must be in [1, 1024]"
    env.pop("A100M_ALLOWED_ROOTS")
    env.pop("A100M_MAX_CONCURRENT")
    done = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "serve", "segmenter"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: the segmenter cannot start: no artifact roots configured")
