"""Every state change oj records, as frozen attrs classes, and the one codec that puts them on disk.

An event is the unit of durability: the daemon builds an event, the WAL makes it durable, and only then
does :meth:`oj_trio.state.MaterializedState.apply` fold it into the state. This module is pure (no I/O,
no trio) so the state machine can be tested and replayed anywhere.

Wire shape (reference §5.1): each event is internally tagged, ``{"type": "step:started", ...fields}``;
fields that equal their default (``None`` for optional ones) are omitted. The WAL wraps it as
``{"seq": N, "event": {...}, "crc": C}`` (see :mod:`oj_trio.wal`).

Tags and fields follow reference §5.2. Additions and changes this implementation needs, and why:

* ``at_ms`` (epoch milliseconds) on ``pipeline:advanced``, ``step:*``, ``shell:exited`` and
  ``workspace:created``: ``apply`` must never read the clock (SPEC §3), yet the state keeps
  ``started_at_ms``/``finished_at_ms`` per step and ``created_at_ms`` per workspace. The caller stamps the
  time once, when it builds the event, and every replay reproduces it.
* ``pipeline:advanced.terminal`` (optional): SPEC §4.5 makes steps named ``done``/``failed``/``cancelled``
  ordinary steps, so the step name alone no longer says whether the pipeline ended. ``None`` (omitted)
  means "terminal iff the name is done/failed/cancelled" (the reference rule); the runtime passes
  ``terminal=False`` when it enters an ordinary step with one of those names.
* ``shell:spawned {pipeline_id, step, pid, pgid, start_ticks}``: recorded after a shell step's process
  starts, so reconciliation after a crash can find (and safely kill, PID-reuse protected by the start
  time from ``/proc/<pid>/stat``) the orphaned process group. Interrupted steps are then recorded as
  ``step:failed`` with error ``interrupted: daemon stopped while step was running``.
* ``pipeline:action_attempted {id, key, at_ms?}``: persists the ``action_attempts`` counter
  (``"<trigger>:<pos>"``) so attempts/cooldowns survive a restart instead of living only in memory;
  ``at_ms`` (optional, ``0`` in WALs written before it existed) is when the attempt, and so the
  cooldown, started.
* ``timer:set {id, due_at_ms}`` and ``timer:cancelled {id}``: timers are durable (reference §6.6 keeps
  them in memory, so a restart loses every cooldown and retry). ``timer:set`` arms or re-arms ``id``
  (ids: :mod:`oj_trio.timers`) to fire at epoch ``due_at_ms``; ``timer:cancelled`` disarms it; the
  existing ``timer:start {id}`` records that it fired and disarms it too. A restart re-arms every
  armed timer at its original deadline.
* ``queue:item_retry.manual``: SPEC §4.3 — an automatic retry keeps ``failure_count``, a manual
  ``oj queue retry`` resets it; the event must say which one happened.
* ``queue:failed.error`` is optional, ``queue:taken.worker_name`` records who took the item.
  ``queue:failed.at_ms`` (optional, ``0`` in older WALs) is when the item failed: the start of its
  retry cooldown.
* ``queue:completed.at_ms`` and ``queue:item_dead.at_ms`` (optional, ``0`` in older WALs): when the
  item ended, so ``oj queue prune`` can keep the last 12 hours.
* ``worker:started.restart`` (optional): ``oj worker restart`` re-reads the runbook and drops a
  concurrency set by ``worker:resized {worker_name, namespace, concurrency}`` (``oj worker resize``:
  durable across restarts and ``oj worker start`` until the next resize or restart).
* ``worker:item_dispatched`` also records which item a pipeline works on, until
  ``worker:item_settled {worker_name, namespace, pipeline_id}`` says its outcome reached the queue
  (committed with ``queue:completed``/``queue:failed``, or alone for an external queue). A pipeline
  that ended without a settled item is settled at the next start; a claim whose pipeline was never
  created is put back.
* ``worker:poll_complete.namespace`` and ``worker:deleted {worker_name, namespace}``: workers are keyed
  ``ns/name`` everywhere (reference §10 #5); ``worker:deleted`` removes a record (e.g. prune) so the
  worker counts as never started again for auto-start (SPEC §4.4).
* ``agent:failed.error`` is a plain string (the error kind such as ``RateLimited``, or free text).
* ``cron:started``, ``cron:stopped``, ``cron:fired``, ``cron:skipped`` (issue 11): a cron's
  durable record (keyed ``ns/name``, sticky ``stopped`` like a worker), each fire with its scheduled
  time, its pipeline and whether it was a catch-up or an ``oj cron once`` (``manual``), and each
  fire that did not run (``concurrency``: too many runs active; ``missed``: due while the daemon was
  down, ``missed`` of them). ``cron:fired`` carries the project and runbook so that ``oj cron once``
  of a cron never started leaves a (stopped) record too.
* ``pipeline:created`` accepts only ``vars`` (the reference's ``input`` alias is not read).

Unknown tags and malformed events raise :class:`EventDecodeError`; nothing is ever silently dropped.
"""

