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

Every run's directory (oj's state dir with its 1,000 pipeline logs, tsp's 1,000 output files) is
deleted only when the whole invocation ends: on this machine's ext4 (no journal) a file created in a
block group where many inodes were freed in the last minutes costs up to ≈ 0.5 ms of kernel CPU
(the allocator skips every recently freed inode), so deleting run N's files taxed run N+1 of every
system (see `bench/limits_bench.py`).

pushes/s (SPEC §7: "≥ 65 % of the same run's no-fsync request rate") is measured three ways on
fresh daemons, interleaved: durable `QueuePush`, the same pushes to a daemon whose WAL does not
fsync (started through a bench-only wrapper that passes `sync=False` to the WAL writer; nothing in
oj can switch durability off), and `Ping` (no WAL at all; the stand-in used before).

Usage: .venv/bin/python bench/queue_bench.py [--runs 3] [--jobs 1000] [--peers-only]
       [--systems oj,tsp,huey,rq,floor] [--huey-kind thread|process] [--rq-worker simple|fork]
       [--report FILE] [--tiny]
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
sys.path.insert(0, str(ROOT / "bench"))
from report import Report, add_report_argument, markdown_table  # noqa: E402

RUN_ALL_ORDER = 40
RUN_ALL_ARGS = ["--runs", "3"]
RUN_ALL_SMOKE_ARGS = ["--tiny", "--systems", "oj,tsp,floor"]
RUN_ALL_TIMEOUT = 420
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


#: A daemon whose WAL writes without fsync: the yardstick of the pushes/s figure only.
NO_FSYNC_DAEMON = """\
import sys

import oj_trio.wal as wal

_init = wal.WalWriter.__init__


def init(self, *args, **kwargs):
    kwargs["sync"] = False
    _init(self, *args, **kwargs)


wal.WalWriter.__init__ = init
from oj_trio.daemon import main

sys.exit(main())
"""


def no_fsync_daemon(base: Path) -> Path:
    path = base / "ojd-no-fsync"
    path.write_text(f"#!{sys.executable}\n{NO_FSYNC_DAEMON}")
    path.chmod(0o755)
    return path


