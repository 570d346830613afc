"""The daemon-wide views: counters for ``oj daemon status``, the ``oj status`` overview.

The overview is assembled by a row of *section fillers* (`SECTIONS`): each reads what it needs
from `StatusInputs` and adds its part to the namespace sections it touches. A noun that wants a
place in `oj status` (crons with their next fire, escalated agents in **needs attention**) adds one
filler here and one line to `SECTIONS`; if it needs something beyond durable state, one field on
`StatusInputs`, filled in `handlers/status.py`. The CLI renders the parts in the same spirit
(`oj_trio.commands.status.RENDERERS`). Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypedDict

import attrs

from ..messages import AttentionItem, NamespaceStatus, QueueSummary, StatusPipeline
from ..records import CronStatus, Pipeline, scoped_key
from ..state import MaterializedState, StepStatus
from ..timers import cron_id
from .queues import queue_summary
from .workers import worker_summary

#: Failed pipelines stay in "needs attention" this long after they failed.
FAILED_RECENTLY_MS = 24 * 3600 * 1000


class Counts(TypedDict):
    pipelines_active: int
    sessions_active: int
    orphan_count: int


def counts(state: MaterializedState) -> Counts:
    """The numbers `oj daemon status` shows."""
    active = sum(1 for p in state.pipelines.values() if not p.terminal)
    return {"pipelines_active": active, "sessions_active": len(state.sessions), "orphan_count": 0}


@attrs.frozen
class StatusInputs:
    """What the overview is made of: durable state, the time, and the runtime's live facts."""

    state: MaterializedState
    now_ms: int
    #: `ns/queue` → why its backend cannot be read right now (`WorkerService.queue_errors`).
    queue_errors: Mapping[str, str] = attrs.field(factory=dict)
    #: Counts of the queues in a shared database that this daemon's workers serve (their items
    #: are not in state; `WorkerService.shared_queues`).
    shared_queues: Sequence[QueueSummary] = ()


class Overview:
    """The overview being built: one `NamespaceStatus` per namespace, opened on first use."""

    def __init__(self) -> None:
        self._by_ns: dict[str, NamespaceStatus] = {}

    def section(self, namespace: str) -> NamespaceStatus:
        found = self._by_ns.get(namespace)
        if found is None:
            found = self._by_ns[namespace] = _empty(namespace)
        return found

    def sections(self) -> list[NamespaceStatus]:
        """Every section opened so far, sorted by namespace."""
        return [self._by_ns[k] for k in sorted(self._by_ns)]


#: Adds one part of the overview.
SectionFiller = Callable[[StatusInputs, Overview], None]


def _empty(namespace: str) -> NamespaceStatus:
    return {
        "namespace": namespace,
        "active_pipelines": [],
        "escalated_pipelines": [],
        "workers": [],
        "queues": [],
        "crons": [],
        "active_agents": [],
        "attention": [],
    }


def _status_pipeline(p: Pipeline, now_ms: int) -> StatusPipeline:
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind,
        "step": p.step,
        "step_status": str(p.step_status),
        "elapsed_ms": max(0, now_ms - p.created_at_ms),
    }


def pipelines(inputs: StatusInputs, overview: Overview) -> None:
    """Live pipelines; one waiting for a human (escalated) also needs attention: an agent step's
    escalation (the step has a tmux session) as an agent to look at, anything else as a
    pipeline to resume."""
    for p in inputs.state.pipelines.values():
        if p.terminal:
            continue
        ns = overview.section(p.namespace)
        entry = _status_pipeline(p, inputs.now_ms)
        if p.step_status == StepStatus.WAITING:
            entry["waiting_reason"] = p.error
            ns["escalated_pipelines"].append(entry)
            short = p.id[:8]
            resume = f"oj pipeline resume {short}"
            agent = p.session_id is not None
            ns["attention"].append(
                _attention(
                    "agent" if agent else "pipeline",
                    f"{p.name}/{p.step}" if agent else p.name,
                    p.error or f"waiting at step {p.step}",
                    id_=p.id,
                    since_ms=p.updated_at_ms or None,
                    hint=f"oj session attach {short}, then {resume}" if agent else resume,
                )
            )
        else:
            ns["active_pipelines"].append(entry)
    for ns_status in overview.sections():
        ns_status["active_pipelines"].sort(key=lambda e: -e["elapsed_ms"])


