"""`a100m push DATASET REPO_ID`: put a dataset folder on the Hugging Face Hub (a dataset repository)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    push = commands.add_parser(
        "push",
        help="upload a dataset folder (its card, report and parquet files) to a Hugging Face dataset repository",
        description="Uploads DATASET (an `a100m run` output's dataset/ folder: README.md, report.json, "
        "data/*.parquet) to the Hub repository REPO_ID (created when missing). The token comes from HF_TOKEN "
        "(or `huggingface-cli login`); never give it on the command line. --dry-run checks and lists what would go.",
    )
    push.add_argument("dataset", metavar="DATASET", help="the dataset folder (OUT/dataset)")
    push.add_argument("repo_id", metavar="REPO_ID", help="user-or-org/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--dry-run", action="store_true", help="check the card and list the files; upload nothing")
    push.set_defaults(run=push_command)


def check_repo_id(repo_id: str) -> str:
    """A Hub dataset id, `user-or-org/name`; ValueError naming what is wrong (`../x`, `a/b/c`)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"{repo_id!r} is not a Hub repository id: {str(error).splitlines()[0]}") from None
    if repo_id.count("/") != 1:
        raise ValueError(f"{repo_id!r} is not a Hub repository id: expected user-or-org/name")
    return repo_id


def dataset_files(folder: Path) -> list[Path]:
    """What is uploaded: regular files inside the folder only; ValueError when the folder is not a
    dataset with a card the Hub can read, or holds a link (to anything outside it, say)."""
    from huggingface_hub import DatasetCard

    card = folder / "README.md"
    parquet = sorted((folder / "data").glob("*.parquet"))
    if not card.is_file() or not parquet:
        raise ValueError(f"{folder}: not a dataset folder (README.md and data/*.parquet expected)")
    report = [folder / "report.json"] if (folder / "report.json").is_file() else []
    files = [card, *report, *parquet]
    inside = folder.resolve()
    for path in files:
        if path.is_symlink() or not path.is_file() or inside not in path.resolve().parents:
            raise ValueError(
                f"{path}: a link or not a regular file of the dataset ({path.resolve()}): only its own files go up"
            )
    data = DatasetCard.load(card).data
    if not data.get("configs") or not data.get("license"):
        raise ValueError(f"{card}: the card's YAML has no configs or no license")
    return files


def card_warnings(card: Path) -> list[str]:
    """What a reader of the card should hear before it goes up: noise from the tiny preset's random
    models, a license nobody named."""
    from huggingface_hub import DatasetCard

    from action100m.pipelines.local.presets import TINY_PRESET_NOTE

    warnings = []
    if TINY_PRESET_NOTE in card.read_text():
        warnings.append("the card says the tiny preset made it: its captions and annotations are noise")
    if DatasetCard.load(card).data.get("license") == "other":
        warnings.append("the card's license is 'other': name your videos' license (a100m run --license ID)")
    return warnings


def push_command(args: argparse.Namespace) -> int:
    folder = Path(args.dataset)
    try:
        check_repo_id(args.repo_id)
        files = dataset_files(folder)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in card_warnings(folder / "README.md"):
        print(f"warning: {warning}", file=sys.stderr)
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {size / 1024**2:.1f} MiB -> https://huggingface.co/datasets/{args.repo_id}")
    for path in files:
        print(f"  {path.relative_to(folder)}")
    if args.dry_run:
        return 0
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ.get("HF_TOKEN") or None)
    try:
        api.create_repo(args.repo_id, repo_type="dataset", private=args.private, exist_ok=True)
        listed = [path.relative_to(folder).as_posix() for path in files]  # these files, nothing else
        api.upload_folder(folder_path=str(folder), repo_id=args.repo_id, repo_type="dataset", allow_patterns=listed)
    except Exception as error:  # the Hub client raises HTTP, auth and network errors alike
        print(f"error: the Hub: {type(error).__name__}: {str(error).splitlines()[0][:300]}", file=sys.stderr)
        return 2
    print(f"pushed: https://huggingface.co/datasets/{args.repo_id}")
    return 0
