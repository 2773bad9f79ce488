"""Untrusted text (video uids, file names, error reasons) shown to people: on one line, inert."""

from __future__ import annotations


def printable(text: str, limit: int | None = None) -> str:
    """`text` with every character that is not printable (newlines, tabs, terminal escapes,
    direction overrides, lone surrogates) written as its Python escape, so a log line, a summary
    or a table row stays one row and shows what the text really is; cut to `limit` characters."""
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return shown if limit is None or len(shown) <= limit else shown[: limit - 1] + "…"