import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeGuard, Union

import attrs
import cattrs
import orjson
from cattrs.preconf.orjson import make_converter
from cattrs.strategies import configure_tagged_union

from oj_trio.errors import WalError


class EventDecodeError(WalError):
    """A stored event cannot be turned back into an event object (unknown tag, missing/extra/mistyped field).

    Carries the WAL ``seq`` (when known) so the message points at the exact line.
    """

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message if seq is None else f"event seq {seq}: {message}")
        self.seq = seq


class EventBase:
    """Marker base of every event class; ``TAG`` is the wire ``type``.

    Every subclass is an attrs class; ``__attrs_attrs__`` is declared (not set) so type checkers
    accept ``attrs.fields()`` of any event class.
    """

    TAG: ClassVar[str]
    __attrs_attrs__: ClassVar[tuple[Any, ...]]


# --- agents / hooks ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AgentWorking(EventBase):
    TAG = "agent:working"
    agent_id: str


@attrs.frozen(kw_only=True)
class AgentWaiting(EventBase):
    TAG = "agent:waiting"
    agent_id: str


@attrs.frozen(kw_only=True)
class AgentFailed(EventBase):
    TAG = "agent:failed"
    agent_id: str
    error: str


@attrs.frozen(kw_only=True)
class AgentExited(EventBase):
    TAG = "agent:exited"
    agent_id: str
    exit_code: int | None = None


@attrs.frozen(kw_only=True)
class AgentGone(EventBase):
    TAG = "agent:gone"
    agent_id: str


@attrs.frozen(kw_only=True)
class AgentInput(EventBase):
    TAG = "agent:input"
    agent_id: str
    input: str


@attrs.frozen(kw_only=True)
class AgentSignal(EventBase):
    TAG = "agent:signal"
    agent_id: str
    kind: str  # "complete" | "escalate"
    message: str | None = None


@attrs.frozen(kw_only=True)
class AgentIdle(EventBase):
    TAG = "agent:idle"
    agent_id: str


@attrs.frozen(kw_only=True)
class AgentPrompt(EventBase):
    TAG = "agent:prompt"
    agent_id: str
    prompt_type: str = "other"


# --- commands / pipelines / steps ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CommandRun(EventBase):
    TAG = "command:run"
    pipeline_id: str
    pipeline_name: str
    project_root: str
    invoke_dir: str
    namespace: str
    command: str
    args: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PipelineCreated(EventBase):
    TAG = "pipeline:created"
    id: str
    kind: str
    name: str
    runbook_hash: str
    cwd: str
    vars: dict[str, str] = attrs.field(factory=dict)
    initial_step: str
    created_at_epoch_ms: int
    namespace: str = ""


@attrs.frozen(kw_only=True)
class PipelineAdvanced(EventBase):
    TAG = "pipeline:advanced"
    id: str
    step: str
    at_ms: int
    terminal: bool | None = None


