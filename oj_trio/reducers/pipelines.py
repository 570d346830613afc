"""Reducers for a pipeline's life: creation, steps, transitions, shell processes, agent signals.

A step event applies only to a live pipeline that is on that step; a stale one (the pipeline moved
on, ended or was deleted while the event was in flight) is ignored, never an error. History records
are opened by ``pipeline:created``/``pipeline:advanced`` (and by ``step:started`` for a re-run) and
closed by the step's outcome, so ``started_at_ms``/``finished_at_ms`` come from event times only.
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import (
    TERMINAL_STEPS,
    AgentSignalRecord,
    Pipeline,
    ShellProcess,
    StepRecord,
    StepStatus,
)
from oj_trio.reducers._table import ReducerTable, on, table
from oj_trio.reducers.workers import release_pipeline

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _step_target(p: Pipeline | None, step: str) -> Pipeline | None:
    """Step events apply only to a live pipeline that is on that step (stale ones are ignored)."""
    if p is None or p.terminal or p.step != step:
        return None
    return p


def _open_record(p: Pipeline) -> StepRecord | None:
    rec = p.current_record()
    if rec is not None and rec.name == p.step and rec.finished_at_ms is None:
        return rec
    return None


def _finalize(p: Pipeline, at_ms: int, outcome: str, detail: str | None) -> None:
    rec = _open_record(p)
    if rec is not None:
        rec.finished_at_ms = at_ms
        rec.outcome = outcome
        rec.detail = detail


def _pipeline_created(s: "MaterializedState", e: ev.PipelineCreated) -> None:
    if e.id in s.pipelines:
        return  # creation is idempotent (reference §10 #3)
    s.pipelines[e.id] = Pipeline(
        id=e.id,
        name=e.name,
        kind=e.kind,
        namespace=e.namespace,
        step=e.initial_step,
        runbook_hash=e.runbook_hash,
        cwd=e.cwd,
        created_at_ms=e.created_at_epoch_ms,
        vars=dict(e.vars),
        step_history=[StepRecord(name=e.initial_step, started_at_ms=e.created_at_epoch_ms)],
        updated_at_ms=e.created_at_epoch_ms,
    )


def _pipeline_advanced(s: "MaterializedState", e: ev.PipelineAdvanced) -> None:
    p = s.pipelines.get(e.id)
    if p is None:
        return
    terminal = e.step in TERMINAL_STEPS if e.terminal is None else e.terminal
    if p.step == e.step and p.terminal == terminal:
        return
    if p.terminal and not terminal:
        p.error = None
        p.session_id = None
        p.cancelling = False
    if e.step in ("failed", "cancelled") and terminal:
        _finalize(p, e.at_ms, "failed", p.error)
    else:
        _finalize(p, e.at_ms, "completed", None)
    p.step = e.step
    p.terminal = terminal
    if terminal:
        p.step_status = StepStatus.COMPLETED if e.step == "done" else StepStatus.FAILED
    else:
        p.step_status = StepStatus.PENDING
        p.step_history.append(StepRecord(name=e.step, started_at_ms=e.at_ms))
    p.action_attempts = {}
    p.action_attempted_at_ms = {}
    p.agent_signal = None
    p.shell = None
    p.updated_at_ms = e.at_ms
    if terminal:
        p.cancel_requested = False
        release_pipeline(s, e.id)


def _pipeline_updated(s: "MaterializedState", e: ev.PipelineUpdated) -> None:
    p = s.pipelines.get(e.id)
    if p is not None:
        p.vars.update(e.vars)


def _pipeline_cancel(s: "MaterializedState", e: ev.PipelineCancel) -> None:
    p = s.pipelines.get(e.id)
    if p is not None and not p.terminal and not p.cancelling:
        p.cancel_requested = True


def _pipeline_cancelling(s: "MaterializedState", e: ev.PipelineCancelling) -> None:
    p = s.pipelines.get(e.id)
    if p is not None:
        p.cancelling = True
        p.cancel_requested = False


def _pipeline_deleted(s: "MaterializedState", e: ev.PipelineDeleted) -> None:
    if s.pipelines.pop(e.id, None) is not None:
        release_pipeline(s, e.id)


def _pipeline_action_attempted(s: "MaterializedState", e: ev.PipelineActionAttempted) -> None:
    p = s.pipelines.get(e.id)
    if p is not None:
        p.action_attempts[e.key] = p.action_attempts.get(e.key, 0) + 1
        p.action_attempted_at_ms[e.key] = e.at_ms


def _step_started(s: "MaterializedState", e: ev.StepStarted) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e.step)
    if p is None:
        return
    rec = _open_record(p)
    if rec is None:  # re-run of a finished step (resume): a new history record
        rec = StepRecord(name=e.step, started_at_ms=e.at_ms)
        p.step_history.append(rec)
    rec.outcome = "running"
    rec.detail = None
    rec.agent_id = e.agent_id
    rec.agent_name = e.agent_name
    p.step_status = StepStatus.RUNNING
    p.updated_at_ms = e.at_ms


def _step_waiting(s: "MaterializedState", e: ev.StepWaiting) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e.step)
    if p is None:
        return
    rec = _open_record(p)
    if rec is not None:
        rec.outcome = "waiting"
        rec.detail = e.reason
    p.step_status = StepStatus.WAITING
    if e.reason is not None:
        p.error = e.reason
    p.updated_at_ms = e.at_ms


def _step_completed(s: "MaterializedState", e: ev.StepCompleted) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e.step)
    if p is None:
        return
    _finalize(p, e.at_ms, "completed", None)
    p.step_status = StepStatus.COMPLETED
    p.shell = None
    p.updated_at_ms = e.at_ms


def _step_failed_with(p: Pipeline, at_ms: int, error: str) -> None:
    _finalize(p, at_ms, "failed", error)
    p.step_status = StepStatus.FAILED
    p.error = error
    p.shell = None
    p.updated_at_ms = at_ms


def _step_failed(s: "MaterializedState", e: ev.StepFailed) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e.step)
    if p is not None:
        _step_failed_with(p, e.at_ms, e.error)


def _shell_spawned(s: "MaterializedState", e: ev.ShellSpawned) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e.step)
    if p is not None:
        p.shell = ShellProcess(step=e.step, pid=e.pid, pgid=e.pgid, start_ticks=e.start_ticks)


def _shell_exited(s: "MaterializedState", e: ev.ShellExited) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e.step)
    if p is None:
        return
    if e.exit_code == 0:
        _finalize(p, e.at_ms, "completed", None)
        p.step_status = StepStatus.COMPLETED
        p.shell = None
        p.updated_at_ms = e.at_ms
    else:
        _step_failed_with(p, e.at_ms, f"shell exit code: {e.exit_code}")


def _agent_signal(s: "MaterializedState", e: ev.AgentSignal) -> None:
    p = s.pipeline_for_agent(e.agent_id)
    if p is not None:
        p.agent_signal = AgentSignalRecord(kind=e.kind, message=e.message)


HANDLERS: ReducerTable = table(
    on(ev.PipelineCreated, _pipeline_created),
    on(ev.PipelineAdvanced, _pipeline_advanced),
    on(ev.PipelineUpdated, _pipeline_updated),
    on(ev.PipelineCancel, _pipeline_cancel),
    on(ev.PipelineCancelling, _pipeline_cancelling),
    on(ev.PipelineDeleted, _pipeline_deleted),
    on(ev.PipelineActionAttempted, _pipeline_action_attempted),
    on(ev.StepStarted, _step_started),
    on(ev.StepWaiting, _step_waiting),
    on(ev.StepCompleted, _step_completed),
    on(ev.StepFailed, _step_failed),
    on(ev.ShellSpawned, _shell_spawned),
    on(ev.ShellExited, _shell_exited),
    on(ev.AgentSignal, _agent_signal),
)
