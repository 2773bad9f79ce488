"""Speech whose words are known, and how close a transcript comes to them: the word error rate
(substitutions, deletions and insertions over the words said), on words compared without case or
punctuation (`Five newton-metres.` and `five newton metres` are the same three words)."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """The words of a text: lower case, punctuation and hyphens dropped."""
    return WORD.findall(text.lower().replace("-", " "))


def word_error_rate(said: str, heard: str) -> float:
    """Edits (word substitutions, deletions, insertions) from `said` to `heard`, over the words said."""
    reference, hypothesis = words(said), words(heard)
    if not reference:
        return float(bool(hypothesis))
    previous = list(range(len(hypothesis) + 1))
    for i, word in enumerate(reference, start=1):
        current = [i]
        for j, other in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1] / len(reference)
