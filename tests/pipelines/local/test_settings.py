"""A run's arguments, defined once (`RunSettings`): the command line is derived from its fields, and
every field that shapes the dataset changes the rerun key when it alone changes, so a new argument
cannot be forgotten by the "nothing to do" check."""

from __future__ import annotations

import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest

from action100m.cli import build_parser
from action100m.pipelines.local.context import settle
from action100m.pipelines.local.record import run_key
from action100m.pipelines.local.settings import Flag, RunSettings
from action100m.pipelines.registry import OPTIONAL


def shaping_fields() -> set[str]:
    flag = {f.name: f.metadata["flag"] for f in fields(RunSettings)}
    assert all(isinstance(value, Flag) for value in flag.values())  # every field says whether it shapes the output
    return {name for name, value in flag.items() if value.shapes_output}


@pytest.fixture
def inputs(tiny_models, synthetic_release, tmp_path):
    models = Path(next(iter(tiny_models.values()))).parent
    video = tmp_path / "videos" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(b"a video")
    other_models = tmp_path / "same-models"
    other_models.symlink_to(models)
    release_copy = shutil.copy(synthetic_release, tmp_path / "release-copy.json")
    uid = "synthetic-cooking"
    for folder in ("videos-a", "videos-b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{uid}.mp4").write_bytes(b"a video of the release")
    return models, video, other_models, synthetic_release, release_copy, tmp_path


def test_every_argument_that_shapes_the_dataset_changes_the_rerun_key_alone(inputs):
    models, video, other_models, release, release_copy, tmp = inputs
    from_videos = RunSettings(models_dir=str(models), env={})
    from_release = RunSettings(models_dir=str(models), env={}, start_from=[str(release)])
    recaption = replace(from_release, stages=["caption", "refine"], videos_dir=str(tmp / "videos-a"))
    # each field that shapes the dataset: the settings it is varied from, and another value
    another = {
        "preset": (from_videos, "single-gpu"),
        "shard_size": (from_videos, 3),
        "models_dir": (from_videos, str(other_models)),
        "allowed_roots": (from_videos, str(video.parent)),
        "recursive": (from_videos, True),
        "services": (from_videos, {"refine": "127.0.0.1:1"}),
        "license": (from_videos, "cc-by-4.0"),
        "modes": (from_videos, {spec.name: spec.mode.choices[-1] for spec in OPTIONAL if spec.mode}),
        "env": (from_videos, {"A100M_CAPTION_BATCH_SIZE": "2"}),
        "start_from": (from_release, [str(release_copy)]),
        "stages": (from_release, ["caption", "refine"]),
        "videos_dir": (recaption, str(tmp / "videos-b")),
    }
    assert set(another) == shaping_fields(), "a field that shapes the dataset needs its case here"

    def key(settings: RunSettings) -> str:
        if settings.stages == ["caption", "refine"] and not settings.videos_dir:
            settings = replace(settings, videos_dir=str(tmp / "videos-a"))
        inputs = [] if settings.start_from else [str(video)]
        return run_key(settle(inputs, str(tmp / "out"), settings))

    for name, (base, value) in another.items():
        assert key(replace(base, **{name: value})) != key(base), f"changing only {name} keeps the rerun key"


def test_arguments_that_do_not_shape_the_dataset_keep_the_rerun_key(inputs):
    models, video, *_, tmp = inputs
    base = RunSettings(models_dir=str(models), env={})
    others = {"parallelism": 5, "schedule": "stagewise", "gpus": "0", "hang_seconds": 60.0, "vllm_python": "/x/python"}
    assert set(others) | {"store_root", "gpu_memory_gib"} == {f.name for f in fields(RunSettings)} - shaping_fields()
    key = run_key(settle([str(video)], str(tmp / "out"), base))
    for name, value in others.items():
        assert run_key(settle([str(video)], str(tmp / "out"), replace(base, **{name: value}))) == key, name


def test_the_command_line_is_the_settings_fields():
    flags = ["--transcribe", "never", "--services", "embedder=h:1", "--hang-seconds", "60", "--shard-size", "4"]
    flags += ["--recursive", "--from", "a.parquet", "b.parquet", "--stages", "caption,refine"]
    args = build_parser().parse_args(["run", "v.mp4", "--out", "o", *flags])
    settings = RunSettings.from_args(args)
    assert settings.modes == {"transcribe": "never"} and settings.services == {"embed": "h:1"}
    assert settings.hang_seconds == 60.0 and settings.shard_size == 4 and settings.recursive
    assert settings.start_from == ["a.parquet", "b.parquet"] and settings.stages == ["caption", "refine"]
    defaults = RunSettings.from_args(build_parser().parse_args(["run", "v.mp4", "--out", "o"]))
    assert replace(defaults, env={}) == RunSettings(env={})


@pytest.mark.parametrize(
    "flag,value,says",
    [
        ("--hang-seconds", "1", "must be in [10, 86400] seconds"),
        ("--services", "nowhere", "expected STAGE=HOST:PORT"),
        ("--stages", "caption,dance", "unknown stage 'dance'"),
        ("--transcribe", "sometimes", "invalid choice: 'sometimes'"),
    ],
)
def test_a_bad_flag_is_refused_with_its_reason(flag, value, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["run", "v.mp4", "--out", "o", flag, value])
    assert stopped.value.code == 2 and says in capsys.readouterr().err
