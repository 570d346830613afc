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
    """Commit creation events, make the workspaces, then start each created pipeline's task."""
    await ctx.commit(*events)
    created = [e for e in events if isinstance(e, ev.PipelineCreated)]
    for event in created:
        log.info("pipeline %s (%s) created, kind %s", event.id[:12], event.name, event.kind)
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
        supervisor.spawn(event.id)


async def _make_workspace(ctx: RuntimeContext, event: ev.WorkspaceCreated) -> None:
    try:
        create_workspace(Path(event.path))
    except OSError as exc:
        await ctx.commit(ev.WorkspaceFailed(id=event.id, reason=str(exc)))
        p = ctx.state.pipelines[event.owner or ""]
        await commit_outcome(ctx, p, Failed(f"workspace {event.id}: {exc.strerror or exc}"))
    else:
        await ctx.commit(ev.WorkspaceReady(id=event.id))
