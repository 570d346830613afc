"""Request handlers, one module per noun: validate → ask the runtime → reply.

Each module exports ``ROUTES``, a list of :class:`Route`: the request (or query) tag it answers,
the handler, and whether it **changes state**. The server builds its dispatch table from these
lists (:func:`all_routes`), and derives two rules from the flag instead of keeping lists by hand:

* the shutdown gate: while the daemon drains, a request that changes state is refused with
  ``daemon is shutting down``; everything else (ping, status, queries) is still answered;
* the durability rule: the reply to a request that changes state goes out only after every
  event it committed is durable (:meth:`~oj_trio.store.Store.acknowledge`).

Handlers never touch the supervisor's internals: they get :class:`Services` (the runtime
context, the supervisor's public face, the daemon's controls). Adding a verb touches its noun's
module here, its noun's CLI module (``commands/<noun>.py``), its noun's message module
(``messages/<noun>.py``) and the tables in :mod:`oj_trio.messages`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from ..messages import (
    Response,
)
from ..runtime.agents import AgentService
from ..runtime.context import RuntimeContext, Supervision
from ..runtime.crons import CronService
from ..runtime.workers import WorkerService


class DaemonControl(Protocol):
    """What the daemon-level handlers may ask of the running daemon."""

    def uptime_secs(self) -> int: ...

    def request_shutdown(self, *, kill: bool = False) -> None: ...


@attrs.frozen
class Services:
    """Everything a handler may use."""

    ctx: RuntimeContext
    supervisor: Supervision
    daemon: DaemonControl
    workers: WorkerService
    agents: AgentService
    crons: CronService


#: A handler takes its request's (or query's) shape from :mod:`oj_trio.messages` and returns
#: one of its responses; the table is heterogeneous, so the request type is erased here.
Handler = Callable[[Services, Any], Awaitable[Response]]


@attrs.frozen
class Route:
    """``tag`` → ``handler``; ``query``: answered inside a ``Query`` request."""

    tag: str
    handler: Handler
    mutates: bool
    query: bool = False


def all_routes() -> list[Route]:
    """Every noun's routes (the server's dispatch table is built from this)."""
    from . import agents, commands, crons, daemon, pipelines, queues, status, workers, workspaces

    return [
        *daemon.ROUTES,
        *status.ROUTES,
        *commands.ROUTES,
        *pipelines.ROUTES,
        *workspaces.ROUTES,
        *queues.ROUTES,
        *workers.ROUTES,
        *agents.ROUTES,
        *crons.ROUTES,
    ]
