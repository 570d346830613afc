"""Pipelines: cancel, resume, prune; list, show, logs, wait."""

from __future__ import annotations

from pathlib import Path

import trio

from .. import events as ev
from .. import views
from ..errors import NotFoundError
from ..messages import (
    GetPipelineLogsQuery,
    GetPipelineQuery,
    ListPipelinesQuery,
    OkResponse,
    PipelineCancelRequest,
    PipelineDetail,
    PipelineLogsResponse,
    PipelinePruneRequest,
    PipelineResponse,
    PipelineResumeRequest,
    PipelinesCancelledResponse,
    PipelinesPrunedResponse,
    PipelinesResponse,
    PipelineStatesResponse,
    PrunedPipeline,
    WaitPipelinesQuery,
)
from ..pipeline_log import read_tail
from ..pipelines import transitions
from ..runtime.workspaces import PRUNE_AGE_MS
from ..state import StepStatus
from . import Route, Services


async def cancel(s: Services, request: PipelineCancelRequest) -> PipelinesCancelledResponse:
    cancelled: list[str] = []
    terminal: list[str] = []
    missing: list[str] = []
    for given in request["ids"]:
        p = s.ctx.state.get_pipeline(str(given))
        if p is None:
            missing.append(given)
        elif p.terminal:
            terminal.append(given)
        else:
            await s.supervisor.cancel(p.id)
            cancelled.append(given)
    return {
        "type": "PipelinesCancelled",
        "cancelled": cancelled,
        "already_terminal": terminal,
        "not_found": missing,
    }


async def resume(s: Services, request: PipelineResumeRequest) -> OkResponse:
    ctx = s.ctx
    p = ctx.state.get_pipeline(request["id"])
    if p is None:
        raise NotFoundError(f"pipeline not found: {request['id']}")
    given = request.get("vars")
    plan = transitions.resume(
        p,
        ctx.runbooks.pipeline_def(p),
        running=s.supervisor.is_driving(p.id)
        and p.step_status in (StepStatus.RUNNING, StepStatus.PENDING),
        message=request.get("message"),
        vars={str(k): str(v) for k, v in given.items()} if given is not None else None,
        at=ctx.clock.now_ms(),
    )
    await ctx.commit(*plan.events)
    ctx.log.write(p.id, plan.target, "resumed")
    s.agents.resume(p, request.get("message"))
    s.supervisor.spawn(p.id, rerun=plan.rerun)
    return {"type": "Ok", "id": p.id}


async def prune(s: Services, request: PipelinePruneRequest) -> PipelinesPrunedResponse:
    ctx = s.ctx
    include_all = bool(request.get("all"))
    failed_only = bool(request.get("failed"))
    dry_run = bool(request.get("dry_run"))
    cutoff = ctx.clock.now_ms() - PRUNE_AGE_MS
    pruned: list[PrunedPipeline] = []
    skipped = 0
    for p in list(ctx.state.pipelines.values()):
        if not p.terminal or (failed_only and p.step != "failed"):
            skipped += 1
            continue
        old_enough = include_all or p.step == "cancelled" or (failed_only and p.step == "failed")
        if not old_enough and p.created_at_ms > cutoff:
            skipped += 1
            continue
        pruned.append({"id": p.id, "name": p.name, "step": p.step})
    if not dry_run and pruned:
        await ctx.commit(*[ev.PipelineDeleted(id=e["id"]) for e in pruned])
        ids = [entry["id"] for entry in pruned]

        def remove_logs() -> None:
            for pipeline_id in ids:
                ctx.log.remove(pipeline_id)

        await trio.to_thread.run_sync(remove_logs)
    return {"type": "PipelinesPruned", "pruned": pruned, "skipped": skipped}


# -- queries -----------------------------------------------------------------------------------


async def list_pipelines(s: Services, _query: ListPipelinesQuery) -> PipelinesResponse:
    return {
        "type": "Pipelines",
        "pipelines": [views.pipeline_summary(p) for p in s.ctx.state.pipelines.values()],
    }


async def get_pipeline(s: Services, query: GetPipelineQuery) -> PipelineResponse:
    p = s.ctx.state.get_pipeline(query["id"])
    return {"type": "Pipeline", "pipeline": views.pipeline_detail(p) if p is not None else None}


async def get_logs(s: Services, query: GetPipelineLogsQuery) -> PipelineLogsResponse:
    p = s.ctx.state.get_pipeline(query["id"])
    path = s.ctx.log.path(p.id if p is not None else query["id"])
    lines = query.get("lines", 50)
    await trio.to_thread.run_sync(s.ctx.log.flush)  # every line written so far is in the file
    content = await trio.to_thread.run_sync(_tail_or_empty, path, lines)
    size = path.stat().st_size if path.exists() else 0
    return {"type": "PipelineLogs", "log_path": str(path), "lines": content, "size": size}


async def wait(s: Services, query: WaitPipelinesQuery) -> PipelineStatesResponse:
    """Long poll: answer when state moved past ``after_seq`` (or at the timeout)."""
    store = s.ctx.store
    await store.wait_past(query.get("after_seq", 0), query.get("timeout_ms", 0) / 1000.0)
    pipelines: list[PipelineDetail | None] = []
    for given in query["ids"]:
        p = s.ctx.state.get_pipeline(str(given))
        pipelines.append(views.pipeline_detail(p) if p is not None else None)
    return {"type": "PipelineStates", "seq": store.last_seq, "pipelines": pipelines}


def _tail_or_empty(path: Path, lines: int) -> list[str]:
    try:
        return read_tail(path, lines) if lines else path.read_text("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []


ROUTES = [
    Route("PipelineCancel", cancel, mutates=True),
    Route("PipelineResume", resume, mutates=True),
    Route("PipelinePrune", prune, mutates=True),
    Route("ListPipelines", list_pipelines, mutates=False, query=True),
    Route("GetPipeline", get_pipeline, mutates=False, query=True),
    Route("GetPipelineLogs", get_logs, mutates=False, query=True),
    Route("WaitPipelines", wait, mutates=False, query=True),
]
