"""Queues against peers (issue 9; SPEC §7): 1,000 trivial jobs (`true`), 16 at a time.

Prints figures, never a pass/fail test. Wall time runs from the start of the submission to the last
job completed; every system runs ``--runs`` times, interleaved (oj, task-spooler, Huey, RQ, oj, …),
and every run is printed. Everything is local: sockets and state under /tmp, Redis on 127.0.0.1 only;
every daemon, consumer and server the script starts is stopped on the way out, error or not.

* **oj**: a throwaway project (`.oj/runbooks/bench.hcl`: persisted queue `jobs`, pipeline `job` with
  one step `run = "true"`, worker `runner` of concurrency 16), a fresh `ojd` per run in its own
  OJ_STATE_DIR (started and warmed with one `ListQueues` before the clock starts), then one
  `oj queue push jobs --file items.jsonl` (1,000 lines); the worker auto-starts on the push. Done:
  `ListQueues` counts 1,000 `completed` (polled every 10 ms). Also: the push process alone, the daemon's
  CPU time for the run, and, once per invocation, push → durable ack (whole `oj queue push` process;
  a Python client's round trip), push → first step spawned, pushes/s from 32 clients.
* **task-spooler**: `tsp -S 16` on a private TS_SOCKET (fresh server per run), then a bash loop of
  1,000 × `tsp true` (inside the clock: that is what a user does), `tsp -w` on the last job, then
  `tsp -l` polled until all 1,000 are finished.
* **Huey** (SqliteHuey): `huey_consumer bench_huey.huey -w 16 -k <thread|process> -d 0.01 -m 0.1`
  (idle polling starts at 10 ms and backs off ×1.15 to at most 100 ms; the defaults, 0.1 s → 10 s,
  would add up to seconds of idle latency), started and warmed once; per run 1,000
  `job(i)` calls (each runs `subprocess.run(["true"])`), done when `result_count()` reaches 1,000.
* **RQ**: `redis-server --bind 127.0.0.1 --port <free> --save '' --appendonly no` (no persistence:
  not durable, unlike the others) and `rq worker-pool -n 16 -w <worker class>`, started and warmed
  once; per run one `enqueue_many` of 1,000 jobs (RQ's batch API, like oj's `--file`), done when the
  finished-job registry has grown by 1,000.
* **floor**: 16 threads each `subprocess.run(["true"])` until 1,000 ran: no queue at all.

Install the peers (benchmark-only; not in pyproject.toml nor CI):

    apt-get update && apt-get install -y task-spooler redis-server   # binary: /usr/bin/tsp
    .venv/bin/pip install huey rq

Usage: .venv/bin/python bench/queue_bench.py [--runs 3] [--jobs 1000] [--peers-only]
       [--systems oj,tsp,huey,rq,floor] [--huey-kind thread|process] [--rq-worker simple|fork]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CONCURRENCY = 16
POLL = 0.01  # seconds between "all done?" polls, for every system


class Skip(Exception):
    """A system that cannot run here (not installed); the message says why."""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wait_until(done: Callable[[], bool], deadline: float, what: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL)


def kill_group(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM) -> None:
    """Stop a process this script started (in its own session) and its children, by its id."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_version(tree: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(tree), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return out.stdout.strip() if out.returncode == 0 else "not a git checkout"


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- oj ---------------------------------------------------------------------------------------------

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

# Side figures: `sink` has no worker (acks and pushes/s measure the push alone); `probe` has an idle
# worker whose step writes bash's $EPOCHREALTIME (µs) when it starts.
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

NAMESPACE = "bench"
AUTO_START = "the worker auto-started on the push"


def oj_available() -> str | None:
    """None if `oj queue push` exists on the CLI side; else why not."""
    out = subprocess.run(
        [str(BIN / "oj"), "queue", "push", "--help"], capture_output=True, text=True
    )
    if out.returncode != 0 or "--file" not in out.stdout:
        return (
            "`oj queue push --file` is not available in this tree yet "
            f"(`oj queue push --help` exited {out.returncode}: "
            f"{(out.stderr or out.stdout).strip().splitlines()[-1:]})"
        )
    return None


