"""Agents and their tmux sessions: signals and hooks (``oj emit``, ``oj agent hook``), send,
list, logs, prune; sessions: list, send, peek."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired


class AgentSignalRequest(TypedDict):
    """``oj emit agent:signal``: ``kind`` is ``complete`` or ``escalate``."""

    type: Literal["AgentSignal"]
    agent_id: str
    kind: str
    message: NotRequired[str]


class AgentHookRequest(TypedDict):
    """``oj emit agent:idle|agent:prompt`` (Claude Code's hooks); ``trigger``: idle | prompt."""

    type: Literal["AgentHook"]
    agent_id: str
    trigger: str
    prompt_type: NotRequired[str]


class GetAgentSignalQuery(TypedDict):
    type: Literal["GetAgentSignal"]
    agent_id: str


class AgentSignalResponse(TypedDict):
    type: Literal["AgentSignal"]
    signaled: bool
    kind: NotRequired[str]
    message: NotRequired[str]


class AgentSendRequest(TypedDict):
    """``oj agent send``: ``agent_id`` is an agent id or prefix, or a pipeline id or prefix."""

    type: Literal["AgentSend"]
    agent_id: str
    message: str


class AgentSentResponse(TypedDict):
    type: Literal["AgentSent"]
    agent_id: str


class AgentSummary(TypedDict):
    pipeline_id: str
    pipeline_name: str
    step_name: str
    agent_id: str
    agent_name: str | None
    namespace: str
    status: str
    files_read: int
    files_written: int
    commands_run: int
    exit_reason: str | None
    updated_at_ms: int


class ListAgentsQuery(TypedDict):
    type: Literal["ListAgents"]
    pipeline_id: NotRequired[str]
    status: NotRequired[str]


class AgentsResponse(TypedDict):
    type: Literal["Agents"]
    agents: list[AgentSummary]


class GetAgentLogsQuery(TypedDict):
    """``id``: a pipeline id or prefix (its agents' logs), or an agent id."""

    type: Literal["GetAgentLogs"]
    id: str
    step: NotRequired[str]
    lines: NotRequired[int]


class AgentLogsResponse(TypedDict):
    type: Literal["AgentLogs"]
    log_path: str
    content: str
    steps: list[str]
    #: one ``[step, path]`` per agent whose log was read (``-f`` follows the last one).
    paths: list[list[str]]


class AgentPruneRequest(TypedDict):
    type: Literal["AgentPrune"]
    all: NotRequired[bool]
    dry_run: NotRequired[bool]


class PrunedAgent(TypedDict):
    agent_id: str
    pipeline_id: str
    step_name: str


class AgentsPrunedResponse(TypedDict):
    type: Literal["AgentsPruned"]
    pruned: list[PrunedAgent]
    skipped: int


class ListSessionsQuery(TypedDict):
    type: Literal["ListSessions"]


class SessionSummary(TypedDict):
    id: str
    pipeline_id: str
    updated_at_ms: int


class SessionsResponse(TypedDict):
    type: Literal["Sessions"]
    sessions: list[SessionSummary]


class SessionSendRequest(TypedDict):
    """``id``: a session id, or a pipeline id (or prefix) with a session."""

    type: Literal["SessionSend"]
    id: str
    input: str


class PeekSessionQuery(TypedDict):
    """``id``: a session id, or a pipeline id (or prefix) with a session."""

    type: Literal["PeekSession"]
    id: str
    with_color: NotRequired[bool]


class SessionPeekResponse(TypedDict):
    type: Literal["SessionPeek"]
    session_id: str
    output: str
