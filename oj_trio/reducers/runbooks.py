"""Reducer for the runbook cache: runbooks stored by content hash, so a pipeline keeps running the
runbook it was created with even after the file on disk changed or the daemon restarted.

Content-addressed, so the first ``runbook:loaded`` for a hash wins and later ones are no-ops.
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import StoredRunbook
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _runbook_loaded(s: "MaterializedState", e: ev.RunbookLoaded) -> None:
    if e.hash not in s.runbooks:
        s.runbooks[e.hash] = StoredRunbook(version=e.version, data=e.runbook)


HANDLERS: ReducerTable = table(on(ev.RunbookLoaded, _runbook_loaded))
