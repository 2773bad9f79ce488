"""The annotation's JSON schema, which the engine enforces while decoding (so every answer parses).

`max_string_chars` bounds each string: random test weights need it to terminate; production sets it
high enough never to cut a real answer (the released `summary.detailed` averages ~95 words).
"""

from __future__ import annotations

import json
from typing import Any

FIELDS = {"summary": ("brief", "detailed"), "action": ("brief", "detailed", "actor")}


def annotation_schema(max_string_chars: int | None = None) -> dict[str, Any]:
    string: dict[str, Any] = {"type": "string"}
    if max_string_chars:
        string["maxLength"] = max_string_chars

    def group(names: tuple[str, ...]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {n: dict(string) for n in names},
            "required": list(names),
            "additionalProperties": False,
        }

    return {
        "type": "object",
        "properties": {k: group(v) for k, v in FIELDS.items()},
        "required": list(FIELDS),
        "additionalProperties": False,
    }


def parse_annotation(text: str) -> dict[str, dict[str, str]]:
    """The annotation in `text` (the JSON object, possibly after reasoning); ValueError if it has none."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the answer")
    value, _ = json.JSONDecoder(strict=False).raw_decode(text[start:])  # control characters inside strings are kept
    if not isinstance(value, dict):
        raise ValueError("the answer is not a JSON object")
    out: dict[str, dict[str, str]] = {}
    for group, names in FIELDS.items():
        part = value.get(group)
        if not isinstance(part, dict) or any(not isinstance(part.get(n), str) for n in names):
            raise ValueError(f"'{group}' must be an object with string fields {list(names)}")
        out[group] = {n: part[n] for n in names}
    return out
