"""Timer ids (reference §6.6, §1.12) and the pure operations on the durable timer table.

A timer is an id in ``MaterializedState.timers`` (id → epoch ``due_at_ms``), armed by ``timer:set``
and cleared by ``timer:start`` (fired) or ``timer:cancelled``. The id says what the timer is for, so
a restart knows what to do when it fires without any in-memory context:

==========================================  ==============================================
``liveness:<pipeline_id>``                   check that an agent's session is still alive
``exit-deferred:<pipeline_id>``              read an exited agent's final state
``cooldown:<pipeline_id>:<trigger>:<pos>``   an agent action's cooldown (reference §4.3)
``queue-retry:<ns/queue>:<item_id>``         retry a failed queue item (reference §3.3)
``cron:<ns/name>``                           the next run of a cron (later issue)
==========================================  ==============================================

``<ns/queue>`` and ``<ns/name>`` are scoped keys: the bare name when the namespace is empty. The
parser is strict (a malformed id is a :class:`TimerIdError`, never a guess) and canonical: for every
id it accepts, building the parsed value again gives the same id. To keep that true, pipeline ids,
triggers, item ids and queue/cron names must not contain ``:`` (queue and cron names not ``/``
either); a namespace may contain anything, because it is always split off last.

Pure: no I/O, no clock; the service that sleeps and fires is
:mod:`oj_trio.runtime.timer_service`.
"""

import re
from collections.abc import Callable, Mapping
from typing import ClassVar, TypeAlias

import attrs

LIVENESS = "liveness"
EXIT_DEFERRED = "exit-deferred"
COOLDOWN = "cooldown"
QUEUE_RETRY = "queue-retry"
CRON = "cron"

_POS = re.compile(r"0|[1-9][0-9]*")


class TimerIdError(ValueError):
    """A timer id (or a component for one) that does not follow the grammar above."""


def _part(what: str, *, no: str = ":") -> Callable[[object, "attrs.Attribute[str]", str], None]:
    """Validator: a non-empty string containing none of the characters in ``no``."""

    def check(_inst: object, _attr: "attrs.Attribute[str]", value: str) -> None:
        if not value or any(c in value for c in no):
            forbidden = " or ".join(repr(c) for c in no)
            raise TimerIdError(f"{what} must be non-empty and contain no {forbidden}: {value!r}")

    return check


def _pos(_inst: object, _attr: "attrs.Attribute[int]", value: int) -> None:
    if type(value) is not int or value < 0:
        raise TimerIdError(f"position must be a non-negative integer: {value!r}")


