"""The daemon-wide views: counters for ``oj daemon status``, the ``oj status`` overview."""

from __future__ import annotations

from typing import TypedDict

from ..messages import NamespaceStatus, StatusPipeline
from ..state import MaterializedState, StepStatus


class Counts(TypedDict):
    pipelines_active: int
    sessions_active: int
    orphan_count: int


def counts(state: MaterializedState) -> Counts:
    """The numbers `oj daemon status` shows."""
    active = sum(1 for p in state.pipelines.values() if not p.terminal)
    return {"pipelines_active": active, "sessions_active": len(state.sessions), "orphan_count": 0}


def status_overview(state: MaterializedState, now_ms: int) -> list[NamespaceStatus]:
    """`NamespaceStatus` per namespace with something live, sorted by namespace."""
    by_ns: dict[str, NamespaceStatus] = {}
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
        entry: StatusPipeline = {
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
