"""Workspaces: drop one, the failed ones or all; prune those of ended pipelines; list, show."""

from __future__ import annotations

from .. import views
from ..errors import NotFoundError, OjError
from ..messages import (
    GetWorkspaceQuery,
    ListWorkspacesQuery,
    RemovedWorkspace,
    WorkspaceDropAllRequest,
    WorkspaceDropFailedRequest,
    WorkspaceDropRequest,
    WorkspacePruneRequest,
    WorkspaceResponse,
    WorkspacesDroppedResponse,
    WorkspacesPrunedResponse,
    WorkspacesResponse,
)
from ..runtime.workspaces import PRUNE_AGE_MS, delete_workspace, workspace_busy
from . import Route, Services


async def drop(s: Services, request: WorkspaceDropRequest) -> WorkspacesDroppedResponse:
    """One workspace by id or unique prefix; refused while its pipeline runs."""
    workspaces = s.ctx.state.workspaces
    given = request["id"]
    matches = [w for w in workspaces if w == given] or [
        w for w in workspaces if w.startswith(given)
    ]
    if not matches:
        raise NotFoundError(f"workspace not found: {given}")
    if len(matches) > 1:
        raise OjError(f"ambiguous workspace ID '{given}': {len(matches)} matches")
    ws_id = matches[0]
    if workspace_busy(s.ctx.state, ws_id):
        raise OjError(f"workspace {ws_id} is in use by a running pipeline; cancel it first")
    return await _drop_all(s, [ws_id])


async def drop_failed(
    s: Services, _request: WorkspaceDropFailedRequest
) -> WorkspacesDroppedResponse:
    failed = [w for w, ws in s.ctx.state.workspaces.items() if ws.status.startswith("failed")]
    return await _drop_all(s, failed)


async def drop_all(s: Services, _request: WorkspaceDropAllRequest) -> WorkspacesDroppedResponse:
    return await _drop_all(s, list(s.ctx.state.workspaces))


async def _drop_all(s: Services, targets: list[str]) -> WorkspacesDroppedResponse:
    """Delete ``targets``, skipping those a running pipeline still uses."""
    dropped: list[RemovedWorkspace] = []
    for ws_id in targets:
        if workspace_busy(s.ctx.state, ws_id):
            continue
        result = await delete_workspace(s.ctx, ws_id)
        if result is not None:
            dropped.append(result)
    return {"type": "WorkspacesDropped", "dropped": dropped}


async def prune(s: Services, request: WorkspacePruneRequest) -> WorkspacesPrunedResponse:
    """Delete workspaces whose pipeline ended (or is gone), older than 12 h unless --all."""
    ctx = s.ctx
    include_all = bool(request.get("all"))
    dry_run = bool(request.get("dry_run"))
    cutoff = ctx.clock.now_ms() - PRUNE_AGE_MS
    pruned: list[RemovedWorkspace] = []
    skipped = 0
    for ws_id, ws in list(ctx.state.workspaces.items()):
        if workspace_busy(ctx.state, ws_id) or (not include_all and ws.created_at_ms > cutoff):
            skipped += 1
            continue
        pruned.append({"id": ws_id, "path": ws.path, "branch": ws.branch})
        if not dry_run:
            await delete_workspace(ctx, ws_id)
    return {"type": "WorkspacesPruned", "pruned": pruned, "skipped": skipped}


async def list_workspaces(s: Services, _query: ListWorkspacesQuery) -> WorkspacesResponse:
    state = s.ctx.state
    return {
        "type": "Workspaces",
        "workspaces": [views.workspace_summary(state, w) for w in state.workspaces.values()],
    }


async def get_workspace(s: Services, query: GetWorkspaceQuery) -> WorkspaceResponse:
    ws = s.ctx.state.workspaces.get(query["id"])
    return {
        "type": "Workspace",
        "workspace": views.workspace_detail(ws) if ws is not None else None,
    }


ROUTES = [
    Route("WorkspaceDrop", drop, mutates=True),
    Route("WorkspaceDropFailed", drop_failed, mutates=True),
    Route("WorkspaceDropAll", drop_all, mutates=True),
    Route("WorkspacePrune", prune, mutates=True),
    Route("ListWorkspaces", list_workspaces, mutates=False, query=True),
    Route("GetWorkspace", get_workspace, mutates=False, query=True),
]
