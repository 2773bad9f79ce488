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


def test_push_dry_run_lists_what_would_go_and_refuses_a_folder_without_a_card(tmp_path):
    folder = dataset_folder(tmp_path, CardFacts(license="apache-2.0"))
    done = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "push", str(folder), "me/my-dataset", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "-> https://huggingface.co/datasets/me/my-dataset" in done.stdout
    assert "  README.md" in done.stdout and "  data/train-00000-of-00001.parquet" in done.stdout
    (folder / "README.md").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "push", str(folder), "me/my-dataset", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "not a dataset folder" in done.stderr


def test_push_refuses_a_repo_id_that_is_a_path_and_a_file_that_links_outside_the_dataset(tmp_path):
    folder = dataset_folder(tmp_path, CardFacts(license="apache-2.0"))

    def dry_run(repo_id: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "action100m.cli", "push", str(folder), repo_id, "--dry-run"]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    for bad in ("../x", "a/b/c", "name-only", "me/../../etc"):
        done = dry_run(bad)
        assert done.returncode == 2 and f"{bad!r} is not a Hub repository id" in done.stderr, (bad, done.stderr)
    secret = tmp_path / "secret.parquet"
    secret.write_bytes(b"not yours")
    (folder / "data" / "train-00009-of-00009.parquet").symlink_to(secret)
    done = dry_run("me/my-dataset")
    assert done.returncode == 2 and "a link or not a regular file of the dataset" in done.stderr
    assert "secret.parquet" in done.stderr and "train-00009" in done.stderr
