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
from typing import Any

import attrs
import trio

from oj_trio import events as ev
from oj_trio import wal
from oj_trio.clock import Clock
from oj_trio.handlers import Services
from oj_trio.nursery_runtime import Supervisor
from oj_trio.pipeline_setup import prepare_pipeline
from oj_trio.pipelines.transitions import Failed, Succeeded, exit_outcome
from oj_trio.queues.items import batch_values
from oj_trio.records import QueueItem
from oj_trio.runbook import load_runbook_text
from oj_trio.runbook.model import RunAgent, Runbook, RunPipeline, RunShell
from oj_trio.runbook.model import Step as StepDef
from oj_trio.runtime.context import RuntimeContext
from oj_trio.runtime.pipeline_start import start_pipelines
from oj_trio.runtime.step_runners import AgentRunner
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
    without a script left succeeds at once) and records each run as ``(step, trio time)``.

    Also kept: ``started`` (``(step, pipeline id, trio time)`` per run), ``running`` (the
    pipelines inside a step right now) and ``peak`` (the most that ever were at once)."""

    script: dict[str, list[Step]]
    runs: list[tuple[str, float]] = attrs.Factory(list)
    started: list[tuple[str, str, float]] = attrs.Factory(list)
    running: set[str] = attrs.Factory(set)
    peak: int = 0

    async def run(self, ctx: RuntimeContext, p: Pipeline, step: StepDef) -> Succeeded | Failed:
        queued = self.script.get(step.name) or []
        scripted = queued.pop(0) if queued else Step()
        self.runs.append((step.name, trio.current_time()))
        self.started.append((step.name, p.id, trio.current_time()))
        self.running.add(p.id)
        self.peak = max(self.peak, len(self.running))
        try:
            await trio.sleep(scripted.seconds)
        finally:
            self.running.discard(p.id)
        exited = ev.ShellExited(
            pipeline_id=p.id, step=p.step, exit_code=scripted.code, at_ms=ctx.clock.now_ms()
        )
        return exit_outcome(scripted.code, (exited,))


class RecordingStore(Store):
    """The real store, also keeping every event it applied in this run (``applied``): the WAL
    itself is compacted by the store's periodic snapshots, which virtual minutes trigger."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.applied: list[ev.EventBase] = []
        super().__init__(*args, **kwargs)

    def _on_durable(self, batch: list[tuple[int, ev.EventBase]]) -> None:
        self.applied.extend(event for _, event in batch)
        super()._on_durable(batch)


class _NoDaemon:
    """The daemon controls a handler may ask for; the harness has no daemon around it."""

    def uptime_secs(self) -> int:
        return 0

    def request_shutdown(self, *, kill: bool = False) -> None:
        raise AssertionError("no daemon to shut down in the in-process harness")


@attrs.define
class RuntimeHarness:
    store: RecordingStore
    supervisor: Supervisor
    runner: ScriptedRunner
    project: Path
    _count: int = 0
    _pushes: int = 0

    @property
    def ctx(self) -> RuntimeContext:
        return self.supervisor.ctx

    def load(self, runbook_text: str) -> Runbook:
        """An HCL runbook text as a :class:`Runbook` (no shell check, no disk, no thread)."""
        loaded = load_runbook_text(runbook_text, str(self.project / "test.hcl"), check_shell=False)
        assert loaded.runbook is not None, loaded.errors
        return loaded.runbook

    async def push(
        self,
        runbook: Runbook,
        queue: str,
        *items: Mapping[str, object],
        namespace: str = "test",
    ) -> list[str]:
        """Push ``items`` to a persisted queue as ``oj queue push`` does (validated with the
        queue's vars and defaults, one durable commit), then wake or auto-start its workers
        through the real :meth:`WorkerService.after_push`; returns the item ids.

        The runbook is passed in rather than read from disk: loading runs in a thread, and under
        ``autojump_clock`` virtual time may jump while a thread runs."""
        definition = runbook.queues[queue]
        values = batch_values(definition, list(items), None)
        self._pushes += 1
        at = self.ctx.clock.now_ms()
        pushed = [
            ev.QueuePushed(
                queue_name=queue,
                item_id=f"item-{self._pushes:03d}-{n}",
                data=value,
                pushed_at_epoch_ms=at,
                namespace=namespace,
            )
            for n, value in enumerate(values)
        ]
        await self.ctx.commit(*pushed)
        await self.supervisor.workers.after_push(runbook, self.project, namespace, queue)
        return [e.item_id for e in pushed]

    def committed(self, *types: type[ev.EventBase]) -> list[ev.EventBase]:
        """The events applied since this harness opened (of ``types``, when given)."""
        return [e for e in self.store.applied if not types or isinstance(e, types)]

    def item(self, queue: str, item_id: str, namespace: str = "test") -> QueueItem:
        return self.store.state.queue(queue, namespace)[item_id]

    def services(self) -> Services:
        """What a request handler gets (``oj_trio.handlers``), for calling one directly."""
        return Services(
            self.ctx,
            self.supervisor,
            _NoDaemon(),
            self.supervisor.workers,
            self.supervisor.agents,
            self.supervisor.crons,
        )

    async def start(
        self, runbook_text: str, kind: str, vars: Mapping[str, str] | None = None
    ) -> str:
        """Create and start a pipeline of ``kind`` from an HCL runbook text."""
        runbook = self.load(runbook_text)
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

    async def wait_until(self, predicate: Callable[[], bool], *, within: float = 6 * 3600) -> None:
        """Wait until ``predicate()`` holds (re-checked on every state change, and every
        virtual second for conditions that are not state, such as a task ending).

        Raises:
            trio.TooSlowError: it did not hold within ``within`` virtual seconds (under
                ``autojump_clock`` a condition that never holds would otherwise spin forever).
        """
        with trio.fail_after(within):
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
    agents: bool = False,
) -> AsyncIterator[RuntimeHarness]:
    """A running store + supervisor on ``tmp_path`` whose shell steps follow ``script``.

    ``epoch_ms``: the wall time the run starts at (pass the previous run's ``clock.now_ms()``
    to model a restart). ``timer_handlers``: handlers per timer kind, registered before start.
    ``agents``: agent steps go to the real agent service (give it a fake tmux before starting
    one) instead of the script.
    """
    state = state_dir or tmp_path / "state"
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    runner = ScriptedRunner({k: list(v) for k, v in (script or {}).items()})
    # WAL writes inline, not in a thread: under autojump_clock the clock jumps to the next
    # deadline whenever every task waits, a thread included, and virtual time would run ahead.
    store, _warnings = RecordingStore.open(state, run_blocking=wal.run_inline)
    assert isinstance(store, RecordingStore)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        supervisor = Supervisor(
            store,
            state,
            env={"PATH": "/usr/bin:/bin"},
            clock=Clock.fixed(epoch_ms),
            runners={
                RunShell: runner,
                RunAgent: AgentRunner() if agents else runner,
                RunPipeline: runner,
            },
        )
        for kind, handler in (timer_handlers or {}).items():
            supervisor.timers.register(kind, handler, replace=True)
        await nursery.start(supervisor.run)
        try:
            yield RuntimeHarness(store, supervisor, runner, project)
        finally:
            await supervisor.drain(0)
            await store.aclose()
            nursery.cancel_scope.cancel()
