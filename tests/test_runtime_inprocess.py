"""The whole runtime in one process on a MockClock: minutes of pipeline time in milliseconds.

The store, the supervisor, the driver and the transitions are the daemon's own; only the step
runner is scripted (see ``runtime_harness``). The black-box tests (`test_pipeline_*.py`) remain
the contract through the real binaries.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio
from runtime_harness import Step, open_runtime

from oj_trio.pipelines.transitions import INTERRUPTED
from oj_trio.runtime.timer_service import FiredTimer, set_timer
from oj_trio.state import StepStatus
from oj_trio.timers import COOLDOWN, CooldownTimer, cooldown_id

RETRYING = """
pipeline "build" {
  on_fail = { step = "report" }
  step "compile" {
    run     = "make"
    on_done = { step = "deploy" }
    on_fail = { step = "compile", attempts = 2 }
  }
  step "deploy" { run = "deploy" }
  step "report" { run = "report" }
}
"""


def outcomes(p: object) -> list[tuple[str, str | None]]:
    return [(r.name, r.outcome) for r in p.step_history]  # type: ignore[attr-defined]


async def test_retries_over_minutes_run_in_virtual_time(
    tmp_path: Path, autojump_clock: object
) -> None:
    wall = time.perf_counter()
    script = {"compile": [Step(120, 1), Step(120, 1), Step(120, 0)], "deploy": [Step(60, 0)]}
    async with open_runtime(tmp_path, script) as rt:
        t0 = trio.current_time()
        pid = await rt.start(RETRYING, "build")
        p = await rt.wait_ended(pid)
        elapsed = trio.current_time() - t0
        assert p.step == "done"
        assert [name for name, _ in rt.runner.runs] == ["compile", "compile", "compile", "deploy"]
        # Each retry starts as the previous run's two virtual minutes end (the harness writes
        # the WAL inline, so virtual time moves only with the steps).
        starts = [round(at - t0) for _, at in rt.runner.runs]
        assert starts == [0, 120, 240, 360]
        assert elapsed >= 420
        # the durable record agrees: created at the start, ended seven minutes later
        assert p.updated_at_ms - p.created_at_ms == 420_000
        assert p.vars["oj.attempts.on_fail:compile"] == "2"
    # Seven virtual minutes; the wall clock is reported, never asserted (no timing thresholds).
    print(f"7 virtual minutes took {time.perf_counter() - wall:.3f} s of wall time")


async def test_attempts_exhausted_fall_through_to_the_pipeline_on_fail(
    tmp_path: Path, autojump_clock: object
) -> None:
    script = {"compile": [Step(300, 1)] * 3, "report": [Step(10, 0)]}
    async with open_runtime(tmp_path, script) as rt:
        p = await rt.wait_ended(await rt.start(RETRYING, "build"))
        assert [name for name, _ in rt.runner.runs] == ["compile"] * 3 + ["report"]
        # the on_fail cleanup succeeded, so the pipeline ends done (reference §2.5)
        assert p.step == "done"
        assert outcomes(p)[-2:] == [("compile", "failed"), ("report", "completed")]


CANCELLABLE = """
pipeline "long" {
  step "work" {
    run       = "work"
    on_cancel = { step = "tidy" }
  }
  step "tidy" { run = "tidy" }
}
"""


async def test_cancel_during_a_ten_minute_step_runs_the_cleanup(
    tmp_path: Path, autojump_clock: object
) -> None:
    async with open_runtime(tmp_path, {"work": [Step(600, 0)], "tidy": [Step(30, 0)]}) as rt:
        pid = await rt.start(CANCELLABLE, "long")
        await rt.wait_until(lambda: bool(rt.runner.runs))
        await trio.sleep(90)
        assert rt.store.state.pipelines[pid].step_status == StepStatus.RUNNING
        await rt.supervisor.cancel(pid)
        p = await rt.wait_ended(pid)
        assert p.step == "cancelled"
        assert outcomes(p) == [("work", "failed"), ("tidy", "completed")]
        assert p.step_history[0].detail == "cancelled"


async def test_drain_interrupts_and_the_next_start_routes_on_fail(
    tmp_path: Path, autojump_clock: object
) -> None:
    state = tmp_path / "state"
    async with open_runtime(tmp_path, {"compile": [Step(3600, 0)]}, state_dir=state) as rt:
        pid = await rt.start(RETRYING, "build")
        await rt.wait_until(lambda: bool(rt.runner.runs))
        await trio.sleep(60)
        await rt.supervisor.drain(30)
        await rt.wait_until(lambda: not rt.supervisor.is_driving(pid))
        p = rt.store.state.pipelines[pid]
        assert (p.step, p.step_status, p.error) == ("compile", StepStatus.FAILED, INTERRUPTED)
    # A restart (fresh store and supervisor on the same state dir) routes the failure: the
    # compile step's own on_fail re-runs it, and this time it succeeds.
    async with open_runtime(tmp_path, {"compile": [Step(5, 0)]}, state_dir=state) as rt:
        p = await rt.wait_ended(pid)
        assert p.step == "done"
        assert [name for name, _ in rt.runner.runs] == ["compile", "deploy"]


async def test_a_cooldown_timer_survives_a_restart_with_its_remaining_time(
    tmp_path: Path, autojump_clock: object
) -> None:
    """Through the supervisor: a ten-minute timer is armed, four minutes pass, the daemon stops;
    after the restart it fires six minutes later, at its original deadline."""
    state = tmp_path / "state"
    fired: list[FiredTimer] = []
    fired_at: list[float] = []

    async def on_cooldown(timer: FiredTimer) -> None:
        fired.append(timer)
        fired_at.append(trio.current_time())

    timer_id = cooldown_id("pipe-0001", "idle", 0)
    async with open_runtime(tmp_path, state_dir=state) as rt:
        due = rt.ctx.clock.now_ms() + 10 * 60_000
        await set_timer(rt.store, timer_id, due)
        await trio.sleep(4 * 60)
        stopped_at_ms = rt.ctx.clock.now_ms()
    assert fired == []
    handlers = {COOLDOWN: on_cooldown}
    async with open_runtime(
        tmp_path, state_dir=state, epoch_ms=stopped_at_ms, timer_handlers=handlers
    ) as rt:
        assert rt.store.state.timers == {timer_id: due}
        restarted = trio.current_time()
        await rt.wait_until(lambda: bool(fired))
        assert fired[0].due_at_ms == due
        assert fired[0].key == CooldownTimer("pipe-0001", "idle", 0)
        assert round(fired_at[0] - restarted) == 6 * 60
        assert rt.store.state.timers == {}


async def test_a_drain_stops_the_timers(tmp_path: Path, autojump_clock: object) -> None:
    fired: list[str] = []

    async def on_cooldown(timer: FiredTimer) -> None:
        fired.append(timer.id)

    async with open_runtime(tmp_path, timer_handlers={COOLDOWN: on_cooldown}) as rt:
        timer_id = cooldown_id("pipe-0001", "exit", 0)
        await set_timer(rt.store, timer_id, rt.ctx.clock.now_ms() + 60_000)
        await rt.supervisor.drain(600)
        await trio.sleep(120)
        assert fired == []
        assert timer_id in rt.store.state.timers  # still armed: it fires after the next start
