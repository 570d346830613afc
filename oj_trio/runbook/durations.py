"""Duration strings of the runbook language (reference §1.8): ``"30s"``, ``"5 min"``, ``"2h"``.

One number and one unit only (no ``1h30m``): runbooks state cooldowns and poll intervals, and a
single unit keeps them readable. The messages are part of the contract, so tests assert them.
"""

from __future__ import annotations

import re

_UNIT_SECONDS: dict[str, int] = {}
for _names, _seconds in (
    (("", "s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds

_SHAPE = re.compile(r"^([0-9]*)\s*(.*)$", re.DOTALL)


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises ``ValueError`` with the reference's message when malformed."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration string")
    match = _SHAPE.match(stripped)
    assert match is not None  # the pattern matches any string
    digits, suffix = match.group(1), match.group(2).strip()
    if not digits:
        raise ValueError(f"invalid number in duration: {text}")
    if suffix not in _UNIT_SECONDS:
        raise ValueError(f"unknown duration suffix: {suffix}")
    return int(digits) * _UNIT_SECONDS[suffix]
