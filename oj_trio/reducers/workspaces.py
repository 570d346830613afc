"""Reducers for workspaces: the workspace table and the owner pipeline's workspace id and path.

Unlike the reference (§5.2, where ``workspace:created`` never reaches the WAL), creation is durable,
so a restart knows which directories belong to which pipeline and can clean them up.
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import Workspace
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _workspace_created(s: "MaterializedState", e: ev.WorkspaceCreated) -> None:
    s.workspaces[e.id] = Workspace(
        id=e.id,
        path=e.path,
        status="creating",
        mode="persistent" if e.mode == "persistent" else "ephemeral",
        created_at_ms=e.at_ms,
        branch=e.branch,
        owner=e.owner,
    )
    if e.owner is not None:
        p = s.pipelines.get(e.owner)
        if p is not None:
            p.workspace_id = e.id
            p.workspace_path = e.path


def _workspace_ready(s: "MaterializedState", e: ev.WorkspaceReady) -> None:
    w = s.workspaces.get(e.id)
    if w is not None:
        w.status = "ready"


def _workspace_failed(s: "MaterializedState", e: ev.WorkspaceFailed) -> None:
    w = s.workspaces.get(e.id)
    if w is not None:
        w.status = f"failed: {e.reason}"


def _workspace_deleted(s: "MaterializedState", e: ev.WorkspaceDeleted) -> None:
    s.workspaces.pop(e.id, None)


HANDLERS: ReducerTable = table(
    on(ev.WorkspaceCreated, _workspace_created),
    on(ev.WorkspaceReady, _workspace_ready),
    on(ev.WorkspaceFailed, _workspace_failed),
    on(ev.WorkspaceDeleted, _workspace_deleted),
)
