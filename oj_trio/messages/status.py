"""`oj status`: the overview across projects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Any, Literal, NotRequired

    from .crons import CronSummary
    from .queues import QueueSummary
    from .workers import WorkerSummary


class StatusOverviewQuery(TypedDict):
    type: Literal["StatusOverview"]


class StatusPipeline(TypedDict):
    id: str
    name: str
    kind: str
    step: str
    step_status: str
    elapsed_ms: int
    waiting_reason: NotRequired[str | None]


class NamespaceStatus(TypedDict):
    """One namespace with something live (``views.status_overview``): its workers, its running
    crons, and its persisted queues that have pending, active, failed or dead items. Agents do not exist yet;
    their list is always empty."""

    namespace: str
    active_pipelines: list[StatusPipeline]
    escalated_pipelines: list[StatusPipeline]
    workers: list[WorkerSummary]
    queues: list[QueueSummary]
    #: Running crons, with their next fire.
    crons: NotRequired[list[CronSummary]]
    active_agents: list[dict[str, Any]]


class StatusOverviewResponse(TypedDict):
    type: Literal["StatusOverview"]
    uptime_secs: int
    namespaces: list[NamespaceStatus]
    #: One line per shared queue database that does not answer now.
    queue_errors: NotRequired[list[str]]
