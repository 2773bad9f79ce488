"""Settings dataclasses filled from the environment (a ConfigMap or Secret in the chart).

A field is read from the variable named in its metadata (`env=...`), else from A100M_<FIELD>;
values are converted to the type of the field's default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any, TypeVar

T = TypeVar("T")


def env_var(field: Field[Any]) -> str:
    return str(field.metadata.get("env", f"A100M_{field.name.upper()}"))


def from_env(cls: type[T], env: Mapping[str, str] = os.environ, **overrides: Any) -> T:
    values: dict[str, Any] = {}
    for field in fields(cls):  # type: ignore[arg-type]
        raw = env.get(env_var(field))
        if raw is None:
            continue
        default = field.default if field.default is not MISSING else None
        kind = type(default) if default is not None else str
        try:
            values[field.name] = (raw.lower() in ("1", "true", "yes")) if kind is bool else kind(raw)
        except ValueError:
            raise ValueError(f"{env_var(field)}={raw!r}: expected a {kind.__name__}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)
