"""A persisted queue in PostgreSQL, shared by every ``ojd`` pointing at the same database.

Chosen per project by ``OJ_QUEUE_URL`` in the daemon's environment or ``[queues] url`` in
``.oj/config.toml`` (:func:`oj_trio.project.queue_url`); with neither, persisted queues stay in
the daemon's WAL (:mod:`.persisted`). Items are rows of ``oj_queue_items`` (:mod:`.pg_schema`),
keyed ``(namespace, queue, id)``, so namespaces isolate projects as they do locally.

* A push is one transaction (a batch too) that also notifies the queue: it is acknowledged after
  it committed, and it wakes idle workers on every daemon (:mod:`.pg_client`'s listener).
* A claim is one transaction: ``SELECT … FOR UPDATE SKIP LOCKED`` takes items nobody holds
  (pending; failed and due; active with an expired lease, whose history then says
  ``interrupted``), and marks them ``active`` for a fresh pipeline id with a lease that this
  daemon renews while the pipeline runs. The pipeline id is the claim's fencing token: an outcome
  or a renewal only applies while the row still carries it, so an item whose lease expired and
  that another daemon claimed is completed once, by the holder of the current claim.
* Retry counting, cooldowns and ``dead`` are decided by the worker exactly as for local queues
  (:mod:`.retry`); the retry time is stored with the item, on the database's clock, so any
  daemon claims it once it is due.
* The local WAL records only which pipeline runs which item (``worker:item_dispatched``), so a
  daemon restarted before its leases expired re-attaches its running pipelines
  (:meth:`PostgresQueue.attach`) instead of running them twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import psycopg
from psycopg.types.json import Jsonb

from .. import events as ev
from ..clock import Clock
from ..errors import NotFoundError, OjError
from ..records import QueueItem, QueueItemStatus
from ..state import AmbiguousPrefixError
from ..store import Store
from .backend import (
    KEEP_COMPLETED,
    PRUNE_EVERY,
    Claim,
    Claims,
    QueueError,
    WorkerRef,
    dispatched,
)
from .pg_client import CHANNEL, SETTLED, Held, PgClient
from .pg_schema import NOW_MS

Conn = psycopg.Connection[Any]
#: The shortest wait between two looks at a queue whose next item is (over)due but could not be
#: claimed (another daemon holds its row lock for a moment).
MIN_POLL = 0.05
#: History entries kept per item (the newest): a few dozen claims and outcomes say what
#: happened to it; thousands of retries would only bloat every read of the queue.
HISTORY_KEEP = 50
log = logging.getLogger("oj.queues.pg")

_COLUMNS = (
    "id, data, status, worker_name, owner, pushed_at_ms, failure_count, error, failed_at_ms, "
    "ended_at_ms, history"
)


def _appended(entries: str) -> str:
    """SQL for the item's history with ``entries`` added, keeping the newest
    :data:`HISTORY_KEEP`: an item retried forever must not grow without bound (its failure
    count is kept apart, whole)."""
    return f"jsonb_path_query_array(history || {entries}, '$[last - {HISTORY_KEEP - 1} to last]')"


def _entry(event: str, owner: str | None = None, detail: str | None = None) -> str:
    """SQL for one history entry (a JSON object stamped with the database's clock)."""
    fields = [f"'at_ms', {NOW_MS}", f"'event', '{event}'"]
    if owner is not None:
        fields.append(f"'by', {owner}")
    if detail is not None:
        fields.append(f"'detail', {detail}")
    return f"jsonb_build_array(jsonb_build_object({', '.join(fields)}))"


@attrs.frozen
class RemoteItem:
    """An item as read from the database, with its history (``claimed by host:pid``, …)."""

    item: QueueItem
    history: list[str]


def _remote_item(row: Sequence[Any], namespace: str, queue: str) -> RemoteItem:
    (item_id, data, status, worker, owner, pushed, failures, error, failed_at, ended, hist) = row
    item = QueueItem(
        id=item_id,
        queue_name=queue,
        namespace=namespace,
        data={str(k): str(v) for k, v in (data or {}).items()},
        pushed_at_ms=int(pushed),
        status=QueueItemStatus(status),
        worker_name=f"{worker}@{owner}" if worker and owner else worker,
        failure_count=int(failures),
        error=error,
        failed_at_ms=int(failed_at),
        ended_at_ms=int(ended),
    )
    lines = []
    for entry in hist or []:
        text = str(entry.get("event", "?"))
        if entry.get("by"):
            text += f" by {entry['by']}"
        if entry.get("detail"):
            text += f": {entry['detail']}"
        lines.append(text)
    return RemoteItem(item, lines)


class PostgresQueue:
    """The :class:`~oj_trio.queues.backend.QueueBackend` of one queue in PostgreSQL, and the
    operations ``oj queue push|items|list|drop|retry|prune`` do on it."""

    def __init__(
        self, client: PgClient, store: Store, clock: Clock, namespace: str, queue_name: str
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.namespace = namespace
        self.queue_name = queue_name
        #: Polling is the fallback of the listener; sooner when a retry or a lease falls due,
        #: later (backing off) while the database is away.
        self.poll_interval: float | None = client.poll_seconds

    @property
    def _key(self) -> tuple[str, str]:
        return (self.namespace, self.queue_name)

    def _notify(self, conn: Conn, *, settled: bool = False) -> None:
        """Tell every daemon (at commit) that the queue has news: items to claim, or
        (``settled``) only changed items, which wake ``oj queue wait`` but no worker."""
        payload = [*self._key, SETTLED] if settled else list(self._key)
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(payload)))

    # -- the worker's side -----------------------------------------------------------------------

    async def claim(
        self,
        worker: WorkerRef,
        limit: int,
        in_flight: frozenset[str],
        new_pipeline_id: Callable[[], str],
    ) -> Claims:
        if limit <= 0:
            return Claims([])
        pipeline_ids = [new_pipeline_id() for _ in range(limit)]
        owner = self.client.owner
        lease = self.client.lease_ms

        def take(conn: Conn) -> tuple[list[tuple[str, dict[str, Any], str, int]], int | None]:
            rows = conn.execute(
                f"""SELECT id, data, failure_count, status, owner FROM oj_queue_items
                WHERE namespace = %s AND queue = %s AND id <> ALL(%s::text[])
                  AND (status = 'pending'
                       OR (status = 'failed' AND retry_at_ms <= {NOW_MS})
                       OR (status = 'active' AND lease_until_ms <= {NOW_MS}))
                ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED""",
                (*self._key, sorted(in_flight), limit),
            ).fetchall()
            taken = []
            for (item_id, data, failures, status, previous), pid in zip(
                rows, pipeline_ids, strict=False
            ):
                interrupted = status == "active"
                history = _entry("claimed", "%s::text")
                if interrupted:
                    lapsed = _entry("interrupted", "%s::text", "'lease expired'")
                    history = f"{lapsed} || {history}"
                conn.execute(
                    f"""UPDATE oj_queue_items SET status = 'active', worker_name = %s,
                        owner = %s, pipeline_id = %s, lease_until_ms = {NOW_MS} + %s,
                        retry_at_ms = NULL, history = {_appended(history)}
                    WHERE namespace = %s AND queue = %s AND id = %s""",
                    (
                        worker.name,
                        owner,
                        pid,
                        lease,
                        *([previous] if interrupted else []),
                        owner,
                        *self._key,
                        item_id,
                    ),
                )
                taken.append((item_id, data, pid, int(failures)))
            # When a retry or someone else's lease falls due (this daemon's own claims are
            # renewed, and never claimed twice here).
            due = conn.execute(
                f"""SELECT min(CASE status WHEN 'failed' THEN retry_at_ms
                                          ELSE lease_until_ms END) - {NOW_MS}
                FROM oj_queue_items WHERE namespace = %s AND queue = %s
                  AND status IN ('failed', 'active') AND id <> ALL(%s::text[])
                  AND (pipeline_id IS NULL OR pipeline_id <> ALL(%s::text[]))""",
                (*self._key, sorted(in_flight), pipeline_ids),
            ).fetchone()
            return taken, None if due is None or due[0] is None else int(due[0])

        try:
            taken, due_in_ms = await self.client.run(take)
        except OjError:
            self.poll_interval = self.client.backoff or self.client.poll_seconds
            raise
        self.poll_interval = self.client.poll_seconds
        if due_in_ms is not None:
            self.poll_interval = min(self.poll_interval, max(MIN_POLL, due_in_ms / 1000 + 0.005))
        claims: list[Claim] = []
        for item_id, data, pid, failures in taken:
            self.client.held[pid] = Held(self.namespace, self.queue_name, item_id, failures)
            values = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
            claims.append(Claim(item_id, values, pid))
        return dispatched(worker, claims)

    def outcome_events(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str | None,
        retry_at_ms: int | None,
    ) -> None:
        return None  # the outcome is a database transaction, after the pipeline's end

    async def complete(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        await self._settle(
            worker,
            pipeline_id,
            item_id,
            f"""status = 'completed', ended_at_ms = {NOW_MS}, lease_until_ms = NULL,
                history = {_appended(_entry("completed", "owner"))}""",
            (),
        )
        count = self.client.completions.get(self._key, 0) + 1
        self.client.completions[self._key] = count % PRUNE_EVERY
        if count >= PRUNE_EVERY:
            try:
                await self.client.run(self._bound_completed)
            except QueueError as exc:  # the item is completed; the bound waits for next time
                log.warning("queue %s: %s", self.queue_name, exc)

    def _bound_completed(self, conn: Conn) -> None:
        """Keep the newest :data:`KEEP_COMPLETED` completed items, as a local queue does."""
        conn.execute(
            """DELETE FROM oj_queue_items WHERE namespace = %s AND queue = %s AND id IN (
                SELECT id FROM oj_queue_items
                WHERE namespace = %s AND queue = %s AND status = 'completed'
                ORDER BY ended_at_ms DESC, seq DESC OFFSET %s)""",
            (*self._key, *self._key, KEEP_COMPLETED),
        )

    async def fail(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        error: str,
        retry_at_ms: int | None,
    ) -> None:
        # The cooldown is re-based on the database's clock, which every daemon compares with.
        delay = None if retry_at_ms is None else max(0, retry_at_ms - self.clock.now_ms())
        status = "dead" if delay is None else "failed"
        await self._settle(
            worker,
            pipeline_id,
            item_id,
            f"""status = %s, failure_count = failure_count + 1, error = %s,
                failed_at_ms = {NOW_MS}, retry_at_ms = {NOW_MS} + %s::bigint,
                ended_at_ms = CASE WHEN %s THEN {NOW_MS} ELSE 0 END, lease_until_ms = NULL,
                history = {_appended(_entry(status, "owner", "%s::text"))}""",
            (status, error, delay, delay is None, error),
        )

    async def release(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        await self._settle(
            worker,
            pipeline_id,
            item_id,
            f"""status = 'pending', worker_name = NULL, owner = NULL, lease_until_ms = NULL,
                history = {_appended(_entry("released", "owner"))}""",
            (),
            notify=True,
        )

    async def _settle(
        self,
        worker: WorkerRef,
        pipeline_id: str,
        item_id: str,
        assignments: str,
        params: tuple[Any, ...],
        *,
        notify: bool = False,
    ) -> None:
        """Apply an outcome if this claim is still the item's current one (else it is a no-op:
        the lease lapsed and another daemon holds or settled the item), then record locally
        that the pipeline's item is settled."""

        def settle(conn: Conn) -> None:
            cur = conn.execute(
                f"""UPDATE oj_queue_items SET {assignments}
                WHERE namespace = %s AND queue = %s AND id = %s AND pipeline_id = %s
                  AND status = 'active'""",
                (*params, *self._key, item_id, pipeline_id),
            )
            if cur.rowcount:
                self._notify(conn, settled=not notify)

        await self.client.run(settle)
        self.client.held.pop(pipeline_id, None)
        await self.store.commit(
            ev.WorkerItemSettled(
                worker_name=worker.name, pipeline_id=pipeline_id, namespace=worker.namespace
            )
        )

    async def attach(self, worker: WorkerRef, pipeline_id: str, item_id: str) -> None:
        """After a restart: this daemon's pipeline for the claim still runs; hold the claim
        again. Whether it was lost meanwhile is found out by the next lease renewal, which is
        made now (a lost claim stops the pipeline, through the client's ``on_lost``); its
        failure count is read when it fails (:meth:`recount`)."""
        self.client.held[pipeline_id] = Held(self.namespace, self.queue_name, item_id, 0)
        self.client.renew_soon()

    async def recount(self, pipeline_id: str, item_id: str) -> None:
        """The item's failure count from the database: a claim made before a restart (its
        pipeline may even end before it is re-attached) does not know it, and a failure then
        counted from 0 would retry the item more often than its policy says.

        Raises:
            QueueError: the database is away (the outcome waits for it, as the settle would).
        """

        def count(conn: Conn) -> int | None:
            row = conn.execute(
                "SELECT failure_count FROM oj_queue_items "
                "WHERE namespace = %s AND queue = %s AND id = %s AND pipeline_id = %s",
                (*self._key, item_id, pipeline_id),
            ).fetchone()
            return None if row is None else int(row[0])

        failures = await self.client.run(count)
        if failures is not None:
            self.client.held[pipeline_id] = Held(self.namespace, self.queue_name, item_id, failures)

    def failures(self, item_id: str) -> int:
        for held in self.client.held.values():
            if held.item_id == item_id and (held.namespace, held.queue) == self._key:
                return held.failures
        return 0

    # -- the CLI's side --------------------------------------------------------------------------

    async def push(self, values: Sequence[Mapping[str, str]]) -> list[str]:
        """Insert ``values`` as new items in one transaction that also wakes the workers."""
        ids = [str(uuid.uuid4()) for _ in values]

        def insert(conn: Conn) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    f"""INSERT INTO oj_queue_items (namespace, queue, id, data, pushed_at_ms)
                    VALUES (%s, %s, %s, %s, {NOW_MS})""",
                    [(*self._key, i, Jsonb(dict(v))) for i, v in zip(ids, values, strict=True)],
                )
            self._notify(conn)

        await self.client.run(insert)
        return ids

    async def items(self, status: str | None = None) -> list[RemoteItem]:
        """The queue's items, newest first (``status``: only those)."""

        def select(conn: Conn) -> list[RemoteItem]:
            where = "" if status is None else " AND status = %s"
            rows = conn.execute(
                f"""SELECT {_COLUMNS} FROM oj_queue_items
                WHERE namespace = %s AND queue = %s{where} ORDER BY seq DESC""",
                (*self._key, *([] if status is None else [status])),
            ).fetchall()
            return [_remote_item(r, *self._key) for r in rows]

        return await self.client.run(select)

    async def counts(self) -> dict[str, int]:
        """Items by status."""

        def count(conn: Conn) -> dict[str, int]:
            rows = conn.execute(
                """SELECT status, count(*) FROM oj_queue_items
                WHERE namespace = %s AND queue = %s GROUP BY status""",
                self._key,
            ).fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        return await self.client.run(count)

    def _find(self, conn: Conn, given: str) -> str:
        """The full id of the item ``given`` (an id or a unique prefix).

        Raises:
            NotFoundError, AmbiguousPrefixError.
        """
        rows = conn.execute(
            """SELECT id FROM oj_queue_items WHERE namespace = %s AND queue = %s
              AND left(id, length(%s)) = %s ORDER BY id LIMIT 20""",
            (*self._key, given, given),
        ).fetchall()
        ids = [str(r[0]) for r in rows]
        if given in ids:
            return given
        if len(ids) == 1 and given:
            return ids[0]
        if len(ids) > 1 and given:
            raise AmbiguousPrefixError(given, ids)
        raise NotFoundError(f"item '{given}' not found in queue '{self.queue_name}'")

    async def drop(self, given: str) -> str:
        """Remove one item (an active one's pipeline runs on; its outcome then finds nothing)."""

        def delete(conn: Conn) -> str:
            item_id = self._find(conn, given)
            conn.execute(
                "DELETE FROM oj_queue_items WHERE namespace = %s AND queue = %s AND id = %s",
                (*self._key, item_id),
            )
            self._notify(conn, settled=True)
            return item_id

        return await self.client.run(delete)

    async def retry(self, given: str | None) -> list[str]:
        """Failed or dead items back to pending with their failure count reset: the item
        ``given``, or (None) every dead one; wakes the workers on every daemon.

        Raises:
            NotFoundError, AmbiguousPrefixError; OjError: ``given`` is neither failed nor dead.
        """

        def back_to_pending(conn: Conn) -> list[str]:
            if given is not None:
                item_id = self._find(conn, given)
                row = conn.execute(
                    "SELECT status FROM oj_queue_items "
                    "WHERE namespace = %s AND queue = %s AND id = %s FOR UPDATE",
                    (*self._key, item_id),
                ).fetchone()
                status = "" if row is None else str(row[0])
                if status not in ("failed", "dead"):
                    raise OjError(
                        f"item '{given}' is {status.capitalize()}, only dead or failed items "
                        "can be retried"
                    )
                where, params = "id = %s", [item_id]
            else:
                where, params = "status = 'dead'", []
            rows = conn.execute(
                f"""UPDATE oj_queue_items SET status = 'pending', failure_count = 0,
                    worker_name = NULL, owner = NULL, pipeline_id = NULL, retry_at_ms = NULL,
                    ended_at_ms = 0, history = {_appended(_entry("retried"))}
                WHERE namespace = %s AND queue = %s AND {where} RETURNING id, seq""",
                (*self._key, *params),
            ).fetchall()
            if rows:
                self._notify(conn)
            return [str(r[0]) for r in sorted(rows, key=lambda r: int(r[1]))]

        return await self.client.run(back_to_pending)

    async def prune(
        self, *, everything: bool, dry_run: bool, older_than_ms: int
    ) -> tuple[list[RemoteItem], int]:
        """Completed and dead items that ended more than ``older_than_ms`` ago (all of them
        with ``everything``); returns them and how many items were kept."""

        def prune(conn: Conn) -> tuple[list[RemoteItem], int]:
            age = "" if everything else f" AND ended_at_ms <= {NOW_MS} - %s"
            rows = conn.execute(
                f"""SELECT {_COLUMNS} FROM oj_queue_items
                WHERE namespace = %s AND queue = %s AND status IN ('completed', 'dead'){age}
                ORDER BY seq""",
                (*self._key, *([] if everything else [older_than_ms])),
            ).fetchall()
            pruned = [_remote_item(r, *self._key) for r in rows]
            total = conn.execute(
                "SELECT count(*) FROM oj_queue_items WHERE namespace = %s AND queue = %s",
                self._key,
            ).fetchone()
            if pruned and not dry_run:
                conn.execute(
                    "DELETE FROM oj_queue_items WHERE namespace = %s AND queue = %s "
                    "AND id = ANY(%s::text[])",
                    (*self._key, [p.item.id for p in pruned]),
                )
            return pruned, (int(total[0]) if total else 0) - len(pruned)

        return await self.client.run(prune)


async def queue_names(client: PgClient, namespace: str) -> list[str]:
    """The queues of ``namespace`` that hold items in the database."""

    def select(conn: Conn) -> list[str]:
        rows = conn.execute(
            "SELECT DISTINCT queue FROM oj_queue_items WHERE namespace = %s", (namespace,)
        ).fetchall()
        return sorted(str(r[0]) for r in rows)

    return await client.run(select)
