"""The pure schedule logic of crons (issue 11): expressions, zones, next fires, and the plan for
a fired timer (on time, late, missed, caught up). No trio, no clock: times are epoch ms.

DST cases are the ones checked in ecosystem notes §7 (cronsim): a 02:30 job fires once on a
spring-forward day (at 03:00) and once on a fall-back day, in Paris and in New York.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oj_trio.schedules.plan import Plan, iso, next_after, plan_due
from oj_trio.schedules.spec import Schedule, ScheduleError, parse_expression, parse_zone

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def ms(text: str) -> int:
    """An ISO time with offset → epoch ms."""
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def fires(expression: str, zone: ZoneInfo, start: str, end: str) -> list[str]:
    """Every fire in ``(start, end]``, chained as the cron service chains them."""
    schedule = Schedule(expression=expression)
    out: list[str] = []
    t = ms(start)
    while True:
        t = next_after(schedule, zone, t, t)
        if t > ms(end):
            return out
        out.append(iso(t, zone))


# --- expressions and zones -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "invalid schedule '61 * * * *': bad minute field '61'"),
        ("0 25 * * *", "invalid schedule '0 25 * * *': bad hour field '25'"),
        ("0 0 32 * *", "invalid schedule '0 0 32 * *': bad day-of-month field '32'"),
        ("0 0 * 13 *", "invalid schedule '0 0 * 13 *': bad month field '13'"),
        ("0 0 * * 8", "invalid schedule '0 0 * * 8': bad day-of-week field '8'"),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("", "expected 5 fields"),
        ("@reboot", "unknown alias '@reboot'"),
        (
            "0 0 30 2 *",
            "invalid schedule '0 0 30 2 *': day-of-month '30' never occurs in month '2', "
            "so it would never fire",
        ),
        ("0 0 31 4,6 *", "day-of-month '31' never occurs in month '4,6'"),
        ("0 0 32 2 *", "invalid schedule '0 0 32 2 *': bad day-of-month field '32'"),
    ],
)
def test_bad_expressions_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_expression(text)
    assert message in str(caught.value)


def test_aliases_and_spacing() -> None:
    assert parse_expression("@daily") == "0 0 * * *"
    assert parse_expression("@HOURLY") == "0 * * * *"
    assert parse_expression("@weekly") == "0 0 * * 0"
    assert parse_expression(" 0  3 * *   1-5 ") == "0 3 * * 1-5"
    assert parse_expression("0 3 * * mon-fri") == "0 3 * * mon-fri"


def test_zones() -> None:
    assert parse_zone("Europe/Paris") == PARIS
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(ScheduleError, match="unknown time zone"):
            parse_zone(bad)


def test_schedule_needs_exactly_one_kind() -> None:
    with pytest.raises(ScheduleError):
        Schedule()
    with pytest.raises(ScheduleError):
        Schedule(expression="* * * * *", interval_ms=1000)
    with pytest.raises(ScheduleError):
        Schedule(interval_ms=0)
    assert Schedule(interval_ms=30 * MIN).describe() == "every 30m"
    assert Schedule(interval_ms=1000).describe() == "every 1s"
    assert Schedule(interval_ms=90_000).describe() == "every 90s"
    assert Schedule(expression="0 3 * * *", zone="Europe/Paris").describe() == (
        "0 3 * * * (Europe/Paris)"
    )


# --- DST -------------------------------------------------------------------------------------


def test_paris_spring_forward_fires_once_at_three() -> None:
    got = fires("30 2 * * *", PARIS, "2026-03-27T12:00+01:00", "2026-03-31T12:00+02:00")
    assert got == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist that day: once, at 03:00
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_paris_fall_back_fires_once() -> None:
    for expression in ("30 2 * * *", "30 1 * * *"):
        got = fires(expression, PARIS, "2026-10-24T12:00+02:00", "2026-10-26T12:00+01:00")
        assert len(got) == 2, got
        assert got[0].startswith("2026-10-25T0"), got
        assert got[1].startswith("2026-10-26T0"), got


def test_new_york_both_transitions() -> None:
    spring = fires("30 2 * * *", NEW_YORK, "2026-03-07T12:00-05:00", "2026-03-09T12:00-04:00")
    assert spring == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    fall = fires("30 1 * * *", NEW_YORK, "2026-10-31T12:00-04:00", "2026-11-02T12:00-05:00")
    assert fall == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    # an hourly job runs in both 01:30s: two distinct instants, an hour apart
    hourly = fires("30 * * * *", NEW_YORK, "2026-11-01T00:45-04:00", "2026-11-01T02:45-05:00")
    assert hourly == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:30:00-05:00",
    ]


def test_a_start_inside_the_repeated_hour_never_goes_back() -> None:
    """cronsim ignores ``fold``: asked from 02:10 of the second pass of Paris's fall-back hour,
    it answers 02:30 of the first pass (an hour ago). The daily job already ran then; the
    hourly one runs at 02:30 of the second pass."""
    start = ms("2026-10-25T02:10+01:00")
    daily = next_after(Schedule(expression="30 2 * * *"), PARIS, start, start)
    assert iso(daily, PARIS) == "2026-10-26T02:30:00+01:00"
    hourly = next_after(Schedule(expression="30 * * * *"), PARIS, start, start)
    assert iso(hourly, PARIS) == "2026-10-25T02:30:00+01:00"


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(ms("2026-01-01T00:00+00:00"), ms("2027-12-31T00:00+00:00")),
    zone=st.sampled_from([PARIS, NEW_YORK, ZoneInfo("UTC"), ZoneInfo("Australia/Lord_Howe")]),
)
def test_daily_job_fires_once_per_local_day(start: int, zone: ZoneInfo) -> None:
    """Whatever the zone and the DST changes in the next ten days, a daily job runs once per
    local date, strictly increasing in time."""
    schedule = Schedule(expression="30 2 * * *")
    t, days = start, []
    for _ in range(10):
        nxt = next_after(schedule, zone, t, t)
        assert nxt > t
        days.append(datetime.fromtimestamp(nxt / 1000, zone).date())
        t = nxt
    assert len(set(days)) == len(days)


# --- intervals -------------------------------------------------------------------------------


@given(
    anchor=st.integers(0, 2**41),
    step=st.integers(1, 10 * DAY),
    after=st.integers(0, 2**41),
)
def test_interval_next_keeps_the_phase(anchor: int, step: int, after: int) -> None:
    nxt = next_after(Schedule(interval_ms=step), UTC, after, anchor)
    assert after < nxt <= after + step
    assert (nxt - anchor) % step == 0


# --- the plan for a fired timer ----------------------------------------------------------------

EVERY_MIN = Schedule(interval_ms=MIN)
T0 = ms("2026-06-01T00:00+00:00")


def plan(
    due: int,
    now: int,
    *,
    booted: int = 0,
    catch_up: int | None = None,
    schedule: Schedule = EVERY_MIN,
    claimed: bool = False,
) -> Plan:
    return plan_due(
        schedule,
        UTC,
        due,
        now,
        missed_before_ms=booted,
        on_time_ms=MIN // 2,
        catch_up_ms=catch_up,
        claimed=claimed,
    )


def test_on_time_fire() -> None:
    assert plan(T0, T0 + 3) == Plan(T0, False, 0, T0 + MIN, T0)


def test_down_without_catch_up_runs_nothing_and_counts_every_missed_fire() -> None:
    # due at T0, the daemon came back at T0 + 10.5 min: T0 … T0+10min are 11 missed fires
    p = plan(T0, T0 + 10 * MIN + MIN // 2, booted=T0 + 10 * MIN + MIN // 2 - 5)
    assert p == Plan(None, False, 11, T0 + 11 * MIN, T0 + 10 * MIN, T0 + 10 * MIN)


def test_down_with_catch_up_runs_the_latest_missed_fire_once() -> None:
    now = T0 + 10 * MIN + 20_000
    p = plan(T0, now, booted=now - 5, catch_up=HOUR)
    assert p == Plan(T0 + 10 * MIN, True, 10, T0 + 11 * MIN, T0 + 10 * MIN, T0 + 9 * MIN)


def test_catch_up_window_edges() -> None:
    cal = Schedule(expression="0 3 * * *")
    due = ms("2026-06-01T03:00+00:00")
    for late, runs in ((6 * HOUR - 1, True), (6 * HOUR, True), (6 * HOUR + 1, False)):
        p = plan(due, due + late, booted=due + late, catch_up=6 * HOUR, schedule=cal)
        assert (p.fire_at_ms is not None) is runs, late
        assert p.catch_up is runs
        assert p.missed == (0 if runs else 1)
        assert p.next_ms == ms("2026-06-02T03:00+00:00")


def test_a_deadline_before_the_boot_is_missed_even_if_only_just() -> None:
    assert plan(T0, T0 + 10, booted=T0 + 5).fire_at_ms is None
    assert plan(T0, T0 + 10, booted=T0 + 5, catch_up=MIN).catch_up


def test_a_claimed_deadline_counts_as_reached_by_a_live_daemon() -> None:
    """A daemon fired the timer of ``T0`` and died before recording the fire; the next one
    handles ``T0`` as its own deadline (on time after a quick restart), while a time that
    passed with no daemon up is missed as usual."""
    assert plan(T0, T0 + 20_000, booted=T0 + 15_000, claimed=True) == Plan(
        T0, False, 0, T0 + MIN, T0
    )
    assert plan(T0, T0 + 20_000, booted=T0 + 15_000).fire_at_ms is None  # not claimed: missed
    # a long restart: late as any fire is (missed, or a catch-up)
    assert plan(T0, T0 + 40_000, booted=T0 + 39_000, claimed=True).fire_at_ms is None
    assert plan(T0, T0 + 40_000, booted=T0 + 39_000, claimed=True, catch_up=MIN).catch_up
    # the daemon stayed down past the next time: that one passed while it was down
    p = plan(T0, T0 + MIN + 10_000, booted=T0 + MIN + 5_000, claimed=True)
    assert (p.fire_at_ms, p.missed, p.last_missed_ms) == (None, 2, T0 + MIN)


def test_a_suspend_makes_fires_late_without_a_restart() -> None:
    """The daemon ran all along, but the timer fires hours late (the machine slept)."""
    # the latest time, T0 + 3 h, was 10 ms ago: it runs on time; the 180 before it are missed
    p = plan(T0, T0 + 3 * HOUR + 10)
    assert (p.fire_at_ms, p.catch_up, p.missed) == (T0 + 3 * HOUR, False, 180)
    # woken 40 s after the latest time (on time means within 30 s here): nothing runs …
    p = plan(T0, T0 + 3 * HOUR + 40_000)
    assert (p.fire_at_ms, p.missed) == (None, 181)
    # … unless the cron catches up
    p = plan(T0, T0 + 3 * HOUR + 40_000, catch_up=MIN)
    assert (p.fire_at_ms, p.catch_up, p.missed) == (T0 + 3 * HOUR, True, 180)


def test_next_deadline_is_after_now_and_after_the_fire() -> None:
    """A wall clock stepped back after the timer fired must not make the same time fire again."""
    cal = Schedule(expression="0 3 * * *")
    due = ms("2026-06-01T03:00+00:00")
    p = plan_due(cal, UTC, due, due + 5, missed_before_ms=0, on_time_ms=MIN, catch_up_ms=None)
    assert p.next_ms == ms("2026-06-02T03:00+00:00")


@settings(max_examples=200, deadline=None)
@given(
    step=st.integers(1000, DAY),
    late=st.integers(0, 3 * DAY),
    boot_gap=st.integers(-DAY, DAY),
    catch_up=st.none() | st.integers(0, 2 * DAY),
    claimed=st.booleans(),
)
def test_plan_invariants(
    step: int, late: int, boot_gap: int, catch_up: int | None, claimed: bool
) -> None:
    due, now = T0, T0 + late
    p = plan(
        due,
        now,
        booted=due + boot_gap,
        catch_up=catch_up,
        schedule=Schedule(interval_ms=step),
        claimed=claimed,
    )
    total = late // step + 1
    assert p.missed + (1 if p.fire_at_ms is not None else 0) == total  # each time handled once
    # the latest missed time (the record's phase after a skip) is the one before what runs
    if p.missed == 0:
        assert p.last_missed_ms is None
    else:
        assert p.last_missed_ms == due + (p.missed - 1) * step
    assert now < p.next_ms <= now + step and (p.next_ms - due) % step == 0  # phase kept
    if p.fire_at_ms is not None:
        assert p.fire_at_ms == p.latest_ms <= now  # only ever the latest one runs
        if p.catch_up:
            assert catch_up is not None and now - p.fire_at_ms <= catch_up
    if catch_up is None:
        assert not p.catch_up
