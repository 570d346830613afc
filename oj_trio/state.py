"""The materialized state: what the WAL's events add up to, and the pure ``apply`` that folds them in.

Rules every handler follows (SPEC §3, reference §5.6 and §10):

* **Deterministic**: no clock, no randomness, no I/O; the time of anything comes from the event
  (``at_ms``). Replaying the same events always yields an equal state.
* **Exactly once** is the store's job (events are applied once, after they are durable, in seq order);
  handlers are still **idempotent where events may legitimately repeat**: ``pipeline:created`` for an
  existing id and ``queue:pushed`` for an existing item are no-ops (reference §10 #3), ``step:started``
  for the open record updates it in place, ``worker:item_dispatched`` de-duplicates.
* **Tolerant of references to things that are gone** (a step event for a deleted pipeline, a
  ``queue:taken`` for a dropped item): ignored, never an exception, because a crash between two related
  events must not make the WAL unreplayable.
* Keys: workers ``ns/name`` and queues ``ns/queue`` (bare name when the namespace is empty).

Records are mutable attrs classes (the state is updated in place; snapshots go through cattrs).
"""

from enum import StrEnum
from typing import Any

import attrs
import orjson
from cattrs.preconf.orjson import make_converter

from oj_trio import events as ev

#: Step names that end a pipeline unless the runtime says otherwise (``pipeline:advanced.terminal``).
TERMINAL_STEPS = frozenset({"done", "failed", "cancelled"})


def scoped_key(namespace: str, name: str) -> str:
    """``ns/name``, or the bare name when the namespace is empty (reference §3.7)."""
    return f"{namespace}/{name}" if namespace else name


class StepStatus(StrEnum):
    """A pipeline's current step status (printed PascalCase, as the reference does)."""

    PENDING = "Pending"
    RUNNING = "Running"
    WAITING = "Waiting"
    COMPLETED = "Completed"
    FAILED = "Failed"


class QueueItemStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"


class WorkerStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


@attrs.define
class StepRecord:
    """One entry of a pipeline's step history. ``outcome``: running | completed | failed | waiting."""

    name: str
    started_at_ms: int
    finished_at_ms: int | None = None
    outcome: str = "running"
    #: failure error for ``failed``, reason for ``waiting``.
    detail: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None


@attrs.define
class AgentSignalRecord:
    kind: str
    message: str | None = None


@attrs.define
class ShellProcess:
    """The running shell step's process, from ``shell:spawned``; what reconciliation kills after a crash."""

    step: str
    pid: int
    pgid: int
    start_ticks: int | None = None


@attrs.define
class Pipeline:
    """Reference §2.1 pipeline record, plus ``terminal`` (SPEC §4.5) and ``shell``."""

    id: str
    name: str
    kind: str
    namespace: str
    step: str
    runbook_hash: str
    cwd: str
    created_at_ms: int
    step_status: StepStatus = StepStatus.PENDING
    step_history: list[StepRecord] = attrs.Factory(list)
    vars: dict[str, str] = attrs.Factory(dict)
    terminal: bool = False
    workspace_id: str | None = None
    workspace_path: str | None = None
    session_id: str | None = None
    error: str | None = None
    action_attempts: dict[str, int] = attrs.Factory(dict)
    agent_signal: AgentSignalRecord | None = None
    cancelling: bool = False
    shell: ShellProcess | None = None
    #: ``at_ms`` of the last event that changed the step (creation time until then).
    updated_at_ms: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.terminal

    def current_record(self) -> StepRecord | None:
        return self.step_history[-1] if self.step_history else None


@attrs.define
class Session:
    id: str
    pipeline_id: str


@attrs.define
class Workspace:
    """``status``: creating | ready | in_use(<by>) | cleaning | failed: <reason>."""

    id: str
    path: str
    status: str
    mode: str
    created_at_ms: int
    branch: str | None = None
    owner: str | None = None


@attrs.define
class StoredRunbook:
    version: int
    data: Any


@attrs.define
class Worker:
    """Persisted worker record, keyed ``ns/name``. ``stopped`` is sticky until ``worker:started``."""

    name: str
    namespace: str
    project_root: str
    runbook_hash: str
    queue_name: str
    concurrency: int
    status: WorkerStatus = WorkerStatus.RUNNING
    active_pipeline_ids: list[str] = attrs.Factory(list)


@attrs.define
class QueueItem:
    id: str
    queue_name: str
    namespace: str
    data: dict[str, str]
    pushed_at_ms: int
    status: QueueItemStatus = QueueItemStatus.PENDING
    worker_name: str | None = None
    failure_count: int = 0
    error: str | None = None


