"""The records the materialized state is made of: pipelines, sessions, workspaces, workers, queue items.

They live apart from :mod:`oj_trio.state` so the per-noun reducers (:mod:`oj_trio.reducers`) can build
and update them without importing the aggregate that imports *them* (no import cycle). Import them
from :mod:`oj_trio.state` as before; this module is their home, not a second API.

Records are mutable attrs classes: the state is updated in place by the reducers, and snapshots go
through cattrs (fields with defaults may be missing from older snapshots and take the default).
Times are epoch milliseconds taken from events, never read from a clock here.
"""

from enum import StrEnum
from typing import Any

import attrs

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


class CronStatus(StrEnum):
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
    #: ``"<trigger>:<pos>"`` → ``at_ms`` of its latest attempt (0: recorded before events carried it);
    #: where a cooldown started, so it can be re-armed with its real deadline after a restart.
    action_attempted_at_ms: dict[str, int] = attrs.Factory(dict)
    agent_signal: AgentSignalRecord | None = None
    cancelling: bool = False
    #: ``oj pipeline cancel`` was acknowledged (``pipeline:cancel``) and has not taken effect yet
    #: (no ``pipeline:cancelling``, not ended): a daemon that dies meanwhile cancels at its next
    #: start instead of failing the step as interrupted.
    cancel_requested: bool = False
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
    #: Pipelines dispatched for an item whose outcome has not reached the queue yet (pipeline id →
    #: item id). Outlives the pipeline's end until ``worker:item_settled``.
    items: dict[str, str] = attrs.Factory(dict)
    #: Set by ``oj worker resize``; wins over the runbook's ``concurrency`` until a restart.
    resized_to: int | None = None

    @property
    def effective_concurrency(self) -> int:
        return self.resized_to if self.resized_to is not None else self.concurrency


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
    #: ``at_ms`` of the latest ``queue:failed`` (0: never, or recorded before events carried it);
    #: the start of the retry cooldown.
    failed_at_ms: int = 0
    #: When the item became ``completed`` or ``dead`` (0: not ended, or recorded before events
    #: carried it); ``oj queue prune`` keeps the last 12 hours.
    ended_at_ms: int = 0


@attrs.define
class Cron:
    """Persisted cron record, keyed ``ns/name`` (issue 11). ``stopped`` is sticky until the next
    ``cron:started``; the next fire is the armed ``cron:<ns/name>`` timer, not a field here."""

    name: str
    namespace: str
    project_root: str
    runbook_hash: str
    schedule: str
    status: CronStatus = CronStatus.RUNNING
    #: When it was last started: an interval cron's phase until its first fire.
    started_at_ms: int = 0
    #: The latest scheduled time handled (fired or skipped; not ``oj cron once``): the phase.
    last_scheduled_at_ms: int = 0
    #: When it last fired (``cron:fired.at_ms``, manual fires included); 0: never.
    last_fire_at_ms: int = 0
    #: Pipelines of its fires that may still run (ended ones are dropped at the next fire).
    pipeline_ids: list[str] = attrs.Factory(list)
    fires: int = 0
    skipped: int = 0
