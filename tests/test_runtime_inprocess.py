"""The whole runtime in one process on a MockClock: minutes of pipeline time in milliseconds.

The store, the supervisor, the driver and the transitions are the daemon's own; only the step
runner is scripted (see ``runtime_harness``). The black-box tests (`test_pipeline_*.py`) remain
the contract through the real binaries.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import trio
from runtime_harness import Step, open_runtime

from oj_trio.pipelines.transitions import INTERRUPTED
from oj_trio.state import StepStatus

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
        # Each retry starts once the previous run's two virtual minutes are over. (Virtual time
        # may also jump while a WAL write waits for its thread: durations are lower bounds.)
        starts = [at for _, at in rt.runner.runs]
        assert all(b - a >= 120 for a, b in itertools.pairwise(starts))
        assert elapsed >= 420
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
