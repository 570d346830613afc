"""Pipelines: cancel, resume, prune; list, show, logs, wait."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Any, Literal, NotRequired


class PipelineCancelRequest(TypedDict):
    type: Literal["PipelineCancel"]
    ids: list[str]


class PipelineResumeRequest(TypedDict):
    type: Literal["PipelineResume"]
    id: str
    message: NotRequired[str]
    vars: NotRequired[dict[str, str]]


class PipelinePruneRequest(TypedDict):
    type: Literal["PipelinePrune"]
    all: NotRequired[bool]
    failed: NotRequired[bool]
    dry_run: NotRequired[bool]


class ListPipelinesQuery(TypedDict):
    type: Literal["ListPipelines"]


class GetPipelineQuery(TypedDict):
    type: Literal["GetPipeline"]
    id: str


class GetPipelineLogsQuery(TypedDict):
    type: Literal["GetPipelineLogs"]
    id: str
    lines: NotRequired[int]
    offset: NotRequired[int]


class WaitPipelinesQuery(TypedDict):
    type: Literal["WaitPipelines"]
    ids: list[str]
    all: NotRequired[bool]
    after_seq: NotRequired[int]
    timeout_ms: NotRequired[int]


class PipelineIdentity(TypedDict):
    """What every pipeline view starts with; ``terminal`` because a step merely *named* done is
    not the end (SPEC §4.5)."""

    id: str
    name: str
    kind: str
    step: str
    step_status: str
    terminal: bool
    namespace: str
    updated_at_ms: int


class PipelineSummary(PipelineIdentity):
    """One pipeline in a list (``views.pipeline_summary``)."""

    created_at_ms: int


class StepRecordDetail(TypedDict):
    name: str
    started_at_ms: int
    finished_at_ms: int | None
    outcome: str
    detail: str | None
    agent_id: str | None
    agent_name: str | None


class PipelineDetail(PipelineIdentity):
    """One pipeline with its history (``views.pipeline_detail``)."""

    vars: dict[str, str]
    workspace_path: str | None
    session_id: str | None
    error: str | None
    steps: list[StepRecordDetail]
    agents: list[dict[str, Any]]
    created_at_ms: int


class PrunedPipeline(TypedDict):
    id: str
    name: str
    step: str


class PipelinesCancelledResponse(TypedDict):
    type: Literal["PipelinesCancelled"]
    cancelled: list[str]
    already_terminal: list[str]
    not_found: list[str]


class PipelinesPrunedResponse(TypedDict):
    type: Literal["PipelinesPruned"]
    pruned: list[PrunedPipeline]
    skipped: int


class PipelinesResponse(TypedDict):
    type: Literal["Pipelines"]
    pipelines: list[PipelineSummary]


class PipelineResponse(TypedDict):
    type: Literal["Pipeline"]
    pipeline: PipelineDetail | None


class PipelineLogsResponse(TypedDict):
    type: Literal["PipelineLogs"]
    log_path: str
    lines: list[str]
    size: int


class PipelineStatesResponse(TypedDict):
    """``WaitPipelines``' answer: one detail (or null) per id asked, and the seq it reflects."""

    type: Literal["PipelineStates"]
    seq: int
    pipelines: list[PipelineDetail | None]