class OjDaemon:
    def __init__(self, base: Path, project: Path) -> None:
        from oj_trio.client import Client

        self.state = Path(tempfile.mkdtemp(prefix="s", dir=base))
        self.project = project
        self.env = {
            **os.environ,
            "OJ_STATE_DIR": str(self.state),
            "OJ_DAEMON_BINARY": str(BIN / "ojd"),
            "OJ_NAMESPACE": NAMESPACE,
        }
        self.client = Client(self.env)
        self.client.ensure_running()
        pid = self.client.daemon_pid()
        assert pid is not None
        self.pid = pid
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}".encode() not in environ:
            print("# warning: ojd does not run with the bench's PYTHONPATH", file=sys.stderr)

    def queue(self, name: str) -> dict[str, Any]:
        answer = self.client.query(
            "ListQueues", project_root=str(self.project), namespace=NAMESPACE
        )
        for queue in answer["queues"]:
            if queue["name"] == name:
                return dict(queue)
        raise SystemExit(f"queue {name!r} not in ListQueues: {answer}")

    def workers(self) -> list[dict[str, Any]]:
        return [dict(w) for w in self.client.query("ListWorkers")["workers"]]

    def oj(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "oj"), *args],
            cwd=self.project,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def push(self, queue: str, data: dict[str, str]) -> Any:
        from oj_trio import protocol

        return self.client.call(
            protocol.request(
                "QueuePush",
                project_root=str(self.project),
                namespace=NAMESPACE,
                queue=queue,
                data=data,
            )
        )

    def rss_peak_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        try:
            if not self.client.stop():
                self.client.stop(kill=True)
        except Exception as exc:  # still try the hard way: never leave a daemon behind
            print(f"  (oj daemon stop: {exc}; killing pid {self.pid})", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.state, ignore_errors=True)


