"""One daemon's connection to a queue database: statements in worker threads, wake-ups, leases.

psycopg's ``AsyncConnection`` is asyncio-only (ecosystem notes §5), so every statement runs in a
trio worker thread on a plain ``psycopg.Connection`` (one per thread at a time, kept idle between
calls, at most :data:`MAX_CONNECTIONS`). Each call is one transaction: it commits or rolls back
before the thread returns, so a push acknowledged to the user is committed.

Two background tasks run in the worker service's nursery:

* the *listener*: a dedicated autocommit connection that ``LISTEN``\\ s on :data:`CHANNEL` and
  waits on its socket with ``trio.lowlevel.wait_readable`` (no thread), waking the workers of the
  queue a notification names. After a reconnect it wakes every worker (notifications sent while
  it was away are gone; polling is the fallback anyway);
* the *lease keeper*: every third of the lease it renews the leases of the claims this daemon
  holds (:attr:`PgClient.held`, keyed by pipeline id, the fencing token of a claim). A claim that
  another daemon took meanwhile (its lease expired here, e.g. while the database was away) is
  reported through ``on_lost``: the item runs elsewhere, so the local pipeline must stop.

The database going away is a fault, not a crash: a statement fails with
:class:`QueueUnavailable` (one line), :attr:`PgClient.error` says so (``oj status``, ``oj queue
list``), callers back off (:attr:`PgClient.backoff`), and the next call connects again.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import psycopg
import trio
from psycopg.conninfo import conninfo_to_dict

from ..errors import OjError
from . import pg_schema
from .backend import QueueError

log = logging.getLogger("oj.queues.pg")

T = TypeVar("T")

#: The channel a push (or a manual retry, or a released claim) notifies, payload ``[ns, queue]``.
CHANNEL = "oj_queue"
#: The third element of a notification's payload when items only changed (settled, dropped):
#: long polls of ``oj queue wait`` wake, workers need not look.
SETTLED = "settled"
#: Connections (and worker threads) one daemon uses at most for statements.
MAX_CONNECTIONS = 8
#: libpq options of every connection: a connection attempt gives up after 5 s, and over TCP a
#: peer that vanished (a partition, a dead host) is noticed in about 30 s instead of hanging a
#: worker thread or the listener for the kernel's default of hours. (Ignored on Unix sockets.)
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
#: Back-off after failures: first delay and ceiling, in seconds.
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0


class _Stale(Exception):
    """An idle connection was found dead before its transaction began."""


class QueueUnavailable(QueueError):
    """The queue database cannot be reached (down, restarting, refusing connections)."""


def redact(url: str) -> str:
    """``url`` without its password, for messages and ``oj status``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "postgresql://…"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_url(url: str) -> None:
    """Refuse a URL libpq cannot parse, before any task depends on it (the listener would
    otherwise fail on it forever, and a parse error is no reason to retry).

    Raises:
        QueueError: one line saying what is wrong with it.
    """
    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        reason = _first_line(exc).split(" in URI: ")[0]  # the URI may carry a password
        raise QueueError(f"queue url {redact(url)} is malformed: {reason}") from None


@attrs.frozen
class Held:
    """A claim this daemon holds: its item, and the item's failure count when it was claimed."""

    namespace: str
    queue: str
    item_id: str
    failures: int


#: ``on_wake(None)``: every worker; ``on_wake((namespace, queue))``: that queue's workers.
WakeSink = Callable[[tuple[str, str] | None], None]


