"""The pure reducers, one module per noun; together they are what ``MaterializedState.apply`` does.

Every module exports ``HANDLERS`` (event class → reducer, see :mod:`._table`) for the events of its
noun only: :mod:`.pipelines` (pipelines, steps, shell processes, agent signals), :mod:`.sessions`,
:mod:`.workspaces`, :mod:`.runbooks`, :mod:`.workers`, :mod:`.queues`, :mod:`.timers`, :mod:`.crons`. :data:`HANDLERS`
merges them and refuses an event claimed by two nouns.

The rules every reducer follows (determinism, idempotence where events may repeat, tolerance of
references to things that are gone) are in :mod:`oj_trio.state`'s docstring.
"""

from oj_trio.reducers import (
    crons,
    pipelines,
    queues,
    runbooks,
    sessions,
    timers,
    workers,
    workspaces,
)
from oj_trio.reducers._table import Reducer, ReducerTable, table

__all__ = ["HANDLERS", "Reducer", "ReducerTable"]

#: Every reducer, by event class (a plain dict: ``apply`` looks it up once per event).
HANDLERS: ReducerTable = table(
    *(
        entry
        for noun in (pipelines, sessions, workspaces, runbooks, workers, queues, timers, crons)
        for entry in noun.HANDLERS.items()
    )
)
