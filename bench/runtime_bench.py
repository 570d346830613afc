"""Pipeline runtime figures (issue 5; SPEC §7). Prints figures; never a pass/fail test.

* trivial shell steps/s through a real `ojd` at concurrency 1, 4 and 16 (pipelines of chained
  `true` steps), against the raw `trio.run_process(["sh", "-c", "true"])` rate in the same run;
* 1,000 concurrent `sleep 1` pipelines: wall time until all are done, and the daemon's peak RSS;
* whole-process time of `oj run` against a running daemon.

Usage: .venv/bin/python bench/runtime_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oj_trio import protocol  # noqa: E402
from oj_trio.client import Client  # noqa: E402

BIN = Path(sys.executable).parent

RUNBOOK = """
command "chain" {
  args = "<name>"
  run  = { pipeline = "chain" }
}
command "nap" {
  args = "<name>"
  run  = { pipeline = "nap" }
}
pipeline "nap" {
  step "sleep" { run = "sleep 1" }
}
"""


def chain_pipeline(steps: int) -> str:
    lines = ['pipeline "chain" {']
    for i in range(steps):
        nxt = f'\n    on_done = {{ step = "s{i + 1}" }}' if i + 1 < steps else ""
        lines.append(f'  step "s{i}" {{\n    run = "true"{nxt}\n  }}')
    lines.append("}")
    return "\n".join(lines)


RAW_SH = ["sh", "-c", "true"]
#: What a step really runs (bash is needed for pipefail): the fair baseline for the daemon.
RAW_BASH = ["bash", "-c", "set -euo pipefail\ntrue"]


async def raw_spawn_rate(concurrency: int, total: int, argv: list[str]) -> float:
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < total:
            done += 1
            await trio.run_process(argv)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return total / (time.perf_counter() - start)


class Daemon:
    def __init__(self, state: Path, project: Path) -> None:
        self.env = {**os.environ, "OJ_STATE_DIR": str(state), "OJ_DAEMON_BINARY": str(BIN / "ojd")}
        self.project = project
        self.client = Client(self.env)
        self.client.ensure_running()

    def run(self, command: str, name: str) -> str:
        response = self.client.call(
            protocol.request(
                "RunCommand",
                project_root=str(self.project),
                invoke_dir=str(self.project),
                namespace="bench",
                command=command,
                args=[name],
            )
        )
        return response["pipeline_id"]

    def wait_all(self, ids: list[str]) -> None:
        pending = set(ids)
        while pending:
            pipelines = self.client.query("ListPipelines")["pipelines"]
            states = {p["id"]: p["step"] for p in pipelines}
            pending = {i for i in pending if states.get(i) not in ("done", "failed", "cancelled")}
            failed = [i for i in ids if states.get(i) == "failed"]
            if failed:
                raise SystemExit(f"{len(failed)} pipeline(s) failed, e.g. {failed[0]}")
            if pending:
                time.sleep(0.02)

    def rss_peak_mb(self) -> float:
        pid = int((Path(self.env["OJ_STATE_DIR"]) / "daemon.pid").read_text())
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.client.stop()


def steps_per_second(daemon: Daemon, concurrency: int, steps: int) -> float:
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        ids = list(
            pool.map(lambda i: daemon.run("chain", f"c{concurrency}-{i}"), range(concurrency))
        )
    daemon.wait_all(ids)
    return concurrency * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    opts = parser.parse_args()
    steps = 20 if opts.quick else 50
    naps = 200 if opts.quick else 1000

    root = Path(tempfile.mkdtemp(prefix="ojb", dir="/tmp"))
    project = root / "p"
    (project / ".oj" / "runbooks").mkdir(parents=True)
    (project / ".oj" / "runbooks" / "bench.hcl").write_text(RUNBOOK + chain_pipeline(steps))
    daemon = Daemon(root / "s", project)
    try:
        print(f"# runtime bench ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)")
        spawns = 400 if opts.quick else 1000
        # Warm up: the first request parses the runbook (and builds the HCL parser), which
        # would otherwise be charged to the concurrency-1 figure.
        daemon.wait_all([daemon.run("chain", "warm-up")])
        for concurrency in (1, 4, 16):
            raw_sh = trio.run(raw_spawn_rate, concurrency, spawns, RAW_SH)
            raw_bash = trio.run(raw_spawn_rate, concurrency, spawns, RAW_BASH)
            rate = steps_per_second(daemon, concurrency, steps)
            print(
                f"concurrency {concurrency:>2}: {rate:5.0f} steps/s through ojd; raw `sh -c true` "
                f"{raw_sh:5.0f}/s ({rate / raw_sh:.0%}), raw `bash -c 'set -euo pipefail; true'` "
                f"{raw_bash:5.0f}/s ({rate / raw_bash:.0%})"
            )

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(lambda i: daemon.run("nap", f"n{i}"), range(naps)))
        submitted = time.perf_counter() - start
        daemon.wait_all(ids)
        wall = time.perf_counter() - start
        print(
            f"{naps} concurrent `sleep 1` pipelines: all done in {wall:.2f} s "
            f"(submitted in {submitted:.2f} s), daemon peak RSS {daemon.rss_peak_mb():.0f} MB"
        )

        env = {**daemon.env}
        times = []
        for i in range(15):
            t0 = time.perf_counter()
            subprocess.run(
                [str(BIN / "oj"), "run", "nap", f"cli{i}"],
                cwd=project,
                env=env,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - t0)
        print(
            f"`oj run` whole process: median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms (includes waiting for the pipeline to start)"
        )
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
