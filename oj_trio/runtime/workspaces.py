"""Workspace directories and their records, kept together.

A workspace record goes (``workspace:deleted``) only after its directory is gone, so a crash in
between leaves a record pointing at a missing directory (harmless, prunable) rather than a
directory nobody knows about. The OS work is :mod:`oj_trio.adapters.workspace`.
"""

from __future__ import annotations

from pathlib import Path

import trio

from .. import events as ev
from ..adapters.workspace import remove_workspace
from ..messages import RemovedWorkspace
from ..state import MaterializedState
from .context import RuntimeContext

#: Age after which `prune` removes ended pipelines' workspaces (and ended pipelines).
PRUNE_AGE_MS = 12 * 3600 * 1000


async def delete_workspace(ctx: RuntimeContext, ws_id: str) -> RemovedWorkspace | None:
    """Remove a workspace's directory, then its record; None if there is no such record."""
    ws = ctx.state.workspaces.get(ws_id)
    if ws is None:
        return None
    path = Path(ws.path)
    await trio.to_thread.run_sync(remove_workspace, path)
    await ctx.commit(ev.WorkspaceDeleted(id=ws_id))
    return {"id": ws_id, "path": str(path), "branch": ws.branch}


def workspace_busy(state: MaterializedState, ws_id: str) -> bool:
    """Whether a pipeline that has not ended still owns the workspace."""
    ws = state.workspaces.get(ws_id)
    owner = state.pipelines.get(ws.owner) if ws is not None and ws.owner else None
    return owner is not None and not owner.terminal