class AmbiguousPrefixError(LookupError):
    """A prefix matched more than one id; ``matches`` lists them (sorted)."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        super().__init__(f"ambiguous id prefix {prefix!r}: matches {', '.join(matches)}")
        self.prefix = prefix
        self.matches = matches


def _find_by_prefix(table: dict[str, Any], prefix: str) -> Any:
    """Exact key, else the unique key starting with ``prefix``; None if none; raises if ambiguous."""
    found = table.get(prefix)
    if found is not None:
        return found
    if not prefix:
        return None
    matches = [k for k in table if k.startswith(prefix)]
    if len(matches) == 1:
        return table[matches[0]]
    if matches:
        raise AmbiguousPrefixError(prefix, sorted(matches))
    return None


SNAPSHOT_STATE_FIELDS = (
    "pipelines",
    "sessions",
    "workspaces",
    "runbooks",
    "workers",
    "queue_items",
)


@attrs.define(eq=True)
class MaterializedState:
    """Everything the daemon knows, rebuilt from snapshot + WAL (reference §5.3).

    ``queue_items`` maps ``ns/queue`` → {item id → item}; dicts keep insertion order, so iteration is
    push order.
    """

    pipelines: dict[str, Pipeline] = attrs.Factory(dict)
    sessions: dict[str, Session] = attrs.Factory(dict)
    workspaces: dict[str, Workspace] = attrs.Factory(dict)
    runbooks: dict[str, StoredRunbook] = attrs.Factory(dict)
    workers: dict[str, Worker] = attrs.Factory(dict)
    queue_items: dict[str, dict[str, QueueItem]] = attrs.Factory(dict)

    # --- lookups ---------------------------------------------------------------------------------

    def get_pipeline(self, id_or_prefix: str) -> Pipeline | None:
        """Exact id or unique prefix; None when nothing or more than one pipeline matches."""
        try:
            return _find_by_prefix(self.pipelines, id_or_prefix)
        except AmbiguousPrefixError:
            return None

    def find_pipeline(self, id_or_prefix: str) -> Pipeline | None:
        """Like :meth:`get_pipeline` but raises :class:`AmbiguousPrefixError` for ambiguous prefixes."""
        return _find_by_prefix(self.pipelines, id_or_prefix)

    def get_worker(self, name: str, namespace: str = "") -> Worker | None:
        return self.workers.get(scoped_key(namespace, name))

    def queue(self, queue_name: str, namespace: str = "") -> dict[str, QueueItem]:
        """Items of one queue in push order (empty dict if none; do not mutate)."""
        return self.queue_items.get(scoped_key(namespace, queue_name), {})

    def find_queue_item(
        self, queue_name: str, id_or_prefix: str, namespace: str = ""
    ) -> QueueItem | None:
        """Exact item id or unique prefix within one queue; raises AmbiguousPrefixError if ambiguous."""
        return _find_by_prefix(self.queue(queue_name, namespace), id_or_prefix)

    def pipeline_for_agent(self, agent_id: str) -> Pipeline | None:
        """The pipeline whose *current* step record belongs to ``agent_id`` (reference §4.4)."""
        for p in self.pipelines.values():
            rec = p.current_record()
            if rec is not None and rec.agent_id == agent_id and not p.terminal:
                return p
        return None

    # --- apply -----------------------------------------------------------------------------------

    def apply(self, event: ev.EventBase) -> None:
        """Fold one durable event into the state. Pure, deterministic, never raises for valid events."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    # --- snapshots -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (fresh containers, safe to serialize in another thread)."""
        return _state_converter.unstructure(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> "MaterializedState":
        """Plain data → state. Raises cattrs' ``ClassValidationError`` (or ``TypeError``) if malformed."""
        return _state_converter.structure(data, cls)

    @classmethod
    def from_json(cls, raw: bytes | str) -> "MaterializedState":
        return cls.from_dict(orjson.loads(raw))


_state_converter = make_converter(forbid_extra_keys=True, omit_if_default=True)


# --- handlers --------------------------------------------------------------------------------------


def _step_target(p: Pipeline | None, event: Any) -> Pipeline | None:
    """Step events apply only to a live pipeline that is on that step (stale ones are ignored)."""
    if p is None or p.terminal or p.step != event.step:
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


def _pipeline_created(s: MaterializedState, e: ev.PipelineCreated) -> None:
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


def _pipeline_advanced(s: MaterializedState, e: ev.PipelineAdvanced) -> None:
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
    p.agent_signal = None
    p.shell = None
    p.updated_at_ms = e.at_ms
    if terminal:
        _release_from_workers(s, e.id)


def _pipeline_updated(s: MaterializedState, e: ev.PipelineUpdated) -> None:
    p = s.pipelines.get(e.id)
    if p is not None:
        p.vars.update(e.vars)


def _pipeline_cancelling(s: MaterializedState, e: ev.PipelineCancelling) -> None:
    p = s.pipelines.get(e.id)
    if p is not None:
        p.cancelling = True


def _pipeline_deleted(s: MaterializedState, e: ev.PipelineDeleted) -> None:
    if s.pipelines.pop(e.id, None) is not None:
        _release_from_workers(s, e.id)


def _release_from_workers(s: MaterializedState, pipeline_id: str) -> None:
    """An ended or deleted pipeline no longer counts against any worker's concurrency."""
    for w in s.workers.values():
        if pipeline_id in w.active_pipeline_ids:
            w.active_pipeline_ids.remove(pipeline_id)


def _pipeline_action_attempted(s: MaterializedState, e: ev.PipelineActionAttempted) -> None:
    p = s.pipelines.get(e.id)
    if p is not None:
        p.action_attempts[e.key] = p.action_attempts.get(e.key, 0) + 1


def _step_started(s: MaterializedState, e: ev.StepStarted) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e)
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