class Oj:
    name = "oj"

    def __init__(self, base: Path, jobs: int, timeout: float) -> None:
        self.base, self.jobs, self.timeout = base, jobs, timeout
        self.project = base / "p"
        self.probe_dir = base / "probe"
        self.notes: list[str] = [
            f"one `oj queue push jobs --file` ({jobs} lines), worker concurrency 16, fresh ojd per run"
        ]

    def setup(self) -> None:
        why = oj_available()
        if why:
            raise SystemExit(
                f"{why}.\nThe oj side of this benchmark needs queues and workers (issue 9); "
                "run the peers alone with --peers-only."
            )
        (self.project / ".oj" / "runbooks").mkdir(parents=True)
        self.probe_dir.mkdir()
        text = RUNBOOK.replace("PROBE_DIR", str(self.probe_dir))
        (self.project / ".oj" / "runbooks" / "bench.hcl").write_text(text)
        self.items = self.base / "items.jsonl"
        self.items.write_text("".join(json.dumps({"n": str(i)}) + "\n" for i in range(self.jobs)))

    def run(self) -> dict[str, Any]:
        daemon = OjDaemon(self.base, self.project)
        try:
            # Warm: the first request that names the project parses the runbook.
            if daemon.queue("jobs")["completed"] != 0:
                raise SystemExit("fresh daemon already has completed items?")
            cpu0 = proc_cpu_seconds(daemon.pid)
            deadline = time.monotonic() + self.timeout
            start = time.perf_counter()
            out = daemon.oj("queue", "push", "jobs", "--file", str(self.items))
            pushed = time.perf_counter() - start
            if out.returncode != 0:
                raise SystemExit(f"oj queue push failed ({out.returncode}): {out.stderr.strip()}")
            started_by_hand = False
            while True:
                queue = daemon.queue("jobs")
                # The push was acknowledged, so all items exist: done when none is left to run.
                # (Not `completed == jobs`: a queue keeps only its newest 1,000 completed items.)
                if queue["pending"] == queue["active"] == 0:
                    break
                if queue["failed"] or queue["dead"]:
                    raise SystemExit(f"oj: items failed: {queue}")
                now = time.perf_counter() - start
                if (
                    not started_by_hand
                    and now > 3
                    and queue["completed"] == 0 == queue["active"]
                    and not any(w["status"] == "running" for w in daemon.workers())
                ):
                    self.notes.append("the worker did NOT auto-start on push: `oj worker start`")
                    daemon.oj("worker", "start", "runner")
                    started_by_hand = True
                if time.monotonic() > deadline:
                    raise TimeoutError(f"oj: timed out, queue at {queue}")
                time.sleep(POLL)
            wall = time.perf_counter() - start
            cpu = proc_cpu_seconds(daemon.pid) - cpu0
            if not started_by_hand and AUTO_START not in self.notes:
                self.notes.append(AUTO_START)
            return {
                "wall": wall,
                "submit": pushed,
                "extra": f"daemon CPU {cpu:.2f} s ({cpu / self.jobs * 1e6:.0f} µs/job), "
                f"peak RSS {daemon.rss_peak_mb():.0f} MB",
            }
        finally:
            daemon.stop()

    def side_figures(self) -> list[str]:
        """Once per invocation, on a fresh daemon."""
        daemon = OjDaemon(self.base, self.project)
        lines = []
        try:
            daemon.queue("sink")  # warm the runbook
            # push → durable ack, whole `oj queue push` process (no worker on `sink`).
            times = []
            for i in range(20):
                t0 = time.perf_counter()
                out = daemon.oj("queue", "push", "sink", json.dumps({"n": f"cli{i}"}))
                times.append(time.perf_counter() - t0)
                if out.returncode != 0:
                    raise SystemExit(f"oj queue push sink: {out.stderr.strip()}")
            lines.append(
                f"push → durable ack, whole `oj queue push` process: median "
                f"{statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f}, "
                f"max {max(times) * 1e3:.1f} ms (20 pushes)"
            )
            # The same from a Python client in this process (connect + request + durable ack).
            times = []
            for i in range(300):
                t0 = time.perf_counter()
                daemon.push("sink", {"n": f"rt{i}"})
                times.append(time.perf_counter() - t0)
            times.sort()
            lines.append(
                f"push → durable ack, Python client round trip (connection per request): p50 "
                f"{times[len(times) // 2] * 1e3:.2f} ms, p99 {times[int(len(times) * 0.99)] * 1e3:.2f} ms "
                "(300 sequential pushes)"
            )
            # pushes/s from 32 concurrent clients, against Pings (no WAL) the same way.
            for label, call in (
                ("QueuePush (durable)", lambda i: daemon.push("sink", {"n": f"c{i}"})),
                ("Ping (no WAL, reference)", lambda i: daemon.client.answers()),
            ):
                with concurrent.futures.ThreadPoolExecutor(32) as pool:
                    list(pool.map(call, range(64)))  # warm the threads
                    t0 = time.perf_counter()
                    list(pool.map(call, range(2000)))
                    rate = 2000 / (time.perf_counter() - t0)
                lines.append(f"32 client threads, 2,000 {label}: {rate:,.0f}/s")
            lines.append(self.first_spawn(daemon))
        finally:
            daemon.stop()
        return lines

    def first_spawn(self, daemon: OjDaemon) -> str:
        """push → the handler's step running, over 20 single pushes to an idle worker."""

        def settle(count: int) -> None:
            wait_until(
                lambda: (
                    daemon.queue("probe")["completed"] >= count
                    and not any(w["active"] for w in daemon.workers() if w["name"] == "prober")
                ),
                time.monotonic() + 30,
                "the probe item",
            )

        def stamped(path: Path) -> bool:
            return path.exists() and path.read_text().strip() != ""

        daemon.push("probe", {"n": "warm"})  # auto-starts the worker
        settle(1)
        stamps, acks = [], []
        for i in range(20):
            time.sleep(0.05)  # idle
            t0 = time.time()
            daemon.push("probe", {"n": str(i)})
            acks.append(time.time() - t0)
            path = self.probe_dir / str(i)
            wait_until(lambda p=path: stamped(p), time.monotonic() + 30, "probe")
            stamps.append(float(path.read_text().replace(",", ".")) - t0)
            settle(i + 2)
        started = self.step_started_latencies(daemon)
        text = (
            f"push → first step running (20 single pushes to an idle worker of concurrency 1): "
            f"bash's $EPOCHREALTIME in the step, p50 {statistics.median(stamps) * 1e3:.1f} ms, "
            f"max {max(stamps) * 1e3:.1f} ms (ack p50 {statistics.median(acks) * 1e3:.1f} ms)"
        )
        if started:
            text += (
                f"; WAL `queue:pushed` → `step:started` (ms clock): p50 {statistics.median(started):.0f} ms, "
                f"max {max(started):.0f} ms"
            )
        return text

    def step_started_latencies(self, daemon: OjDaemon) -> list[float]:
        """From the WAL: queue:pushed.pushed_at_epoch_ms → the handler's step:started.at_ms."""
        pushed: dict[str, int] = {}
        pipeline_item: dict[str, str] = {}
        started: dict[str, int] = {}
        for path in sorted((daemon.state / "wal").glob("*")):
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    event = json.loads(line)["event"]
                except (ValueError, KeyError, TypeError):
                    continue
                tag = event.get("type")
                if tag == "queue:pushed" and event.get("queue_name") == "probe":
                    pushed[event["item_id"]] = event["pushed_at_epoch_ms"]
                elif tag == "worker:item_dispatched" and "item_id" in event:
                    pipeline_item[event.get("pipeline_id", "")] = event["item_id"]
                elif tag == "step:started":
                    started.setdefault(event["pipeline_id"], event["at_ms"])
        out = []
        for pipeline, item in pipeline_item.items():
            if item in pushed and pipeline in started:
                out.append(float(started[pipeline] - pushed[item]))
        return out[1:]  # the first one includes the worker's auto-start

    def teardown(self) -> None:
        pass


