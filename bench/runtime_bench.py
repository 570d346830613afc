"""Pipeline runtime figures (issue 5; SPEC §7). Prints figures; never a pass/fail test.

* trivial shell steps/s through a real `ojd` at concurrency 1, 4 and 16 (pipelines of chained
  `true` steps), against the raw `trio.run_process(["sh", "-c", "true"])` rate in the same run;
* 1,000 concurrent `sleep 1` pipelines: wall time until all are done, and the daemon's peak RSS;
* whole-process time of `oj run` against a running daemon.

Steps/s is measured end to end (from the `RunCommand`s until every pipeline is seen done, polled
every 5 ms, or twice a poll's duration apart when polls get expensive: pipeline creation and the
last poll included) and from the WAL's own stamps (first
`step:started` to last `shell:exited`: the steps alone). The concurrency-1 chain has 200 steps so
that creating it and the poll granularity are a small part of the figure.

Usage: .venv/bin/python bench/runtime_bench.py [--quick] [--report FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
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
sys.path.insert(0, str(ROOT / "bench"))

from report import Report, add_report_argument  # noqa: E402

from oj_trio import protocol  # noqa: E402
from oj_trio.client import Client  # noqa: E402

RUN_ALL_ORDER = 30
RUN_ALL_ARGS: list[str] = []
RUN_ALL_SMOKE_ARGS = ["--tiny"]
RUN_ALL_TIMEOUT = 240

BIN = Path(sys.executable).parent

RUNBOOK = """
command "chain" {
  args = "<name>"
  run  = { pipeline = "chain" }
}
command "longchain" {
  args = "<name>"
  run  = { pipeline = "longchain" }
}
command "nap" {
  args = "<name>"
  run  = { pipeline = "nap" }
}
pipeline "nap" {
  step "sleep" { run = "sleep 1" }
}
"""


def chain_pipeline(steps: int, name: str = "chain") -> str:
    lines = [f'pipeline "{name}" {{']
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
        """Poll until every pipeline of ``ids`` has ended: every 5 ms, or, when a poll is
        expensive (ListPipelines answers with every pipeline in state: ≈ 4 ms of daemon time
        with 1,000 of them), twice its duration apart, so the bench never takes more than a
        third of the daemon it measures."""
        pending = set(ids)
        while pending:
            asked = time.perf_counter()
            pipelines = self.client.query("ListPipelines")["pipelines"]
            took = time.perf_counter() - asked
            states = {p["id"]: p["step"] for p in pipelines}
            pending = {i for i in pending if states.get(i) not in ("done", "failed", "cancelled")}
            failed = [i for i in ids if states.get(i) == "failed"]
            if failed:
                raise SystemExit(f"{len(failed)} pipeline(s) failed, e.g. {failed[0]}")
            if pending:
                time.sleep(max(0.005, 2 * took))

    def wal_steps_per_second(self, ids: list[str]) -> float | None:
        """Steps/s from the WAL's stamps: first `step:started` → last `shell:exited` of ``ids``."""
        wanted = set(ids)
        first, last, exits = None, None, 0
        wal_file = Path(self.env["OJ_STATE_DIR"]) / "wal" / "events.wal"
        for line in wal_file.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)["event"]
            except (ValueError, KeyError, TypeError):
                continue
            if event.get("pipeline_id") not in wanted:
                continue
            if event.get("type") == "step:started":
                first = event["at_ms"] if first is None else min(first, event["at_ms"])
            elif event.get("type") == "shell:exited":
                last = event["at_ms"] if last is None else max(last, event["at_ms"])
                exits += 1
        if first is None or last is None or last <= first or exits < 2:
            return None  # compacted by a snapshot meanwhile, or too short to time in ms
        return exits / ((last - first) / 1000)

    def rss_peak_mb(self) -> float:
        pid = int((Path(self.env["OJ_STATE_DIR"]) / "daemon.pid").read_text())
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.client.stop()


