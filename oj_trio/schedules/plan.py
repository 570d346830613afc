"""When a cron fires: the next fire after a time, and what to do when its timer goes off.

The cron service arms one durable timer per running cron (``cron:<ns/name>``) at its next
scheduled fire. When the timer fires, :func:`plan_due` looks at every scheduled time from the
timer's deadline up to now and decides, in one place for every situation:

* **on time** (the usual case: the timer fires within milliseconds): run the fire;
* **late** — the deadline passed while the daemon was down (``due < missed_before``), or the
  machine slept (a suspend) and the timer is more than ``on_time_ms`` late: with ``catch_up``,
  the *latest* missed fire runs once if it lies inside the window, flagged as a catch-up; the
  others are counted as missed. Without ``catch_up`` nothing runs and all are counted.

The next deadline is always the first scheduled time after both *now* and the fire just handled,
so a wall clock that jumps (NTP step, suspend/resume) neither fires a time twice nor leaves a
deadline in the past. Interval crons keep their phase: their times are ``anchor + k × interval``
for the anchor they were started with, across restarts (the armed deadline is durable).

Pure: times in and out are epoch milliseconds; a calendar expression is evaluated in ``zone``.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

import attrs

from .spec import Schedule

#: Scheduled times counted one by one when a calendar cron was down for long; beyond it the
#: count is reported as at least this many (a minutely cron down for two months).
MAX_COUNTED = 100_000


@attrs.frozen
class Plan:
    """What a fired cron timer leads to.

    Attributes:
        fire_at_ms: the scheduled time of the fire to run now; ``None``: nothing runs.
        catch_up: the fire runs late, as the catch-up of fires missed (``catch_up`` window).
        missed: scheduled fires that were skipped because they were missed (not run).
        next_ms: the next deadline to arm (after now and after the fire handled).
    """

    fire_at_ms: int | None
    catch_up: bool
    missed: int
    next_ms: int
    #: The latest scheduled time handled (run or missed): an interval cron's phase anchor.
    latest_ms: int
    #: The latest of the ``missed`` times (``None`` when none was missed).
    last_missed_ms: int | None = None


def _calendar_next(expression: str, zone: tzinfo, after_ms: int) -> int:
    from cronsim import CronSim

    # cronsim reads the wall time and ignores ``fold``: from 02:10 in the *second* pass of a
    # fall-back hour it answers 02:30 of the first pass, an instant already gone. Such an answer
    # is skipped (its wall time fired in the first pass), so no time is ever handed out twice.
    times = CronSim(expression, datetime.fromtimestamp(after_ms / 1000, zone))
    while True:
        fire = round(next(times).timestamp() * 1000)
        if fire > after_ms:
            return fire


def next_after(schedule: Schedule, zone: tzinfo, after_ms: int, anchor_ms: int) -> int:
    """The first scheduled time strictly after ``after_ms``.

    Calendar schedules run in ``zone`` (cronsim's DST rules); intervals are
    ``anchor_ms + k × interval`` (any integer ``k``), so the phase of ``anchor_ms`` is kept.
    """
    if schedule.interval_ms is not None:
        step = schedule.interval_ms
        return anchor_ms + ((after_ms - anchor_ms) // step + 1) * step
    assert schedule.expression is not None
    return _calendar_next(schedule.expression, zone, after_ms)


def _fires_through(schedule: Schedule, zone: tzinfo, due_ms: int, now_ms: int) -> tuple[int, int]:
    """``(count, latest)`` of the scheduled times in ``[due_ms, now_ms]`` (``due_ms`` is one)."""
    if schedule.interval_ms is not None:
        count = (now_ms - due_ms) // schedule.interval_ms + 1
        return count, due_ms + (count - 1) * schedule.interval_ms
    count, latest = 1, due_ms
    while count < MAX_COUNTED:
        following = next_after(schedule, zone, latest, due_ms)
        if following > now_ms:
            return count, latest
        count, latest = count + 1, following
    # Counting stopped: the latest time is still exact, only the count is a floor.
    from cronsim import CronSim

    last = next(
        CronSim(str(schedule.expression), datetime.fromtimestamp(now_ms / 1000, zone), reverse=True)
    )
    return count, max(latest, round(last.timestamp() * 1000))


def plan_due(
    schedule: Schedule,
    zone: tzinfo,
    due_ms: int,
    now_ms: int,
    *,
    missed_before_ms: int,
    on_time_ms: int,
    catch_up_ms: int | None,
    claimed: bool = False,
) -> Plan:
    """What to do when the timer armed for the scheduled time ``due_ms`` fires at ``now_ms``.

    Args:
        missed_before_ms: deadlines before this were due while the daemon was down (its start).
        on_time_ms: how late a fire may run and still count as on time.
        catch_up_ms: the cron's ``catch_up`` window (``None``: missed fires never run).
        claimed: a daemon was up at ``due_ms`` (its timer fired) but died before recording the
            fire: ``due_ms`` itself does not count as due while the daemon was down (the times
            after it, up to the restart, do).
    """
    if now_ms < due_ms:  # not due yet (cannot come from the timer service; harmless)
        return Plan(None, False, 0, due_ms, due_ms)
    count, latest = _fires_through(schedule, zone, due_ms, now_ms)
    following = next_after(schedule, zone, max(now_ms, latest), due_ms)
    down = due_ms < missed_before_ms and not (claimed and latest == due_ms)
    late = down or now_ms - latest > on_time_ms
    runs = not late or (catch_up_ms is not None and now_ms - latest <= catch_up_ms)
    if not runs:
        return Plan(None, False, count, following, latest, latest)
    before = None if count == 1 else _fires_through(schedule, zone, due_ms, latest - 1)[1]
    return Plan(latest, late, count - 1, following, latest, before)


def iso(ms: int, zone: tzinfo) -> str:
    """``2026-10-25T02:30:00+02:00``: a scheduled time as templates see it (``cron.scheduled_at``)."""
    return datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="seconds")
