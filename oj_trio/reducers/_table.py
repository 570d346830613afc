"""How a reducer module declares which event each of its functions folds in, checked by mypy.

Each noun module exports ``HANDLERS``, a table built from :func:`on` pairs. ``on`` ties an event
class to a function taking exactly that class, so a table entry that pairs ``QueueTaken`` with a
function written for ``QueueFailed`` is a type error, not a bug found at replay. After the check the
event parameter is widened to ``Any`` so entries of different event types fit one mapping.

The aggregate is only imported for type checking: :mod:`oj_trio.state` imports the reducers, so a
runtime import back would be a cycle.
"""

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from oj_trio.events import EventBase

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState

E = TypeVar("E", bound=EventBase)

#: A reducer: folds one event into the state in place. Pure: no clock, no I/O, never raises.
Reducer: TypeAlias = Callable[["MaterializedState", Any], None]

#: Event class → its reducer. Events without an entry have no state effect.
ReducerTable: TypeAlias = Mapping[type[EventBase], Reducer]


def on(
    event_type: type[E], reducer: Callable[["MaterializedState", E], None]
) -> tuple[type[EventBase], Reducer]:
    """One table entry; mypy checks that ``reducer`` takes ``event_type``."""
    return event_type, reducer


def table(*entries: tuple[type[EventBase], Reducer]) -> dict[type[EventBase], Reducer]:
    """A reducer table from :func:`on` entries (or merged tables' items); an event twice is a bug."""
    out: dict[type[EventBase], Reducer] = {}
    for event_type, reducer in entries:
        if event_type in out:
            raise ValueError(f"two reducers for {event_type.TAG}")
        out[event_type] = reducer
    return out