def failed_recently(inputs: StatusInputs, overview: Overview) -> None:
    """Pipelines that failed within `FAILED_RECENTLY_MS`, newest first."""
    since = inputs.now_ms - FAILED_RECENTLY_MS
    failed = [
        p
        for p in inputs.state.pipelines.values()
        if p.terminal and p.step == "failed" and p.updated_at_ms >= since
    ]
    for p in sorted(failed, key=lambda p: -p.updated_at_ms):
        overview.section(p.namespace)["attention"].append(
            _attention(
                "pipeline",
                p.name,
                f"failed: {p.error or 'unknown error'}",
                id_=p.id,
                since_ms=p.updated_at_ms,
                hint=f"oj pipeline show {p.id[:8]}",
            )
        )


def workers(inputs: StatusInputs, overview: Overview) -> None:
    """Every worker (running or stopped), by name; a queue backend it cannot read needs
    attention."""
    for w in sorted(inputs.state.workers.values(), key=lambda w: w.name):
        ns = overview.section(w.namespace)
        ns["workers"].append(worker_summary(w))
        error = inputs.queue_errors.get(scoped_key(w.namespace, w.queue_name))
        if error:
            ns["attention"].append(
                _attention("queue", w.queue_name, f"backend unreachable: {error}", hint=None)
            )


def queues(inputs: StatusInputs, overview: Overview) -> None:
    """Persisted queues holding pending, active, retry-waiting or dead items; dead items need
    attention."""
    summaries = list(inputs.shared_queues)
    for items in inputs.state.queue_items.values():
        first = next(iter(items.values()), None)
        if first is not None:
            summaries.append(
                queue_summary(first.queue_name, first.namespace, "persisted", items.values(), [])
            )
    for summary in summaries:
        if not (summary["pending"] or summary["active"] or summary["dead"] or summary["failed"]):
            continue
        ns = overview.section(summary["namespace"])
        ns["queues"].append(summary)
        if summary["dead"]:
            ns["attention"].append(
                _attention(
                    "queue",
                    summary["name"],
                    f"{summary['dead']} dead item{'s' if summary['dead'] != 1 else ''}",
                    hint=f"oj queue retry {summary['name']} --all-dead",
                )
            )
    for ns_status in overview.sections():
        ns_status["queues"].sort(key=lambda q: q["name"])


def agents(inputs: StatusInputs, overview: Overview) -> None:
    """Agent steps of live pipelines: running, or waiting for a person (escalated)."""
    for p in inputs.state.pipelines.values():
        rec = p.step_history[-1] if p.step_history else None
        if p.terminal or rec is None or rec.agent_id is None or rec.name != p.step:
            continue
        if rec.outcome not in ("running", "waiting"):
            continue
        overview.section(p.namespace)["active_agents"].append(
            {
                "agent_id": rec.agent_id,
                "agent_name": rec.agent_name,
                "pipeline_id": p.id,
                "pipeline_name": p.name,
                "step_name": rec.name,
                "status": "waiting" if p.step_status == StepStatus.WAITING else "running",
                "elapsed_ms": max(0, inputs.now_ms - rec.started_at_ms),
            }
        )
    for ns_status in overview.sections():
        ns_status["active_agents"].sort(key=lambda a: -a["elapsed_ms"])


def crons(inputs: StatusInputs, overview: Overview) -> None:
    """Running crons with their next fire (the armed ``cron:`` timer), by name."""
    state = inputs.state
    for c in sorted(state.crons.values(), key=lambda c: c.name):
        if c.status == CronStatus.RUNNING:
            overview.section(c.namespace)["crons"].append(
                {
                    "name": c.name,
                    "status": str(c.status),
                    "next_fire_at_ms": state.timers.get(cron_id(c.namespace, c.name)),
                }
            )


#: The overview's parts, in order (each namespace's `attention` list keeps this order too).
SECTIONS: tuple[SectionFiller, ...] = (
    pipelines,
    failed_recently,
    workers,
    queues,
    agents,
    crons,
)


def status_overview(inputs: StatusInputs) -> list[NamespaceStatus]:
    """`NamespaceStatus` per namespace with something to show, sorted by namespace."""
    overview = Overview()
    for fill in SECTIONS:
        fill(inputs, overview)
    return overview.sections()


def _attention(
    kind: str,
    name: str,
    reason: str,
    *,
    id_: str | None = None,
    since_ms: int | None = None,
    hint: str | None,
) -> AttentionItem:
    return {
        "kind": kind,
        "name": name,
        "id": id_,
        "reason": reason,
        "since_ms": since_ms,
        "hint": hint,
    }
