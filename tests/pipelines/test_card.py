"""The dataset card: YAML the Hub reads (huggingface_hub's DatasetCardData), the license chosen by
the user, the size and task categories, a notice when the models were tiny random ones; and
`a100m push --dry-run` over it."""

from __future__ import annotations

import subprocess
import sys

from action100m.common.release import write_parquet
from action100m.pipelines.card import CardFacts, dataset_card, size_category
from action100m.pipelines.state import RunReport

from ..support import synthetic_release_row


def dataset_folder(tmp_path, facts: CardFacts):
    folder = tmp_path / "dataset"
    write_parquet([synthetic_release_row("v1", seconds=30.0)], folder / "data" / "train-00000-of-00001.parquet")
    report = RunReport(run="r", videos=1, done=["v1"], version="0.2.0")
    report.export.rows = 1
    (folder / "README.md").write_text(dataset_card(report, facts))
    return folder


def test_the_card_is_yaml_the_hub_reads_with_the_users_license(tmp_path):
    from huggingface_hub import DatasetCard

    folder = dataset_folder(tmp_path, CardFacts(license="cc-by-4.0"))
    data = DatasetCard.load(folder / "README.md").data
    assert data.license == "cc-by-4.0"
    assert data.task_categories == ["video-text-to-text"] and data.size_categories == ["n<1K"]
    assert data.configs == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}
    ]
    unstated = DatasetCard.load(dataset_folder(tmp_path / "b", CardFacts()) / "README.md").data
    assert unstated.license == "other"
    assert [size_category(n) for n in (999, 1000, 150_000, 5_000_000)] == ["n<1K", "1K<n<10K", "100K<n<1M", "1M<n<10M"]


def test_the_card_loads_in_datasets_and_says_when_the_content_is_noise(tmp_path):
    import datasets

    notice = "Made with the `tiny` preset: random tiny models, so every caption and annotation is noise."
    folder = dataset_folder(tmp_path, CardFacts(notice=notice))
    assert f"> **{notice}**" in (folder / "README.md").read_text()
    loaded = datasets.load_dataset(str(folder), split="train")  # the card's configs name the files
    assert loaded.num_rows == 1 and loaded[0]["video_uid"] == "v1"


def push_dry_run(folder, repo_id: str = "me/my-dataset") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "action100m.cli", "push", str(folder), repo_id, "--dry-run"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_push_dry_run_lists_what_would_go_and_refuses_a_folder_without_a_card(tmp_path):
    folder = dataset_folder(tmp_path, CardFacts(license="apache-2.0"))
    done = push_dry_run(folder)
    assert done.returncode == 0, done.stderr
    assert "-> https://huggingface.co/datasets/me/my-dataset" in done.stdout
    assert "  README.md" in done.stdout and "  data/train-00000-of-00001.parquet" in done.stdout
    assert "warning:" not in done.stderr
    (folder / "README.md").unlink()
    done = push_dry_run(folder)
    assert done.returncode == 2 and "not a dataset folder" in done.stderr


def test_push_warns_of_a_tiny_preset_card_and_an_unnamed_license(tmp_path):
    from action100m.pipelines.local.presets import tiny_preset_notes

    folder = dataset_folder(tmp_path, CardFacts(notice=" ".join(tiny_preset_notes())))
    done = push_dry_run(folder)
    assert done.returncode == 0, done.stderr
    assert "warning: the card says the tiny preset made it: its captions and annotations are noise" in done.stderr
    assert "warning: the card's license is 'other': name your videos' license" in done.stderr


def test_push_refuses_a_repo_id_that_is_a_path_and_a_file_that_links_outside_the_dataset(tmp_path):
    folder = dataset_folder(tmp_path, CardFacts(license="apache-2.0"))

    for bad in ("../x", "a/b/c", "name-only", "me/../../etc"):
        done = push_dry_run(folder, bad)
        assert done.returncode == 2 and f"{bad!r} is not a Hub repository id" in done.stderr, (bad, done.stderr)
    secret = tmp_path / "secret.parquet"
    secret.write_bytes(b"not yours")
    (folder / "data" / "train-00009-of-00009.parquet").symlink_to(secret)
    done = push_dry_run(folder)
    assert done.returncode == 2 and "a link or not a regular file of the dataset" in done.stderr
    assert "secret.parquet" in done.stderr and "train-00009" in done.stderr


