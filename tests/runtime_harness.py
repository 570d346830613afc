"""The in-process runtime harness: a real Store and Supervisor in one trio run, on the test's
clock, with scripted step runners instead of processes.

Use it with ``autojump_clock`` so a scenario of minutes (steps that take minutes, cooldowns,
timers) runs in milliseconds, while everything between the runner and the WAL is the daemon's
own code: the driver, the pure transitions, the store, the reducers. Black-box tests through the
real ``oj``/``ojd`` stay the contract; this is for rules that involve time.

::

    async with open_runtime(tmp_path, {"build": [Step(60, 1), Step(60, 0)]}) as rt:
        pid = await rt.start(RUNBOOK, "build")
        p = await rt.wait_ended(pid)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from oj_trio import events as ev
from oj_trio import wal
from oj_trio.clock import Clock
from oj_trio.nursery_runtime import Supervisor
from oj_trio.pipeline_setup import prepare_pipeline
from oj_trio.pipelines.transitions import Failed, Succeeded, exit_outcome
from oj_trio.runbook import load_runbook_text
from oj_trio.runbook.model import RunAgent, RunPipeline, RunShell
from oj_trio.runbook.model import Step as StepDef
from oj_trio.runtime.context import RuntimeContext
from oj_trio.runtime.pipeline_start import start_pipelines
from oj_trio.runtime.timer_service import TimerHandler
from oj_trio.state import Pipeline
from oj_trio.store import Store

#: Virtual wall time at which harness runs start: 2026-01-01T00:00:00Z.
EPOCH_MS = 1_767_225_600_000


@attrs.frozen
class Step:
    """One scripted run of a step: it takes ``seconds`` (virtual) and exits with ``code``."""

    seconds: float = 0.0
    code: int = 0


@attrs.define
class ScriptedRunner:
    """Runs every step by its script (``{step name: [Step, …]}``, consumed in order; a step
    without a script left succeeds at once) and records each run as ``(step, trio time)``."""

    script: dict[str, list[Step]]
    runs: list[tuple[str, float]] = attrs.Factory(list)

    async def run(self, ctx: RuntimeContext, p: Pipeline, step: StepDef) -> Succeeded | Failed:
        queued = self.script.get(step.name) or []
        scripted = queued.pop(0) if queued else Step()
        self.runs.append((step.name, trio.current_time()))
        await trio.sleep(scripted.seconds)
        exited = ev.ShellExited(
            pipeline_id=p.id, step=p.step, exit_code=scripted.code, at_ms=ctx.clock.now_ms()
        )
        return exit_outcome(scripted.code, (exited,))


@attrs.define
class RuntimeHarness:
    store: Store
    supervisor: Supervisor
    runner: ScriptedRunner
    project: Path
    _count: int = 0

    @property
    def ctx(self) -> RuntimeContext:
        return self.supervisor.ctx

    async def start(
        self, runbook_text: str, kind: str, vars: Mapping[str, str] | None = None
    ) -> str:
        """Create and start a pipeline of ``kind`` from an HCL runbook text."""
        loaded = load_runbook_text(runbook_text, str(self.project / "test.hcl"), check_shell=False)
        assert loaded.runbook is not None, loaded.errors
        runbook = loaded.runbook
        self._count += 1
        pipeline_id = f"pipe-{self._count:04d}"
        ctx = self.ctx
        events = ctx.runbooks.load_events(runbook)
        events += await prepare_pipeline(
            runbook,
            kind,
            pipeline_id=pipeline_id,
            namespace="test",
            vars={**(vars or {}), "invoke.dir": str(self.project)},
            fallback_name=pipeline_id,
            invoke_dir=str(self.project),
            workspaces_dir=ctx.workspaces_dir,
            env=ctx.env,
            runbook_hash=ctx.runbooks.digest(runbook),
            at_ms=ctx.clock.now_ms(),
        )
        await start_pipelines(ctx, self.supervisor, events)
        return pipeline_id

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (re-checked on every state change, and every
        virtual second for conditions that are not state, such as a task ending)."""
        while not predicate():
            with trio.move_on_after(1):
                await self.store.wait_for_change(self.store.last_seq)

    async def wait_ended(self, pipeline_id: str) -> Pipeline:
        """Wait (in virtual time) until the pipeline is terminal and its task has finished."""
        await self.wait_until(
            lambda: (
                self.store.state.pipelines[pipeline_id].terminal
                and not self.supervisor.is_driving(pipeline_id)
            )
        )
        return self.store.state.pipelines[pipeline_id]


@asynccontextmanager
async def open_runtime(
    tmp_path: Path,
    script: Mapping[str, Sequence[Step]] | None = None,
    *,
    state_dir: Path | None = None,
    epoch_ms: int = EPOCH_MS,
    timer_handlers: Mapping[str, TimerHandler] | None = None,
) -> AsyncIterator[RuntimeHarness]:
    """A running store + supervisor on ``tmp_path`` whose shell steps follow ``script``.

    ``epoch_ms``: the wall time the run starts at (pass the previous run's ``clock.now_ms()``
    to model a restart). ``timer_handlers``: handlers per timer kind, registered before start.
    """
    state = state_dir or tmp_path / "state"
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    runner = ScriptedRunner({k: list(v) for k, v in (script or {}).items()})
    # WAL writes inline, not in a thread: under autojump_clock the clock jumps to the next
    # deadline whenever every task waits, a thread included, and virtual time would run ahead.
    store, _warnings = Store.open(state, run_blocking=wal.run_inline)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        supervisor = Supervisor(
            store,
            state,
            env={"PATH": "/usr/bin:/bin"},
            clock=Clock.fixed(epoch_ms),
            runners={RunShell: runner, RunAgent: runner, RunPipeline: runner},
        )
        for kind, handler in (timer_handlers or {}).items():
            supervisor.timers.register(kind, handler)
        await nursery.start(supervisor.run)
        try:
            yield RuntimeHarness(store, supervisor, runner, project)
        finally:
            await supervisor.drain(0)
            await store.aclose()
            nursery.cancel_scope.cancel()
