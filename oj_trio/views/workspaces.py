"""Workspace views: ``WorkspaceSummary`` and ``WorkspaceDetail`` (reference §6.2 shapes)."""

from __future__ import annotations

from ..messages import WorkspaceDetail, WorkspaceSummary
from ..state import MaterializedState, Workspace


def workspace_summary(state: MaterializedState, ws: Workspace) -> WorkspaceSummary:
    """`WorkspaceSummary`; the namespace comes from the owning pipeline."""
    owner = state.pipelines.get(ws.owner) if ws.owner else None
    return {
        "id": ws.id,
        "path": ws.path,
        "branch": ws.branch,
        "status": ws.status,
        "created_at_ms": ws.created_at_ms,
        "namespace": owner.namespace if owner is not None else "",
    }


def workspace_detail(ws: Workspace) -> WorkspaceDetail:
    return {
        "id": ws.id,
        "path": ws.path,
        "branch": ws.branch,
        "owner": ws.owner,
        "status": ws.status,
        "created_at_ms": ws.created_at_ms,
    }
