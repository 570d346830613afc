"""What every runtime service and request handler shares: a small, explicit context.

Services never reach into each other or into the supervisor's internals; they get the store (the
one write path and the state), the clock (the one time source), the pipeline logs, the runbook
cache and the daemon's settings from here, and the supervisor's public face through the
:class:`Supervision` protocol. That keeps the import graph one-way: handlers → services →
context, with the supervisor wiring them together at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from .. import events as ev
from .. import paths
from ..clock import Clock
from ..pipeline_log import PipelineLog
from ..settings import env_seconds
from ..state import MaterializedState, Pipeline
from ..store import Store
from .runbook_cache import RunbookCache

if TYPE_CHECKING:
    from ..pipelines.transitions import Failed, Succeeded
    from ..runbook.model import Step


class AgentSteps(Protocol):
    """The agent service as the step runner sees it (:mod:`oj_trio.runtime.agents`)."""

    async def run_step(self, p: Pipeline, step: Step) -> Succeeded | Failed: ...


@attrs.define
class RuntimeContext:
    """The daemon's shared services and settings (one per daemon, built by the server)."""

    store: Store
    clock: Clock
    state_dir: Path
    env: dict[str, str]
    log: PipelineLog
    runbooks: RunbookCache
    #: Seconds a step's process group gets between SIGTERM and SIGKILL.
    step_grace: float
    #: Called with every pipeline that ended, after its own side effects (the worker service
    #: settles the pipeline's queue item here if it is not settled yet, and looks again).
    pipeline_end_hooks: list[Callable[[Pipeline], Awaitable[None]]] = attrs.Factory(list)
    #: Called (pure, no I/O) with a pipeline and the step a decision ends it on; the events they
    #: return go into the same commit (the worker service: the pipeline's queue item outcome).
    ending_hooks: list[Callable[[Pipeline, str], list[ev.EventBase]]] = attrs.Factory(list)
    #: Runs agent steps (set by the supervisor; None in contexts that run no agents).
    agents: AgentSteps | None = None
    _workspaces_dir: Path | None = attrs.field(default=None, init=False, repr=False, eq=False)
    _workspaces_for: Path | None = attrs.field(default=None, init=False, repr=False, eq=False)

    @classmethod
    def build(
        cls, store: Store, state_dir: Path, env: dict[str, str], clock: Clock
    ) -> RuntimeContext:
        log = PipelineLog(
            paths.logs_dir(state_dir), clock=lambda: clock.now_ms() / 1000, background=True
        )
        return cls(
            store=store,
            clock=clock,
            state_dir=state_dir,
            env=env,
            log=log,
            runbooks=RunbookCache(store),
            step_grace=env_seconds("OJ_STEP_KILL_GRACE_MS", 5000, env),
        )

    @property
    def state(self) -> MaterializedState:
        return self.store.state

    @property
    def workspaces_dir(self) -> Path:
        # Asked for every pipeline a worker creates: one Path join per daemon, not per job.
        if self._workspaces_dir is None or self._workspaces_for != self.state_dir:
            self._workspaces_dir = paths.workspaces_dir(self.state_dir)
            self._workspaces_for = self.state_dir
        return self._workspaces_dir

    async def commit(self, *events: ev.EventBase) -> int:
        """The one write path: append durably, then apply (see :class:`~oj_trio.store.Store`)."""
        return await self.store.commit(*events)


class Supervision(Protocol):
    """What handlers and services may ask of the supervisor (:mod:`oj_trio.nursery_runtime`)."""

    def spawn(
        self, pipeline_id: str, *, rerun: bool = False, prestarted: str | None = None
    ) -> None:
        """Start the task that drives ``pipeline_id`` (no-op if it runs, or while draining);
        ``prestarted``: the step whose ``step:started`` went out with the pipeline's creation."""

    def is_driving(self, pipeline_id: str) -> bool:
        """Whether a task drives ``pipeline_id`` right now."""

    def is_draining(self) -> bool:
        """Whether the daemon is stopping (no new work starts)."""

    async def cancel(self, pipeline_id: str) -> None:
        """Cancel a pipeline and wait (bounded) until the cancellation is durable."""

    def start_soon_background(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run a fire-and-forget side effect (a notification) in the runtime's nursery."""