# -- task-spooler -----------------------------------------------------------------------------------


class TaskSpooler:
    name = "tsp"

    def __init__(self, base: Path, jobs: int, timeout: float) -> None:
        self.base, self.jobs, self.timeout = base, jobs, timeout
        self.tsp = shutil.which("tsp") or shutil.which("ts")
        self.notes = [f"binary: {self.tsp}"]

    def setup(self) -> None:
        if self.tsp is None:
            raise Skip("task-spooler not installed (apt-get install -y task-spooler)")

    def run(self) -> dict[str, Any]:
        assert self.tsp is not None
        work = Path(tempfile.mkdtemp(prefix="t", dir=self.base))
        env = {
            **os.environ,
            "TS_SOCKET": str(work / "ts.sock"),
            "TMPDIR": str(work),  # where tsp writes each job's output file
            "TS_MAXFINISHED": str(self.jobs * 2),  # keep every finished job in the list
        }
        tsp = self.tsp

        def call(*args: str) -> str:
            return subprocess.run(
                [tsp, *args], env=env, capture_output=True, text=True, check=True, timeout=60
            ).stdout

        try:
            call("-S", str(CONCURRENCY))  # starts the server
            deadline = time.monotonic() + self.timeout
            start = time.perf_counter()
            loop = subprocess.run(
                ["bash", "-c", f'for i in $(seq {self.jobs}); do "{tsp}" true; done | tail -n1'],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=self.timeout,
            )
            submitted = time.perf_counter() - start
            last = loop.stdout.strip()
            call("-w", last)

            def finished() -> bool:
                rows = call("-l").splitlines()[1:]
                return sum(1 for row in rows if row.split()[1:2] == ["finished"]) >= self.jobs

            wait_until(finished, deadline, "task-spooler")
            wall = time.perf_counter() - start
            return {"wall": wall, "submit": submitted, "extra": ""}
        finally:
            subprocess.run([tsp, "-K"], env=env, capture_output=True, timeout=10)
            shutil.rmtree(work, ignore_errors=True)

    def teardown(self) -> None:
        pass


