"""Reducers for persisted worker records, keyed ``ns/name`` (reference §3.7, §10 #5).

A record outlives ``worker:stopped`` (status ``stopped`` is sticky until the next ``worker:started``,
which keeps the active pipeline ids) and disappears only with ``worker:deleted``, after which the
worker counts as never started for auto-start (SPEC §4.4).
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import Worker, WorkerStatus, scoped_key
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def release_pipeline(s: "MaterializedState", pipeline_id: str) -> None:
    """An ended or deleted pipeline no longer counts against any worker's concurrency."""
    for w in s.workers.values():
        if pipeline_id in w.active_pipeline_ids:
            w.active_pipeline_ids.remove(pipeline_id)


def _worker_started(s: "MaterializedState", e: ev.WorkerStarted) -> None:
    key = scoped_key(e.namespace, e.worker_name)
    old = s.workers.get(key)
    s.workers[key] = Worker(
        name=e.worker_name,
        namespace=e.namespace,
        project_root=e.project_root,
        runbook_hash=e.runbook_hash,
        queue_name=e.queue_name,
        concurrency=e.concurrency,
        status=WorkerStatus.RUNNING,
        active_pipeline_ids=old.active_pipeline_ids if old is not None else [],
        items=old.items if old is not None else {},
        resized_to=None if old is None or e.restart else old.resized_to,
    )


def _worker_item_dispatched(s: "MaterializedState", e: ev.WorkerItemDispatched) -> None:
    w = s.workers.get(scoped_key(e.namespace, e.worker_name))
    if w is not None:
        if e.pipeline_id not in w.active_pipeline_ids:
            w.active_pipeline_ids.append(e.pipeline_id)
        w.items[e.pipeline_id] = e.item_id


def _worker_item_settled(s: "MaterializedState", e: ev.WorkerItemSettled) -> None:
    w = s.workers.get(scoped_key(e.namespace, e.worker_name))
    if w is not None:
        w.items.pop(e.pipeline_id, None)
        if e.pipeline_id in w.active_pipeline_ids:
            w.active_pipeline_ids.remove(e.pipeline_id)


def _worker_resized(s: "MaterializedState", e: ev.WorkerResized) -> None:
    w = s.workers.get(scoped_key(e.namespace, e.worker_name))
    if w is not None:
        w.resized_to = e.concurrency


def _worker_stopped(s: "MaterializedState", e: ev.WorkerStopped) -> None:
    w = s.workers.get(scoped_key(e.namespace, e.worker_name))
    if w is not None:
        w.status = WorkerStatus.STOPPED


def _worker_deleted(s: "MaterializedState", e: ev.WorkerDeleted) -> None:
    s.workers.pop(scoped_key(e.namespace, e.worker_name), None)


HANDLERS: ReducerTable = table(
    on(ev.WorkerStarted, _worker_started),
    on(ev.WorkerItemDispatched, _worker_item_dispatched),
    on(ev.WorkerStopped, _worker_stopped),
    on(ev.WorkerItemSettled, _worker_item_settled),
    on(ev.WorkerResized, _worker_resized),
    on(ev.WorkerDeleted, _worker_deleted),
)
