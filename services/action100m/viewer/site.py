"""The viewer's page as files: the same for the live server and the static export.

`index.html`, `app.js` and `style.css` are this package's own (no build step, no third-party
JavaScript); the data files come from the catalog. Over the server a video plays from `/media/N`
(HTTP Range) or a presigned S3 URL; in an export, from a copy under `videos/` (`--copy-videos`),
a path relative to the export, or its presigned URL.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .catalog import Catalog, data_script

ASSETS = Path(__file__).parent / "static"
PAGE_FILES = ("index.html", "app.js", "style.css")
PRESIGN_SECONDS = 7 * 24 * 3600  # the longest S3 allows


def data_names(catalog: Catalog) -> list[str]:
    """Every data file the page may load (data/<name>.js)."""
    searches = (f"search-{part}" for part in range(len(catalog.search_parts)))
    return ["index", *searches, *(f"video-{number}" for number in range(len(catalog.videos)))]


def _number_after(name: str, prefix: str, count: int) -> int | None:
    """N of `prefix-N` when 0 <= N < count."""
    number = name.removeprefix(prefix)
    if name.startswith(prefix) and number.isascii() and number.isdigit() and int(number) < count:
        return int(number)
    return None


def data_file(catalog: Catalog, name: str, media_url: Callable[[int], str | None]) -> str | None:
    """The text of data/<name>.js, made when asked (None for a name the catalog does not have)."""
    if name == "index":
        return data_script(name, catalog.index())
    part = _number_after(name, "search-", len(catalog.search_parts))
    if part is not None:
        return data_script(name, catalog.search(part))
    number = _number_after(name, "video-", len(catalog.videos))
    if number is not None:
        return data_script(name, catalog.video(number, media_url(number)))
    return None


def export_site(catalog: Catalog, out: Path, copy_videos: bool = False) -> Path:
    """Writes the page and its data under `out`; returns the index.html path."""
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copyfile(ASSETS / name, out / name)

    def media(number: int) -> str | None:
        source = catalog.videos[number].source
        if source is None or catalog.store is None:
            return None
        if source.startswith("s3://"):
            return catalog.store.presigned_get(source, PRESIGN_SECONDS)
        path = Path(catalog.store.resolve(source).path)
        if copy_videos:
            target = out / "videos" / f"{number}{path.suffix}"
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, target)
            return f"videos/{target.name}"
        return Path(os.path.relpath(path, out)).as_posix()

    (out / "data").mkdir(exist_ok=True)
    for name in data_names(catalog):
        (out / "data" / f"{name}.js").write_text(data_file(catalog, name, media) or "", encoding="utf-8")
    return out / "index.html"