def _scoped(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _unscope(key: str, what: str) -> tuple[str, str]:
    """``ns/name`` → (ns, name); a bare name → ("", name). ``/name`` is not canonical."""
    namespace, sep, name = key.rpartition("/")
    if sep and not namespace:
        raise TimerIdError(f"{what} key {key!r} has an empty namespace before '/'")
    return namespace, name


@attrs.frozen
class LivenessTimer:
    """``liveness:<pipeline_id>``."""

    KIND: ClassVar[str] = LIVENESS
    pipeline_id: str = attrs.field(validator=_part("pipeline id"))

    @property
    def id(self) -> str:
        return f"{LIVENESS}:{self.pipeline_id}"


@attrs.frozen
class ExitDeferredTimer:
    """``exit-deferred:<pipeline_id>``."""

    KIND: ClassVar[str] = EXIT_DEFERRED
    pipeline_id: str = attrs.field(validator=_part("pipeline id"))

    @property
    def id(self) -> str:
        return f"{EXIT_DEFERRED}:{self.pipeline_id}"


@attrs.frozen
class CooldownTimer:
    """``cooldown:<pipeline_id>:<trigger>:<pos>``; ``<trigger>:<pos>`` is the action-attempts key."""

    KIND: ClassVar[str] = COOLDOWN
    pipeline_id: str = attrs.field(validator=_part("pipeline id"))
    trigger: str = attrs.field(validator=_part("trigger"))
    pos: int = attrs.field(validator=_pos)

    @property
    def id(self) -> str:
        return f"{COOLDOWN}:{self.pipeline_id}:{self.trigger}:{self.pos}"

    @property
    def attempts_key(self) -> str:
        """The ``Pipeline.action_attempts`` key this cooldown belongs to."""
        return f"{self.trigger}:{self.pos}"


@attrs.frozen
class QueueRetryTimer:
    """``queue-retry:<ns/queue>:<item_id>``."""

    KIND: ClassVar[str] = QUEUE_RETRY
    namespace: str = attrs.field(validator=attrs.validators.instance_of(str))
    queue_name: str = attrs.field(validator=_part("queue name", no=":/"))
    item_id: str = attrs.field(validator=_part("item id"))

    @property
    def id(self) -> str:
        return f"{QUEUE_RETRY}:{_scoped(self.namespace, self.queue_name)}:{self.item_id}"


@attrs.frozen
class CronTimer:
    """``cron:<ns/name>``."""

    KIND: ClassVar[str] = CRON
    namespace: str = attrs.field(validator=attrs.validators.instance_of(str))
    name: str = attrs.field(validator=_part("cron name", no=":/"))

    @property
    def id(self) -> str:
        return f"{CRON}:{_scoped(self.namespace, self.name)}"


#: What a timer id means, parsed.
TimerKey: TypeAlias = (
    LivenessTimer | ExitDeferredTimer | CooldownTimer | QueueRetryTimer | CronTimer
)

#: Every kind (the id prefix before the first ``:``).
KINDS = frozenset({LIVENESS, EXIT_DEFERRED, COOLDOWN, QUEUE_RETRY, CRON})


# --- builders --------------------------------------------------------------------------------------


def liveness_id(pipeline_id: str) -> str:
    return LivenessTimer(pipeline_id).id


def exit_deferred_id(pipeline_id: str) -> str:
    return ExitDeferredTimer(pipeline_id).id


def cooldown_id(pipeline_id: str, trigger: str, pos: int) -> str:
    return CooldownTimer(pipeline_id, trigger, pos).id


def queue_retry_id(namespace: str, queue_name: str, item_id: str) -> str:
    return QueueRetryTimer(namespace, queue_name, item_id).id


def cron_id(namespace: str, name: str) -> str:
    return CronTimer(namespace, name).id


# --- parsing ---------------------------------------------------------------------------------------


def kind_of(timer_id: str) -> str:
    """The prefix before the first ``:`` (the whole id when there is none); not validated."""
    return timer_id.partition(":")[0]


def parse_timer_id(timer_id: str) -> TimerKey:
    """Timer id → its typed meaning.

    Raises:
        TimerIdError: unknown kind, wrong number of parts, empty or malformed parts.
    """
    kind, sep, rest = timer_id.partition(":")
    if not sep:
        raise TimerIdError(f"timer id {timer_id!r} has no '<kind>:' prefix")
    if kind == LIVENESS:
        return LivenessTimer(rest)
    if kind == EXIT_DEFERRED:
        return ExitDeferredTimer(rest)
    if kind == COOLDOWN:
        parts = rest.split(":")
        if len(parts) != 3 or not _POS.fullmatch(parts[2]):
            raise TimerIdError(
                f"timer id {timer_id!r} is not cooldown:<pipeline_id>:<trigger>:<pos>"
            )
        return CooldownTimer(parts[0], parts[1], int(parts[2]))
    if kind == QUEUE_RETRY:
        key, sep, item_id = rest.rpartition(":")
        if not sep:
            raise TimerIdError(f"timer id {timer_id!r} is not queue-retry:<ns/queue>:<item_id>")
        namespace, queue_name = _unscope(key, "queue")
        return QueueRetryTimer(namespace, queue_name, item_id)
    if kind == CRON:
        namespace, name = _unscope(rest, "cron")
        return CronTimer(namespace, name)
    raise TimerIdError(f"timer id {timer_id!r} has an unknown kind {kind!r}")


# --- the table -------------------------------------------------------------------------------------


def earliest(timers: Mapping[str, int]) -> tuple[str, int] | None:
    """The timer that fires first, as ``(id, due_at_ms)``; ties go to the smaller id. None if empty."""
    if not timers:
        return None
    due, timer_id = min(zip(timers.values(), timers.keys(), strict=True))
    return timer_id, due


def due_timers(timers: Mapping[str, int], now_ms: int) -> list[tuple[str, int]]:
    """Every timer due at ``now_ms`` (``due_at_ms <= now_ms``), in firing order (due time, then id)."""
    return [(t, d) for d, t in sorted((d, t) for t, d in timers.items() if d <= now_ms)]