@attrs.frozen(kw_only=True)
class PipelineUpdated(EventBase):
    TAG = "pipeline:updated"
    id: str
    vars: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class PipelineResume(EventBase):
    TAG = "pipeline:resume"
    id: str
    message: str | None = None
    vars: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class PipelineCancelling(EventBase):
    TAG = "pipeline:cancelling"
    id: str


@attrs.frozen(kw_only=True)
class PipelineCancel(EventBase):
    TAG = "pipeline:cancel"
    id: str


@attrs.frozen(kw_only=True)
class PipelineDeleted(EventBase):
    TAG = "pipeline:deleted"
    id: str


@attrs.frozen(kw_only=True)
class PipelineActionAttempted(EventBase):
    TAG = "pipeline:action_attempted"
    id: str
    key: str  # "<trigger>:<pos>"
    at_ms: int = 0  # 0: written before the field existed


@attrs.frozen(kw_only=True)
class StepStarted(EventBase):
    TAG = "step:started"
    pipeline_id: str
    step: str
    at_ms: int
    agent_id: str | None = None
    agent_name: str | None = None


@attrs.frozen(kw_only=True)
class StepWaiting(EventBase):
    TAG = "step:waiting"
    pipeline_id: str
    step: str
    at_ms: int
    reason: str | None = None


@attrs.frozen(kw_only=True)
class StepCompleted(EventBase):
    TAG = "step:completed"
    pipeline_id: str
    step: str
    at_ms: int


@attrs.frozen(kw_only=True)
class StepFailed(EventBase):
    TAG = "step:failed"
    pipeline_id: str
    step: str
    error: str
    at_ms: int


@attrs.frozen(kw_only=True)
class ShellSpawned(EventBase):
    TAG = "shell:spawned"
    pipeline_id: str
    step: str
    pid: int
    pgid: int
    #: None when /proc could not be read at spawn time (the guard then relies on the env marker).
    start_ticks: int | None = None


@attrs.frozen(kw_only=True)
class ShellExited(EventBase):
    TAG = "shell:exited"
    pipeline_id: str
    step: str
    exit_code: int
    at_ms: int


@attrs.frozen(kw_only=True)
class RunbookLoaded(EventBase):
    TAG = "runbook:loaded"
    hash: str
    version: int = 1
    runbook: Any = None


# --- sessions / workspaces / timers / system -----------------------------------------------------


@attrs.frozen(kw_only=True)
class SessionCreated(EventBase):
    TAG = "session:created"
    id: str
    pipeline_id: str


@attrs.frozen(kw_only=True)
class SessionInput(EventBase):
    TAG = "session:input"
    id: str
    input: str


@attrs.frozen(kw_only=True)
class SessionDeleted(EventBase):
    TAG = "session:deleted"
    id: str


@attrs.frozen(kw_only=True)
class WorkspaceCreated(EventBase):
    TAG = "workspace:created"
    id: str
    path: str
    at_ms: int
    branch: str | None = None
    owner: str | None = None
    mode: str | None = None


@attrs.frozen(kw_only=True)
class WorkspaceReady(EventBase):
    TAG = "workspace:ready"
    id: str


@attrs.frozen(kw_only=True)
class WorkspaceFailed(EventBase):
    TAG = "workspace:failed"
    id: str
    reason: str


@attrs.frozen(kw_only=True)
class WorkspaceDeleted(EventBase):
    TAG = "workspace:deleted"
    id: str


@attrs.frozen(kw_only=True)
class WorkspaceDrop(EventBase):
    TAG = "workspace:drop"
    id: str


@attrs.frozen(kw_only=True)
class TimerStart(EventBase):
    """The timer ``id`` fired (and is disarmed)."""

    TAG = "timer:start"
    id: str


