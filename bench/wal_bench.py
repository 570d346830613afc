"""WAL and store benchmarks (issue 3). Prints figures; not a test.

    .venv/bin/python bench/wal_bench.py [--quick] [--million]

Measures, in one run so ratios are comparable on a noisy machine:
  * this machine's raw "write a line + fdatasync" rate (the ceiling of a non-batching WAL);
  * durable ``Store.commit`` rate with 1, 8 and 32 concurrent appenders (one event per commit);
  * p50/p99 latency of a lone commit;
  * replay speed (events/s) for 10^5 (and with --million 10^6) events;
  * restart time with 10,000 pipelines in the snapshot.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, add_report_argument

from oj_trio import events as ev
from oj_trio import wal
from oj_trio.state import MaterializedState
from oj_trio.store import Store

RUN_ALL_ORDER = 10
RUN_ALL_ARGS = ["--quick"]
RUN_ALL_SMOKE_ARGS = ["--tiny"]
RUN_ALL_TIMEOUT = 180


def raw_fsync_rate(tmp: Path, n: int) -> float:
    path = tmp / "raw.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    line = wal.encode_line(
        1, ev.QueuePushed(queue_name="q", item_id="x" * 36, pushed_at_epoch_ms=1)
    )
    t0 = time.perf_counter()
    for _ in range(n):
        os.write(fd, line)
        os.fdatasync(fd)
    dt = time.perf_counter() - t0
    os.close(fd)
    return n / dt


def push(i: int) -> ev.QueuePushed:
    return ev.QueuePushed(
        queue_name="jobs",
        item_id=f"{i:08d}-0000-4000-8000-000000000000",
        data={"n": str(i), "title": "fix the thing"},
        pushed_at_epoch_ms=1_700_000_000_000 + i,
        namespace="proj",
    )


async def _appenders(store: Store, concurrency: int, duration: float) -> tuple[int, list[float]]:
    count = 0
    lat: list[float] = []
    stop = time.perf_counter() + duration

    async def one(task: int) -> None:
        nonlocal count
        i = task * 10_000_000
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await store.commit(push(i))
            lat.append(time.perf_counter() - t)
            count += 1
            i += 1

    async with trio.open_nursery() as nursery:
        for task in range(concurrency):
            nursery.start_soon(one, task)
    return count, lat


def commit_rate(tmp: Path, concurrency: int, duration: float, *, sync: bool = True) -> dict:
    d = Path(tempfile.mkdtemp(dir=tmp))
    store, _ = Store.open(d, sync=sync, snapshot_interval=0, snapshot_every=10**9)
    result: dict = {}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            t0 = time.perf_counter()
            count, lat = await _appenders(store, concurrency, duration)
            dt = time.perf_counter() - t0
            lat.sort()
            result.update(
                rate=count / dt,
                p50=lat[len(lat) // 2] * 1e3,
                p99=lat[int(len(lat) * 0.99)] * 1e3,
                fsyncs=store.writer.stats.fsyncs,
                appends=store.writer.stats.appends,
            )
            await store.writer.aclose()

    trio.run(main)
    return result


def make_wal(d: Path, n_events: int) -> int:
    """A realistic event mix: each job = push, take, create, 2 steps (start/spawn/exit), advance, done."""
    wal_file = wal.wal_path(d)
    wal_file.parent.mkdir(parents=True, exist_ok=True)
    seq = 0
    with open(wal_file, "wb") as f:
        buf = []
        job = 0
        while seq < n_events:
            pid = f"{job:08d}-aaaa-4bbb-8ccc-dddddddddddd"
            item = f"{job:08d}-1111-4222-8333-444444444444"
            t = 1_700_000_000_000 + job
            evs = [
                ev.QueuePushed(queue_name="jobs", item_id=item, data={"n": str(job)},
                               pushed_at_epoch_ms=t, namespace="proj"),
                ev.QueueTaken(queue_name="jobs", item_id=item, worker_name="w", namespace="proj"),
                ev.PipelineCreated(id=pid, kind="build", name=f"build-{job}", runbook_hash="h" * 64,
                                   cwd="/home/u/proj", vars={"item.n": str(job), "invoke.dir": "/x"},
                                   initial_step="build", created_at_epoch_ms=t, namespace="proj"),
                ev.StepStarted(pipeline_id=pid, step="build", at_ms=t + 1),
                ev.ShellSpawned(pipeline_id=pid, step="build", pid=1000 + job % 30000,
                                pgid=1000 + job % 30000, start_ticks=123456 + job),
                ev.ShellExited(pipeline_id=pid, step="build", exit_code=0, at_ms=t + 5),
                ev.PipelineAdvanced(id=pid, step="test", at_ms=t + 6),
                ev.StepStarted(pipeline_id=pid, step="test", at_ms=t + 6),
                ev.ShellExited(pipeline_id=pid, step="test", exit_code=0, at_ms=t + 9),
                ev.PipelineAdvanced(id=pid, step="done", at_ms=t + 10),
                ev.QueueCompleted(queue_name="jobs", item_id=item, namespace="proj"),
            ]  # fmt: skip
            for e in evs:
                if seq >= n_events:
                    break
                seq += 1
                buf.append(wal.encode_line(seq, e))
            job += 1
            if len(buf) > 10_000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    return seq


def replay_rate(tmp: Path, n_events: int) -> tuple[float, float, int]:
    d = Path(tempfile.mkdtemp(dir=tmp))
    make_wal(d, n_events)
    size = wal.wal_path(d).stat().st_size
    t0 = time.perf_counter()
    r = wal.replay(d)
    dt = time.perf_counter() - t0
    assert r.last_seq == n_events
    return n_events / dt, dt, size


def restart_with_pipelines(tmp: Path, n_pipelines: int) -> tuple[float, int]:
    d = Path(tempfile.mkdtemp(dir=tmp))
    n_events = make_wal(d, n_pipelines * 11)
    state = wal.replay(d).state
    assert len(state.pipelines) == n_pipelines
    wal.write_snapshot(d, n_events, state.to_dict())
    wal.wal_path(d).write_bytes(b"")
    size = (d / "snapshot.json").stat().st_size
    t0 = time.perf_counter()
    store, _ = Store.open(d)
    dt = time.perf_counter() - t0
    assert len(store.state.pipelines) == n_pipelines and isinstance(store.state, MaterializedState)
    return dt, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--tiny", action="store_true", help="minimal sizes (smoke test only)")
    ap.add_argument("--million", action="store_true", help="also replay 10^6 events")
    add_report_argument(ap)
    args = ap.parse_args()
    duration = 0.1 if args.tiny else 1.0 if args.quick else 3.0
    report = Report("wal", "WAL and store (issue 3)")
    with tempfile.TemporaryDirectory(dir=os.environ.get("OJ_BENCH_DIR")) as tmpdir:
        tmp = Path(tmpdir)
        raw = raw_fsync_rate(tmp, 20 if args.tiny else 500 if args.quick else 2000)
        print(f"raw write+fdatasync of one line: {raw:,.0f}/s ({1e3 / raw:.3f} ms each)")
        report.figure("raw_fsync", "raw `write` + `fdatasync` of one line", raw, "/s")
        for c in (1, 8, 32):
            r = commit_rate(tmp, c, duration)
            per_fsync = r["appends"] / max(r["fsyncs"], 1)
            print(
                f"durable commits, {c:2d} appenders: {r['rate']:>9,.0f}/s  "
                f"p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  "
                f"({per_fsync:.1f} appends/fsync; "
                f"{r['rate'] / raw:.1f}x raw fsync rate)"
            )
            note = f"p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms, {per_fsync:.1f} appends/fsync"
            if c == 32:
                report.figure(
                    "wal_appends_32", "durable WAL appends/s, 32 concurrent appenders",
                    r["rate"], "/s", target="≥ 50,000/s", ok=r["rate"] >= 50_000,
                    ratio=r["rate"] / 50_000, spec=True, note=note,
                )  # fmt: skip
            else:
                report.figure(f"wal_appends_{c}", f"durable WAL appends/s, {c} appender(s)",
                              r["rate"], "/s", note=note)  # fmt: skip
        r = commit_rate(tmp, 32, duration, sync=False)
        print(f"no-fsync commits, 32 appenders: {r['rate']:>9,.0f}/s (the ceiling without disk)")
        report.figure("wal_appends_32_nofsync", "WAL appends/s, 32 appenders, fsync off (CPU "
                      "ceiling of the path)", r["rate"], "/s")  # fmt: skip
        sizes = [10**3 if args.tiny else 10**5] + ([10**6] if args.million else [])
        for n in sizes:
            rate, dt, size = replay_rate(tmp, n)
            print(
                f"replay {n:>9,} events: {rate:>9,.0f} events/s ({dt:.2f} s, {size / 1e6:.0f} MB)"
            )
            report.figure(
                f"replay_{n}", f"WAL replay, {n:,} events", rate, "events/s",
                target="≥ 150,000 events/s", ok=rate >= 150_000, ratio=rate / 150_000,
                spec=True, note=f"{dt:.2f} s, {size / 1e6:.0f} MB",
            )  # fmt: skip
        pipelines = 100 if args.tiny else 10_000
        dt, size = restart_with_pipelines(tmp, pipelines)
        print(f"restart, {pipelines:,} pipelines (snapshot {size / 1e6:.1f} MB): {dt * 1e3:.0f} ms")
        report.figure(
            "restart_10k", f"restart with {pipelines:,} pipelines in state (snapshot "
            f"{size / 1e6:.1f} MB)", dt * 1e3, "ms", target="< 1 s", ok=dt < 1.0,
            ratio=dt / 1.0, spec=True,
        )  # fmt: skip
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    report.write(args.report)


if __name__ == "__main__":
    main()