def _step_waiting(s: MaterializedState, e: ev.StepWaiting) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e)
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


def _step_completed(s: MaterializedState, e: ev.StepCompleted) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e)
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


def _step_failed(s: MaterializedState, e: ev.StepFailed) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e)
    if p is not None:
        _step_failed_with(p, e.at_ms, e.error)


def _shell_spawned(s: MaterializedState, e: ev.ShellSpawned) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e)
    if p is not None:
        p.shell = ShellProcess(step=e.step, pid=e.pid, pgid=e.pgid, start_ticks=e.start_ticks)


def _shell_exited(s: MaterializedState, e: ev.ShellExited) -> None:
    p = _step_target(s.pipelines.get(e.pipeline_id), e)
    if p is None:
        return
    if e.exit_code == 0:
        _finalize(p, e.at_ms, "completed", None)
        p.step_status = StepStatus.COMPLETED
        p.shell = None
        p.updated_at_ms = e.at_ms
    else:
        _step_failed_with(p, e.at_ms, f"shell exit code: {e.exit_code}")


def _agent_signal(s: MaterializedState, e: ev.AgentSignal) -> None:
    p = s.pipeline_for_agent(e.agent_id)
    if p is not None:
        p.agent_signal = AgentSignalRecord(kind=e.kind, message=e.message)


def _runbook_loaded(s: MaterializedState, e: ev.RunbookLoaded) -> None:
    if e.hash not in s.runbooks:
        s.runbooks[e.hash] = StoredRunbook(version=e.version, data=e.runbook)


def _session_created(s: MaterializedState, e: ev.SessionCreated) -> None:
    s.sessions[e.id] = Session(id=e.id, pipeline_id=e.pipeline_id)
    p = s.pipelines.get(e.pipeline_id)
    if p is not None:
        p.session_id = e.id


def _session_deleted(s: MaterializedState, e: ev.SessionDeleted) -> None:
    session = s.sessions.pop(e.id, None)
    if session is None:
        return
    p = s.pipelines.get(session.pipeline_id)
    if p is not None and p.session_id == e.id:
        p.session_id = None  # reference §10 #13


def _workspace_created(s: MaterializedState, e: ev.WorkspaceCreated) -> None:
    s.workspaces[e.id] = Workspace(
        id=e.id,
        path=e.path,
        status="creating",
        mode="persistent" if e.mode == "persistent" else "ephemeral",
        created_at_ms=e.at_ms,
        branch=e.branch,
        owner=e.owner,
    )
    if e.owner is not None:
        p = s.pipelines.get(e.owner)
        if p is not None:
            p.workspace_id = e.id
            p.workspace_path = e.path


def _workspace_status(status: str) -> Any:
    def handler(s: MaterializedState, e: Any) -> None:
        w = s.workspaces.get(e.id)
        if w is not None:
            w.status = status if status != "failed" else f"failed: {e.reason}"

    return handler


def _workspace_deleted(s: MaterializedState, e: ev.WorkspaceDeleted) -> None:
    s.workspaces.pop(e.id, None)


def _worker_started(s: MaterializedState, e: ev.WorkerStarted) -> None:
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
    )