@attrs.frozen(kw_only=True)
class TimerSet(EventBase):
    """Arm (or re-arm) timer ``id`` to fire at epoch ``due_at_ms``."""

    TAG = "timer:set"
    id: str
    due_at_ms: int


@attrs.frozen(kw_only=True)
class TimerCancelled(EventBase):
    """Disarm timer ``id`` (no-op when it is not armed)."""

    TAG = "timer:cancelled"
    id: str


@attrs.frozen(kw_only=True)
class SystemShutdown(EventBase):
    TAG = "system:shutdown"


# --- workers / queues ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class WorkerStarted(EventBase):
    TAG = "worker:started"
    worker_name: str
    project_root: str
    runbook_hash: str
    queue_name: str
    concurrency: int
    namespace: str = ""
    #: ``oj worker restart``: a concurrency set by ``oj worker resize`` ends here.
    restart: bool = False


@attrs.frozen(kw_only=True)
class WorkerResized(EventBase):
    TAG = "worker:resized"
    worker_name: str
    concurrency: int
    namespace: str = ""


@attrs.frozen(kw_only=True)
class WorkerItemSettled(EventBase):
    TAG = "worker:item_settled"
    worker_name: str
    pipeline_id: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class WorkerWake(EventBase):
    TAG = "worker:wake"
    worker_name: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class WorkerPollComplete(EventBase):
    TAG = "worker:poll_complete"
    worker_name: str
    items: list[Any] = attrs.field(factory=list)
    namespace: str = ""


@attrs.frozen(kw_only=True)
class WorkerItemDispatched(EventBase):
    TAG = "worker:item_dispatched"
    worker_name: str
    item_id: str
    pipeline_id: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class WorkerStopped(EventBase):
    TAG = "worker:stopped"
    worker_name: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class WorkerDeleted(EventBase):
    TAG = "worker:deleted"
    worker_name: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class CronStarted(EventBase):
    TAG = "cron:started"
    cron_name: str
    namespace: str = ""
    project_root: str
    runbook_hash: str
    #: The schedule as lists show it (``0 3 * * * (Europe/Paris)``, ``every 30m``).
    schedule: str
    at_ms: int


@attrs.frozen(kw_only=True)
class CronStopped(EventBase):
    TAG = "cron:stopped"
    cron_name: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class CronFired(EventBase):
    TAG = "cron:fired"
    cron_name: str
    namespace: str = ""
    #: The scheduled time this fire stands for (the time of the request for ``oj cron once``).
    scheduled_at_ms: int
    pipeline_id: str
    catch_up: bool = False
    manual: bool = False
    at_ms: int
    project_root: str
    runbook_hash: str
    schedule: str = ""


@attrs.frozen(kw_only=True)
class CronSkipped(EventBase):
    TAG = "cron:skipped"
    cron_name: str
    namespace: str = ""
    #: The fire skipped (``missed``: the latest of those missed, the cron's phase from then on).
    scheduled_at_ms: int
    #: ``concurrency`` (too many runs still active), ``missed`` (due while the daemon was down
    #: or asleep, and outside any ``catch_up`` window) or ``error`` (its pipeline could not be
    #: created, say a failing ``$(…)`` local; a scheduled fire only: ``oj cron once`` reports it).
    reason: str
    #: How many scheduled fires this stands for (``missed``: all those since the last handled one).
    count: int = 1
    at_ms: int


@attrs.frozen(kw_only=True)
class QueuePushed(EventBase):
    TAG = "queue:pushed"
    queue_name: str
    item_id: str
    data: dict[str, str] = attrs.field(factory=dict)
    pushed_at_epoch_ms: int
    namespace: str = ""


@attrs.frozen(kw_only=True)
class QueueTaken(EventBase):
    TAG = "queue:taken"
    queue_name: str
    item_id: str
    worker_name: str
    namespace: str = ""


@attrs.frozen(kw_only=True)
class QueueCompleted(EventBase):
    TAG = "queue:completed"
    queue_name: str
    item_id: str
    namespace: str = ""
    at_ms: int = 0  # 0: written before the field existed


