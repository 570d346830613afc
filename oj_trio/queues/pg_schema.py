"""The PostgreSQL schema of shared queues, created on first use and versioned.

``oj_schema`` holds one row, the version of the tables below. The first daemon that connects
creates them (under an advisory lock, so two daemons starting together do not race); a later
release adds a step to :data:`MIGRATIONS` and bumps :data:`VERSION`. A database whose schema is
newer than this oj is refused with a one-line error instead of being misread.

All times are the *database's* epoch milliseconds (:data:`NOW_MS`), never a daemon's clock:
leases and retry times are compared on one clock, however far apart the machines' clocks are.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .backend import QueueError

#: The database's clock, in epoch milliseconds (``clock_timestamp``: it moves within a transaction).
NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

#: An arbitrary constant key for ``pg_advisory_xact_lock`` while the schema is created.
LOCK_KEY = 0x6F6A_7175  # "ojqu"

_V1 = """
CREATE TABLE oj_queue_items (
    namespace      text    NOT NULL,
    queue          text    NOT NULL,
    id             text    NOT NULL,
    seq            bigserial,
    data           jsonb   NOT NULL,
    status         text    NOT NULL DEFAULT 'pending',
    pushed_at_ms   bigint  NOT NULL,
    worker_name    text,
    owner          text,
    pipeline_id    text,
    lease_until_ms bigint,
    failure_count  integer NOT NULL DEFAULT 0,
    error          text,
    failed_at_ms   bigint  NOT NULL DEFAULT 0,
    retry_at_ms    bigint,
    ended_at_ms    bigint  NOT NULL DEFAULT 0,
    history        jsonb   NOT NULL DEFAULT '[]',
    PRIMARY KEY (namespace, queue, id)
);
CREATE INDEX oj_queue_items_open ON oj_queue_items (namespace, queue, seq)
    WHERE status IN ('pending', 'active', 'failed');
"""

#: ``MIGRATIONS[n]`` brings a schema of version ``n`` to ``n + 1`` (0: an empty database).
MIGRATIONS: tuple[str, ...] = (_V1,)
VERSION = len(MIGRATIONS)


def ensure(conn: psycopg.Connection[Any]) -> None:
    """Create or migrate the schema (blocking; called from a worker thread).

    Raises:
        QueueError: the database's schema is newer than this oj understands.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS oj_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM oj_schema").fetchone()
        current = 0 if row is None else int(row[0])
        if current > VERSION:
            raise QueueError(
                f"the queue database has schema version {current}, newer than this oj "
                f"understands ({VERSION}); upgrade oj"
            )
        for step in MIGRATIONS[current:]:
            conn.execute(step)
        if row is None:
            conn.execute("INSERT INTO oj_schema (version) VALUES (%s)", (VERSION,))
        elif current != VERSION:
            conn.execute("UPDATE oj_schema SET version = %s", (VERSION,))
