"""Agents as the CLI sees them: one summary per step record that ran an agent (reference §6.2)."""

from __future__ import annotations

from pathlib import Path

from ..messages import AgentSummary, SessionSummary
from ..state import MaterializedState, Pipeline, Session, StepRecord


def log_counts(path: Path) -> tuple[int, int, int, bool]:
    """(files read, files written, commands run, session gone) from an agent log's lines."""
    read = written = commands = 0
    gone = False
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return 0, 0, 0, False
    for line in text.splitlines():
        _stamp, _, rest = line.partition(" ")
        if rest.startswith("read: "):
            read += 1
        elif rest.startswith(("wrote: ", "edited: ")):
            written += 1
        elif rest.startswith(("bash: ", "oj: ")):
            commands += 1
        elif rest.startswith("error: session"):
            gone = True
    return read, written, commands, gone


def exit_reason(rec: StepRecord) -> str | None:
    if rec.outcome == "completed":
        return "completed"
    if rec.outcome == "waiting":
        return "idle"
    if rec.outcome == "failed":
        return f"failed: {rec.detail}" if rec.detail else "failed"
    return None


def agent_records(state: MaterializedState) -> list[tuple[Pipeline, StepRecord]]:
    """Every (pipeline, step record) that ran an agent."""
    return [(p, rec) for p in state.pipelines.values() for rec in p.step_history if rec.agent_id]


def agent_summary(p: Pipeline, rec: StepRecord, log_path: Path) -> AgentSummary:
    assert rec.agent_id is not None
    read, written, commands, gone = log_counts(log_path)
    reason = "gone" if gone else exit_reason(rec)
    return {
        "pipeline_id": p.id,
        "pipeline_name": p.name,
        "step_name": rec.name,
        "agent_id": rec.agent_id,
        "agent_name": rec.agent_name,
        "namespace": p.namespace,
        "status": rec.outcome,
        "files_read": read,
        "files_written": written,
        "commands_run": commands,
        "exit_reason": reason,
        "updated_at_ms": rec.finished_at_ms or rec.started_at_ms,
    }


def session_summary(session: Session, state: MaterializedState) -> SessionSummary:
    p = state.pipelines.get(session.pipeline_id)
    return {
        "id": session.id,
        "pipeline_id": session.pipeline_id,
        "updated_at_ms": p.updated_at_ms if p is not None else 0,
    }
