"""The daemon-wide views: counters for ``oj daemon status``, the ``oj status`` overview."""

from __future__ import annotations

from typing import Any

from ..state import MaterializedState, StepStatus


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
