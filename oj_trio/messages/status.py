"""`oj status`: the overview across projects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired

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


class CronStatus(TypedDict):
    """One cron in `oj status` (filled by the cron noun's section in ``views.status``)."""

    name: str
    status: str  #: running | stopped
    next_fire_at_ms: int | None  #: epoch ms of the next fire, None when stopped


class ActiveAgent(TypedDict):
    """An agent step running now or waiting for a person (reference §6.2 ``active_agents``)."""

    agent_id: str
    agent_name: str | None
    pipeline_id: str
    pipeline_name: str
    step_name: str
    status: str  #: running | waiting
    elapsed_ms: int  #: since the step started


class AttentionItem(TypedDict):
    """Something a person should look at: an escalated pipeline or agent, a pipeline that
    failed in the last day, dead queue items, a queue backend that cannot be read."""

    kind: str  #: pipeline | queue | agent | ...
    name: str
    id: str | None
    reason: str
    since_ms: int | None  #: epoch ms it started, when known
    hint: str | None  #: the command that deals with it


class NamespaceStatus(TypedDict):
    """One namespace with something to show (``views.status_overview``): live pipelines, its
    workers, persisted queues that have pending, active, retry-waiting or dead items, crons,
    agents, and what needs attention."""

    namespace: str
    active_pipelines: list[StatusPipeline]
    escalated_pipelines: list[StatusPipeline]
    workers: list[WorkerSummary]
    queues: list[QueueSummary]
    crons: list[CronStatus]
    active_agents: list[ActiveAgent]
    attention: list[AttentionItem]


class StatusOverviewResponse(TypedDict):
    type: Literal["StatusOverview"]
    uptime_secs: int
    namespaces: list[NamespaceStatus]
    #: One line per shared queue database that does not answer now.
    queue_errors: NotRequired[list[str]]
