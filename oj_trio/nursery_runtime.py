"""The runtime's supervisor: the pipeline nursery, the task registry, drain, boot reconcile.

Every pipeline runs as one task in this nursery (SPEC §2), driven by
:class:`~oj_trio.runtime.pipeline_driver.PipelineDriver`; the supervisor only decides *whether*
a task runs: it starts one per pipeline that is neither ended nor waiting for a human (at boot:
that is the reconcile of pipelines interrupted by a crash or a stop), refuses new ones while
draining, and cancels them. Pipelines belong to this nursery, never to a worker or a request.

Graceful stop (:meth:`Supervisor.drain`): no new steps start; running steps get a grace period;
what still runs afterwards is cancelled as *interrupted* and recorded so (routing happens at the
next start, from the durable ``Failed`` status). A second signal (:meth:`abort_drain`) stops
waiting for the grace.

The durable timer service (:mod:`oj_trio.runtime.timer_service`) runs here too: services
register a handler per timer kind on :attr:`Supervisor.timers` before :meth:`Supervisor.run`,
and arm timers with :func:`~oj_trio.runtime.timer_service.set_timer`; timers armed before a
restart fire at their original deadlines. A drain stops it first, so no timer starts work while
the daemon stops. The worker service (:mod:`oj_trio.runtime.workers`) starts after its own
reconcile; it dispatches nothing while the daemon drains. The agent service
(:mod:`oj_trio.runtime.agents`) runs agent steps inside their pipelines' tasks; a drain leaves
their tmux sessions running (``--kill`` ends them).
The cron service (:mod:`oj_trio.runtime.crons`) has no task of its own: it reconciles before the
timers start (so a cron deadline that passed while the daemon was down is known as missed) and
fires from its timer handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import trio

from . import events as ev
from .adapters.process import raise_fd_limit
from .clock import Clock
from .pipelines.transitions import Cancelled
from .runtime.agents import AgentService
from .runtime.context import RuntimeContext
from .runtime.crons import CronService
from .runtime.pipeline_driver import PipelineDriver, PipelineTask, commit_outcome
from .runtime.step_runners import RUNNERS, StepRunner
from .runtime.timer_service import TimerService
from .runtime.workers import WorkerService
from .state import StepStatus
from .store import Store
from .timers import COOLDOWN, CRON, QUEUE_RETRY

log = logging.getLogger("oj.runtime")

#: Seconds a cancel request waits for the cancellation to become durable before answering.
CANCEL_REPLY_WAIT = 2.0


class Supervisor:
    """Owns the pipeline nursery and the registry of live pipeline tasks."""

    def __init__(
        self,
        store: Store,
        state_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock | None = None,
        runners: Mapping[type, StepRunner] = RUNNERS,
    ) -> None:
        import os

        self.ctx = RuntimeContext.build(
            store,
            state_dir,
            dict(os.environ if env is None else env),
            clock if clock is not None else Clock.system(),
        )
        self.driver = PipelineDriver(self.ctx, draining=lambda: self._draining, runners=runners)
        self.timers = TimerService(store, self.ctx.clock)
        self._timer_scope = trio.CancelScope()
        self.workers = WorkerService(self.ctx, self)
        self.timers.register(QUEUE_RETRY, self.workers.on_retry_timer)
        self.ctx.pipeline_end_hooks.append(self.workers.pipeline_ended)
        self.ctx.ending_hooks.append(self.workers.ending_events)
        self.agents = AgentService(self.ctx, self)
        self.ctx.agents = self.agents
        self.timers.register(COOLDOWN, self.agents.on_cooldown_timer)
        self.crons = CronService(self.ctx, self)
        self.timers.register(CRON, self.crons.on_timer)
        self.timers.on_clock_step(self.crons.on_clock_step)
        self._nursery: trio.Nursery | None = None
        self._tasks: dict[str, PipelineTask] = {}
        self._draining = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reconcile (start a task for every pipeline that was running), then supervise."""
        # Each running step holds up to three descriptors; 1,000 concurrent steps need more
        # than the usual soft limit of 1,024.
        raise_fd_limit()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for pipeline in list(self.ctx.state.pipelines.values()):
                if not pipeline.terminal and pipeline.step_status != StepStatus.WAITING:
                    self.spawn(pipeline.id)
                elif self.agents.watches_while_waiting(pipeline):
                    # An escalated agent still runs in its session: watch it again (its death,
                    # signals and `resume -m` reach it), without changing its status.
                    self.spawn(pipeline.id, rerun=True)
            await self.crons.reconcile()
            await nursery.start(self._serve_timers)
            await nursery.start(self.workers.run)
            task_status.started()
            await trio.sleep_forever()

    async def _serve_timers(self, *, task_status: trio.TaskStatus[None]) -> None:
        with self._timer_scope:
            await self.timers.run(task_status=task_status)

    def spawn(
        self, pipeline_id: str, *, rerun: bool = False, prestarted: str | None = None
    ) -> None:
        """Start the task that drives ``pipeline_id`` (no-op if it runs, or while draining)."""
        if pipeline_id in self._tasks or self._nursery is None or self._draining:
            return
        task = PipelineTask(prestarted=prestarted)
        self._tasks[pipeline_id] = task
        self._nursery.start_soon(
            self._supervise, pipeline_id, task, rerun, name=f"pipeline {pipeline_id[:12]}"
        )

    async def _supervise(self, pipeline_id: str, task: PipelineTask, rerun: bool) -> None:
        try:
            await self.driver.drive(pipeline_id, task, rerun)
        finally:
            self._tasks.pop(pipeline_id, None)
            task.idle.set()

    def is_driving(self, pipeline_id: str) -> bool:
        return pipeline_id in self._tasks

    def is_draining(self) -> bool:
        return self._draining

    def start_soon_background(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    async def drain(self, grace: float, *, kill_sessions: bool = False) -> None:
        """Stop starting steps, let running ones finish for ``grace`` s, interrupt the rest."""
        self._draining = True
        self._timer_scope.cancel()
        # The grace is for shell steps to finish; an agent step does not end because the daemon
        # stops (its session outlives it and is re-attached), so it is interrupted at once.
        for pipeline_id in self.agents.watched_pipelines():
            task = self._tasks.get(pipeline_id)
            if task is not None:
                task.stop_step(interrupt=True)
        await self._wait_idle(grace)
        self.abort_drain()
        await self._wait_idle(self.ctx.step_grace + 5)
        self.ctx.log.close_all()
        if kill_sessions:
            await self._kill_sessions()

    def abort_drain(self) -> None:
        """Second signal: stop waiting for steps to finish."""
        self._draining = True
        self._timer_scope.cancel()
        for task in list(self._tasks.values()):
            task.stop_step(interrupt=True)

    async def _wait_idle(self, timeout: float) -> None:
        with trio.move_on_after(timeout):
            while self._tasks:
                await next(iter(self._tasks.values())).idle.wait()

    async def _kill_sessions(self) -> None:
        """`oj daemon stop --kill`: end every tmux session the state knows (agents), best effort."""
        killed = await self.agents.kill_all()
        if killed:
            log.info("killed %d session(s) on shutdown", killed)

    # -- cancel ------------------------------------------------------------------------------

    async def cancel(self, pipeline_id: str) -> None:
        """Cancel and wait until the cancellation is durable (bounded by the kill grace)."""
        ctx = self.ctx
        p = ctx.state.pipelines.get(pipeline_id)
        if p is None or p.terminal or p.cancelling:
            return
        task = self._tasks.get(pipeline_id)
        if task is None:
            decision = await commit_outcome(ctx, p, Cancelled())
            self.spawn(pipeline_id, rerun=decision.rerun)
            return
        if not p.cancel_requested:
            # The request is durable before the step is touched: a daemon that dies before the
            # cancellation takes effect cancels at its next start (the driver reads the flag).
            await ctx.commit(ev.PipelineCancel(id=pipeline_id))
        task.stop_step()
        # Usually the group dies at SIGTERM and the cancellation is durable in milliseconds; a
        # step that ignores SIGTERM holds out for the kill grace, longer than a client waits for
        # an answer, so after CANCEL_REPLY_WAIT the reply goes out while the kill proceeds.
        with trio.move_on_after(CANCEL_REPLY_WAIT):
            while True:
                current = ctx.state.pipelines.get(pipeline_id)
                if current is None or current.terminal or current.cancelling:
                    return
                await ctx.store.wait_for_change(ctx.store.last_seq)


#: The name this class had before the house rebuild (tests and notes still say "runtime").
Runtime = Supervisor