def made_by(serve_in_process, local_store, tiny_models, temperature: float, date: str = ""):
    """The refine and caption configs as a run records them, from their services' Info over gRPC
    (the services are built, not loaded: Info needs no model)."""
    from action100m.captioner.service import SERVICE_NAME as CAPTIONER
    from action100m.captioner.service import CaptionerConfig, CaptionerService
    from action100m.pipelines.executor import RetryPolicy, stage_config
    from action100m.pipelines.registry import stage
    from action100m.refiner.service import SERVICE_NAME as REFINER
    from action100m.refiner.service import RefinerConfig, RefinerService
    from action100m.v1 import captioner_pb2_grpc, refiner_pb2_grpc

    store = local_store[0]
    refiner = RefinerConfig(backend="transformers", model=str(tiny_models["gpt_oss"]), temperature=temperature)
    refiner.conversation_date = date
    captioner = CaptionerConfig(str(tiny_models["perception_lm"]), str(tiny_models["mllama"]), "cpu")
    configs = {}
    for name, service, add, full_name, stub in (
        ("refine", RefinerService(store, refiner), refiner_pb2_grpc.add_RefinerServicer_to_server, REFINER,
         refiner_pb2_grpc.RefinerStub),
        ("caption", CaptionerService(store, captioner), captioner_pb2_grpc.add_CaptionerServicer_to_server,
         CAPTIONER, captioner_pb2_grpc.CaptionerStub),
    ):  # fmt: skip
        _, channel = serve_in_process(service, add, full_name)
        spec = stage(name)
        configs[name] = stage_config(stub(channel), spec, spec.options(), {}, RetryPolicy())
    return configs


def test_the_card_and_report_name_every_choice_that_shapes_the_text_and_compare_sets_them_side_by_side(
    serve_in_process, local_store, tiny_models, tmp_path
):
    import json

    sampled = made_by(serve_in_process, local_store, tiny_models, temperature=1.0)
    cooler = made_by(serve_in_process, local_store, tiny_models, temperature=0.7, date="2026-01-15")
    assert sampled["refine"].fingerprint != cooler["refine"].fingerprint  # decoding is in the fingerprint
    assert sampled["caption"].fingerprint == cooler["caption"].fingerprint

    folders = []
    for name, stages in (("sampled", sampled), ("cooler", cooler)):
        folder = tmp_path / name
        write_parquet([synthetic_release_row("v1", seconds=30.0)], folder / "data" / "train-00000-of-00001.parquet")
        report = RunReport(run=name, videos=1, done=["v1"], stages=stages, version="0.2.0")
        (folder / "report.json").write_text(report.to_json())
        (folder / "README.md").write_text(dataset_card(report))
        folders.append(folder)
    card = (folders[0] / "README.md").read_text()
    assert "## Choices that shape the text" in card
    for row in (
        "| refine: prompt profile | ours |",
        "| refine: reasoning effort | high in each of the 3 rounds |",
        "| refine: decoding | temperature 1, top_p 1, seed 0 (each request seeded by its node) |",
        "| refine: Current date | left out (prompts do not change by the day) |",
        "| caption: decoding of plm_caption, plm_action | greedy |",
        "| caption: decoding of llama3_caption | temperature 0.6, top_p 0.9, seed 0 (each request seeded by its node) |",
    ):
        assert row in card
    choices = json.loads((folders[1] / "report.json").read_text())["choices"]
    assert choices["refine: Current date"] == "2026-01-15"

    shown = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "compare", str(folders[0]), str(folders[1])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "refine: decoding | temperature 1, top_p 1, seed 0 (each request seeded by its node) | temperature 0.7" in shown
    )
    assert "refine: Current date | left out (prompts do not change by the day) | 2026-01-15   <- differs" in shown
    assert shown.index("choice | A | B") < shown.index("videos")


def test_where_fields_came_from_is_said_in_words():
    from action100m.pipelines.state import StageConfig

    def field_origin(source: str) -> str:
        return StageConfig("", [], {}, source=source).origin

    assert field_origin("") == "this run"
    assert field_origin("release.parquet") == "imported from release.parquet"
    skipped = field_origin("skipped: release.parquet has its tree and metadata")
    assert skipped == "the source's rows (the stage did not run: release.parquet has its tree and metadata)"
