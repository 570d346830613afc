"""Pipeline views: ``PipelineSummary`` and ``PipelineDetail`` (reference §6.2 shapes).

Internal bookkeeping vars (``oj.*``) are never shown.
"""

from __future__ import annotations

from ..messages import PipelineDetail, PipelineIdentity, PipelineSummary
from ..state import Pipeline


def _identity(p: Pipeline) -> PipelineIdentity:
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


def pipeline_summary(p: Pipeline) -> PipelineSummary:
    """`PipelineSummary`; ``created_at_ms`` is the first step's start, as the reference has it."""
    first = p.step_history[0].started_at_ms if p.step_history else p.created_at_ms
    return {**_identity(p), "created_at_ms": first}


def pipeline_detail(p: Pipeline) -> PipelineDetail:
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
