"""Shell-step spawn rate and 1,000 concurrent steps: figures for bench/RESULTS.md, not pass/fail.

SPEC §7 targets: trivial shell steps/s at concurrency 16 >= 80 % of the raw ``trio.run_process``
spawn rate in the same run; 1,000 concurrent ``sleep 1`` steps done in <= 3 s.

Variants are interleaved round by round (the machine is noisy: compare ratios within one run):

* ``raw sh``     — ``trio.run_process(["sh", "-c", "true"])`` (SPEC's baseline; dash here)
* ``raw bash``   — ``trio.run_process(["bash", "-c", "set -euo pipefail\\ntrue"])`` with the same
  spawn options as ``run_shell`` (own session, /dev/null stdio): the shell and script
  ``run_shell`` must run (reference §2.4), to separate bash's cost from our wrapper's
* ``run_shell/devnull``, ``run_shell/on_output`` (pipes + per-line callback into a PipelineLog),
  ``run_shell/log fd`` (child writes straight into the pipeline log)

Usage: ``python bench/spawn_bench.py [--steps N] [--rounds R]``; ``--sleep-only MODE`` runs just
the 1,000-sleep part (the script re-invokes itself that way so each figure gets a fresh RSS).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oj_trio.adapters.process import raise_fd_limit, run_shell
from oj_trio.pipeline_log import PipelineLog

ENV = dict(os.environ)
CWD = Path("/")


def _cpu() -> float:
    """CPU seconds used by this process (all threads), not by its children."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def rate(
    one: Callable[[int], Awaitable[object]], steps: int, concurrency: int
) -> tuple[float, float]:
    """(steps/s, daemon-side CPU µs per step) for ``steps`` calls of ``one``, at most
    ``concurrency`` at once. The CPU figure is the less noisy one: it is our own overhead."""
    counter = iter(range(steps))

    async def worker() -> None:
        for i in counter:
            await one(i)

    start, cpu = time.perf_counter(), _cpu()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    return steps / elapsed, 1e6 * cpu / steps


def variants(plog: PipelineLog) -> dict[str, Callable[[int], Awaitable[object]]]:
    async def raw_sh(i: int) -> None:
        await trio.run_process(["sh", "-c", "true"])

    async def raw_bash(i: int) -> None:
        await trio.run_process(
            ["bash", "-c", "set -euo pipefail\ntrue"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def rs_devnull(i: int) -> None:
        await run_shell("true", cwd=CWD, env=ENV, on_output=None)

    async def rs_output(i: int) -> None:
        pid = f"p{i % 1000}"
        await run_shell("true", cwd=CWD, env=ENV, on_output=plog.output_callback(pid, "s"))

    async def rs_fd(i: int) -> None:
        fd = plog.open_for_child(f"p{i % 1000}")
        try:
            await run_shell("true", cwd=CWD, env=ENV, on_output=None, output_fd=fd)
        finally:
            os.close(fd)

    return {
        "raw sh": raw_sh,
        "raw bash": raw_bash,
        "run_shell/devnull": rs_devnull,
        "run_shell/on_output": rs_output,
        "run_shell/log fd": rs_fd,
    }


async def spawn_rates(steps: int, rounds: int, logs: Path) -> None:
    plog = PipelineLog(logs)
    table: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    names = list(variants(plog))
    for conc in (1, 4, 16):
        n = max(steps // 4, 50) if conc == 1 else steps
        for _ in range(rounds):
            for name, fn in variants(plog).items():
                steps_s, cpu_us = await rate(fn, n, conc)
                table.setdefault((name, conc), []).append(steps_s)
                cpu.setdefault((name, conc), []).append(cpu_us)
    plog.close_all()
    print(f"spawn rate, steps/s (median of {rounds} interleaved rounds)")
    print(
        f"{'variant':22}"
        + "".join(f"{'c=' + str(c):>10}" for c in (1, 4, 16))
        + f"{'CPU µs/step (c=16)':>22}"
    )
    for name in names:
        row = "".join(f"{statistics.median(table[(name, c)]):10.0f}" for c in (1, 4, 16))
        print(f"{name:22}{row}{statistics.median(cpu[(name, 16)]):22.0f}")
    for base in ("raw sh", "raw bash"):
        b = statistics.median(table[(base, 16)])
        for name in names[2:]:
            r = statistics.median(table[(name, 16)])
            print(f"  c=16 {name} / {base}: {100 * r / b:.0f} %")


def log_write_rates(logs: Path) -> None:
    """Pipeline-log line appends/s spread over 1,000 pipelines: open-append-close (max_open=0) vs
    an LRU of descriptors, for strict round-robin (worst case for an LRU) and for bursts of 20
    lines per pipeline (how step output actually arrives: a pipe read yields several lines)."""
    lines = 100_000
    text = "some output line of ordinary length"
    for pattern, burst in (("round-robin", 1), ("bursts of 20", 20)):
        for max_open in (0, 64, 1024):
            plog = PipelineLog(logs / f"{pattern[0]}{max_open}", max_open=max_open)
            start = time.perf_counter()
            for i in range(lines):
                plog.output(f"p{(i // burst) % 1000}", "build", "stdout", text)
            elapsed = time.perf_counter() - start
            plog.close_all()
            print(
                f"log lines/s, 1,000 logs, {pattern:12}, max_open={max_open:4}: "
                f"{lines / elapsed:9.0f}"
            )


async def sleepers(mode: str, count: int, logs: Path) -> None:
    """``count`` concurrent ``run_shell("sleep 1")``; prints wall time and RSS."""
    raise_fd_limit()
    plog = PipelineLog(logs, max_open=64)

    async def one(i: int) -> None:
        pid = f"s{i}"
        if mode == "raw bash":
            await trio.run_process(
                ["bash", "-c", "set -euo pipefail\nsleep 1"], stdin=subprocess.DEVNULL
            )
        elif mode == "fd":
            fd = plog.open_for_child(pid)
            try:
                await run_shell("sleep 1", cwd=CWD, env=ENV, on_output=None, output_fd=fd)
            finally:
                os.close(fd)
        else:
            await run_shell(
                "sleep 1",
                cwd=CWD,
                env=ENV,
                on_output=plog.output_callback(pid, "s"),
            )

    if mode != "raw bash":
        # As in the runtime, each pipeline's log exists before its step spawns ("pipeline
        # created"). Creating 1,000 files inside the timed part would measure ext4 metadata under
        # the other sessions' fsync load, not spawning.
        for i in range(count):
            plog.write(f"s{i}", "init", "pipeline created")
        plog.close_all()
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    wall = time.perf_counter() - start
    plog.close_all()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{count} concurrent sleep-1 steps ({mode}): {wall:.2f} s wall, maxrss {maxrss_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sleepers", type=int, default=1000)
    parser.add_argument("--sleep-only", choices=["raw bash", "fd", "on_output"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oj-spawn-bench-") as tmp:
        logs = Path(tmp)
        if args.sleep_only:
            trio.run(sleepers, args.sleep_only, args.sleepers, logs)
            return
        print(f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} cpus")
        trio.run(spawn_rates, args.steps, args.rounds, logs)
        log_write_rates(logs)
    # Each in a fresh process (clean max RSS), alternated twice because load from other work on
    # the machine shifts from one second to the next.
    for _ in range(2):
        for mode in ("raw bash", "fd", "on_output"):
            cmd = [sys.executable, __file__, "--sleep-only", mode, "--sleepers", str(args.sleepers)]
            subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
