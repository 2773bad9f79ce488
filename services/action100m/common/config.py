"""Settings dataclasses filled from the environment (a ConfigMap or Secret in the chart).

A field is read from the variable named in its metadata (`env=...`), else from A100M_<FIELD>;
values are converted to the type of the field's default, and checked against the bounds in its
metadata (`min=`, `max=`): a value that is not a number, not finite, or out of bounds is refused
with the variable named, so a service with a bad setting stops at start in one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import MISSING, Field, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


def env_var(field: Field[Any]) -> str:
    return str(field.metadata.get("env", f"A100M_{field.name.upper()}"))


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def setting(default: Any, env: str | None = None, min: float | None = None, max: float | None = None) -> Any:
    """A settings field: its default, its variable (default A100M_<FIELD>) and its bounds."""
    metadata = {k: v for k, v in (("env", env), ("min", min), ("max", max)) if v is not None}
    return field(default=default, metadata=metadata)


def _converted(item: Field[Any], raw: str) -> Any:
    default = item.default if item.default is not MISSING else None
    kind: type[Any] = type(default) if default is not None else str
    name = env_var(item)
    if kind is bool:
        if raw.strip().lower() not in (*TRUE, *FALSE):
            raise ValueError(f"{name}={raw!r}: expected 1/true/yes or 0/false/no")
        return raw.strip().lower() in TRUE
    try:
        value = kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else f"a {kind.__name__}"
        raise ValueError(f"{name}={raw!r}: expected {expected}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}={raw!r}: expected a finite number")
    low, high = item.metadata.get("min"), item.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise ValueError(f"{name}={raw!r}: must be {bounds}")
    return value


def from_env(cls: type[T], env: Mapping[str, str] = os.environ, **overrides: Any) -> T:
    """The settings of `cls` from `env` (ValueError naming the variable for a bad value)."""
    values: dict[str, Any] = {}
    for item in fields(cls):  # type: ignore[arg-type]
        raw = env.get(env_var(item))
        if raw is not None:
            values[item.name] = _converted(item, raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
