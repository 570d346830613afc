"""Turning what a user pushes into queue items: pure validation and normalisation.

Reference §3.2: data must be a JSON object; every declared var must be present or defaulted
(``missing required fields: a, b``); extra fields are kept; values that are not strings are
stored as their JSON text; missing fields get the queue's ``defaults``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import OjError
from ..runbook.model import Queue


def item_values(queue: Queue, data: Any) -> dict[str, str]:
    """One pushed object as stored item data.

    Raises:
        OjError: not an object, or a declared var is missing.
    """
    if not isinstance(data, Mapping):
        raise OjError("data must be a JSON object")
    values = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    for key, default in queue.defaults.items():
        values.setdefault(key, default)
    missing = [var for var in queue.vars if var not in values]
    if missing:
        raise OjError(f"missing required fields: {', '.join(missing)}")
    return values


def batch_values(
    queue: Queue, items: Sequence[Any], lines: Sequence[int] | None
) -> list[dict[str, str]]:
    """A whole batch, validated before anything is pushed; the error names the first bad line.

    Raises:
        OjError: ``line N: <reason>`` (and how many more lines are bad), one line.
    """
    if not items:
        raise OjError("no items to push")
    numbers = list(lines) if lines and len(lines) == len(items) else range(1, len(items) + 1)
    out: list[dict[str, str]] = []
    errors: list[str] = []
    for number, data in zip(numbers, items, strict=True):
        try:
            out.append(item_values(queue, data))
        except OjError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        more = len(errors) - 1
        tail = f" (and {more} more bad line{'s' if more > 1 else ''})" if more else ""
        raise OjError(errors[0] + tail)
    return out
