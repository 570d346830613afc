"""The running daemon: one root nursery holding the store's flusher, the supervisor, the socket
listener, signal handling and the systemd watchdog; plus the request dispatch.

The dispatch table is built from the handler modules' routes (:mod:`oj_trio.handlers`). Handlers
never mutate state directly: they validate, then build events and commit them through the store
(event → WAL → apply). Whether a request changes state is a property of its route, and two rules
follow from it here: such a request is refused while the daemon drains, and it is answered only
after everything it committed is durable (:meth:`Store.acknowledge`).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import trio

from . import messages, paths, protocol, sdnotify
from .adapters.process import live_shells, use_spawner
from .adapters.spawner import open_spawner
from .errors import DaemonError, OjError, ProtocolError
from .handlers import Route, Services, all_routes
from .listener import open_listener, serve
from .nursery_runtime import Supervisor
from .settings import env_seconds
from .store import Store

log = logging.getLogger("oj.daemon")


class Daemon:
    """Everything `ojd` runs, wired together."""

    #: Built when :meth:`serve` starts: the runtime's clock reads trio's, so it needs a run.
    runtime: Supervisor
    services: Services

    def __init__(self, state_dir: Path, store: Store) -> None:
        self.state_dir = state_dir
        self.store = store
        # A lone commit may fsync on the loop only while no shell runs (see WalWriter.inline_ok).
        store.writer.inline_ok = lambda: live_shells() == 0
        self.stop_grace = env_seconds("OJ_STOP_GRACE_MS", 10000)
        self._shutdown = trio.Event()
        self._kill_sessions = False
        #: READY was printed: an error from here on stops a running daemon, not its start.
        self.ready = False
        self._requests: dict[str, Route] = {}
        self._queries: dict[str, Route] = {}
        for route in all_routes():
            table = self._queries if route.query else self._requests
            if route.tag in table:
                raise AssertionError(f"two handlers for {route.tag}")
            table[route.tag] = route

    @classmethod
    def open(cls, state_dir: Path) -> Daemon:
        """Replay durable state (synchronously, before the event loop starts)."""
        store, warnings = Store.open(state_dir)
        for warning in warnings:
            log.warning("%s", warning)
        return cls(state_dir, store)

    # -- lifecycle --------------------------------------------------------------------------

    async def serve(self) -> int:
        sock_path = paths.socket_path(self.state_dir)
        sdnotify.notify("STATUS=replaying state")
        self.runtime = Supervisor(self.store, self.state_dir)
        self.services = Services(
            ctx=self.runtime.ctx,
            supervisor=self.runtime,
            daemon=self,
            workers=self.runtime.workers,
            agents=self.runtime.agents,
            crons=self.runtime.crons,
        )
        self._started_ms = self.runtime.ctx.clock.now_ms()
        # Step processes are started by a helper process, off this event loop (adapters/spawner).
        async with open_spawner() as spawner, trio.open_nursery() as root:
            with use_spawner(spawner):
                await self._serve_in(root, sock_path)
        sdnotify.notify("STATUS=stopped")
        return 0

    async def _serve_in(self, root: trio.Nursery, sock_path: Path) -> None:
        await root.start(self.store.run)
        try:
            listener = await open_listener(sock_path)
        except OSError as exc:
            raise OjError(f"Failed to bind socket at {sock_path}: {exc.strerror or exc}") from None
        await root.start(self.runtime.run)
        listen_scope = trio.CancelScope()

        async def listen() -> None:
            with listen_scope:
                await serve(listener, self.handle)

        root.start_soon(listen)
        # started(), not start_soon(): the handlers must be in place before READY, or a
        # SIGTERM right after READY meets Python's default action and kills us uncleanly.
        await root.start(self._signals)
        interval = sdnotify.watchdog_interval()
        if interval:
            root.start_soon(self._watchdog, interval)
        log.info("Daemon ready, listening on %s", sock_path)
        self.ready = True
        print("READY", flush=True)
        sdnotify.notify(f"READY=1\nSTATUS=ready\nMAINPID={os.getpid()}")

        await self._shutdown.wait()
        log.info("shutting down")
        sdnotify.notify("STOPPING=1\nSTATUS=draining")
        # Keep listening while draining: handle() already refuses every request that could
        # start work ("daemon is shutting down") and answers Ping/Status/Query, so during the
        # grace period `oj daemon status` says "running" and an action command gets a prompt
        # error instead of "not running" / a connection timeout while the lock is still held.
        await self.runtime.drain(self.stop_grace, kill_sessions=self._kill_sessions)
        listen_scope.cancel()
        await self.store.aclose()
        root.cancel_scope.cancel()

    def request_shutdown(self, *, kill: bool = False) -> None:
        self._kill_sessions = self._kill_sessions or kill
        self._shutdown.set()

    async def _signals(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP received: runbooks are re-read on use; nothing else to reload")
                    continue
                if self._shutdown.is_set():
                    log.warning("second %s: stopping immediately", signal.Signals(signum).name)
                    self.runtime.abort_drain()
                    continue
                log.info("%s received: graceful stop", signal.Signals(signum).name)
                self.request_shutdown()

    async def _watchdog(self, interval: float) -> None:
        while True:
            sdnotify.notify("WATCHDOG=1")
            await trio.sleep(interval)

    # -- requests -----------------------------------------------------------------------------

    def uptime_secs(self) -> int:
        return (self.runtime.ctx.clock.now_ms() - self._started_ms) // 1000

    async def handle(self, request: protocol.Message) -> messages.Response:
        """Dispatch one parsed request to its route (a ``Query`` to its query's route)."""
        tag = request["type"]
        payload = request
        if tag == "Query":
            payload = request["query"]
            route = self._queries.get(payload["type"])
        else:
            route = self._requests.get(tag)
        if route is None:
            raise ProtocolError(f"unknown request type: {payload['type']}")
        if route.mutates and self._shutdown.is_set():
            raise DaemonError("daemon is shutting down")
        response = await route.handler(self.services, payload)
        if route.mutates:
            await self.store.acknowledge()
        return response
