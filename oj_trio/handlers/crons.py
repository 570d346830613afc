"""Crons: start (a running one keeps its phase), stop (cancels nothing), once; list."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..messages import (
    CronFiredResponse,
    CronOnceRequest,
    CronsResponse,
    CronsStartedResponse,
    CronsStoppedResponse,
    CronStartRequest,
    CronStartResult,
    CronStopRequest,
    ListCronsQuery,
)
from ..timers import cron_id
from ..views.crons import cron_summary
from . import Route, Services


async def start(s: Services, request: CronStartRequest) -> CronsStartedResponse:
    """One cron, or ``all`` those of the project (each file's crons, in file order)."""
    name, every = request.get("cron"), bool(request.get("all"))
    if (name is None) == (not every):
        raise UsageError("start needs exactly one of: a cron name, or --all")
    root, namespace = Path(request["project_root"]), request["namespace"]
    if name is not None:
        names = [name]
    else:
        names = [n for runbook in await s.ctx.runbooks.project(root) for n in runbook.crons]
    results: list[CronStartResult] = []
    for each in dict.fromkeys(names):
        already = await s.crons.start(root, namespace, each)
        results.append(
            {
                "cron": each,
                "already_running": already,
                "next_fire_at_ms": s.ctx.state.timers.get(cron_id(namespace, each)),
            }
        )
    return {"type": "CronsStarted", "crons": results}


async def stop(s: Services, request: CronStopRequest) -> CronsStoppedResponse:
    name, every = request.get("cron"), bool(request.get("all"))
    if (name is None) == (not every):
        raise UsageError("stop needs exactly one of: a cron name, or --all")
    stopped = await s.crons.stop(request["namespace"], name)
    return {"type": "CronsStopped", "stopped": stopped}


async def once(s: Services, request: CronOnceRequest) -> CronFiredResponse:
    name = request["cron"]
    pipeline_id = await s.crons.once(Path(request["project_root"]), request["namespace"], name)
    return {"type": "CronFired", "cron": name, "pipeline_id": pipeline_id}


async def list_crons(s: Services, _query: ListCronsQuery) -> CronsResponse:
    state = s.ctx.state
    records = sorted(state.crons.values(), key=lambda c: (c.name, c.namespace))
    return {"type": "Crons", "crons": [cron_summary(c, state) for c in records]}


ROUTES = [
    Route("CronStart", start, mutates=True),
    Route("CronStop", stop, mutates=True),
    Route("CronOnce", once, mutates=True),
    Route("ListCrons", list_crons, mutates=False, query=True),
]
