"""Crons in the in-process runtime (issue 11), on ``autojump_clock``: days of virtual time in
milliseconds, the real store, timers, cron service and pipeline driver, scripted steps.

Covers: interval fires over days; calendar fires through DST changes in two zones; fires that
see ``${cron.name}``/``${cron.scheduled_at}``; concurrency skips (recorded); the phase kept
across a restart; catch-up after downtime (inside and outside the window, and without it);
stop sticky across a restart; ``once``; a wall clock that jumps while the daemon runs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest
import trio
import trio.testing
from runtime_harness import EPOCH_MS, RuntimeHarness, Step, open_runtime

from oj_trio import events as ev
from oj_trio import pipeline_setup
from oj_trio.errors import NotFoundError, OjError
from oj_trio.runtime.timer_service import FiredTimer
from oj_trio.timers import CRON, cron_id

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
NS = "test"

RUNBOOK = """
pipeline "job" {
  step "run" { run = "echo ${cron.name} ${cron.scheduled_at}" }
}
pipeline "slowjob" {
  step "long" { run = "sleep 1500" }
}
cron "hourly" {
  interval = "1h"
  run      = { pipeline = "job" }
}
cron "seven" {
  interval = "7m"
  run      = { pipeline = "job" }
}
cron "catchy" {
  interval = "1h"
  catch_up = "2h"
  run      = { pipeline = "job" }
}
cron "nightly" {
  schedule = "0 3 * * *"
  timezone = "UTC"
  catch_up = "1h"
  run      = { pipeline = "job" }
}
cron "paris" {
  schedule = "30 2 * * *"
  timezone = "Europe/Paris"
  run      = { pipeline = "job" }
}
cron "newyork" {
  schedule = "30 1 * * *"
  timezone = "America/New_York"
  run      = { pipeline = "job" }
}
cron "slow" {
  interval    = "10m"
  concurrency = 1
  run         = { pipeline = "slowjob" }
}
"""


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def fires(rt: RuntimeHarness, name: str | None = None) -> list[ev.CronFired]:
    return [
        e
        for e in rt.committed(ev.CronFired)
        if isinstance(e, ev.CronFired) and (name is None or e.cron_name == name)
    ]


def skips(rt: RuntimeHarness, reason: str | None = None) -> list[ev.CronSkipped]:
    return [
        e
        for e in rt.committed(ev.CronSkipped)
        if isinstance(e, ev.CronSkipped) and (reason is None or e.reason == reason)
    ]


async def start(rt: RuntimeHarness, name: str) -> None:
    runbook = rt.load(RUNBOOK)
    assert await rt.supervisor.crons.start_from(runbook, rt.project, NS, name) is False


async def wait_fires(rt: RuntimeHarness, n: int, within: float = 5 * 86400) -> list[ev.CronFired]:
    """Wait for ``n`` fires, woken by commits only (the harness's ``wait_until`` also wakes every
    virtual second: 260,000 wake-ups for three days)."""
    with trio.fail_after(within):
        while len(fires(rt)) < n:
            await rt.store.wait_for_change(rt.store.last_seq)
    return fires(rt)


def next_fire(rt: RuntimeHarness, name: str) -> int | None:
    return rt.store.state.timers.get(cron_id(NS, name))


# --- fires over days -----------------------------------------------------------------------


async def test_interval_cron_fires_for_days_with_its_vars(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_runtime(tmp_path) as rt:
        await start(rt, "hourly")
        assert next_fire(rt, "hourly") == EPOCH_MS + HOUR  # one interval after the start
        got = await wait_fires(rt, 72)
        assert [e.scheduled_at_ms for e in got] == [EPOCH_MS + k * HOUR for k in range(1, 73)]
        assert not any(e.catch_up or e.manual for e in got)
        p = rt.store.state.pipelines[got[0].pipeline_id]
        assert p.vars["cron.name"] == "hourly"
        assert p.vars["cron.scheduled_at"] == "2026-01-01T01:00:00+00:00"
        assert p.vars["invoke.dir"] == str(rt.project) == p.cwd
        assert p.namespace == NS
        await rt.wait_ended(got[-1].pipeline_id)
        record = rt.store.state.crons[f"{NS}/hourly"]
        assert record.fires == 72 and record.last_scheduled_at_ms == EPOCH_MS + 72 * HOUR
        assert len(record.pipeline_ids) <= 2  # ended runs are dropped, not kept forever


@pytest.mark.parametrize(
    ("name", "epoch", "expected"),
    [
        (
            "paris",
            "2026-03-27T12:00+01:00",
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",  # spring forward: 02:30 does not exist; once
                "2026-03-30T02:30:00+02:00",
            ],
        ),
        (
            "paris",
            "2026-10-24T12:00+02:00",
            [
                "2026-10-25T02:30:00+02:00",  # fall back: 02:30 happens twice; fires once
                "2026-10-26T02:30:00+01:00",
                "2026-10-27T02:30:00+01:00",
            ],
        ),
        (
            "newyork",
            "2026-03-07T12:00-05:00",
            [
                "2026-03-08T01:30:00-05:00",
                "2026-03-09T01:30:00-04:00",
                "2026-03-10T01:30:00-04:00",
            ],
        ),
        (
            "newyork",
            "2026-10-31T12:00-04:00",
            [
                "2026-11-01T01:30:00-04:00",  # 01:30 happens twice; fires once
                "2026-11-02T01:30:00-05:00",
                "2026-11-03T01:30:00-05:00",
            ],
        ),
    ],
)
async def test_calendar_cron_through_dst(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    name: str,
    epoch: str,
    expected: list[str],
) -> None:
    async with open_runtime(tmp_path, epoch_ms=ms(epoch)) as rt:
        await start(rt, name)
        got = await wait_fires(rt, 3)
        seen = [rt.store.state.pipelines[e.pipeline_id].vars["cron.scheduled_at"] for e in got]
        assert seen == expected
        assert [e.scheduled_at_ms for e in got] == [ms(t) for t in expected]
        # and nothing in between: the next fire is the day after the third
        assert next_fire(rt, name) == ms(expected[-1]) + DAY


# --- concurrency ---------------------------------------------------------------------------


async def test_a_fire_beyond_concurrency_is_skipped_and_recorded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "oj.crons")
    # each run takes 25 minutes; the cron fires every 10
    async with open_runtime(tmp_path, {"long": [Step(25 * 60)] * 5}) as rt:
        await start(rt, "slow")
        got = await wait_fires(rt, 2)
        assert [e.scheduled_at_ms - EPOCH_MS for e in got] == [10 * MIN, 40 * MIN]
        skipped = skips(rt, "concurrency")
        assert [e.scheduled_at_ms - EPOCH_MS for e in skipped] == [20 * MIN, 30 * MIN]
        assert rt.runner.peak == 1
        assert rt.store.state.crons[f"{NS}/slow"].skipped == 2
        assert "1 run(s) still active (concurrency 1)" in caplog.text


# --- restarts --------------------------------------------------------------------------------


async def test_interval_phase_survives_a_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state) as rt:
        await start(rt, "seven")
        await wait_fires(rt, 2)  # at 7 and 14 minutes
        await trio.sleep(6 * 60)
        stopped_at = rt.ctx.clock.now_ms()
    assert stopped_at == EPOCH_MS + 20 * MIN
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=stopped_at) as rt:
        assert next_fire(rt, "seven") == EPOCH_MS + 21 * MIN  # not a fresh 7 minutes
        got = await wait_fires(rt, 2)
        assert [e.scheduled_at_ms - EPOCH_MS for e in got] == [21 * MIN, 28 * MIN]
        assert not skips(rt)


async def test_catch_up_runs_the_latest_missed_fire_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "oj.crons")
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state) as rt:
        await start(rt, "catchy")
        await start(rt, "hourly")
        await wait_fires(rt, 2)  # both at 1 h
        await trio.sleep(5 * 60)
    # down from 1h05 to 4h35: the fires of 2h, 3h and 4h are missed
    back = EPOCH_MS + 4 * HOUR + 35 * MIN
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=back) as rt:
        await rt.wait_until(lambda: len(skips(rt)) >= 2, within=60)
        await trio.sleep(1)
        caught = fires(rt)
        assert [(e.cron_name, e.scheduled_at_ms - EPOCH_MS, e.catch_up) for e in caught] == [
            ("catchy", 4 * HOUR, True)
        ]
        assert rt.store.state.pipelines[caught[0].pipeline_id].vars["cron.catch_up"] == "true"
        missed = {e.cron_name: e.count for e in skips(rt, "missed")}
        assert missed == {"catchy": 2, "hourly": 3}
        assert "3 scheduled fire(s) missed" in caplog.text and "no catch_up" in caplog.text
        # both go on in phase
        assert next_fire(rt, "catchy") == next_fire(rt, "hourly") == EPOCH_MS + 5 * HOUR
        got = await wait_fires(rt, 3)
        assert sorted((e.cron_name, e.catch_up) for e in got[1:]) == [
            ("catchy", False),
            ("hourly", False),
        ]


@pytest.mark.parametrize(("down_until", "runs"), [("03:59:59", True), ("04:00:01", False)])
async def test_catch_up_window_edge(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, down_until: str, runs: bool
) -> None:
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=ms("2026-05-01T02:00+00:00")) as rt:
        await start(rt, "nightly")
    back = ms(f"2026-05-01T{down_until}+00:00")
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=back) as rt:
        await rt.wait_until(lambda: bool(fires(rt) or skips(rt)), within=60)
        assert [e.catch_up for e in fires(rt)] == ([True] if runs else [])
        assert [e.count for e in skips(rt)] == ([] if runs else [1])
        assert next_fire(rt, "nightly") == ms("2026-05-02T03:00+00:00")


async def test_stop_is_sticky_across_a_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state) as rt:
        await start(rt, "hourly")
        await wait_fires(rt, 1)
        assert await rt.supervisor.crons.stop(NS, "hourly") == ["hourly"]
        assert await rt.supervisor.crons.stop(NS, "hourly") == []  # not running any more
        with pytest.raises(NotFoundError, match="unknown cron: nope"):
            await rt.supervisor.crons.stop(NS, "nope")
        assert next_fire(rt, "hourly") is None
        stopped_at = rt.ctx.clock.now_ms()
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=stopped_at + 3 * HOUR) as rt:
        await trio.sleep(2 * 86400)
        assert fires(rt) == [] and skips(rt) == []
        assert str(rt.store.state.crons[f"{NS}/hourly"].status) == "stopped"
        # started again: a fresh phase from the start
        await start(rt, "hourly")
        assert next_fire(rt, "hourly") == rt.ctx.clock.now_ms() + HOUR


async def test_a_lost_timer_is_rearmed_at_boot(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A running cron without a timer whose next time is still ahead (the wall clock went
    back) is simply armed again at that time."""
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state) as rt:
        await start(rt, "seven")
        await wait_fires(rt, 1)
        await rt.ctx.commit(ev.TimerCancelled(id=cron_id(NS, "seven")))
        now = rt.ctx.clock.now_ms()
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=now) as rt:
        assert next_fire(rt, "seven") == EPOCH_MS + 14 * MIN
        assert fires(rt) == [] and skips(rt) == []  # (this run's commits)


