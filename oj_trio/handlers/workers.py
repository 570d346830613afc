"""Workers: start (a running one is woken), stop (cancels nothing), restart, resize; list."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..messages import (
    ListWorkersQuery,
    WorkerResizedResponse,
    WorkerResizeRequest,
    WorkerRestartRequest,
    WorkersResponse,
    WorkersStoppedResponse,
    WorkerStartedResponse,
    WorkerStartRequest,
    WorkerStopRequest,
)
from ..views.workers import worker_summary
from . import Route, Services


async def start(s: Services, request: WorkerStartRequest) -> WorkerStartedResponse:
    name = request["worker"]
    already = await s.workers.start(Path(request["project_root"]), request["namespace"], name)
    return {"type": "WorkerStarted", "worker": name, "already_running": already}


async def stop(s: Services, request: WorkerStopRequest) -> WorkersStoppedResponse:
    name, every = request.get("worker"), bool(request.get("all"))
    if (name is None) == (not every):
        raise UsageError("stop needs exactly one of: a worker name, or --all")
    stopped = await s.workers.stop(request["namespace"], name)
    return {"type": "WorkersStopped", "stopped": stopped}


async def restart(s: Services, request: WorkerRestartRequest) -> WorkerStartedResponse:
    """Stop + start in one commit: the runbook is read again, a resize is dropped, nothing is
    cancelled, and the running pipelines keep counting against the concurrency."""
    name = request["worker"]
    path, namespace = Path(request["project_root"]), request["namespace"]
    await s.workers.start(path, namespace, name, restart=True)
    return {"type": "WorkerStarted", "worker": name, "already_running": False}


async def resize(s: Services, request: WorkerResizeRequest) -> WorkerResizedResponse:
    name, concurrency = request["worker"], request["concurrency"]
    previous = await s.workers.resize(request["namespace"], name, concurrency)
    return {
        "type": "WorkerResized",
        "worker": name,
        "concurrency": concurrency,
        "previous": previous,
    }


async def list_workers(s: Services, _query: ListWorkersQuery) -> WorkersResponse:
    records = sorted(s.ctx.state.workers.values(), key=lambda w: (w.name, w.namespace))
    return {"type": "Workers", "workers": [worker_summary(w) for w in records]}


ROUTES = [
    Route("WorkerStart", start, mutates=True),
    Route("WorkerStop", stop, mutates=True),
    Route("WorkerRestart", restart, mutates=True),
    Route("WorkerResize", resize, mutates=True),
    Route("ListWorkers", list_workers, mutates=False, query=True),
]
