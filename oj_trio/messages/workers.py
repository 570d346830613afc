"""Workers: start (idempotent: wakes a running one), stop, restart, resize; list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired


class WorkerStartRequest(TypedDict):
    type: Literal["WorkerStart"]
    project_root: str
    namespace: str
    worker: str


class WorkerStartedResponse(TypedDict):
    type: Literal["WorkerStarted"]
    worker: str
    #: True when the worker was already running (it was woken, not restarted).
    already_running: bool


class WorkerStopRequest(TypedDict):
    """One worker, or with ``all`` every worker of the namespace."""

    type: Literal["WorkerStop"]
    namespace: str
    worker: NotRequired[str]
    all: NotRequired[bool]


class WorkersStoppedResponse(TypedDict):
    type: Literal["WorkersStopped"]
    stopped: list[str]


class WorkerRestartRequest(TypedDict):
    """Stop + start: re-reads the runbook, cancels nothing. Answered with ``WorkerStarted``."""

    type: Literal["WorkerRestart"]
    project_root: str
    namespace: str
    worker: str


class WorkerResizeRequest(TypedDict):
    type: Literal["WorkerResize"]
    namespace: str
    worker: str
    concurrency: int


class WorkerResizedResponse(TypedDict):
    type: Literal["WorkerResized"]
    worker: str
    concurrency: int
    previous: int


class ListWorkersQuery(TypedDict):
    type: Literal["ListWorkers"]


class WorkerSummary(TypedDict):
    name: str
    namespace: str
    queue: str
    status: str  #: running | stopped
    active: int
    concurrency: int


class WorkersResponse(TypedDict):
    type: Literal["Workers"]
    workers: list[WorkerSummary]
