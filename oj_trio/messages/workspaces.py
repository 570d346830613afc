"""Workspaces: drop one, the failed ones or all; prune; list, show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired


class WorkspaceDropRequest(TypedDict):
    type: Literal["WorkspaceDrop"]
    id: str


class WorkspaceDropFailedRequest(TypedDict):
    type: Literal["WorkspaceDropFailed"]


class WorkspaceDropAllRequest(TypedDict):
    type: Literal["WorkspaceDropAll"]


class WorkspacePruneRequest(TypedDict):
    type: Literal["WorkspacePrune"]
    all: NotRequired[bool]
    dry_run: NotRequired[bool]


class ListWorkspacesQuery(TypedDict):
    type: Literal["ListWorkspaces"]


class GetWorkspaceQuery(TypedDict):
    type: Literal["GetWorkspace"]
    id: str


class WorkspaceSummary(TypedDict):
    """One workspace in a list (``views.workspace_summary``); namespace from its owner."""

    id: str
    path: str
    branch: str | None
    status: str
    created_at_ms: int
    namespace: str


class WorkspaceDetail(TypedDict):
    id: str
    path: str
    branch: str | None
    owner: str | None
    status: str
    created_at_ms: int


class RemovedWorkspace(TypedDict):
    """A workspace a drop or prune removed (or, with ``dry_run``, would remove)."""

    id: str
    path: str
    branch: str | None


class WorkspacesDroppedResponse(TypedDict):
    type: Literal["WorkspacesDropped"]
    dropped: list[RemovedWorkspace]


class WorkspacesPrunedResponse(TypedDict):
    type: Literal["WorkspacesPruned"]
    pruned: list[RemovedWorkspace]
    skipped: int


class WorkspacesResponse(TypedDict):
    type: Literal["Workspaces"]
    workspaces: list[WorkspaceSummary]


class WorkspaceResponse(TypedDict):
    type: Literal["Workspace"]
    workspace: WorkspaceDetail | None