@attrs.frozen(kw_only=True)
class QueueFailed(EventBase):
    TAG = "queue:failed"
    queue_name: str
    item_id: str
    error: str | None = None
    namespace: str = ""
    at_ms: int = 0  # 0: written before the field existed


@attrs.frozen(kw_only=True)
class QueueItemRetry(EventBase):
    TAG = "queue:item_retry"
    queue_name: str
    item_id: str
    namespace: str = ""
    manual: bool = False


@attrs.frozen(kw_only=True)
class QueueItemDead(EventBase):
    TAG = "queue:item_dead"
    queue_name: str
    item_id: str
    namespace: str = ""
    at_ms: int = 0  # 0: written before the field existed


@attrs.frozen(kw_only=True)
class QueueDropped(EventBase):
    TAG = "queue:dropped"
    queue_name: str
    item_id: str
    namespace: str = ""


def _is_event_class(obj: object) -> TypeGuard[type[EventBase]]:
    return isinstance(obj, type) and issubclass(obj, EventBase) and obj is not EventBase


#: Every event class, in catalogue order.
EVENT_TYPES: tuple[type[EventBase], ...] = tuple(
    cls for cls in list(globals().values()) if _is_event_class(cls)
)

#: The tagged union the converter (de)serializes.
Event = Union[EVENT_TYPES]  # type: ignore[valid-type]  # noqa: UP007

#: Tag → class.
EVENT_BY_TAG: dict[str, type[EventBase]] = {cls.TAG: cls for cls in EVENT_TYPES}
assert len(EVENT_BY_TAG) == len(EVENT_TYPES), "duplicate event tag"


def make_event_converter() -> cattrs.Converter:
    """The one converter for events: orjson preconf, strict keys, tagged union on ``type``.

    ``omit_if_default`` keeps optional fields off the wire when unset (reference §5.1). No ``default=``
    for the union: an unknown tag must raise, not come back as a bare dict (ecosystem notes, cattrs).
    """
    conv = make_converter(forbid_extra_keys=True, omit_if_default=True)
    configure_tagged_union(Event, conv, tag_name="type", tag_generator=_tag_of)
    return conv


def _tag_of(cls: type) -> str:
    return typing.cast("type[EventBase]", cls).TAG


converter = make_event_converter()
# Per-class hooks + the tag set by hand: the same output as unstructuring the union (a test checks),
# without the union dispatch on the append hot path.
_UNSTRUCTURE = {cls: converter.get_unstructure_hook(cls) for cls in EVENT_TYPES}


def event_to_dict(event: EventBase) -> dict[str, Any]:
    """Event → JSON-ready dict with its ``type`` tag (last, as the tagged-union converter puts it)."""
    data: dict[str, Any] = _UNSTRUCTURE[type(event)](event)
    data["type"] = event.TAG
    return data


def encode_event(event: EventBase) -> bytes:
    """Event → compact JSON bytes (the ``event`` part of a WAL line)."""
    return orjson.dumps(event_to_dict(event))


# --- decoding ------------------------------------------------------------------------------------
#
# Replay speed matters (SPEC §7: ≥ 150k events/s). Strict cattrs structuring costs ~6 µs per event, so
# the hot path is a small function generated per event class: every event field is a JSON primitive,
# an optional primitive, a flat ``dict[str, str]``, a list or ``Any``, so inline ``type(v) is T`` checks
# validate exactly that (strictly: no ``str(x)`` coercion) and then call the attrs constructor. When the
# fast path rejects a dict, the slow validator below produces the precise error message. A test checks
# both agree with the cattrs converter on every event type.


class _Reject(Exception):
    pass


