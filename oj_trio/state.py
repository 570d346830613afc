"""The materialized state: what the WAL's events add up to, and the pure ``apply`` that folds them in.

Rules every reducer follows (SPEC §3, reference §5.6 and §10):

* **Deterministic**: no clock, no randomness, no I/O; the time of anything comes from the event
  (``at_ms``). Replaying the same events always yields an equal state.
* **Exactly once** is the store's job (events are applied once, after they are durable, in seq order);
  handlers are still **idempotent where events may legitimately repeat**: ``pipeline:created`` for an
  existing id and ``queue:pushed`` for an existing item are no-ops (reference §10 #3), ``step:started``
  for the open record updates it in place, ``worker:item_dispatched`` de-duplicates, ``timer:set``
  re-arms.
* **Tolerant of references to things that are gone** (a step event for a deleted pipeline, a
  ``queue:taken`` for a dropped item, ``timer:cancelled`` for a timer that already fired): ignored,
  never an exception, because a crash between two related events must not make the WAL unreplayable.
* Keys: workers ``ns/name`` and queues ``ns/queue`` (bare name when the namespace is empty).

Layout: the records live in :mod:`oj_trio.records` and the reducers, one module per noun, in
:mod:`oj_trio.reducers`; this module is the aggregate (lookups, ``apply``, snapshot (de)serialisation)
and re-exports the records, so ``from oj_trio.state import Pipeline, StepStatus`` keeps working.
Records are mutable attrs classes (the state is updated in place; snapshots go through cattrs, and
a snapshot written before a table or field existed loads with its default).
"""

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import orjson
from cattrs.preconf.orjson import make_converter

from oj_trio import events as ev
from oj_trio.errors import NotFoundError
from oj_trio.records import (
    TERMINAL_STEPS,
    AgentSignalRecord,
    Cron,
    CronStatus,
    Pipeline,
    QueueItem,
    QueueItemStatus,
    Session,
    ShellProcess,
    StepRecord,
    StepStatus,
    StoredRunbook,
    Worker,
    WorkerStatus,
    Workspace,
    scoped_key,
)
from oj_trio.reducers import HANDLERS

__all__ = [
    "SNAPSHOT_STATE_FIELDS",
    "TERMINAL_STEPS",
    "AgentSignalRecord",
    "AmbiguousPrefixError",
    "Cron",
    "CronStatus",
    "MaterializedState",
    "Pipeline",
    "QueueItem",
    "QueueItemStatus",
    "Session",
    "ShellProcess",
    "StepRecord",
    "StepStatus",
    "StoredRunbook",
    "Worker",
    "WorkerStatus",
    "Workspace",
    "scoped_key",
]

T = TypeVar("T")


class AmbiguousPrefixError(NotFoundError, LookupError):
    """A prefix matched more than one id; ``matches`` lists them (sorted).

    A :class:`NotFoundError` (reference §5.3: an ambiguous prefix finds nothing), so it reaches the
    user through the error family; still a ``LookupError`` for callers that catch that.
    """

    def __init__(self, prefix: str, matches: list[str]) -> None:
        super().__init__(f"ambiguous id prefix {prefix!r}: matches {', '.join(matches)}")
        self.prefix = prefix
        self.matches = matches


def _find_by_prefix(table: Mapping[str, T], prefix: str) -> T | None:
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
    "timers",
    "crons",
)


@attrs.define(eq=True)
class MaterializedState:
    """Everything the daemon knows, rebuilt from snapshot + WAL (reference §5.3).

    ``queue_items`` maps ``ns/queue`` → {item id → item}; dicts keep insertion order, so iteration is
    push order. ``timers`` maps a timer id (:mod:`oj_trio.timers`) → its epoch ``due_at_ms``.
    """

    pipelines: dict[str, Pipeline] = attrs.Factory(dict)
    sessions: dict[str, Session] = attrs.Factory(dict)
    workspaces: dict[str, Workspace] = attrs.Factory(dict)
    runbooks: dict[str, StoredRunbook] = attrs.Factory(dict)
    workers: dict[str, Worker] = attrs.Factory(dict)
    queue_items: dict[str, dict[str, QueueItem]] = attrs.Factory(dict)
    timers: dict[str, int] = attrs.Factory(dict)
    crons: dict[str, Cron] = attrs.Factory(dict)

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
        """Fold one durable event into the state. Pure, deterministic, never raises for valid events.

        Events without a reducer have no state effect (the runtime reacts to them).
        """
        reducer = HANDLERS.get(type(event))
        if reducer is not None:
            reducer(self, event)

    # --- snapshots -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (fresh containers, safe to serialize in another thread)."""
        data: dict[str, Any] = _state_converter.unstructure(self)
        return data

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> "MaterializedState":
        """Plain data → state. Raises cattrs' ``ClassValidationError`` (or ``TypeError``) if malformed.

        Tables and record fields missing from ``data`` (a snapshot written before they existed) take
        their defaults.
        """
        return _state_converter.structure(data, cls)

    @classmethod
    def from_json(cls, raw: bytes | str) -> "MaterializedState":
        return cls.from_dict(orjson.loads(raw))


_state_converter = make_converter(forbid_extra_keys=True, omit_if_default=True)
