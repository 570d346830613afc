"""Crash-test writer: appends through a real Store forever, printing an acknowledgement per commit.

Usage: ``python tests/helpers/wal_writer.py STATE_DIR RUN_ID``. Each line on stdout is
``<last seq> <item id> <item id> ...`` and is printed only after ``Store.commit`` returned, i.e. after
the events are durable. Item ids are ``<run>-<task>-<n>-<k>of<size>`` so the test can check that every
multi-event commit is all-or-nothing. Snapshots run often so SIGKILL also lands mid-snapshot.
"""

import sys
from pathlib import Path

import trio

from oj_trio import events as ev
from oj_trio.store import Store

TASKS = 6


async def main(state_dir: Path, run: str) -> None:
    store, _ = Store.open(state_dir, snapshot_every=97, snapshot_interval=0.05)
    out = sys.stdout

    async def appender(task: int) -> None:
        n = 0
        while True:
            size = 1 + (n + task) % 3
            ids = [f"{run}-{task}-{n}-{k}of{size}" for k in range(size)]
            seq = await store.commit(
                *(
                    ev.QueuePushed(
                        queue_name="q", item_id=i, pushed_at_epoch_ms=n, data={"p": "x" * 40}
                    )
                    for i in ids
                )
            )
            out.write(f"{seq} {' '.join(ids)}\n")
            out.flush()
            n += 1

    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        for t in range(TASKS):
            nursery.start_soon(appender, t)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]), sys.argv[2])
