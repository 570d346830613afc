"""Starting pipelines: commit their creation, make their workspaces, start their tasks.

Every creation path (``oj run`` today; workers and crons next) ends here, with the events built
by :func:`oj_trio.pipeline_setup.prepare_pipeline`. Order matters for durability: the records are
committed first, so a workspace directory or a running step never exists without a durable
record that owns it; a workspace that cannot be made fails its pipeline through ``on_fail``
with the OS's reason (SPEC §4.10).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from .. import events as ev
from ..adapters.notify import notify
from ..adapters.workspace import create_workspace
from ..pipeline_setup import pipeline_context
from ..pipelines.transitions import Failed
from ..runbook import templates
from .context import RuntimeContext, Supervision
from .pipeline_driver import commit_outcome

log = logging.getLogger("oj.runtime")


async def start_pipelines(
    ctx: RuntimeContext, supervisor: Supervision, events: Sequence[ev.EventBase]
) -> None:
    """Commit creation events, make the workspaces, then start each created pipeline's task.

    A pipeline without a workspace to make has its first ``step:started`` in the same commit as
    its creation (one fsync less per pipeline, as a transition does for the next step): its task
    starts with that step *prestarted*, so it runs it rather than taking it for a step
    interrupted by a crash.
    """
    created = [e for e in events if isinstance(e, ev.PipelineCreated)]
    prestarted = {} if supervisor.is_draining() else _prestartable(events, created)
    await ctx.commit(
        *events,
        *[
            ev.StepStarted(pipeline_id=pid, step=step, at_ms=ctx.clock.now_ms())
            for pid, step in prestarted.items()
        ],
    )
    for event in created:
        # DEBUG: the pipeline's own log says so, and its end is logged at INFO (one line per job).
        log.debug("pipeline %s (%s) created, kind %s", event.id[:12], event.name, event.kind)
        ctx.log.write(event.id, "init", "pipeline created")
    for ws_event in events:
        if isinstance(ws_event, ev.WorkspaceCreated):
            await _make_workspace(ctx, ws_event)
    for event in created:
        p = ctx.state.pipelines.get(event.id)
        if p is None:
            continue
        definition = ctx.runbooks.pipeline_def(p)
        if definition.notify.on_start:
            message = templates.interpolate(
                definition.notify.on_start, pipeline_context(p), env=ctx.env
            )
            supervisor.start_soon_background(notify, p.name, message)
        supervisor.spawn(event.id, prestarted=prestarted.get(event.id))


def _prestartable(
    events: Sequence[ev.EventBase], created: Sequence[ev.PipelineCreated]
) -> dict[str, str]:
    """Pipeline id → first step, for pipelines whose first step may start in the creation commit:
    no workspace to make first, and not ended by the creation itself (a pipeline without steps)."""
    busy = {e.owner for e in events if isinstance(e, ev.WorkspaceCreated)}
    busy |= {e.id for e in events if isinstance(e, ev.PipelineAdvanced)}
    return {e.id: e.initial_step for e in created if e.id not in busy}


async def _make_workspace(ctx: RuntimeContext, event: ev.WorkspaceCreated) -> None:
    try:
        create_workspace(Path(event.path))
    except OSError as exc:
        await ctx.commit(ev.WorkspaceFailed(id=event.id, reason=str(exc)))
        p = ctx.state.pipelines[event.owner or ""]
        await commit_outcome(ctx, p, Failed(f"workspace {event.id}: {exc.strerror or exc}"))
    else:
        await ctx.commit(ev.WorkspaceReady(id=event.id))