class OjDaemon:
    def __init__(self, base: Path, project: Path, binary: Path | None = None) -> None:
        from oj_trio.client import Client

        self.state = Path(tempfile.mkdtemp(prefix="s", dir=base))
        self.project = project
        self.env = {
            **os.environ,
            "OJ_STATE_DIR": str(self.state),
            "OJ_DAEMON_BINARY": str(binary or BIN / "ojd"),
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
        # The state directory goes with the whole bench directory at the end (see the docstring).


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

    def side_figures(self, report: Report, small: bool = False) -> list[str]:
        """Once per invocation, on fresh daemons; figures also go into ``report``."""
        n_cli, n_rt, n_rate = (3, 20, 200) if small else (20, 300, 2000)
        daemon = OjDaemon(self.base, self.project)
        lines = []
        try:
            daemon.queue("sink")  # warm the runbook
            # push → durable ack, whole `oj queue push` process (no worker on `sink`).
            times = []
            for i in range(n_cli):
                t0 = time.perf_counter()
                out = daemon.oj("queue", "push", "sink", json.dumps({"n": f"cli{i}"}))
                times.append(time.perf_counter() - t0)
                if out.returncode != 0:
                    raise SystemExit(f"oj queue push sink: {out.stderr.strip()}")
            lines.append(
                f"push → durable ack, whole `oj queue push` process: median "
                f"{statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f}, "
                f"max {max(times) * 1e3:.1f} ms ({n_cli} pushes)"
            )
            report.figure(
                "push_cli", "push → durable ack, whole `oj queue push` process, median",
                statistics.median(times) * 1e3, "ms",
                note=f"min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f} ms",
            )  # fmt: skip
            # The same from a Python client in this process (connect + request + durable ack).
            times = []
            for i in range(n_rt):
                t0 = time.perf_counter()
                daemon.push("sink", {"n": f"rt{i}"})
                times.append(time.perf_counter() - t0)
            times.sort()
            p50, p99 = times[len(times) // 2] * 1e3, times[int(len(times) * 0.99)] * 1e3
            lines.append(
                f"push → durable ack, Python client round trip (connection per request): p50 "
                f"{p50:.2f} ms, p99 {p99:.2f} ms ({n_rt} sequential pushes)"
            )
            what = "Python client round trip (connect, request, durable ack): an upper bound"
            report.figure(
                "push_ack_p50", f"push → durable ack, one client, p50 ({what})", p50, "ms",
                target="p50 ≤ 1 ms", ok=p50 <= 1, ratio=p50 / 1, spec=True,
            )  # fmt: skip
            report.figure(
                "push_ack_p99", f"push → durable ack, one client, p99 ({what})", p99, "ms",
                target="p99 ≤ 5 ms", ok=p99 <= 5, ratio=p99 / 5, spec=True,
            )  # fmt: skip
            text, stamps = self.first_spawn(daemon, 5 if small else 20)
            lines.append(text)
            first = statistics.median(stamps) * 1e3
            report.figure(
                "push_first_step", "push → the handler's first shell step running, p50", first,
                "ms", target="p50 ≤ 5 ms", ok=first <= 5, ratio=first / 5, spec=True,
                note=text.split(": ", 1)[-1],
            )  # fmt: skip
        finally:
            daemon.stop()
        lines += self.push_rates(report, n_rate, 1 if small else 2)
        return lines

    def push_rates(self, report: Report, count: int, rounds: int) -> list[str]:
        """pushes/s from 32 client threads: durable, with the WAL's fsync off, and Pings."""

        def rate(daemon: OjDaemon, call: Callable[[int], Any]) -> float:
            with concurrent.futures.ThreadPoolExecutor(32) as pool:
                list(pool.map(call, range(64)))  # warm the threads
                t0 = time.perf_counter()
                list(pool.map(call, range(count)))
                return count / (time.perf_counter() - t0)

        rates: dict[str, list[float]] = {"durable": [], "no-fsync": [], "ping": []}
        for _ in range(rounds):
            for kind, binary in (("durable", None), ("no-fsync", no_fsync_daemon(self.base))):
                daemon = OjDaemon(self.base, self.project, binary)
                try:
                    daemon.queue("sink")
                    rates[kind].append(
                        rate(daemon, lambda i, d=daemon: d.push("sink", {"n": str(i)}))
                    )
                    if kind == "durable":
                        rates["ping"].append(rate(daemon, lambda i, d=daemon: d.client.answers()))
                finally:
                    daemon.stop()
        durable, nofsync, ping = (statistics.median(rates[k]) for k in rates)
        cells = {k: " / ".join(f"{r:,.0f}" for r in v) for k, v in rates.items()}
        report.figure(
            "push_rate", "durable `QueuePush`/s, 32 clients / the same pushes with the WAL's "
            "fsync off (same run)", durable / nofsync, "×", target="≥ 65 %",
            ok=durable / nofsync >= 0.65, ratio=durable / nofsync / 0.65, spec=True,
            note=f"durable {cells['durable']}/s, no-fsync {cells['no-fsync']}/s",
        )  # fmt: skip
        report.figure(
            "push_rate_vs_ping", "durable `QueuePush`/s / `Ping`/s (no WAL at all), 32 clients",
            durable / ping, "×", note=f"Ping {cells['ping']}/s",
        )  # fmt: skip
        return [
            f"32 client threads, {count:,} durable QueuePush: {cells['durable']}/s",
            f"32 client threads, {count:,} QueuePush to a daemon without fsync: "
            f"{cells['no-fsync']}/s",
            f"32 client threads, {count:,} Ping (no WAL): {cells['ping']}/s",
            f"durable pushes / no-fsync pushes: {durable / nofsync:.0%}; / Pings: "
            f"{durable / ping:.0%}",
        ]

    def first_spawn(self, daemon: OjDaemon, count: int = 20) -> tuple[str, list[float]]:
        """push → the handler's step running, over ``count`` single pushes to an idle worker;
        returns the text and the latencies (s) until bash ran the step."""

        def settle(done: int) -> None:
            wait_until(
                lambda: (
                    daemon.queue("probe")["completed"] >= done
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
        for i in range(count):
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
            f"push → first step running ({count} single pushes to an idle worker of concurrency 1): "
            f"bash's $EPOCHREALTIME in the step, p50 {statistics.median(stamps) * 1e3:.1f} ms, "
            f"max {max(stamps) * 1e3:.1f} ms (ack p50 {statistics.median(acks) * 1e3:.1f} ms)"
        )
        if started:
            text += (
                f"; WAL `queue:pushed` → `step:started` (ms clock): p50 {statistics.median(started):.0f} ms, "
                f"max {max(started):.0f} ms"
            )
        return text, stamps

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


class OjBash(Oj):
    """oj with a step that needs the shell (`true;`): a simple command such as `true` is spawned
    directly, as bash would exec it (oj_trio/adapters/direct_exec.py); this is the figure for
    steps that go through bash."""

    name = "oj-bash"

    def __init__(self, base: Path, jobs: int, timeout: float) -> None:
        super().__init__(base, jobs, timeout)
        self.project = base / "pb"
        self.probe_dir = base / "probe-b"
        self.notes = ["as oj, but the step is `true;` (shell syntax: bash is started per job)"]

    def setup(self) -> None:
        super().setup()
        runbook = self.project / ".oj" / "runbooks" / "bench.hcl"
        text = runbook.read_text()
        step = 'step "run" { run = "true" }'
        assert step in text
        runbook.write_text(text.replace(step, 'step "run" { run = "true;" }', 1))


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
            # `work` goes with the whole bench directory at the end (see the docstring).

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
    parser.add_argument("--systems", default="oj,oj-bash,tsp,huey,rq,floor")
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
    parser.add_argument("--tiny", action="store_true", help="20 jobs, 1 run (smoke test only)")
    add_report_argument(parser)
    opts = parser.parse_args()
    if opts.tiny:
        opts.jobs, opts.runs = 20, 1
    report = Report("queue", "Queues: 1,000 trivial jobs against peers (issue 9)")
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
        wanted = [s for s in wanted if not s.startswith("oj")]
    elif any(s.startswith("oj") for s in wanted):
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
        elif name == "oj-bash":
            systems.append(OjBash(base, opts.jobs, opts.timeout))
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
                report.note(f"{system.name}: skipped: {exc}")
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
                if type(system) is Oj:
                    side = system.side_figures(report, small=opts.tiny)
    finally:
        for system in reversed(ready):
            try:
                system.teardown()
            except Exception as exc:
                print(f"# {system.name}: teardown: {exc}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)

    print()
    rows = []
    for system in ready:
        runs = results.get(system.name, [])
        walls = [r["wall"] for r in runs if isinstance(r, dict)]
        subs = [r["submit"] for r in runs if isinstance(r, dict)]
        cells = " / ".join(f"{r['wall']:.2f}" if isinstance(r, dict) else "✘" for r in runs)
        rate = f"{opts.jobs / statistics.median(walls):.0f}" if walls else "—"
        sub = " / ".join(f"{s:.2f}" for s in subs)
        extra = " / ".join(str(r["extra"]) for r in runs if isinstance(r, dict) and r["extra"])
        how = "; ".join(system.notes + ([extra] if extra else []))
        rows.append([system.name, cells, rate, sub, how])
    table = markdown_table(
        ["system", f"wall, {opts.runs} runs (s)", "jobs/s (median)", "submit (s)", "how"], rows
    )
    print(table)
    report.table(
        f"{opts.jobs:,} × `true`, concurrency {CONCURRENCY}, systems interleaved run by run "
        f"(oj tree: {tree_label}):\n\n{table}"
    )
    compare_runs(report, results, opts.jobs)
    for line in side:
        print(f"* {line}")
        report.note(line)
    print(f"# {uptime()}")
    report.write(opts.report)
    return 0


def compare_runs(report: Report, results: dict[str, list[dict[str, Any] | str]], jobs: int) -> None:
    """oj against each peer, run by run (the runs were interleaved: same machine state)."""

    def walls(name: str) -> list[float | None]:
        """The runs of ``name`` (a peer run in several variants, e.g. huey-thread: the first)."""
        match = next((k for k in results if k == name or k.startswith(f"{name}-")), None)
        return [r["wall"] if isinstance(r, dict) else None for r in results.get(match or "", [])]

    mine = walls("oj")
    if not mine:
        return
    for peer, label, spec_target in (
        ("tsp", "task-spooler (`tsp -S 16`)", "< 1 (faster)"),
        ("huey", "Huey (SQLite, 16 threads)", "< 1 (ahead)"),
        ("rq", "RQ (local Redis, 16 workers)", "< 1 (ahead)"),
    ):
        theirs = walls(peer)
        pairs = [(a, b) for a, b in zip(mine, theirs, strict=False) if a and b]
        if not pairs:
            report.note(f"oj vs {label}: not measured (no run of both completed; see the notes)")
            continue
        ratios = [a / b for a, b in pairs]
        median = statistics.median(ratios)
        wins = sum(1 for r in ratios if r < 1)
        report.figure(
            f"jobs_vs_{peer}",
            f"{jobs:,} trivial jobs (one batch push, worker concurrency 16): oj wall / {label} "
            "wall, same run",
            median, "×", target=spec_target, ok=median < 1, ratio=median, spec=jobs == 1000,
            note=f"per run: {' / '.join(f'{r:.2f}' for r in ratios)}; oj faster in {wins} of "
            f"{len(ratios)}",
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
