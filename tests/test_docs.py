"""The README is a short front page, and every file it and the docs name exists; the site itself is
built with `mkdocs build --strict` by `make check` and `make test` (a broken link fails it)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_is_a_front_page_and_names_only_files_that_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    named = set(re.findall(r"`((?:docs|docker|helm|benchmarks)/[\w./-]+\.(?:md|png))`", readme))
    named |= set(re.findall(r"\]\(((?:docs)/[\w./-]+)\)", readme))
    assert named and [path for path in sorted(named) if not (REPO / path).exists()] == []


def test_every_page_of_docs_is_in_the_navigation():
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(entries) -> list[str]:
        found = []
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            found += pages(value) if isinstance(value, list) else [value]
        return found

    listed = set(pages(config["nav"]))
    written = {str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md")}
    generated = {"reference/cli.md", "reference/settings.md", "benchmarks.md", "contributing.md"}
    assert written - listed == set() and listed - written - generated == set()
