"""The queue databases this daemon shares with other daemons: one client per URL, on first use.

A project's persisted queues live in PostgreSQL when ``OJ_QUEUE_URL`` is in the daemon's
environment or ``[queues] url`` in its ``.oj/config.toml`` (:func:`oj_trio.project.queue_url`);
otherwise they stay in the WAL and nothing here is ever made. psycopg is imported only when a
project asks for a database (it is an optional extra, and it costs ~0.1 s to import).

Each client's listener and lease keeper (:mod:`oj_trio.queues.pg_client`) run in the worker
service's nursery; its wake-ups wake this daemon's workers, and a claim lost to another daemon
stops the local pipeline that ran it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from ..errors import OjError
from ..project import queue_url
from ..settings import env_seconds
from .context import RuntimeContext

if TYPE_CHECKING:
    from ..queues.pg_client import PgClient, WakeSink
    from ..queues.postgres import PostgresQueue

log = logging.getLogger("oj.queues")

#: The default lease of a claim, renewed every third of it while its pipeline runs.
LEASE_MS = 30_000
#: The default polling period of idle workers, the fallback of LISTEN/NOTIFY.
POLL_MS = 5_000
#: A `.oj/config.toml` modified this recently (seconds) is read again on every use.
SETTLED_SECONDS = 1.0


class RemoteQueues:
    """The clients of the queue databases in use, by URL."""

    def __init__(
        self, ctx: RuntimeContext, *, on_wake: WakeSink, on_lost: Callable[[str], None]
    ) -> None:
        self.ctx = ctx
        self.on_wake = on_wake
        self.on_lost = on_lost
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._clients: dict[str, PgClient] = {}
        self._nursery: trio.Nursery | None = None
        #: project root → (stamp of its `.oj/config.toml` or None when absent, its queue url)
        self._urls: dict[str, tuple[tuple[int, int, int, int] | None, str | None]] = {}

    def bind(self, nursery: trio.Nursery) -> None:
        """Run the clients' background tasks in ``nursery`` (from now on, and those made so far)."""
        self._nursery = nursery
        for client in self._clients.values():
            nursery.start_soon(client.serve)
        url = self.ctx.env.get("OJ_QUEUE_URL")
        if url:
            # Every project's queues live there: listen (and report its health) from the start.
            try:
                self.client(url)
            except OjError as exc:
                log.error("%s", exc)

    def url(self, project_root: str) -> str | None:
        """The project's queue database, or None (its queues live in the WAL).

        Asked twice per job (claim and outcome), so the answer is kept per project while its
        ``.oj/config.toml`` keeps the same stamp (one ``stat``, no read and parse); a file
        changed in the last second is read every time, as a same-size rewrite within the
        file system's timestamp granularity would keep the stamp.

        Raises:
            OjError: the project's `.oj/config.toml` is malformed.
        """
        env_url = self.ctx.env.get("OJ_QUEUE_URL")
        if env_url:
            return env_url
        try:
            st = os.stat(os.path.join(project_root, ".oj", "config.toml"))
        except OSError:
            stamp: tuple[int, int, int, int] | None = None
        else:
            # ctime too: a rewrite that puts the old mtime back (cp -p, touch -r) changes it.
            stamp = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
            if time.time() - st.st_mtime < SETTLED_SECONDS:
                return queue_url(Path(project_root), self.ctx.env)
        known = self._urls.get(project_root)
        if known is not None and known[0] == stamp:
            return known[1]
        url = queue_url(Path(project_root), self.ctx.env)
        self._urls[project_root] = (stamp, url)
        return url

    def client(self, url: str) -> PgClient:
        """The client of ``url``, made (and its background tasks started) on first use.

        Raises:
            OjError: not a PostgreSQL URL, or psycopg is not installed.
        """
        client = self._clients.get(url)
        if client is not None:
            return client
        if not url.startswith(("postgresql://", "postgres://")):
            raise OjError(f"queue url must start with postgresql://, got {url.split('@')[-1]!r}")
        try:
            from ..queues.pg_client import PgClient
        except ImportError:
            raise OjError(
                "queues in PostgreSQL need psycopg: pip install 'oj-trio[postgres]'"
            ) from None
        env = self.ctx.env
        client = PgClient(
            url,
            owner=self.owner,
            lease_ms=round(env_seconds("OJ_QUEUE_LEASE_MS", LEASE_MS, env) * 1000),
            poll_seconds=max(0.05, env_seconds("OJ_QUEUE_POLL_MS", POLL_MS, env)),
            on_wake=self.on_wake,
            on_lost=self.on_lost,
        )
        self._clients[url] = client
        if self._nursery is not None:
            self._nursery.start_soon(client.serve)
        return client

    def queue(self, project_root: str, namespace: str, queue_name: str) -> PostgresQueue | None:
        """The database-backed persisted queue of a project, or None (it lives in the WAL).

        Raises:
            OjError: the project's queue url is unusable.
        """
        url = self.url(project_root)
        if url is None:
            return None
        from ..queues.postgres import PostgresQueue

        return PostgresQueue(
            self.client(url), self.ctx.store, self.ctx.clock, namespace, queue_name
        )

    async def queue_names(self, project_root: str, namespace: str) -> list[str]:
        """The queues of a project's namespace that hold items in its database (none when its
        queues live in the WAL).

        Raises:
            OjError: the project's queue url is unusable, or its database is away.
        """
        url = self.url(project_root)
        if url is None:
            return []
        from ..queues.postgres import queue_names

        return await queue_names(self.client(url), namespace)

    def errors(self) -> list[tuple[str, str]]:
        """``(url without password, error)`` of each database that does not answer now."""
        return [(c.label, c.error) for c in self._clients.values() if c.error is not None]