def _worker_item_dispatched(s: MaterializedState, e: ev.WorkerItemDispatched) -> None:
    w = s.workers.get(scoped_key(e.namespace, e.worker_name))
    if w is not None and e.pipeline_id not in w.active_pipeline_ids:
        w.active_pipeline_ids.append(e.pipeline_id)


def _worker_stopped(s: MaterializedState, e: ev.WorkerStopped) -> None:
    w = s.workers.get(scoped_key(e.namespace, e.worker_name))
    if w is not None:
        w.status = WorkerStatus.STOPPED


def _worker_deleted(s: MaterializedState, e: ev.WorkerDeleted) -> None:
    s.workers.pop(scoped_key(e.namespace, e.worker_name), None)


def _queue_pushed(s: MaterializedState, e: ev.QueuePushed) -> None:
    items = s.queue_items.setdefault(scoped_key(e.namespace, e.queue_name), {})
    if e.item_id in items:
        return  # idempotent push
    items[e.item_id] = QueueItem(
        id=e.item_id,
        queue_name=e.queue_name,
        namespace=e.namespace,
        data=dict(e.data),
        pushed_at_ms=e.pushed_at_epoch_ms,
    )


def _queue_item(s: MaterializedState, e: Any) -> QueueItem | None:
    items = s.queue_items.get(scoped_key(e.namespace, e.queue_name))
    return None if items is None else items.get(e.item_id)


def _queue_taken(s: MaterializedState, e: ev.QueueTaken) -> None:
    item = _queue_item(s, e)
    if item is not None:
        item.status = QueueItemStatus.ACTIVE
        item.worker_name = e.worker_name


def _queue_completed(s: MaterializedState, e: ev.QueueCompleted) -> None:
    item = _queue_item(s, e)
    if item is not None:
        item.status = QueueItemStatus.COMPLETED


def _queue_failed(s: MaterializedState, e: ev.QueueFailed) -> None:
    item = _queue_item(s, e)
    if item is not None:
        item.status = QueueItemStatus.FAILED
        item.failure_count += 1
        item.error = e.error


def _queue_item_retry(s: MaterializedState, e: ev.QueueItemRetry) -> None:
    item = _queue_item(s, e)
    if item is not None:
        item.status = QueueItemStatus.PENDING
        item.worker_name = None
        if e.manual:
            item.failure_count = 0  # SPEC §4.3: manual retry resets, automatic keeps counting


def _queue_item_dead(s: MaterializedState, e: ev.QueueItemDead) -> None:
    item = _queue_item(s, e)
    if item is not None:
        item.status = QueueItemStatus.DEAD


def _queue_dropped(s: MaterializedState, e: ev.QueueDropped) -> None:
    key = scoped_key(e.namespace, e.queue_name)
    items = s.queue_items.get(key)
    if items is not None and items.pop(e.item_id, None) is not None and not items:
        del s.queue_items[key]


#: Events without a handler have no state effect (the runtime reacts to them).
_HANDLERS: dict[type, Any] = {
    ev.PipelineCreated: _pipeline_created,
    ev.PipelineAdvanced: _pipeline_advanced,
    ev.PipelineUpdated: _pipeline_updated,
    ev.PipelineCancelling: _pipeline_cancelling,
    ev.PipelineDeleted: _pipeline_deleted,
    ev.PipelineActionAttempted: _pipeline_action_attempted,
    ev.StepStarted: _step_started,
    ev.StepWaiting: _step_waiting,
    ev.StepCompleted: _step_completed,
    ev.StepFailed: _step_failed,
    ev.ShellSpawned: _shell_spawned,
    ev.ShellExited: _shell_exited,
    ev.AgentSignal: _agent_signal,
    ev.RunbookLoaded: _runbook_loaded,
    ev.SessionCreated: _session_created,
    ev.SessionDeleted: _session_deleted,
    ev.WorkspaceCreated: _workspace_created,
    ev.WorkspaceReady: _workspace_status("ready"),
    ev.WorkspaceFailed: _workspace_status("failed"),
    ev.WorkspaceDeleted: _workspace_deleted,
    ev.WorkerStarted: _worker_started,
    ev.WorkerItemDispatched: _worker_item_dispatched,
    ev.WorkerStopped: _worker_stopped,
    ev.WorkerDeleted: _worker_deleted,
    ev.QueuePushed: _queue_pushed,
    ev.QueueTaken: _queue_taken,
    ev.QueueCompleted: _queue_completed,
    ev.QueueFailed: _queue_failed,
    ev.QueueItemRetry: _queue_item_retry,
    ev.QueueItemDead: _queue_item_dead,
    ev.QueueDropped: _queue_dropped,
}