def _check_expr(tp: Any, v: str) -> str | None:
    """Python expression that is true when ``v`` does NOT match ``tp`` (None: anything goes)."""
    if tp is Any:
        return None
    if tp is bool:
        return f"({v} is not True and {v} is not False)"
    if tp is int:
        return f"type({v}) is not int"
    if tp is str:
        return f"type({v}) is not str"
    origin = typing.get_origin(tp)
    if origin is dict:
        return f"(type({v}) is not dict or not _all_str({v}))"
    if origin is list:
        return f"type({v}) is not list"
    args = typing.get_args(tp)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1, tp
        expr = _check_expr(inner[0], v)
        return None if expr is None else f"({v} is not None and {expr})"
    raise TypeError(f"unsupported event field type {tp!r}")


def _all_str(d: dict[Any, Any]) -> bool:
    return all(type(k) is str and type(x) is str for k, x in d.items())


def _compile_decoder(cls: type[EventBase]) -> Callable[[dict[str, Any]], EventBase]:
    hints = typing.get_type_hints(cls)
    lines = ["def decode(d):", "    n = len(d)"]
    for f in attrs.fields(cls):
        expr = _check_expr(hints[f.name], "v")
        if f.default is attrs.NOTHING:
            lines.append(f"    v = d[{f.name!r}]")
            if expr:
                lines.append(f"    if {expr}: raise _Reject")
            lines.append("    n -= 1")
        else:
            lines.append(f"    if {f.name!r} in d:")
            lines.append(f"        v = d[{f.name!r}]")
            if expr:
                lines.append(f"        if {expr}: raise _Reject")
            lines.append("        n -= 1")
    lines.append("    if n: raise _Reject")
    lines.append("    return cls(**d)")
    namespace: dict[str, Any] = {"cls": cls, "_Reject": _Reject, "_all_str": _all_str}
    exec("\n".join(lines), namespace)  # generated from our own class definitions
    decode: Callable[[dict[str, Any]], EventBase] = namespace["decode"]
    return decode


_FAST: dict[str, Callable[[dict[str, Any]], EventBase]] = {
    cls.TAG: _compile_decoder(cls) for cls in EVENT_TYPES
}


def _explain(tag: str, fields: dict[str, Any], seq: int | None) -> EventDecodeError:
    """Why the fast decoder rejected ``fields`` (slow path, error messages only)."""
    cls = EVENT_BY_TAG[tag]
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in attrs.fields(cls)}
    for name, value in fields.items():
        if name not in known:
            return EventDecodeError(f"{tag}: unknown field {name!r}", seq=seq)
        expr = _check_expr(hints[name], "v")
        if expr and eval(expr, {"_all_str": _all_str}, {"v": value}):
            return EventDecodeError(
                f"{tag}: field {name!r} has the wrong type: {value!r:.80}", seq=seq
            )
    missing = [n for n, f in known.items() if f.default is attrs.NOTHING and n not in fields]
    if missing:
        return EventDecodeError(f"{tag}: missing field(s) {', '.join(missing)}", seq=seq)
    return EventDecodeError(f"{tag}: malformed event", seq=seq)


def event_from_dict(data: Any, *, seq: int | None = None) -> EventBase:
    """JSON dict (with ``type``) → event object. May consume ``data`` (pass a fresh dict).

    Raises:
        EventDecodeError: unknown ``type``, missing/unknown field, or a field of the wrong JSON type.
            The WAL passes ``seq`` so the error names the line.
    """
    if type(data) is not dict:
        raise EventDecodeError(f"event is not a JSON object: {data!r:.80}", seq=seq)
    tag = data.pop("type", None)
    decode = _FAST.get(tag) if type(tag) is str else None
    if decode is None:
        raise EventDecodeError(f"unknown event type {tag!r}", seq=seq)
    try:
        return decode(data)
    except (_Reject, KeyError, TypeError):
        raise _explain(tag, data, seq) from None


def decode_event(raw: bytes | str, *, seq: int | None = None) -> EventBase:
    """JSON text → event object (see :func:`event_from_dict`)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"invalid JSON: {exc}", seq=seq) from None
    return event_from_dict(data, seq=seq)