# -- Huey -------------------------------------------------------------------------------------------

HUEY_MODULE = """\
import os
import subprocess

from huey import SqliteHuey

huey = SqliteHuey(filename=os.environ["BENCH_HUEY_DB"])


@huey.task()
def job(n):
    subprocess.run(["true"])
    return n
"""


class Huey:
    name = "huey"

    def __init__(self, base: Path, jobs: int, timeout: float, kind: str) -> None:
        self.base, self.jobs, self.timeout, self.kind = base, jobs, timeout, kind
        self.name = f"huey-{kind}"
        self.consumer: subprocess.Popen[bytes] | None = None
        self.flags = ["-w", str(CONCURRENCY), "-k", kind, "-d", "0.01", "-m", "0.1"]
        self.notes = ["huey_consumer " + " ".join(self.flags)]

    def setup(self) -> None:
        try:
            import huey  # noqa: F401
        except ImportError as exc:
            raise Skip("huey not installed (.venv/bin/pip install huey)") from exc
        work = self.base / self.name
        work.mkdir()
        (work / "bench_huey.py").write_text(HUEY_MODULE)
        os.environ["BENCH_HUEY_DB"] = str(work / "huey.db")
        sys.path.insert(0, str(work))
        import bench_huey  # type: ignore[import-not-found]

        sys.path.remove(str(work))
        sys.modules.pop("bench_huey", None)
        self.module = bench_huey
        self.consumer = subprocess.Popen(
            [str(BIN / "huey_consumer"), "bench_huey.huey", *self.flags, "-q"],
            cwd=work,
            env={**os.environ, "PYTHONPATH": str(work)},
            stdout=subprocess.DEVNULL,
            stderr=open(work / "consumer.log", "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        self.module.huey.flush()
        self.module.job(-1)  # warm-up: wait until the consumer answers
        wait_until(
            lambda: self.module.huey.result_count() >= 1, time.monotonic() + 60, "huey warm-up"
        )

    def run(self) -> dict[str, Any]:
        huey = self.module.huey
        huey.flush()
        deadline = time.monotonic() + self.timeout
        start = time.perf_counter()
        for i in range(self.jobs):
            self.module.job(i)
        submitted = time.perf_counter() - start
        wait_until(lambda: huey.result_count() >= self.jobs, deadline, "huey")
        wall = time.perf_counter() - start
        return {"wall": wall, "submit": submitted, "extra": ""}

    def teardown(self) -> None:
        kill_group(self.consumer, signal.SIGINT)


# -- RQ ---------------------------------------------------------------------------------------------

RQ_MODULE = """\
import subprocess


def job(n):
    subprocess.run(["true"])
    return n
"""

RQ_WORKERS = {"simple": "rq.worker.SimpleWorker", "fork": "rq.worker.Worker"}


class Rq:
    def __init__(self, base: Path, jobs: int, timeout: float, worker: str) -> None:
        self.base, self.jobs, self.timeout = base, jobs, timeout
        self.name = f"rq-{worker}"
        self.worker_class = RQ_WORKERS[worker]
        self.redis: subprocess.Popen[bytes] | None = None
        self.pool: subprocess.Popen[bytes] | None = None
        self.notes = [f"rq worker-pool -n {CONCURRENCY} -w {self.worker_class}"]

    def setup(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise Skip("redis-server not installed (apt-get install -y redis-server)")
        try:
            import redis
            import rq
        except ImportError as exc:
            raise Skip("rq not installed (.venv/bin/pip install rq)") from exc
        work = self.base / self.name
        work.mkdir()
        (work / "bench_rq.py").write_text(RQ_MODULE)
        port = free_port()
        self.redis = subprocess.Popen(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(work),
            ],
            stdout=open(work / "redis.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}"
        self.conn = redis.Redis.from_url(url)

        def redis_up() -> bool:
            try:
                return bool(self.conn.ping())
            except redis.exceptions.ConnectionError:
                return False

        wait_until(redis_up, time.monotonic() + 20, "redis-server")
        self.pool = subprocess.Popen(
            [
                str(BIN / "rq"),
                "worker-pool",
                "-q",
                "-n",
                str(CONCURRENCY),
                "-w",
                self.worker_class,
                "-u",
                url,
                "bench",
            ],
            cwd=work,
            env={**os.environ, "PYTHONPATH": str(work)},
            stdout=open(work / "pool.log", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sys.path.insert(0, str(work))
        import bench_rq  # type: ignore[import-not-found]

        sys.path.remove(str(work))
        self.job = bench_rq.job
        self.queue = rq.Queue("bench", connection=self.conn)
        self.queue.enqueue(self.job, -1)  # warm-up: wait until a worker ran it
        wait_until(
            lambda: self.queue.finished_job_registry.count >= 1,
            time.monotonic() + 60,
            "rq warm-up",
        )

    def run(self) -> dict[str, Any]:
        from rq import Queue

        registry = self.queue.finished_job_registry
        base = registry.count
        batch = [Queue.prepare_data(self.job, (i,)) for i in range(self.jobs)]
        deadline = time.monotonic() + self.timeout
        start = time.perf_counter()
        self.queue.enqueue_many(batch)
        submitted = time.perf_counter() - start

        def done() -> bool:
            if self.queue.failed_job_registry.count:
                raise SystemExit("rq: jobs failed")
            return registry.count - base >= self.jobs

        wait_until(done, deadline, "rq")
        wall = time.perf_counter() - start
        return {"wall": wall, "submit": submitted, "extra": ""}

    def teardown(self) -> None:
        kill_group(self.pool, signal.SIGTERM)
        kill_group(self.redis, signal.SIGTERM)


# -- floor ------------------------------------------------------------------------------------------


class Floor:
    name = "floor"

    def __init__(self, base: Path, jobs: int, timeout: float) -> None:
        self.jobs = jobs
        self.notes = ["16 threads × subprocess.run(['true']), no queue"]

    def setup(self) -> None:
        pass

    def run(self) -> dict[str, Any]:
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda _: subprocess.run(["true"]), range(self.jobs)))
        return {"wall": time.perf_counter() - start, "submit": 0.0, "extra": ""}

    def teardown(self) -> None:
        pass


# -- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--peers-only", action="store_true", help="skip oj (no queues needed)")
    parser.add_argument("--systems", default="oj,tsp,huey,rq,floor")
    parser.add_argument("--huey-kind", default="thread", help="thread, process, or both (a,b)")
    parser.add_argument("--rq-worker", default="simple", help="simple, fork, or both (a,b)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per run")
    parser.add_argument("--no-side", action="store_true", help="skip oj's side figures")
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="the oj_trio source tree to measure (e.g. a `git archive HEAD` export); default: "
        "this checkout. Put on PYTHONPATH for the bench, `oj` and `ojd` (venv: this one).",
    )
    parser.add_argument(
        "--head",
        action="store_true",
        help="measure this checkout's committed HEAD (exported with `git archive` under /tmp), "
        "not the working tree other engineers may be editing",
    )
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ojq", dir="/tmp"))  # short: socket paths ≤ 107 bytes
    tree_label = ""
    if opts.head:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        opts.tree = base / "tree"
        opts.tree.mkdir()
        subprocess.run(
            f"git -C {ROOT} archive {commit} oj_trio | tar -x -C {opts.tree}",
            shell=True,
            check=True,
        )
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(opts.tree)], check=True)
        tree_label = f"git archive of {commit}"
    tree = str(opts.tree.resolve())
    tree_label = tree_label or tree_version(Path(tree))
    sys.path.insert(0, tree)
    os.environ["PYTHONPATH"] = tree

    wanted = opts.systems.split(",")
    if opts.peers_only:
        wanted = [s for s in wanted if s != "oj"]
    elif "oj" in wanted:
        why = oj_available()
        if why:
            shutil.rmtree(base, ignore_errors=True)
            print(
                f"queue_bench: {why}.\nThe oj side needs queues and workers (issue 9); "
                "use --peers-only to measure the peers alone.",
                file=sys.stderr,
            )
            return 2

    systems: list[Any] = []
    for name in wanted:
        if name == "oj":
            systems.append(Oj(base, opts.jobs, opts.timeout))
        elif name == "tsp":
            systems.append(TaskSpooler(base, opts.jobs, opts.timeout))
        elif name == "huey":
            systems += [Huey(base, opts.jobs, opts.timeout, k) for k in opts.huey_kind.split(",")]
        elif name == "rq":
            systems += [Rq(base, opts.jobs, opts.timeout, w) for w in opts.rq_worker.split(",")]
        elif name == "floor":
            systems.append(Floor(base, opts.jobs, opts.timeout))
        else:
            parser.error(f"unknown system {name!r}")

    print(
        f"# queue bench ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}): {opts.jobs} × `true`, concurrency {CONCURRENCY}"
    )
    if "oj" in wanted:
        print(f"# oj tree: {tree} ({tree_label})")
    print(f"# {uptime()}")
    results: dict[str, list[dict[str, Any] | str]] = {}
    ready: list[Any] = []
    try:
        for system in systems:
            ready.append(system)  # before setup: a half-started system is torn down too
            try:
                system.setup()
            except Skip as exc:
                ready.remove(system)
                print(f"# {system.name}: skipped: {exc}")
        for run in range(opts.runs):
            for system in ready:
                try:
                    result: dict[str, Any] | str = system.run()
                except (TimeoutError, subprocess.SubprocessError) as exc:
                    result = f"error: {exc}"
                results.setdefault(system.name, []).append(result)
                if isinstance(result, dict):
                    line = (
                        f"run {run + 1} {system.name:<12} {result['wall']:6.2f} s "
                        f"({opts.jobs / result['wall']:5.0f} jobs/s), submit {result['submit']:.2f} s"
                    )
                    if result["extra"]:
                        line += f"; {result['extra']}"
                else:
                    line = f"run {run + 1} {system.name:<12} {result}"
                print(line, flush=True)
        side = []
        if not opts.no_side:
            for system in ready:
                if isinstance(system, Oj):
                    side = system.side_figures()
    finally:
        for system in reversed(ready):
            try:
                system.teardown()
            except Exception as exc:
                print(f"# {system.name}: teardown: {exc}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)

    print()
    print(f"| system | wall, {opts.runs} runs (s) | jobs/s (median) | submit (s) | how |")
    print("|---|---|---|---|---|")
    for system in ready:
        runs = results.get(system.name, [])
        walls = [r["wall"] for r in runs if isinstance(r, dict)]
        subs = [r["submit"] for r in runs if isinstance(r, dict)]
        cells = " / ".join(f"{r['wall']:.2f}" if isinstance(r, dict) else "✘" for r in runs)
        rate = f"{opts.jobs / statistics.median(walls):.0f}" if walls else "—"
        sub = " / ".join(f"{s:.2f}" for s in subs)
        print(f"| {system.name} | {cells} | {rate} | {sub} | {'; '.join(system.notes)} |")
    for line in side:
        print(f"* {line}")
    print(f"# {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