async def _never_handled(fired: FiredTimer) -> None:
    """A cron handler that does nothing: the daemon died after ``timer:start`` of the fire."""


@pytest.mark.parametrize(
    ("down_ms", "runs"),
    [(30_000, True), (2 * MIN, False)],
    ids=["quick-restart", "restart-after-the-on-time-window"],
)
async def test_a_crash_between_the_timer_and_the_fire_loses_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, down_ms: int, runs: bool
) -> None:
    """The timer of the 14-minute fire is consumed (``timer:start`` is durable), then the daemon
    dies before the fire's commit. The next daemon handles that fire, once: it runs, on time, if
    the restart was quick; after a long one it is a missed fire like any other late one."""
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state) as rt:
        await start(rt, "seven")
        got = await wait_fires(rt, 1)  # 7 minutes
        await rt.wait_ended(got[0].pipeline_id)  # (else the 14-minute fire meets it: concurrency)
        assert rt.ctx.clock.now_ms() < EPOCH_MS + 8 * MIN
    seven_at = EPOCH_MS + 8 * MIN
    # the "crashing" daemon: it consumes the 14-minute timer and records nothing
    async with open_runtime(
        tmp_path, state_dir=state, epoch_ms=seven_at, timer_handlers={CRON: _never_handled}
    ) as rt:
        await rt.wait_until(lambda: next_fire(rt, "seven") is None, within=3600)
        crashed_at = rt.ctx.clock.now_ms()
        assert crashed_at == EPOCH_MS + 14 * MIN
        assert len(fires(rt)) == 0
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=crashed_at + down_ms) as rt:
        await rt.wait_until(lambda: next_fire(rt, "seven") is not None, within=60)
        assert next_fire(rt, "seven") == EPOCH_MS + 21 * MIN
        if runs:
            assert [(e.scheduled_at_ms - EPOCH_MS, e.catch_up) for e in fires(rt)] == [
                (14 * MIN, False)
            ]
            assert skips(rt) == []
        else:
            assert fires(rt) == []
            assert [(e.scheduled_at_ms - EPOCH_MS, e.count) for e in skips(rt)] == [(14 * MIN, 1)]
        got = await wait_fires(rt, 2 if runs else 1)
        assert got[-1].scheduled_at_ms == EPOCH_MS + 21 * MIN  # and on it goes, in phase
    # the fire was recorded: another restart does not handle it again
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=EPOCH_MS + 22 * MIN) as rt:
        await trio.sleep(1)
        assert fires(rt) == [] and skips(rt) == []
        assert next_fire(rt, "seven") == EPOCH_MS + 28 * MIN


