"""A cron block's schedule, validated: calendar expression or interval, and the time zone.

Why a library and not a parser of our own: cron expressions have a long tail (``L``, ``W``, ``#``,
names, DST rules) and cronsim follows Debian cron on all of it, including DST, with no
dependencies. It lacks the ``@hourly``-style aliases, so they are mapped here first (ecosystem
notes §7). ``@reboot`` has no meaning for a daemon's schedule and is refused.

Error messages name the field that is wrong, so a runbook error reads
``invalid schedule '61 * * * *': bad minute field``.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import attrs

#: Aliases cronsim does not know, as the five-field expressions they stand for.
ALIASES: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


class ScheduleError(ValueError):
    """A schedule, interval or time zone that cannot be used; the message says which part."""


@attrs.frozen
class Schedule:
    """When a cron fires: ``expression`` (five fields, aliases expanded) in ``zone``, or every
    ``interval_ms``. ``zone`` is an IANA name; ``None`` means the daemon's local zone."""

    expression: str | None = None
    interval_ms: int | None = None
    zone: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.expression is None) == (self.interval_ms is None):
            raise ScheduleError("a schedule needs exactly one of: an expression, an interval")
        if self.interval_ms is not None and self.interval_ms <= 0:
            raise ScheduleError("interval must be greater than zero")

    @property
    def is_interval(self) -> bool:
        return self.interval_ms is not None

    def describe(self) -> str:
        """``0 3 * * 1-5 (Europe/Paris)`` or ``every 30m`` (for lists)."""
        if self.interval_ms is not None:
            return f"every {_short(self.interval_ms)}"
        return f"{self.expression} ({self.zone})" if self.zone else str(self.expression)


def _short(ms: int) -> str:
    secs = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % size == 0 and secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def parse_expression(text: str) -> str:
    """The five-field expression ``text`` stands for (aliases expanded), checked with cronsim.

    Raises:
        ScheduleError: wrong number of fields, or the field that cronsim rejects.
    """
    from cronsim import CronSim, CronSimError

    stripped = " ".join(text.split())
    expression = ALIASES.get(stripped.lower(), stripped)
    if expression.startswith("@"):
        raise ScheduleError(
            f"invalid schedule '{text}': unknown alias {expression!r} (known: {', '.join(ALIASES)})"
        )
    fields = expression.split(" ")
    if len(fields) != 5:
        raise ScheduleError(
            f"invalid schedule '{text}': expected 5 fields "
            f"({' '.join(_FIELDS)}), got {len(fields) if expression else 0}"
        )
    try:
        next(CronSim(expression, datetime(2026, 1, 1, tzinfo=UTC)))
    except StopIteration:
        raise ScheduleError(f"invalid schedule '{text}': it never fires") from None
    except CronSimError as exc:
        reason = str(exc)
        field = reason.removeprefix("Bad ").strip() if reason.startswith("Bad ") else ""
        if field == "day-of-month" and _valid(" ".join([*fields[:3], "*", fields[4]])):
            # cronsim says "Bad day-of-month" for a day no month in the list has (31 in 2).
            raise ScheduleError(
                f"invalid schedule '{text}': day-of-month '{fields[2]}' never occurs in "
                f"month '{fields[3]}', so it would never fire"
            ) from None
        if field in _FIELDS:
            index = _FIELDS.index(field)
            raise ScheduleError(
                f"invalid schedule '{text}': bad {field} field '{fields[index]}'"
            ) from None
        raise ScheduleError(f"invalid schedule '{text}': {reason}") from None
    return expression


def _valid(expression: str) -> bool:
    from cronsim import CronSim, CronSimError

    try:
        CronSim(expression, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError:
        return False
    return True


def parse_zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``Europe/Paris``, ``UTC``).

    Raises:
        ScheduleError: no such zone in the system's (or tzdata's) database.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone '{name}'") from None
