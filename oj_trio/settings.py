"""Reading oj's ``OJ_*_MS`` environment knobs, the same way on both sides.

Stdlib-only (the CLI imports it). A malformed value is the user's to fix, so it is an
:class:`OjError` naming the variable, never a ValueError traceback or a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import OjError


def env_seconds(name: str, default_ms: int, env: Mapping[str, str] | None = None) -> float:
    """``$name`` (whole milliseconds, default ``default_ms``) in seconds; negatives count as 0."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default_ms / 1000.0
    try:
        return max(0, int(raw)) / 1000.0
    except ValueError:
        raise OjError(f"{name} must be a whole number of milliseconds, got {raw!r}") from None