def steps_per_second(
    daemon: Daemon, concurrency: int, steps: int, command: str
) -> tuple[float, float | None]:
    """(end-to-end steps/s, steps/s from the WAL stamps) of ``concurrency`` chains at once."""
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        ids = list(
            pool.map(lambda i: daemon.run(command, f"c{concurrency}-{i}"), range(concurrency))
        )
    daemon.wait_all(ids)
    rate = concurrency * steps / (time.perf_counter() - start)
    return rate, daemon.wal_steps_per_second(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--tiny", action="store_true", help="minimal sizes (smoke test only)")
    add_report_argument(parser)
    opts = parser.parse_args()
    steps = 5 if opts.tiny else 20 if opts.quick else 50
    long_steps = 5 if opts.tiny else 50 if opts.quick else 200
    naps = 20 if opts.tiny else 200 if opts.quick else 1000
    report = Report("runtime", "Pipeline runtime (issue 5)")

    root = Path(tempfile.mkdtemp(prefix="ojb", dir="/tmp"))
    project = root / "p"
    (project / ".oj" / "runbooks").mkdir(parents=True)
    (project / ".oj" / "runbooks" / "bench.hcl").write_text(
        RUNBOOK + chain_pipeline(steps) + "\n" + chain_pipeline(long_steps, "longchain")
    )
    daemon = Daemon(root / "s", project)
    try:
        print(f"# runtime bench ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)")
        spawns = 30 if opts.tiny else 400 if opts.quick else 1000
        # Warm up: the first request parses the runbook (and builds the HCL parser), which
        # would otherwise be charged to the concurrency-1 figure.
        daemon.wait_all([daemon.run("chain", "warm-up")])
        for concurrency in (1, 4, 16):
            raw_sh = trio.run(raw_spawn_rate, concurrency, spawns, RAW_SH)
            raw_bash = trio.run(raw_spawn_rate, concurrency, spawns, RAW_BASH)
            n, command = (long_steps, "longchain") if concurrency == 1 else (steps, "chain")
            rate, wal_rate = steps_per_second(daemon, concurrency, n, command)
            by_wal = f"{wal_rate:5.0f}/s ({wal_rate / raw_sh:.0%} of sh)" if wal_rate else "n/a"
            print(
                f"concurrency {concurrency:>2}: {rate:5.0f} steps/s through ojd (WAL stamps: "
                f"{by_wal}); raw `sh -c true` {raw_sh:5.0f}/s ({rate / raw_sh:.0%}), raw "
                f"`bash -c 'set -euo pipefail; true'` {raw_bash:5.0f}/s ({rate / raw_bash:.0%})"
            )
            note = (
                f"{rate:.0f} steps/s end to end ({concurrency} × {n}-step chains, creation "
                f"included); from the WAL stamps {by_wal}; raw sh {raw_sh:.0f}/s, raw bash "
                f"{raw_bash:.0f}/s ({rate / raw_bash:.0%} of bash)"
            )
            # SPEC §7: at concurrency 1 against raw `sh -c true`; at 16 against "raw
            # `trio.run_process` spawn rate", whose yardstick SPEC names among the machine's
            # limits: `sh -c true` through `trio.run_process`. A `true` step is spawned directly
            # (oj_trio/adapters/direct_exec.py), so raw bash is kept only as a side figure.
            for yardstick, raw, which in (("sh", raw_sh, "raw `sh -c true`"), ("bash", raw_bash,
                                          "raw `bash -c 'set -euo pipefail; true'`")):  # fmt: skip
                target = {("sh", 1): 0.5, ("sh", 16): 0.8}.get((yardstick, concurrency))
                label = (
                    f"trivial steps/s at concurrency {concurrency}"
                    + (" (a chain of steps)" if concurrency == 1 else "")
                    + f" / {which} through `trio.run_process`, same run"
                )
                report.figure(
                    f"steps_c{concurrency}" + ("" if target else f"_{yardstick}"), label,
                    rate / raw, "%", target=f"≥ {target:.0%}" if target else "",
                    ok=rate / raw >= target if target else None,
                    ratio=rate / raw / target if target else None, spec=target is not None,
                    note=note,
                )  # fmt: skip

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(lambda i: daemon.run("nap", f"n{i}"), range(naps)))
        submitted = time.perf_counter() - start
        daemon.wait_all(ids)
        wall = time.perf_counter() - start
        rss = daemon.rss_peak_mb()
        print(
            f"{naps} concurrent `sleep 1` pipelines: all done in {wall:.2f} s "
            f"(submitted in {submitted:.2f} s), daemon peak RSS {rss:.0f} MB"
        )
        report.figure(
            "sleep_1000", f"{naps:,} concurrent `sleep 1` pipelines, all done", wall, "s",
            target="≤ 3 s", ok=wall <= 3.0, ratio=wall / 3.0, spec=naps == 1000,
            note=f"the {naps} `RunCommand`s (32 client threads) took {submitted:.2f} s",
        )  # fmt: skip
        report.figure(
            "daemon_rss", "daemon peak RSS (after the sleeps)", rss, "MB",
            target="< 200 MB", ok=rss < 200, ratio=rss / 200, spec=True,
        )  # fmt: skip

        env = {**daemon.env}
        times = []
        for i in range(3 if opts.tiny else 15):
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
        report.figure(
            "oj_run", "`oj run` whole process (until its pipeline started), median",
            statistics.median(times) * 1000, "ms", note=f"max {max(times) * 1000:.0f} ms",
        )  # fmt: skip
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
    report.write(opts.report)


if __name__ == "__main__":
    main()
