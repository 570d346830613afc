"""How each kind of step runs, looked up by the type of its ``run`` directive.

A runner executes one step of one pipeline and returns an *outcome*
(:class:`~oj_trio.pipelines.transitions.Succeeded` / :class:`~.Failed`); it never chooses a
transition, and it does not own cancellation: the driver runs it inside the pipeline's cancel
scope, and a runner's adapter kills what it started before letting ``Cancelled`` through.
Agent steps (tmux) run in the agent service (:mod:`oj_trio.runtime.agents`); nested pipeline
steps fail with a readable error through the normal ``on_fail`` routing (SPEC §4.10).

Tests replace the table (:data:`RUNNERS`) with scripted runners to drive the whole runtime on a
``MockClock`` without spawning anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import attrs

from .. import events as ev
from ..adapters.process import ProcessInfo, ProcessSpawnError, run_shell
from ..pipeline_setup import pipeline_context
from ..pipelines.transitions import Failed, Succeeded, exit_outcome
from ..runbook import templates
from ..runbook.model import Run, RunAgent, RunPipeline, RunShell, Step
from ..state import Pipeline
from .context import RuntimeContext


class StepRunner(Protocol):
    async def run(self, ctx: RuntimeContext, p: Pipeline, step: Step) -> Succeeded | Failed:
        """Run ``step`` of ``p`` (already recorded as started) to its end."""
        ...


def step_env(ctx: RuntimeContext, p: Pipeline) -> dict[str, str]:
    """A step's environment: the daemon's, plus who it belongs to (SPEC §2.9 and adapters)."""
    env = dict(ctx.env)
    if p.namespace:
        env["OJ_NAMESPACE"] = p.namespace
    env["OJ_PIPELINE_ID"] = p.id
    env["OJ_STEP"] = p.step
    env["OJ_STATE_DIR"] = str(ctx.state_dir)
    return env


#: A shell step still running after this many seconds gets its ``shell:spawned`` committed. A
#: step that ends sooner gets none: the record's only use is finding a *running* group after a
#: crash (and a restart finds a step's leftovers by their environment marker anyway), and the
#: spawn itself was announced, durably, by ``step:started``. So a trivial step pays one durable
#: commit and no ``/proc`` read.
SPAWN_RECORD_DELAY = 0.05


class ShellRunner:
    """``run = "…"``: bash in the step's own process group (:mod:`oj_trio.adapters.process`)."""

    async def run(self, ctx: RuntimeContext, p: Pipeline, step: Step) -> Succeeded | Failed:
        assert isinstance(step.run, RunShell)
        cwd = Path(p.workspace_path or p.cwd)
        command = templates.interpolate_shell(step.run.command, pipeline_context(p), env=ctx.env)
        step_name = p.step
        ctx.log.write(p.id, step_name, f"shell (cwd: {cwd}): {command}")

        async def record_spawn(info: ProcessInfo) -> None:
            await ctx.commit(
                ev.ShellSpawned(
                    pipeline_id=p.id,
                    step=step_name,
                    pid=info.pid,
                    pgid=info.pgid,
                    start_ticks=info.start_ticks,
                )
            )

        try:
            code = await run_shell(
                command,
                cwd=cwd,
                env=step_env(ctx, p),
                on_output=ctx.log.output_callback(p.id, step_name),
                on_running=record_spawn,
                running_after=SPAWN_RECORD_DELAY,
                grace=ctx.step_grace,
                inline_ok=ctx.store.writer.idle,
            )
        except ProcessSpawnError as exc:
            return Failed(str(exc), log=(f"shell failed to start: {exc}",))
        exit_code = code if code >= 0 else -1
        exited = ev.ShellExited(
            pipeline_id=p.id, step=step_name, exit_code=exit_code, at_ms=ctx.clock.now_ms()
        )
        # The exit and the transition it causes are one durable batch.
        return exit_outcome(exit_code, (exited,))


@attrs.frozen
class UnsupportedRunner:
    """A step kind this daemon cannot run yet: fail it visibly, through ``on_fail``."""

    kind: str

    async def run(self, ctx: RuntimeContext, p: Pipeline, step: Step) -> Succeeded | Failed:
        return self.fail(step)

    def fail(self, step: Step) -> Failed:
        target = step.run.agent if isinstance(step.run, RunAgent) else _nested_name(step.run)
        return Failed(
            f"{self.kind} steps are not supported by this daemon yet: {self.kind} '{target}'"
        )


class AgentRunner:
    """``run = { agent = "…" }``: the agent service spawns, watches and answers the agent."""

    async def run(self, ctx: RuntimeContext, p: Pipeline, step: Step) -> Succeeded | Failed:
        if ctx.agents is None:
            return UnsupportedRunner("agent").fail(step)
        return await ctx.agents.run_step(p, step)


def _nested_name(run: Run) -> str:
    return run.pipeline if isinstance(run, RunPipeline) else "?"


#: The runner for each ``run`` type.
RUNNERS: Mapping[type, StepRunner] = {
    RunShell: ShellRunner(),
    RunAgent: AgentRunner(),
    RunPipeline: UnsupportedRunner("nested pipeline"),
}
