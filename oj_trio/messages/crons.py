"""Crons: start (idempotent), stop (one or ``all``), once (fire now); list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired


class CronStartRequest(TypedDict):
    """One cron, or with ``all`` every cron of the project's valid runbooks."""

    type: Literal["CronStart"]
    project_root: str
    namespace: str
    cron: NotRequired[str]
    all: NotRequired[bool]


class CronStartResult(TypedDict):
    cron: str
    #: True when the cron was already running (nothing changed, its phase is kept).
    already_running: bool
    next_fire_at_ms: int | None


class CronsStartedResponse(TypedDict):
    type: Literal["CronsStarted"]
    crons: list[CronStartResult]


class CronStopRequest(TypedDict):
    """One cron, or with ``all`` every running cron of the namespace."""

    type: Literal["CronStop"]
    namespace: str
    cron: NotRequired[str]
    all: NotRequired[bool]


class CronsStoppedResponse(TypedDict):
    type: Literal["CronsStopped"]
    stopped: list[str]


class CronOnceRequest(TypedDict):
    type: Literal["CronOnce"]
    project_root: str
    namespace: str
    cron: str


class CronFiredResponse(TypedDict):
    type: Literal["CronFired"]
    cron: str
    pipeline_id: str


class ListCronsQuery(TypedDict):
    type: Literal["ListCrons"]


class CronSummary(TypedDict):
    name: str
    namespace: str
    schedule: str
    status: str  #: running | stopped
    active: int
    fires: int
    skipped: int
    last_fire_at_ms: int | None
    next_fire_at_ms: int | None


class CronsResponse(TypedDict):
    type: Literal["Crons"]
    crons: list[CronSummary]
