"""Every request, query and response on the wire, as ``TypedDict`` shapes, one module per noun.

:mod:`.daemon` (ping, hello, status, shutdown, the ``Query`` envelope, and the ``Error``/``Ok``
replies any noun may give), :mod:`.commands`, :mod:`.pipelines`, :mod:`.workspaces`,
:mod:`.status`, :mod:`.queues`, :mod:`.workers`, :mod:`.crons`. This module re-exports every shape (``from oj_trio.messages import OkResponse``)
and holds the tables: :data:`REQUESTS`, :data:`QUERIES` and the :data:`Request`, :data:`Query`,
:data:`Response` unions. Frames, validation and the ``Error`` builders are :mod:`oj_trio.protocol`.

**Adding a verb** touches its noun's CLI module (``commands/<noun>.py``), its noun's handler
module (``handlers/<noun>.py``), its noun's module here (``messages/<noun>.py``: the request or
query shape and its response) and the tables below (:data:`REQUESTS` or :data:`QUERIES`, and
the unions). A new noun adds one ``messages/<noun>.py`` and its names to the imports here.

**One source of truth.** mypy checks the code that builds or reads the shapes; the daemon's
run-time validation (:func:`oj_trio.protocol.parse_request`) derives its ``{field: (type,
required)}`` table from the same class bodies (:mod:`.schema`), so a field is declared exactly
once. Responses are not checked at run time; their shapes exist for mypy and for readers.

**Dicts at run time.** Real ``typing.TypedDict`` classes are not cheap: the metaclass runs
``typing._type_check`` on every annotation and, under ``from __future__ import annotations``,
compiles each one into a ``ForwardRef``. Measured with ``python -X importtime`` (bytecode cached,
median of 15) when the shapes still lived in ``protocol.py``: ≈ 2.9 ms with real TypedDicts,
≈ 0.6 ms as plain dicts. So only the type checker sees the real ``TypedDict``; at run time the
shapes are plain ``dict`` subclasses whose ``__annotations__`` are the unevaluated strings (the
preamble in :mod:`._shape`), and :mod:`.schema` reads those strings, lazily. Consequences:
``typing.is_typeddict()`` is false at run time, and run-time field types come from the small
vocabulary in :data:`.schema._FIELD_TYPES` (a new spelling fails loudly when the table is first
built; ``tests/test_protocol.py`` builds every table). Real TypedDicts would not give a truthful
``__required_keys__`` here either: on Python 3.11 ``NotRequired`` inside a string annotation is
not recognised at run time.

**Daemon side only.** The `oj` client never imports this package at run time: ``protocol.py``
names the shapes only under ``TYPE_CHECKING`` and imports :mod:`.schema` inside
``parse_request``, which only the daemon calls (``tests/test_daemon_cli.py`` checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .agents import AgentHookRequest as AgentHookRequest
from .agents import AgentLogsResponse as AgentLogsResponse
from .agents import AgentPruneRequest as AgentPruneRequest
from .agents import AgentSendRequest as AgentSendRequest
from .agents import AgentSentResponse as AgentSentResponse
from .agents import AgentSignalRequest as AgentSignalRequest
from .agents import AgentSignalResponse as AgentSignalResponse
from .agents import AgentsPrunedResponse as AgentsPrunedResponse
from .agents import AgentsResponse as AgentsResponse
from .agents import AgentSummary as AgentSummary
from .agents import GetAgentLogsQuery as GetAgentLogsQuery
from .agents import GetAgentSignalQuery as GetAgentSignalQuery
from .agents import ListAgentsQuery as ListAgentsQuery
from .agents import ListSessionsQuery as ListSessionsQuery
from .agents import PeekSessionQuery as PeekSessionQuery
from .agents import PrunedAgent as PrunedAgent
from .agents import SessionPeekResponse as SessionPeekResponse
from .agents import SessionSendRequest as SessionSendRequest
from .agents import SessionsResponse as SessionsResponse
from .agents import SessionSummary as SessionSummary
from .commands import CommandHelpResponse as CommandHelpResponse
from .commands import CommandListResponse as CommandListResponse
from .commands import CommandStartedResponse as CommandStartedResponse
from .commands import ListCommandsRequest as ListCommandsRequest
from .commands import RunCommandRequest as RunCommandRequest
from .crons import CronFiredResponse as CronFiredResponse
from .crons import CronOnceRequest as CronOnceRequest
from .crons import CronsResponse as CronsResponse
from .crons import CronsStartedResponse as CronsStartedResponse
from .crons import CronsStoppedResponse as CronsStoppedResponse
from .crons import CronStartRequest as CronStartRequest
from .crons import CronStartResult as CronStartResult
from .crons import CronStopRequest as CronStopRequest
from .crons import CronSummary as CronSummary
from .crons import ListCronsQuery as ListCronsQuery
from .daemon import ErrorResponse as ErrorResponse
from .daemon import HelloRequest as HelloRequest
from .daemon import HelloResponse as HelloResponse
from .daemon import OkResponse as OkResponse
from .daemon import PingRequest as PingRequest
from .daemon import PongResponse as PongResponse
from .daemon import QueryRequest as QueryRequest
from .daemon import ShutdownRequest as ShutdownRequest
from .daemon import ShuttingDownResponse as ShuttingDownResponse
from .daemon import StatusRequest as StatusRequest
from .daemon import StatusResponse as StatusResponse
from .pipelines import GetPipelineLogsQuery as GetPipelineLogsQuery
from .pipelines import GetPipelineQuery as GetPipelineQuery
from .pipelines import ListPipelinesQuery as ListPipelinesQuery
from .pipelines import PipelineCancelRequest as PipelineCancelRequest
from .pipelines import PipelineDetail as PipelineDetail
from .pipelines import PipelineIdentity as PipelineIdentity
from .pipelines import PipelineLogsResponse as PipelineLogsResponse
from .pipelines import PipelinePruneRequest as PipelinePruneRequest
from .pipelines import PipelineResponse as PipelineResponse
from .pipelines import PipelineResumeRequest as PipelineResumeRequest
from .pipelines import PipelinesCancelledResponse as PipelinesCancelledResponse
from .pipelines import PipelinesPrunedResponse as PipelinesPrunedResponse
from .pipelines import PipelinesResponse as PipelinesResponse
from .pipelines import PipelineStatesResponse as PipelineStatesResponse
from .pipelines import PipelineSummary as PipelineSummary
from .pipelines import PrunedPipeline as PrunedPipeline
from .pipelines import StepRecordDetail as StepRecordDetail
from .pipelines import WaitPipelinesQuery as WaitPipelinesQuery
from .queues import ListQueueItemsQuery as ListQueueItemsQuery
from .queues import ListQueuesQuery as ListQueuesQuery
from .queues import QueueDroppedResponse as QueueDroppedResponse
from .queues import QueueDropRequest as QueueDropRequest
from .queues import QueueItemsResponse as QueueItemsResponse
from .queues import QueueItemView as QueueItemView
from .queues import QueuePrunedResponse as QueuePrunedResponse
from .queues import QueuePruneRequest as QueuePruneRequest
from .queues import QueuePushedResponse as QueuePushedResponse
from .queues import QueuePushRequest as QueuePushRequest
from .queues import QueueRetriedResponse as QueueRetriedResponse
from .queues import QueueRetryRequest as QueueRetryRequest
from .queues import QueuesResponse as QueuesResponse
from .queues import QueueSummary as QueueSummary
from .status import ActiveAgent as ActiveAgent
from .status import AttentionItem as AttentionItem
from .status import CronStatus as CronStatus
from .status import NamespaceStatus as NamespaceStatus
from .status import StatusOverviewQuery as StatusOverviewQuery
from .status import StatusOverviewResponse as StatusOverviewResponse
from .status import StatusPipeline as StatusPipeline
from .workers import ListWorkersQuery as ListWorkersQuery
from .workers import WorkerResizedResponse as WorkerResizedResponse
from .workers import WorkerResizeRequest as WorkerResizeRequest
from .workers import WorkerRestartRequest as WorkerRestartRequest
from .workers import WorkersResponse as WorkersResponse
from .workers import WorkersStoppedResponse as WorkersStoppedResponse
from .workers import WorkerStartedResponse as WorkerStartedResponse
from .workers import WorkerStartRequest as WorkerStartRequest
from .workers import WorkerStopRequest as WorkerStopRequest
from .workers import WorkerSummary as WorkerSummary
from .workspaces import GetWorkspaceQuery as GetWorkspaceQuery
from .workspaces import ListWorkspacesQuery as ListWorkspacesQuery
from .workspaces import RemovedWorkspace as RemovedWorkspace
from .workspaces import WorkspaceDetail as WorkspaceDetail
from .workspaces import WorkspaceDropAllRequest as WorkspaceDropAllRequest
from .workspaces import WorkspaceDropFailedRequest as WorkspaceDropFailedRequest
from .workspaces import WorkspaceDropRequest as WorkspaceDropRequest
from .workspaces import WorkspacePruneRequest as WorkspacePruneRequest
from .workspaces import WorkspaceResponse as WorkspaceResponse
from .workspaces import WorkspacesDroppedResponse as WorkspacesDroppedResponse
from .workspaces import WorkspacesPrunedResponse as WorkspacesPrunedResponse
from .workspaces import WorkspacesResponse as WorkspacesResponse
from .workspaces import WorkspaceSummary as WorkspaceSummary

if TYPE_CHECKING:
    from typing import TypeAlias

#: Every request the daemon accepts. The tag of each is its ``type: Literal[...]`` annotation.
REQUESTS = (
    PingRequest,
    HelloRequest,
    StatusRequest,
    ShutdownRequest,
    QueryRequest,
    RunCommandRequest,
    ListCommandsRequest,
    PipelineCancelRequest,
    PipelineResumeRequest,
    PipelinePruneRequest,
    WorkspaceDropRequest,
    WorkspaceDropFailedRequest,
    WorkspaceDropAllRequest,
    WorkspacePruneRequest,
    QueuePushRequest,
    QueueDropRequest,
    QueueRetryRequest,
    QueuePruneRequest,
    WorkerStartRequest,
    WorkerStopRequest,
    WorkerRestartRequest,
    WorkerResizeRequest,
    CronStartRequest,
    CronStopRequest,
    CronOnceRequest,
    AgentSignalRequest,
    AgentHookRequest,
    AgentSendRequest,
    AgentPruneRequest,
    SessionSendRequest,
)

#: Every query a ``Query`` request may carry.
QUERIES = (
    ListPipelinesQuery,
    GetPipelineQuery,
    GetPipelineLogsQuery,
    WaitPipelinesQuery,
    ListWorkspacesQuery,
    GetWorkspaceQuery,
    StatusOverviewQuery,
    ListQueuesQuery,
    ListQueueItemsQuery,
    ListWorkersQuery,
    ListCronsQuery,
    GetAgentSignalQuery,
    ListAgentsQuery,
    GetAgentLogsQuery,
    ListSessionsQuery,
    PeekSessionQuery,
)

Request: TypeAlias = (
    PingRequest
    | HelloRequest
    | StatusRequest
    | ShutdownRequest
    | QueryRequest
    | RunCommandRequest
    | ListCommandsRequest
    | PipelineCancelRequest
    | PipelineResumeRequest
    | PipelinePruneRequest
    | WorkspaceDropRequest
    | WorkspaceDropFailedRequest
    | WorkspaceDropAllRequest
    | WorkspacePruneRequest
    | QueuePushRequest
    | QueueDropRequest
    | QueueRetryRequest
    | QueuePruneRequest
    | WorkerStartRequest
    | WorkerStopRequest
    | WorkerRestartRequest
    | WorkerResizeRequest
    | CronStartRequest
    | CronStopRequest
    | CronOnceRequest
    | AgentSignalRequest
    | AgentHookRequest
    | AgentSendRequest
    | AgentPruneRequest
    | SessionSendRequest
)
Query: TypeAlias = (
    ListPipelinesQuery
    | GetPipelineQuery
    | GetPipelineLogsQuery
    | WaitPipelinesQuery
    | ListWorkspacesQuery
    | GetWorkspaceQuery
    | StatusOverviewQuery
    | ListQueuesQuery
    | ListQueueItemsQuery
    | ListWorkersQuery
    | ListCronsQuery
    | GetAgentSignalQuery
    | ListAgentsQuery
    | GetAgentLogsQuery
    | ListSessionsQuery
    | PeekSessionQuery
)
#: Everything the daemon answers with; a handler is typed ``-> Response`` (or a member).
Response: TypeAlias = (
    PongResponse
    | HelloResponse
    | StatusResponse
    | ShuttingDownResponse
    | ErrorResponse
    | OkResponse
    | CommandStartedResponse
    | CommandHelpResponse
    | CommandListResponse
    | PipelinesCancelledResponse
    | PipelinesPrunedResponse
    | PipelinesResponse
    | PipelineResponse
    | PipelineLogsResponse
    | PipelineStatesResponse
    | WorkspacesDroppedResponse
    | WorkspacesPrunedResponse
    | WorkspacesResponse
    | WorkspaceResponse
    | StatusOverviewResponse
    | QueuePushedResponse
    | QueueDroppedResponse
    | QueueRetriedResponse
    | QueuePrunedResponse
    | QueuesResponse
    | QueueItemsResponse
    | WorkerStartedResponse
    | WorkersStoppedResponse
    | WorkerResizedResponse
    | WorkersResponse
    | CronsStartedResponse
    | CronsStoppedResponse
    | CronFiredResponse
    | CronsResponse
    | AgentSignalResponse
    | AgentSentResponse
    | AgentsResponse
    | AgentLogsResponse
    | AgentsPrunedResponse
    | SessionsResponse
    | SessionPeekResponse
)