class PgClient:
    """The connections, wake-ups and leases of one queue database, for one daemon."""

    def __init__(
        self,
        url: str,
        *,
        owner: str,
        lease_ms: int,
        poll_seconds: float,
        on_wake: WakeSink,
        on_lost: Callable[[str], None],
    ) -> None:
        check_url(url)
        self.url = url
        self.label = redact(url)
        #: Who this daemon is in the items' ``owner`` and history (host and pid).
        self.owner = owner
        self.lease_ms = max(1, lease_ms)
        self.poll_seconds = poll_seconds
        self.on_wake = on_wake
        self.on_lost = on_lost
        #: Claims held by this daemon, by pipeline id.
        self.held: dict[str, Held] = {}
        #: Completions per ``(namespace, queue)`` since the last bound on completed items.
        self.completions: dict[tuple[str, str], int] = {}
        #: The last failure to reach the database, None while it answers.
        self.error: str | None = None
        self._failures = 0
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._limiter = trio.CapacityLimiter(MAX_CONNECTIONS)
        self._schema_ready = False
        self._renew_now = trio.Event()
        self._generations: dict[tuple[str, str], int] = {}
        self._reconnects = 0
        self._change = trio.Event()

    # -- statements ------------------------------------------------------------------------------

    @property
    def backoff(self) -> float:
        """Seconds to wait before trying again after the failures so far (0: it answers)."""
        if not self._failures:
            return 0.0
        return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(self._failures - 1, 10)))

    async def run(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``fn(conn)`` in one transaction, in a worker thread; committed when this returns.

        Raises:
            QueueUnavailable: the database cannot be reached.
            QueueError: the statement failed (a bug or a foreign schema), one line.
        """
        try:
            result = await trio.to_thread.run_sync(self._call, fn, limiter=self._limiter)
        except QueueUnavailable as exc:
            self._unreachable(str(exc))
            self._failures += 1
            raise
        self._reachable()
        return result

    def _unreachable(self, message: str) -> None:
        if self.error is None:
            log.warning("%s", message)
        self.error = message

    def _reachable(self) -> None:
        self._failures = 0
        if self.error is not None:
            log.info("queue database %s answers again", self.label)
            self.error = None
            self.renew_soon()  # leases may have lapsed meanwhile: renew (or learn they are lost)
            self.on_wake(None)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, **CONNECT_OPTIONS)
        if not self._schema_ready:
            try:
                pg_schema.ensure(conn)
            except BaseException:
                conn.close()
                raise
            self._schema_ready = True
        return conn

    def _call(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """In a worker thread: an idle (or new) connection, one transaction, back to idle.

        An idle connection that turns out dead before its transaction began (the database
        restarted since it was last used) is replaced by a fresh one, once, and the other idle
        ones are dropped too (they are as old): nothing was sent, so nothing can run twice, and
        the first commands after a restart do not fail while the database answers."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            try:
                return self._transact(conn, fn, pooled=True)
            except _Stale:
                self.close()
        return self._transact(None, fn, pooled=False)

    def _transact(
        self,
        conn: psycopg.Connection[Any] | None,
        fn: Callable[[psycopg.Connection[Any]], T],
        *,
        pooled: bool,
    ) -> T:
        began = False
        try:
            if conn is None:
                conn = self._connect()
            with conn.transaction():
                began = True
                result = fn(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn is not None:
                conn.close()
            if pooled and not began:
                raise _Stale from None
            raise QueueUnavailable(
                f"queue database {self.label} unreachable: {_first_line(exc)}"
            ) from None
        except psycopg.Error as exc:
            if conn is not None:
                self._give_back(conn)
            raise QueueError(f"queue database {self.label}: {_first_line(exc)}") from None
        except OjError:
            if conn is not None:
                self._give_back(conn)  # rolled back; the connection is fine
            raise
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._give_back(conn)
        return result

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed or conn.broken:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections (the daemon is stopping)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- background ------------------------------------------------------------------------------

    async def serve(self) -> None:
        """The listener and the lease keeper, until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._listen, name=f"queue listener {self.label}")
                nursery.start_soon(self._keep_leases, name=f"queue leases {self.label}")
        finally:
            self.close()

    def _listen_connect(self) -> psycopg.Connection[Any]:
        conn = self._connect()
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    async def _listen(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            conn: psycopg.Connection[Any] | None = None
            fd = -1
            try:
                conn = await trio.to_thread.run_sync(self._listen_connect)
                fd = conn.fileno()
                delay = BACKOFF_FIRST
                self._reachable()
                self._changed(None)
                self.on_wake(None)  # what was notified while we were away is lost
                while True:
                    for notify in conn.notifies(timeout=0):
                        self._notified(notify.payload)
                    await trio.lowlevel.wait_readable(fd)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._unreachable(f"queue database {self.label} unreachable: {_first_line(exc)}")
            except QueueError as exc:
                log.warning("queue listener %s: %s", self.label, exc)
            except psycopg.Error as exc:  # refused (a role, a permission): keep trying, alive
                log.warning("queue listener %s: %s", self.label, _first_line(exc))
            finally:
                if conn is not None:
                    if fd >= 0:
                        trio.lowlevel.notify_closing(fd)
                    conn.close()
            await trio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    def _notified(self, payload: str) -> None:
        try:
            namespace, queue, *kind = json.loads(payload)
        except (ValueError, TypeError):
            self._changed(None)
            self.on_wake(None)
            return
        key = (str(namespace), str(queue))
        self._changed(key)
        if kind != [SETTLED]:
            self.on_wake(key)

    def generation(self, key: tuple[str, str]) -> int:
        """How many times queue ``key`` was notified as changed (by any daemon, this one
        included) since this client started, plus the listener's reconnects (what was notified
        meanwhile is lost); at least 1. A long poll waits for it to pass what it saw last."""
        return 1 + self._reconnects + self._generations.get(key, 0)

    async def wait_change(self, key: tuple[str, str], seen: int, timeout: float) -> None:
        """Until :meth:`generation` of ``key`` is past ``seen``, or ``timeout`` seconds."""
        with trio.move_on_after(timeout):
            while self.generation(key) <= seen:
                await self._change.wait()

    def _changed(self, key: tuple[str, str] | None) -> None:
        if key is None:
            self._reconnects += 1
        else:
            self._generations[key] = self._generations.get(key, 0) + 1
        self._change.set()
        self._change = trio.Event()

    def renew_soon(self) -> None:
        """Renew (and check) the held leases now, not at the next period."""
        self._renew_now.set()

    async def _keep_leases(self) -> None:
        period = self.lease_ms / 3000
        while True:
            with trio.move_on_after(period):
                await self._renew_now.wait()
            self._renew_now = trio.Event()
            if self.held:
                await self._renew()

    async def _renew(self) -> None:
        held = dict(self.held)
        try:
            found = await self.run(lambda conn: renew(conn, held, self.lease_ms))
        except QueueError as exc:
            log.debug("lease renewal failed: %s", exc)
            return
        for pipeline_id, claim in held.items():
            if pipeline_id not in self.held:
                continue  # settled meanwhile
            state = found.get(pipeline_id)
            if state is None:
                continue  # renewed
            if state == "gone":
                # Dropped, or settled by this daemon meanwhile: nothing to hold any more.
                self.held.pop(pipeline_id, None)
            else:
                log.warning(
                    "queue %s: item %s was claimed again elsewhere (%s); stopping its pipeline %s",
                    claim.queue,
                    claim.item_id,
                    state,
                    pipeline_id[:8],
                )
                self.held.pop(pipeline_id, None)
                self.on_lost(pipeline_id)


def renew(conn: psycopg.Connection[Any], held: dict[str, Held], lease_ms: int) -> dict[str, str]:
    """Extend the leases of ``held`` claims; return those not renewed: pipeline id → ``gone``
    (no such item, or this claim ended meanwhile) or a description of who holds the item now."""
    conn.execute("SET LOCAL synchronous_commit = off")  # a lost heartbeat is renewed next time
    pids = list(held)
    rows = conn.execute(
        f"""UPDATE oj_queue_items i SET lease_until_ms = {pg_schema.NOW_MS} + %s
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS h(ns, q, id, pid)
        WHERE i.namespace = h.ns AND i.queue = h.q AND i.id = h.id AND i.pipeline_id = h.pid
          AND i.status = 'active'
        RETURNING i.pipeline_id, i.failure_count""",
        (
            lease_ms,
            [held[p].namespace for p in pids],
            [held[p].queue for p in pids],
            [held[p].item_id for p in pids],
            pids,
        ),
    ).fetchall()
    renewed = {str(r[0]) for r in rows}
    missing = [p for p in pids if p not in renewed]
    out: dict[str, str] = {}
    for pid in missing:
        claim = held[pid]
        row = conn.execute(
            "SELECT status, pipeline_id, owner FROM oj_queue_items "
            "WHERE namespace = %s AND queue = %s AND id = %s",
            (claim.namespace, claim.queue, claim.item_id),
        ).fetchone()
        if row is None or row[1] == pid:
            out[pid] = "gone"  # dropped, or settled by this daemon meanwhile
        else:
            out[pid] = f"now held by {row[2]}"
    return out