async def test_a_missed_skip_moves_the_phase_to_the_latest_missed_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Down over three nights without catch_up in its window: the record's phase is the latest
    missed night (what a crash right after would resume from), not the first."""
    state = tmp_path / "state"
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=ms("2026-05-01T02:00+00:00")) as rt:
        await start(rt, "nightly")
    async with open_runtime(tmp_path, state_dir=state, epoch_ms=ms("2026-05-03T12:00+00:00")) as rt:
        await rt.wait_until(lambda: bool(skips(rt)), within=60)
        assert [(e.count, e.scheduled_at_ms) for e in skips(rt)] == [
            (3, ms("2026-05-03T03:00+00:00"))
        ]
        record = rt.store.state.crons[f"{NS}/nightly"]
        assert record.last_scheduled_at_ms == ms("2026-05-03T03:00+00:00")


# --- once and start ------------------------------------------------------------------------


async def test_once_fires_now_whatever_the_status_and_keeps_the_schedule(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_runtime(tmp_path, {"long": [Step(25 * 60)] * 3}) as rt:
        runbook = rt.load(RUNBOOK)
        crons = rt.supervisor.crons
        pid = await crons.once_from(runbook, rt.project, NS, "hourly")  # never started
        assert fires(rt)[0].manual and fires(rt)[0].pipeline_id == pid
        record = rt.store.state.crons[f"{NS}/hourly"]
        assert str(record.status) == "stopped" and record.fires == 1
        assert next_fire(rt, "hourly") is None
        await start(rt, "hourly")
        due = next_fire(rt, "hourly")
        await trio.sleep(60)
        await crons.once_from(runbook, rt.project, NS, "hourly")
        assert next_fire(rt, "hourly") == due  # the schedule is untouched
        assert await crons.start_from(runbook, rt.project, NS, "hourly") is True
        assert next_fire(rt, "hourly") == due  # a second start keeps the phase
        # concurrency holds for once too
        await crons.once_from(runbook, rt.project, NS, "slow")
        with pytest.raises(OjError, match=r"has 1 run\(s\) active \(concurrency 1\)"):
            await crons.once_from(runbook, rt.project, NS, "slow")
        with pytest.raises(NotFoundError, match="no runbook found containing cron 'nope'"):
            await crons.once_from(runbook, rt.project, NS, "nope")


async def test_wall_clock_jumps_neither_double_fire_nor_stall(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The daemon's clock follows a wall clock that jumps: stepped back right after a fire, the
    same time does not fire again, and the interval cron fires one interval after its last fire
    (at 1h50 on the new wall timeline, not 2h: no extra wait); stepped forward by hours (a resume
    after a suspend), the latest time fires once within one resync interval (10 s) and the rest
    count as missed."""
    async with open_runtime(tmp_path) as rt:
        clock = rt.ctx.clock
        base, skew = clock.offset_ms, [0]
        clock.wall_time = lambda: (base + skew[0]) / 1000 + trio.current_time()
        await start(rt, "hourly")
        await start(rt, "nightly")  # a calendar cron keeps its wall-time deadline
        nightly_due = next_fire(rt, "nightly")
        await rt.supervisor.crons.on_clock_step(-999)  # noise of the re-sync: no phase creep
        assert next_fire(rt, "hourly") == EPOCH_MS + HOUR
        got = await wait_fires(rt, 1)
        first_at = trio.current_time()
        skew[0] = -10 * MIN  # NTP steps the clock back 10 minutes, just after the fire
        await rt.wait_until(lambda: next_fire(rt, "hourly") == EPOCH_MS + 110 * MIN, within=11)
        assert next_fire(rt, "nightly") == nightly_due
        got = await wait_fires(rt, 2)
        assert got[1].scheduled_at_ms == EPOCH_MS + 110 * MIN  # not 1h again, and not 2h
        assert trio.current_time() - first_at == pytest.approx(3600, abs=1)  # one interval
        assert rt.store.state.crons[f"{NS}/hourly"].last_scheduled_at_ms == EPOCH_MS + 110 * MIN
        await rt.wait_ended(got[1].pipeline_id)  # (else the next fire may meet it: concurrency)
        await rt.supervisor.crons.stop(NS, "nightly")
        jumped_at = trio.current_time()
        skew[0] += 5 * HOUR  # the laptop slept five hours
        got = await wait_fires(rt, 3, within=11)
        assert trio.current_time() - jumped_at <= 10
        assert (got[2].scheduled_at_ms, got[2].catch_up) == (EPOCH_MS + 410 * MIN, False)
        assert [e.count for e in skips(rt, "missed")] == [4]  # 2h50, 3h50, 4h50 and 5h50
        assert next_fire(rt, "hourly") == EPOCH_MS + 470 * MIN


