"""A request's stage options against the service's defaults (proto3 `optional` fields).

An unset field takes the default; a set one is checked: finite, and within its range, so NaN or a
negative count is refused with INVALID_ARGUMENT naming the field instead of producing nonsense.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf.message import Message


def resolve(options: Message, defaults: Message) -> dict[str, Any]:
    """Every field of `defaults`: the request's value where it set one, else the default's."""
    return {
        field.name: getattr(options if options.HasField(field.name) else defaults, field.name)
        for field in defaults.DESCRIPTOR.fields
    }


def out_of_range(values: Mapping[str, Any], minimums: Mapping[str, float]) -> str | None:
    """The first value that is not finite or is below its minimum, said plainly; None if all are fine."""
    for name, minimum in minimums.items():
        value = values[name]
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} must be a finite number, got {value}"
        if value < minimum:
            return f"{name} must be >= {minimum}, got {value}"
    return None


def resolve_checked(
    options: Message, defaults: Message, minimums: Mapping[str, float], context: grpc.ServicerContext
) -> dict[str, Any]:
    """`resolve`, aborting the call with INVALID_ARGUMENT when a value is out of range."""
    values = resolve(options, defaults)
    problem = out_of_range(values, minimums)
    if problem:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
    return values
