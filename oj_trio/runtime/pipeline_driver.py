"""One pipeline, one trio task: run the current step, decide (pure), commit, repeat.

The task is a loop over the *durable* pipeline record (:func:`~oj_trio.pipelines.transitions.
next_move` says what a record calls for), so the same code serves a fresh run and a restart
after a crash. Every choice of where to go next is a pure
:class:`~oj_trio.pipelines.transitions.Decision`; this module only carries decisions out: it
writes their log lines, commits their events as one batch, and runs the next step.

Cancelling a pipeline cancels the cancel scope around its running step; the step's adapter kills
what it started (the whole process group, SIGTERM then SIGKILL) before the driver routes through
``on_cancel``. A cleanup step reached through ``on_cancel`` is not cancellable again.

Graceful stop: the supervisor sets ``draining`` (no new step starts) and, after the grace,
marks the task ``interrupted`` and cancels its scope; the step is recorded as interrupted and
routed through ``on_fail`` at the next start, from the durable ``Failed`` status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import attrs
import trio

from ..adapters.notify import notify
from ..adapters.process import terminate_orphans
from ..errors import OjError
from ..events import EventBase, PipelineAdvanced, StepStarted
from ..pipeline_setup import pipeline_context
from ..pipelines.transitions import (
    INTERRUPTED,
    Cancelled,
    Decision,
    Failed,
    Interrupted,
    Move,
    Outcome,
    Succeeded,
    decide,
    internal_error,
    next_move,
)
from ..runbook import templates
from ..runbook.model import Pipeline as PipelineDef
from ..runbook.model import RunAgent
from ..state import Pipeline, StepStatus
from .context import RuntimeContext
from .step_runners import RUNNERS, StepRunner
from .workspaces import delete_workspace

log = logging.getLogger("oj.runtime")


@attrs.define
class PipelineTask:
    """What the runtime knows about a live pipeline task (in memory only)."""

    scope: trio.CancelScope | None = None
    cancel_requested: bool = False
    interrupted: bool = False
    #: The step whose ``step:started`` went out with the transition into it (one commit instead
    #: of two per step); the task must run it rather than treat it as interrupted.
    prestarted: str | None = None
    idle: trio.Event = attrs.Factory(trio.Event)

    def stop_step(self, *, interrupt: bool = False) -> None:
        """Cancel the running step: as ``oj pipeline cancel`` does, or for a drain."""
        if interrupt:
            self.interrupted = True
        else:
            self.cancel_requested = True
        if self.scope is not None:
            self.scope.cancel()


def ending_step(decision: Decision) -> str | None:
    """The step a decision ends its pipeline on (done, failed, cancelled), if it does."""
    for event in decision.events:
        if isinstance(event, PipelineAdvanced) and event.terminal:
            return event.step
    return None


async def commit_decision(ctx: RuntimeContext, p: Pipeline, decision: Decision) -> None:
    """Carry a decision out: its log lines (under the step ``p`` is on), then its events — with,
    when the decision ends the pipeline, what the ending hooks add to the same commit (a queue
    item's outcome: the pipeline's end and its item's are one durable step)."""
    for line in decision.log:
        ctx.log.write(p.id, p.step, line)
    extra: list[EventBase] = []
    final = ending_step(decision)
    if final is not None:
        for hook in ctx.ending_hooks:
            try:
                extra += hook(p, final)
            except Exception:
                # The pipeline must end all the same; the end hook settles what this missed.
                log.exception("pipeline %s: ending hook failed", p.id[:12])
    await ctx.commit(*decision.events, *extra)


async def commit_outcome(
    ctx: RuntimeContext, p: Pipeline, outcome: Outcome, *, prestart: bool = False
) -> Decision:
    """Decide what ``outcome`` means for ``p`` and commit it; returns the decision."""
    definition = ctx.runbooks.pipeline_def(p)
    decision = decide(p, definition, outcome, ctx.clock.now_ms(), prestart=prestart)
    await commit_decision(ctx, p, decision)
    return decision


class PipelineDriver:
    """Drives pipelines through their steps; one :meth:`drive` call per pipeline task."""

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        draining: Callable[[], bool],
        runners: Mapping[type, StepRunner] = RUNNERS,
    ) -> None:
        self.ctx = ctx
        self._draining = draining
        self._runners = runners

    async def drive(self, pipeline_id: str, task: PipelineTask, rerun: bool) -> None:
        """The pipeline task: loop until the pipeline ends, waits, or the daemon drains."""
        ctx = self.ctx
        first = ctx.state.pipelines.get(pipeline_id)
        if first is not None and first.cancel_requested and not self._is_agent_step(first):
            # An acknowledged `oj pipeline cancel` the previous daemon did not carry out.
            task.cancel_requested = True
        try:
            while True:
                p = ctx.state.pipelines.get(pipeline_id)
                if p is None:
                    return
                move = next_move(
                    p, rerun=rerun, prestarted=task.prestarted, draining=self._draining()
                )
                rerun = False
                if move is Move.FINISH:
                    await self.finish(p)
                    return
                if move is Move.STOP:
                    return
                if move is Move.RUN:
                    rerun = await self._run_step(p, task)
                elif move is Move.RECOVER and self._is_agent_step(p):
                    # An agent outlives the daemon: re-attach to its session (or fire on_dead).
                    rerun = await self._run_step(p, task)
                elif move is Move.RECOVER:
                    await self._recover_interrupted(p, task)
                elif move is Move.ADVANCE:
                    rerun = await self._apply(p, task, Succeeded())
                else:
                    rerun = await self._apply(p, task, Failed(p.error or "step failed"))
        except Exception as exc:
            # A bug or an unreadable runbook record: fail the pipeline visibly and keep the
            # daemon up.
            log.exception("pipeline %s: runtime error", pipeline_id)
            p = ctx.state.pipelines.get(pipeline_id)
            if p is not None and not p.terminal:
                error = f"internal error: {type(exc).__name__}: {exc}"
                try:
                    await commit_decision(ctx, p, internal_error(p, error, ctx.clock.now_ms()))
                except Exception:
                    log.exception("pipeline %s: cannot record the internal error", pipeline_id)

    def _may_prestart(self, task: PipelineTask) -> bool:
        return not (self._draining() or task.cancel_requested or task.interrupted)

    async def _apply(self, p: Pipeline, task: PipelineTask, outcome: Outcome) -> bool:
        """Decide and commit; returns whether the current step must run again."""
        decision = await commit_outcome(self.ctx, p, outcome, prestart=self._may_prestart(task))
        if decision.prestarted is not None:
            task.prestarted = decision.prestarted
        return decision.rerun

    def _is_agent_step(self, p: Pipeline) -> bool:
        step = self.ctx.runbooks.pipeline_def(p).step(p.step)
        return step is not None and isinstance(step.run, RunAgent)

    async def _run_step(self, p: Pipeline, task: PipelineTask) -> bool:
        ctx = self.ctx
        step = ctx.runbooks.pipeline_def(p).step(p.step)
        if step is None:
            return await self._apply(p, task, Failed(f"step not found: {p.step}"))
        agent = isinstance(step.run, RunAgent)
        # An agent step records its own step:started, with the agent id, once it knows it.
        if not agent and (task.prestarted != p.step or p.step_status != StepStatus.RUNNING):
            await ctx.commit(StepStarted(pipeline_id=p.id, step=p.step, at_ms=ctx.clock.now_ms()))
        task.prestarted = None
        ctx.log.write(p.id, p.step, "step started")
        runner = self._runners[type(step.run)]
        outcome: Outcome | None = None
        with trio.CancelScope() as scope:
            task.scope = scope
            if task.cancel_requested or task.interrupted:
                scope.cancel()
            outcome = await runner.run(ctx, p, step)
        task.scope = None
        if scope.cancelled_caught or outcome is None:
            if task.interrupted and agent:
                # The daemon stops; the agent runs on in tmux and the step stays Running, so
                # the next daemon re-attaches (SPEC §3).
                return False
            if task.interrupted:
                outcome = Interrupted()
            else:
                task.cancel_requested = False
                outcome = Cancelled()
        return await self._apply(p, task, outcome)

    async def _recover_interrupted(self, p: Pipeline, task: PipelineTask) -> None:
        """A step whose exit was never recorded: kill leftovers, then fail it as interrupted —
        or cancel it, when a cancellation was acknowledged before the daemon died."""
        found = await terminate_orphans(p.id, p.step, grace=self.ctx.step_grace)
        if found:
            self.ctx.log.write(
                p.id, p.step, f"killed {found} leftover process(es) of the interrupted step"
            )
        if task.cancel_requested:
            task.cancel_requested = False
            await commit_outcome(self.ctx, p, Cancelled(), prestart=False)
            return
        await commit_outcome(self.ctx, p, Interrupted(log=(INTERRUPTED,)))

    async def finish(self, p: Pipeline) -> None:
        """Side effects of a terminal pipeline: log, ephemeral workspace cleanup, notification."""
        ctx = self.ctx
        definition: PipelineDef | None
        try:
            definition = ctx.runbooks.pipeline_def(p)
        except OjError:
            definition = None
        ending = f": {p.error}" if p.step != "done" and p.error else ""
        # A pipeline that ended done is DEBUG (one line per job adds up, and its own log and
        # `oj pipeline list` say so); one that failed or was cancelled is worth the INFO line.
        log.log(
            logging.DEBUG if p.step == "done" else logging.INFO,
            "pipeline %s (%s) ended %s%s",
            p.id[:12],
            p.name,
            p.step,
            ending,
        )
        if p.step == "done":
            ctx.log.write(p.id, p.step, "pipeline completed")
            if definition is not None and definition.workspace == "ephemeral" and p.workspace_id:
                await delete_workspace(ctx, p.workspace_id)
            message = definition.notify.on_done if definition is not None else None
        elif p.step == "cancelled":
            message = None
        else:
            message = definition.notify.on_fail if definition is not None else None
        ctx.log.close(p.id)
        for hook in ctx.pipeline_end_hooks:
            await hook(p)
        if message:
            context = pipeline_context(p, extra={"error": p.error or ""})
            await notify(p.name, templates.interpolate(message, context, env=ctx.env))