async def test_a_fire_whose_pipeline_cannot_be_created(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduled fire is skipped as ``error`` (the cron goes on, in phase); ``oj cron once``
    reports the error to its caller and records no skip (it is no scheduled time: the phase
    a crash recovery resumes from stays the last scheduled one)."""

    async def failing_local(key: str, *_args: object) -> str:
        # (as a `$(exit 3)` local fails; no real bash: virtual time would jump while it runs)
        raise OjError(f"local.{key} evaluation failed: exit 3")

    monkeypatch.setattr(pipeline_setup, "eval_local", failing_local)
    text = (
        RUNBOOK
        + """
pipeline "broken" {
  locals { x = "$(exit 3)" }
  step "run" { run = "true" }
}
cron "doomed" {
  interval = "10m"
  run      = { pipeline = "broken" }
}
"""
    )
    async with open_runtime(tmp_path) as rt:
        runbook = rt.load(text)
        crons = rt.supervisor.crons
        await crons.start_from(runbook, rt.project, NS, "doomed")
        await rt.wait_until(lambda: bool(skips(rt)), within=3600)
        assert next_fire(rt, "doomed") == EPOCH_MS + 20 * MIN
        await trio.sleep(60)
        with pytest.raises(OjError, match=r"local\.x evaluation failed"):
            await crons.once_from(runbook, rt.project, NS, "doomed")
        assert [(e.reason, e.scheduled_at_ms - EPOCH_MS) for e in skips(rt)] == [
            ("error", 10 * MIN)
        ]
        assert fires(rt) == []
        record = rt.store.state.crons[f"{NS}/doomed"]
        assert record.last_scheduled_at_ms == EPOCH_MS + 10 * MIN
