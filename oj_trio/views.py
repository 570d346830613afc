"""What queries return: JSON-ready views of the materialized state (reference §6.2 shapes).

Pure functions of the state (and of ``now_ms`` where elapsed time is shown): no I/O, no clock.
Internal bookkeeping vars (``oj.*``) are never shown.
"""

from __future__ import annotations

from typing import Any

from .state import MaterializedState, Pipeline, StepStatus, Workspace


def _identity(p: Pipeline) -> dict[str, Any]:
    """What every pipeline view starts with, plus ``terminal`` (a step merely *named* done is
    not the end, SPEC §4.5)."""
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind,
        "step": p.step,
        "step_status": str(p.step_status),
        "terminal": p.terminal,
        "namespace": p.namespace,
        "updated_at_ms": p.updated_at_ms,
    }


def pipeline_summary(p: Pipeline) -> dict[str, Any]:
    """`PipelineSummary`; ``created_at_ms`` is the first step's start, as the reference has it."""
    first = p.step_history[0].started_at_ms if p.step_history else p.created_at_ms
    return {**_identity(p), "created_at_ms": first}


def pipeline_detail(p: Pipeline) -> dict[str, Any]:
    """`PipelineDetail` with its step history."""
    return {
        **_identity(p),
        "vars": {k: v for k, v in p.vars.items() if not k.startswith("oj.")},
        "workspace_path": p.workspace_path,
        "session_id": p.session_id,
        "error": p.error,
        "steps": [
            {
                "name": r.name,
                "started_at_ms": r.started_at_ms,
                "finished_at_ms": r.finished_at_ms,
                "outcome": r.outcome,
                "detail": r.detail,
                "agent_id": r.agent_id,
                "agent_name": r.agent_name,
            }
            for r in p.step_history
        ],
        "agents": [],
        "created_at_ms": p.created_at_ms,
    }


def workspace_summary(state: MaterializedState, ws: Workspace) -> dict[str, Any]:
    """`WorkspaceSummary`; the namespace comes from the owning pipeline."""
    owner = state.pipelines.get(ws.owner) if ws.owner else None
    return {
        "id": ws.id,
        "path": ws.path,
        "branch": ws.branch,
        "status": ws.status,
        "created_at_ms": ws.created_at_ms,
        "namespace": owner.namespace if owner is not None else "",
    }


def workspace_detail(ws: Workspace) -> dict[str, Any]:
    return {
        "id": ws.id,
        "path": ws.path,
        "branch": ws.branch,
        "owner": ws.owner,
        "status": ws.status,
        "created_at_ms": ws.created_at_ms,
    }


def counts(state: MaterializedState) -> dict[str, int]:
    """The numbers `oj daemon status` shows."""
    active = sum(1 for p in state.pipelines.values() if not p.terminal)
    return {"pipelines_active": active, "sessions_active": len(state.sessions), "orphan_count": 0}


def status_overview(state: MaterializedState, now_ms: int) -> list[dict[str, Any]]:
    """`NamespaceStatus` per namespace with something live, sorted by namespace."""
    by_ns: dict[str, dict[str, Any]] = {}
    for p in state.pipelines.values():
        if p.terminal:
            continue
        ns = by_ns.setdefault(
            p.namespace,
            {
                "namespace": p.namespace,
                "active_pipelines": [],
                "escalated_pipelines": [],
                "workers": [],
                "queues": [],
                "active_agents": [],
            },
        )
        entry: dict[str, Any] = {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "step": p.step,
            "step_status": str(p.step_status),
            "elapsed_ms": max(0, now_ms - p.created_at_ms),
        }
        if p.step_status == StepStatus.WAITING:
            entry["waiting_reason"] = p.error
            ns["escalated_pipelines"].append(entry)
        else:
            ns["active_pipelines"].append(entry)
    return [by_ns[k] for k in sorted(by_ns)]
