"""The PostgreSQL backend driven directly under trio against a real database (no daemon):
atomic claims from two clients at once, the bound on completed items, a newer schema refused."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

from oj_trio import events as ev  # noqa: E402
from oj_trio.clock import Clock  # noqa: E402
from oj_trio.queues import postgres  # noqa: E402
from oj_trio.queues.backend import QueueError, WorkerRef  # noqa: E402
from oj_trio.queues.pg_client import PgClient  # noqa: E402
from oj_trio.queues.postgres import PostgresQueue  # noqa: E402

WORKER = WorkerRef("w", "ns")


class FakeStore:
    """Records what the backend commits locally (``worker:item_settled``)."""

    def __init__(self) -> None:
        self.committed: list[ev.EventBase] = []

    async def commit(self, *events: ev.EventBase) -> int:
        self.committed.extend(events)
        return len(self.committed)


def make_queue(url: str, owner: str, store: FakeStore | None = None) -> PostgresQueue:
    client = PgClient(
        url,
        owner=owner,
        lease_ms=30000,
        poll_seconds=5,
        on_wake=lambda _q: None,
        on_lost=lambda _p: None,
    )
    store = store or FakeStore()
    return PostgresQueue(client, store, Clock.system(), "ns", "q")  # type: ignore[arg-type]


def ids(prefix: str) -> Any:
    counter = itertools.count()
    return lambda: f"{prefix}-{next(counter)}"


async def test_two_clients_claiming_at_once_never_share_an_item(db: str) -> None:
    a, b = make_queue(db, "a:1"), make_queue(db, "b:1")
    pushed = await a.push([{"n": str(n)} for n in range(10)])
    got: dict[str, list[str]] = {}

    async def claim(q: PostgresQueue, name: str) -> None:
        taken = await q.claim(WORKER, 6, frozenset(), ids(name))
        got[name] = [c.item_id for c in taken.claims]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(claim, a, "a")
        nursery.start_soon(claim, b, "b")
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"]) == sorted(pushed)
    assert (await a.counts()) == {"active": 10}
    # An item already running here (in flight) is never claimed again by this daemon.
    c = make_queue(db, "c:1")
    more = await c.push([{"n": "x"}])
    assert (await c.claim(WORKER, 5, frozenset(more), ids("c"))).claims == []


async def test_completed_items_are_bounded_like_a_local_queue(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "KEEP_COMPLETED", 3)
    monkeypatch.setattr(postgres, "PRUNE_EVERY", 2)
    store = FakeStore()
    q = make_queue(db, "a:1", store)
    await q.push([{"n": str(n)} for n in range(7)])
    taken = await q.claim(WORKER, 7, frozenset(), ids("p"))
    for claim in taken.claims[:6]:
        await q.complete(WORKER, claim.pipeline_id, claim.item_id)
    assert await q.counts() == {"completed": 3, "active": 1}
    kept = {r.item.data["n"] for r in await q.items("completed")}
    assert kept == {"3", "4", "5"}  # the newest
    assert (
        [e.pipeline_id for e in store.committed]
        == [  # type: ignore[attr-defined]
            c.pipeline_id for c in taken.claims[:6]
        ]
    )
    # An outcome for a claim that is not the item's current one changes nothing.
    last = taken.claims[6]
    await q.fail(WORKER, "not-the-claim", last.item_id, "boom", None)
    assert await q.counts() == {"completed": 3, "active": 1}


async def test_an_item_retried_forever_keeps_only_its_newest_history(db: str) -> None:
    q = make_queue(db, "a:1")
    (item_id,) = await q.push([{"n": "1"}])
    rounds = postgres.HISTORY_KEEP // 2 + 5
    for n in range(rounds):
        (claim,) = (await q.claim(WORKER, 1, frozenset(), ids(f"p{n}"))).claims
        retry_now = q.clock.now_ms()  # due at once: claimed again by the next round
        await q.fail(WORKER, claim.pipeline_id, item_id, f"boom {n}", retry_now)
    (item,) = await q.items()
    assert item.item.failure_count == rounds  # counted whole
    assert len(item.history) == postgres.HISTORY_KEEP
    assert item.history[-1].startswith("failed by a:1: boom") and item.history[-1].endswith(
        f"boom {rounds - 1}"
    )
    assert item.history[-2].startswith("claimed by a:1")


async def test_a_database_with_a_newer_schema_is_refused_in_one_line(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE oj_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO oj_schema VALUES (99)")
    q = make_queue(db, "a:1")
    with pytest.raises(QueueError) as raised:
        await q.push([{"n": "1"}])
    message = str(raised.value)
    assert "schema version 99" in message and "upgrade oj" in message
    assert "\n" not in message


async def test_an_unreachable_database_is_a_one_line_queue_error(cluster: Any) -> None:
    q = make_queue(cluster.url("postgres").replace(str(cluster.root), "/nonexistent"), "a:1")
    with pytest.raises(QueueError) as raised:
        await q.push([{"n": "1"}])
    assert "unreachable" in str(raised.value) and "\n" not in str(raised.value)
    assert q.client.error is not None and q.client.backoff > 0


async def test_the_first_calls_after_a_database_restart_do_not_fail_on_stale_connections(
    cluster: Any, db: str
) -> None:
    """The idle connections died with the restart: a call that finds one dead before its
    transaction began takes a fresh one instead of failing a push the database would take."""
    q = make_queue(db, "a:1")
    async with trio.open_nursery() as nursery:  # several idle connections kept
        for n in range(4):
            nursery.start_soon(q.push, [{"n": str(n)}])
    cluster.stop()
    cluster.start()
    for n in range(4, 12):
        await q.push([{"n": str(n)}])
    assert (await q.counts()) == {"pending": 12}
    assert q.client.error is None
