"""The running daemon: one root nursery holding the store's flusher, the runtime, the socket
listener, signal handling and the systemd watchdog; plus the request dispatch table.

Request handlers never mutate state directly: they validate, then ask the runtime, which builds
events and commits them through the store (event → WAL → apply). A request that changes state is
answered only after its events are durable.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from . import paths, protocol, sdnotify
from ._version import __version__
from .errors import OjError, ProtocolError
from .listener import open_listener, serve
from .nursery_runtime import Runtime
from .settings import env_seconds
from .store import Store

log = logging.getLogger("oj.daemon")

RequestHandler = Callable[[protocol.Message], Awaitable[protocol.Message]]


class Daemon:
    """Everything `ojd` runs, wired together."""

    def __init__(self, state_dir: Path, store: Store) -> None:
        self.state_dir = state_dir
        self.store = store
        self.runtime = Runtime(store, state_dir)
        self.started = time.monotonic()
        self.stop_grace = env_seconds("OJ_STOP_GRACE_MS", 10000)
        self._shutdown = trio.Event()
        self._kill_sessions = False
        self._handlers: dict[str, RequestHandler] = {
            "Ping": self._ping,
            "Hello": self._hello,
            "Status": self._status,
            "Shutdown": self._shutdown_request,
            "Query": self._query,
        }
        self._handlers.update(self.runtime.request_handlers())

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
        async with trio.open_nursery() as root:
            await root.start(self.store.run)
            try:
                listener = await open_listener(sock_path)
            except OSError as exc:
                raise OjError(
                    f"Failed to bind socket at {sock_path}: {exc.strerror or exc}"
                ) from None
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
        sdnotify.notify("STATUS=stopped")
        return 0

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

    async def handle(self, request: protocol.Message) -> protocol.Message:
        handler = self._handlers.get(request["type"])
        if handler is None:
            raise ProtocolError(f"unknown request type: {request['type']}")
        if self._shutdown.is_set() and request["type"] not in ("Ping", "Status", "Query"):
            return protocol.error("daemon is shutting down")
        return await handler(request)

    async def _ping(self, _request: protocol.Message) -> protocol.Message:
        return {"type": "Pong"}

    async def _hello(self, _request: protocol.Message) -> protocol.Message:
        return {"type": "Hello", "version": __version__}

    def uptime(self) -> int:
        return int(time.monotonic() - self.started)

    async def _status(self, _request: protocol.Message) -> protocol.Message:
        counts = self.runtime.counts()
        return {
            "type": "Status",
            "version": __version__,
            "uptime_secs": self.uptime(),
            "pid": os.getpid(),
            **counts,
        }

    async def _shutdown_request(self, request: protocol.Message) -> protocol.Message:
        self.request_shutdown(kill=bool(request.get("kill")))
        return {"type": "ShuttingDown"}

    async def _query(self, request: protocol.Message) -> protocol.Message:
        query = request["query"]
        if query["type"] == "StatusOverview":
            return {
                "type": "StatusOverview",
                "uptime_secs": self.uptime(),
                "namespaces": self.runtime.status_overview(),
            }
        return await self.runtime.query(query)
