"""Reducers for tmux sessions: the session table and the owning pipeline's ``session_id``.

``session:deleted`` clears the pipeline's ``session_id`` only while it still names that session
(reference §10 #13): a newer session of the same pipeline must not be forgotten.
"""

from typing import TYPE_CHECKING

from oj_trio import events as ev
from oj_trio.records import Session
from oj_trio.reducers._table import ReducerTable, on, table

if TYPE_CHECKING:
    from oj_trio.state import MaterializedState


def _session_created(s: "MaterializedState", e: ev.SessionCreated) -> None:
    s.sessions[e.id] = Session(id=e.id, pipeline_id=e.pipeline_id)
    p = s.pipelines.get(e.pipeline_id)
    if p is not None:
        p.session_id = e.id


def _session_deleted(s: "MaterializedState", e: ev.SessionDeleted) -> None:
    session = s.sessions.pop(e.id, None)
    if session is None:
        return
    p = s.pipelines.get(session.pipeline_id)
    if p is not None and p.session_id == e.id:
        p.session_id = None  # reference §10 #13


HANDLERS: ReducerTable = table(
    on(ev.SessionCreated, _session_created),
    on(ev.SessionDeleted, _session_deleted),
)
