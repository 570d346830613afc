"""Shared queues on PostgreSQL (issue 12; SPEC §9): what the database costs, and two daemons.

Prints figures, never a pass/fail test. A throwaway PostgreSQL cluster (``tests/pg_cluster.py``,
PostgreSQL's durable defaults: ``fsync=on``, ``synchronous_commit=on``) listens on a Unix socket;
every run gets a fresh database and fresh ``ojd``s, each in its own state dir with its own copy of
the project (namespace ``bench``), as on separate machines. Systems run interleaved ``--runs``
times and every run is printed:

* **wal**: one daemon, queue in its WAL (as ``bench/queue_bench.py``'s oj run);
* **pg**: one daemon, queue in PostgreSQL (``OJ_QUEUE_URL``);
* **pg×2**: two daemons on the same database, a worker of concurrency 16 on each (B's started by
  hand, A's auto-started by the push).

Each: one ``oj queue push jobs --file`` of ``--jobs`` trivial jobs (step ``run = "true"``) until
every item completed (wall time from the push). On this 2-core machine two daemons share the
same cores as one, so the pg×2/pg ratio says what sharing costs, not what a second machine gains.

Then, once: push → durable ack p50/p99 (a Python client's ``QueuePush`` round trip to a queue
without workers; wal vs pg), and push → first step spawned p50/p99 (the step writes bash's
``$EPOCHREALTIME``): on the same daemon (wal, pg) and on the *other* daemon (pg, pushed on A, run
by B, woken by LISTEN/NOTIFY).

Usage: .venv/bin/python bench/pg_bench.py [--runs 3] [--jobs 1000] [--samples 200]
       [--report FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from pg_cluster import MISSING, PgCluster, find_bin_dir  # noqa: E402
from report import Report, add_report_argument  # noqa: E402

RUN_ALL_ORDER = 60
RUN_ALL_ARGS = ["--runs", "2", "--samples", "100"]
RUN_ALL_SMOKE_ARGS = ["--runs", "1", "--jobs", "20", "--samples", "10"]
RUN_ALL_TIMEOUT = 300

NAMESPACE = "bench"
RUNBOOK = """\
queue "jobs" {
  type = "persisted"
  vars = ["n"]
}
pipeline "job" {
  vars = ["job"]
  step "run" { run = "true" }
}
worker "runner" {
  source      = { queue = "jobs" }
  handler     = { pipeline = "job" }
  concurrency = 16
}
queue "sink" {
  type = "persisted"
  vars = ["n"]
}
queue "probe" {
  type = "persisted"
  vars = ["n"]
}
pipeline "probe" {
  vars = ["job"]
  step "stamp" { run = "echo $EPOCHREALTIME > \\"PROBE_DIR/${var.job.n}\\"" }
}
worker "prober" {
  source      = { queue = "probe" }
  handler     = { pipeline = "probe" }
  concurrency = 1
}
"""


class Daemon:
    """One ``ojd`` with its own state dir and project checkout."""

    def __init__(self, base: Path, probe_dir: Path, url: str | None) -> None:
        from oj_trio.client import Client

        self.root = Path(tempfile.mkdtemp(prefix="d", dir=base))
        self.project = self.root / "p"
        (self.project / ".oj" / "runbooks").mkdir(parents=True)
        text = RUNBOOK.replace("PROBE_DIR", str(probe_dir))
        (self.project / ".oj" / "runbooks" / "bench.hcl").write_text(text)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OJ_")},
            "OJ_STATE_DIR": str(self.root / "s"),
            "OJ_DAEMON_BINARY": str(BIN / "ojd"),
            "OJ_NAMESPACE": NAMESPACE,
        }
        if url is not None:
            self.env["OJ_QUEUE_URL"] = url
        self.client = Client(self.env)
        self.client.ensure_running()
        pid = self.client.daemon_pid()
        assert pid is not None
        self.pid = pid

    def oj(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "oj"), *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise SystemExit(f"oj {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout

    def queue(self, name: str) -> dict[str, Any]:
        answer = self.client.query(
            "ListQueues", project_root=str(self.project), namespace=NAMESPACE
        )
        for queue in answer["queues"]:
            if queue["name"] == name:
                if queue.get("error"):
                    raise SystemExit(f"queue {name}: {queue['error']}")
                return dict(queue)
        raise SystemExit(f"queue {name!r} not in ListQueues: {answer}")

    def push(self, queue: str, n: str) -> None:
        from oj_trio import protocol

        self.client.call(
            protocol.request(
                "QueuePush",
                project_root=str(self.project),
                namespace=NAMESPACE,
                queue=queue,
                data={"n": n},
            )
        )

    def stop(self) -> None:
        try:
            if not self.client.stop():
                self.client.stop(kill=True)
        except Exception as exc:  # never leave a daemon behind
            print(f"  (oj daemon stop: {exc}; killing pid {self.pid})", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def daemons(base: Path, probe: Path, urls: list[str | None]) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    try:
        for url in urls:
            started.append(Daemon(base, probe, url))
        yield started
    finally:
        for d in started:
            d.stop()


def owners(url: str) -> dict[str, int]:
    """Completed items per claiming daemon (from the database)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT owner, count(*) FROM oj_queue_items WHERE status = 'completed' GROUP BY owner"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def jobs_run(
    system: str, cluster: PgCluster, base: Path, items: Path, jobs: int
) -> tuple[str, float]:
    url = cluster.createdb() if system != "wal" else None
    count = 2 if system == "pg×2" else 1
    with daemons(base, base / "probe", [url] * count) as ds:
        a = ds[0]
        a.queue("jobs")  # warm: the runbook parsed, the database schema created
        if count == 2:
            ds[1].oj("worker", "start", "runner")
        start = time.perf_counter()
        a.oj("queue", "push", "jobs", "--file", str(items))
        pushed = time.perf_counter() - start
        deadline = time.monotonic() + 300
        while True:
            q = a.queue("jobs")
            if q["completed"] >= jobs:
                break
            if q["failed"] or q["dead"] or time.monotonic() > deadline:
                raise SystemExit(f"{system}: {q}")
            time.sleep(0.01)
        wall = time.perf_counter() - start
        share = ""
        if url is not None and count == 2:
            share = "  completed per daemon: " + ", ".join(
                str(n) for n in sorted(owners(url).values(), reverse=True)
            )
        return f"{wall:6.2f} s  (push {pushed * 1000:5.0f} ms){share}", wall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def acks(d: Daemon, samples: int) -> list[float]:
    out = []
    for i in range(samples):
        t0 = time.perf_counter()
        d.push("sink", str(i))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def first_step(pusher: Daemon, runner: Daemon, probe: Path, samples: int) -> list[float]:
    runner.oj("worker", "start", "prober")
    out = []
    for i in range(samples):
        tag = f"{pusher.root.name}-{i}"
        t0 = time.time()
        pusher.push("probe", tag)
        stamp = probe / tag
        deadline = time.monotonic() + 30
        while not (stamp.exists() and stamp.read_text().strip()):
            if time.monotonic() > deadline:
                raise SystemExit(f"probe {tag} never ran")
            time.sleep(0.0005)
        out.append((float(stamp.read_text()) - t0) * 1000)
    return out


