"""Reducers for the durable timer table: timer id → ``due_at_ms`` (epoch milliseconds).

The table is what survives a restart: the timer service (:mod:`oj_trio.runtime.timer_service`)
re-arms every entry at its *original* deadline, and fires at once those that fell due while the
daemon was down. ``timer:set`` arms or re-arms (the latest deadline wins); ``timer:start`` (fired)
and ``timer:cancelled`` remove the entry, and are no-ops for an id that is not armed.
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _timer_set(s: "MaterializedState", e: ev.TimerSet) -> None:
    s.timers[e.id] = e.due_at_ms


def _timer_cleared(s: "MaterializedState", e: ev.TimerStart | ev.TimerCancelled) -> None:
    s.timers.pop(e.id, None)


HANDLERS: ReducerTable = table(
    on(ev.TimerSet, _timer_set),
    on(ev.TimerStart, _timer_cleared),
    on(ev.TimerCancelled, _timer_cleared),
)
