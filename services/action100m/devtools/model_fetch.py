"""`a100m models fetch`: the weights of a preset (or named models) into a Hugging Face cache, once,
before any service starts (the chart runs it as a Job that fills the model-cache claim; the services
then start from it offline).

Downloads resume: huggingface_hub keeps partial files and skips what the cache already holds. The
token comes from the environment (HF_TOKEN), never from the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# What the services read: configs, tokenizers, processors, chat templates and the safetensors
# weights (never the .bin / .pth / original/ duplicates some repositories also carry).
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken", "tokenizer*"]
IGNORE_PATTERNS = ["original/*", "metal/*", "*.pth", "*.bin", "*.gguf"]


class FetchError(RuntimeError):
    """A model that cannot be fetched, with the reason in one line."""


@dataclass
class Fetched:
    model: str
    path: Path  # its snapshot folder in the cache
    bytes: int


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def fetch_models(models: Sequence[str], hf_home: Path, env: Mapping[str, str] = os.environ) -> list[Fetched]:
    """Each model's snapshot into `hf_home/hub` (the cache HF_HOME=hf_home reads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None
    offline = env.get("HF_HUB_OFFLINE", "") in ("1", "true", "True")
    fetched = []
    for model in dict.fromkeys(models):
        if Path(model).is_dir():  # a local folder is used where it is
            fetched.append(Fetched(model, Path(model), _size(Path(model))))
            continue
        try:
            folder = snapshot_download(
                model,
                cache_dir=str(hf_home / "hub"),
                token=token,
                allow_patterns=ALLOW_PATTERNS,
                ignore_patterns=IGNORE_PATTERNS,
                local_files_only=offline,
            )
        except GatedRepoError:
            raise FetchError(
                f"{model} is gated: accept its license on the Hub with your account, then set HF_TOKEN"
            ) from None
        except RepositoryNotFoundError:
            raise FetchError(
                f"{model}: no such model on the Hub (or it is private and HF_TOKEN cannot see it)"
            ) from None
        except LocalEntryNotFoundError:
            raise FetchError(f"{model} is not in {hf_home / 'hub'} and HF_HUB_OFFLINE is set") from None
        except (HfHubHTTPError, OSError) as error:
            raise FetchError(f"{model}: {type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
        fetched.append(Fetched(model, Path(folder), _size(Path(folder))))
    return fetched