def record(report: Report, key: str, label: str, values: list[float]) -> list[float]:
    report.figure(
        key, label, statistics.median(values), "ms",
        note=f"p99 {pct(values, 0.99):.2f} ms, n={len(values)}",
    )  # fmt: skip
    return values


def line(name: str, values: list[float]) -> str:
    return (
        f"  {name:<34} p50 {statistics.median(values):6.2f} ms   p99 {pct(values, 0.99):6.2f} ms"
        f"   (n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=200)
    add_report_argument(parser)
    args = parser.parse_args()
    report = Report("pg", "Shared queues on PostgreSQL (issue 12)")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        report.skip(MISSING)
        report.write(args.report)
        raise SystemExit(MISSING)
    base = Path(tempfile.mkdtemp(prefix="ojpgb", dir="/tmp"))
    cluster = PgCluster(bin_dir, fast=False)
    try:
        cluster.init()
        cluster.start()
        import psycopg

        with psycopg.connect(cluster.url()) as conn:
            settings = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
            }
        print(f"# {time.strftime('%Y-%m-%d %H:%M')} UTC; PostgreSQL {settings}")
        print(f"# {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
        (base / "probe").mkdir()
        items = base / "items.jsonl"
        items.write_text("".join(json.dumps({"n": str(i)}) + "\n" for i in range(args.jobs)))
        walls: dict[str, list[float]] = {"wal": [], "pg": [], "pg×2": []}
        print(f"{args.jobs} trivial jobs, worker concurrency 16 per daemon:")
        for run in range(1, args.runs + 1):
            for system in walls:
                text, wall = jobs_run(system, cluster, base, items, args.jobs)
                walls[system].append(wall)
                print(f"  run {run}  {system:<5} {text}", flush=True)
        med = {k: statistics.median(v) for k, v in walls.items()}
        print(
            f"  median: wal {med['wal']:.2f} s, pg {med['pg']:.2f} s, pg×2 {med['pg×2']:.2f} s;"
            f" pg/wal {med['pg'] / med['wal']:.2f}, pg×2/pg {med['pg×2'] / med['pg']:.2f}"
        )
        runs = {k: " / ".join(f"{w:.2f}" for w in v) for k, v in walls.items()}
        report.figure(
            "pg_jobs_vs_wal", f"{args.jobs:,} jobs, queue in PostgreSQL / queue in the WAL, wall",
            med["pg"] / med["wal"], "×", note=f"wal {runs['wal']} s, pg {runs['pg']} s",
        )  # fmt: skip
        report.figure(
            "pg_two_daemons", f"{args.jobs:,} jobs, two daemons on one database / one daemon, "
            "wall (same 2 cores)", med["pg×2"] / med["pg"], "×", note=f"pg×2 {runs['pg×2']} s",
        )  # fmt: skip
        print("push → durable ack (Python client, one at a time, no worker on the queue):")
        with daemons(base, base / "probe", [None]) as (local,):
            local.queue("sink")
            print(line("wal", record(report, "pg_ack_wal", "push → durable ack, WAL queue, p50",
                                     acks(local, args.samples))))  # fmt: skip
        url = cluster.createdb()
        with daemons(base, base / "probe", [url, url]) as (a, b):
            a.queue("sink")
            b.queue("sink")
            print(line("pg", record(report, "pg_ack_pg", "push → durable ack, PostgreSQL "
                                    "queue, p50", acks(a, args.samples))))  # fmt: skip
            n = max(20, args.samples // 4)
            print("push → first step spawned (idle worker of concurrency 1):")
            other = first_step(a, b, base / "probe", n)
            record(report, "pg_first_other", "push → first step, pushed on A, run by B, p50", other)
            print(line("pg, pushed on A, run by B", other))
        with daemons(base, base / "probe", [cluster.createdb()]) as (one,):
            one.queue("probe")
            same = first_step(one, one, base / "probe", n)
            record(
                report,
                "pg_first_same",
                "push → first step, PostgreSQL queue, same daemon, p50",
                same,
            )
            print(line("pg, same daemon", same))
        with daemons(base, base / "probe", [None]) as (local,):
            local.queue("probe")
            same = first_step(local, local, base / "probe", n)
            record(report, "pg_first_wal", "push → first step, WAL queue, same daemon, p50", same)
            print(line("wal, same daemon", same))
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)
    report.write(args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
