"""Where a trivial shell step's wall time goes (issue 9). Prints figures; never a pass/fail test.

Part 1, in process: a real :class:`~oj_trio.store.Store` (its WAL writer as in the daemon), the
real :class:`~oj_trio.nursery_runtime.Supervisor`, driver, ``ShellRunner`` and ``run_shell``, on
the system clock; one pipeline chaining ``--steps`` ``true`` steps. The step's code is not
modified: a few module attributes are wrapped for the duration of the run to take a
``perf_counter`` stamp on entry and exit (commits, the spawn, the waits for the child, the group
check, the pipe pumps, the runner); hooks a tree does not have are skipped, so the same script
profiles older and newer trees. Each step's life, from one ``step:started`` commit to the next,
is cut at those stamps into consecutive phases, printed as median / p90 over the steps, with the
CPU time and the context switches of the process per step (wall ≫ CPU means waiting: a thread
hand-off, an fsync, the child; every voluntary switch is a sleep and a wake-up, which waits for a
core on a busy machine). Raw ``trio.run_process`` of the step's bash script runs in between, as
the floor.

Part 2, through a real ``ojd``: the same chain over the socket, then the durations between the WAL
events' own ``at_ms`` stamps (``step:started`` → ``shell:exited`` → next ``step:started``), the
chain's steps/s from those stamps, the daemon's CPU per step, and raw ``bash``/``sh`` spawn rates
in the same run. Millisecond resolution: read medians, not single values.

Usage: .venv/bin/python bench/step_profile.py [--steps 300] [--rounds 3] [--probe] [--no-daemon]

``--probe`` makes every step ``printf "%s\n" "$EPOCHREALTIME" >>file`` (a bash builtin: no extra
process), so the breakdown also shows when bash started running the command: bash's own start-up
versus the time from there until the daemon noticed the exit.

Before/after comparisons: run it in each tree (e.g. a ``git worktree`` of the old commit with its
own venv), alternately, on the same machine.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oj_trio import events as ev  # noqa: E402
from oj_trio.adapters import process as proc_mod  # noqa: E402
from oj_trio.clock import Clock  # noqa: E402
from oj_trio.nursery_runtime import Supervisor  # noqa: E402
from oj_trio.pipeline_setup import prepare_pipeline  # noqa: E402
from oj_trio.runbook import load_runbook_text  # noqa: E402
from oj_trio.runbook.model import RunShell  # noqa: E402
from oj_trio.runtime import step_runners  # noqa: E402
from oj_trio.runtime.pipeline_start import start_pipelines  # noqa: E402
from oj_trio.store import Store  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from runtime_bench import Daemon  # noqa: E402

RAW_BASH = ["bash", "-c", "set -euo pipefail\ntrue"]


def chain_runbook(steps: int, command: str) -> str:
    lines = [
        'command "chain" {\n  args = "<name>"\n  run  = { pipeline = "chain" }\n}',
        'pipeline "chain" {',
    ]
    for i in range(steps):
        nxt = f'\n    on_done = {{ step = "s{i + 1}" }}' if i + 1 < steps else ""
        lines.append(f'  step "s{i}" {{\n    run = {json.dumps(command)}{nxt}\n  }}')
    lines.append("}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ instrumentation


class Marks:
    """``(label, perf_counter)`` stamps in the order they happen (concurrency 1: one step at a
    time, so the stream cuts cleanly into steps at each ``runner:start``)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[str, float]] = []
        self.cpu: list[float] = []
        #: (voluntary, involuntary) context switches of the whole process, threads included.
        self.switches: list[tuple[int, int]] = []
        self.enabled = False

    def mark(self, label: str) -> None:
        if self.enabled:
            self.stamps.append((label, time.perf_counter()))
            if label == "runner:start":
                self.cpu.append(time.process_time())
                usage = resource.getrusage(resource.RUSAGE_SELF)
                self.switches.append((usage.ru_nvcsw, usage.ru_nivcsw))


MARKS = Marks()


def _patch(obj: Any, name: str, make: Callable[[Any], Any], undo: list[Callable[[], None]]) -> None:
    """Replace ``obj.name`` by ``make(original)``; ``undo`` gets the restore. Missing → skipped
    (so the script runs against older and newer trees alike)."""
    original = getattr(obj, name, None)
    if original is None:
        return
    setattr(obj, name, make(original))
    undo.append(lambda: setattr(obj, name, original))


def _timed_async(label: str) -> Callable[[Any], Any]:
    def make(fn: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            MARKS.mark(f"{label}:start")
            try:
                return await fn(*args, **kwargs)
            finally:
                MARKS.mark(f"{label}:end")

        return wrapper

    return make


def _timed_sync(label: str) -> Callable[[Any], Any]:
    def make(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            MARKS.mark(f"{label}:start")
            try:
                return fn(*args, **kwargs)
            finally:
                MARKS.mark(f"{label}:end")

        return wrapper

    return make


def _timed_commit(fn: Any) -> Any:
    async def commit(self: Store, *events: ev.EventBase) -> int:
        if any(isinstance(e, ev.StepStarted) for e in events):
            label = "commit:started"
        elif any(isinstance(e, ev.ShellSpawned) for e in events):
            label = "commit:spawned"
        else:
            label = "commit:other"
        MARKS.mark(f"{label}:start")
        try:
            return int(await fn(self, *events))
        finally:
            MARKS.mark(f"{label}:end")

    return commit


def instrument() -> list[Callable[[], None]]:
    undo: list[Callable[[], None]] = []
    _patch(Store, "commit", _timed_commit, undo)
    _patch(trio.lowlevel, "open_process", _timed_async("spawn"), undo)
    _patch(trio.Process, "wait", _timed_async("wait"), undo)
    # After issue 9 the adapter spawns and waits by itself (no-ops on older trees).
    spawn = getattr(proc_mod, "_spawn", None)
    timed = _timed_async if inspect.iscoroutinefunction(spawn) else _timed_sync
    _patch(proc_mod, "_spawn", timed("spawn"), undo)
    if hasattr(proc_mod, "_Child"):
        _patch(proc_mod._Child, "wait", _timed_async("wait"), undo)
    _patch(proc_mod, "_terminate_group", _timed_async("group"), undo)
    _patch(proc_mod, "_pump", _timed_async("pump"), undo)
    _patch(proc_mod, "run_shell", _timed_async("run_shell"), undo)
    # step_runners imported run_shell by name: patch its reference as well.
    _patch(step_runners, "run_shell", _timed_async("run_shell"), undo)
    return undo


class TimedRunner:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def run(self, ctx: Any, p: Any, step: Any) -> Any:
        MARKS.mark("runner:start")
        try:
            return await self.inner.run(ctx, p, step)
        finally:
            MARKS.mark("runner:end")


AFTER_SPAWN = "after spawn (start ticks, nursery, pumps)"
#: A step's life is cut at these stamps, in this order (the first of each after the previous
#: cut); each phase ends at its cut. A stamp whose hook no longer exists merges its phase into the
#: next one. The window is one ``step:started`` commit to the next: the phases sum to the period.
CUTS: list[tuple[str, str]] = [
    ("commit:started:end", "commit exit + advance + step:started (fsync)"),
    ("runner:start", "driver → runner (next_move, log line)"),
    ("spawn:start", "runner prep (template, env, log line)"),
    ("spawn:end", "spawn (Popen; before issue 9 in a worker thread)"),
    ("commit:spawned:start", AFTER_SPAWN),
    ("commit:spawned:end", "commit shell:spawned (fsync)"),
    ("wait:start", AFTER_SPAWN),
    ("wait:end", "waiting for the exit to be noticed"),
    ("group:end", "group check after exit"),
    ("run_shell:end", "pipes to EOF, nursery exit"),
    ("runner:end", "runner after run_shell"),
    ("<next>", "decide, log lines (until the next commit)"),
]
#: Not part of the sum (overlapping spans), shown after it.
SPANS: list[tuple[str, str, str]] = [
    ("spawn:start", "probe", "spawn → bash runs the command (--probe)"),
    ("probe", "wait:end", "bash runs the command → exit noticed (--probe)"),
    ("spawn:start", "wait:end", "spawn → exit noticed"),
]


def cut_steps(
    stamps: list[tuple[str, float]], probes: list[float]
) -> tuple[list[dict[str, float]], list[float]]:
    """Per step, the duration of each phase and span (seconds), and the step periods."""
    merged = sorted([*stamps, *(("probe", t) for t in probes)], key=lambda s: s[1])
    bounds = [t for label, t in merged if label == "commit:started:start"]
    steps: list[dict[str, float]] = []
    periods: list[float] = []
    # Skip the first step (pipeline start) and the last (the pipeline's end, no next step).
    for lo, hi in itertools.pairwise(bounds[1:]):
        window = [(label, t) for label, t in merged if lo <= t < hi]
        first: dict[str, float] = {}
        for label, t in window:
            first.setdefault(label, t)
        phases: dict[str, float] = {}
        cursor = lo
        for label, name in CUTS:
            t = hi if label == "<next>" else first.get(label)
            if t is None or t < cursor:
                continue
            phases[name] = phases.get(name, 0.0) + t - cursor
            cursor = t
        for a, b, name in SPANS:
            if a in first and b in first and first[b] >= first[a]:
                phases[name] = first[b] - first[a]
        steps.append(phases)
        periods.append(hi - lo)
    return steps, periods


def quantiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.9))]


# ------------------------------------------------------------------------------ part 1: in process


async def run_inprocess(root: Path, steps: int, command: str) -> float:
    state = root / "state"
    project = root / "project"
    project.mkdir(parents=True, exist_ok=True)
    store, _ = Store.open(state)
    runners = dict(step_runners.RUNNERS)
    runners[RunShell] = TimedRunner(runners[RunShell])
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        sup = Supervisor(store, state, env=dict(os.environ), clock=Clock.system(), runners=runners)
        await nursery.start(sup.run)
        ctx = sup.ctx
        loaded = load_runbook_text(
            chain_runbook(steps, command), str(project / "p.hcl"), check_shell=False
        )
        assert loaded.runbook is not None, loaded.errors
        runbook = loaded.runbook
        events = ctx.runbooks.load_events(runbook)
        events += await prepare_pipeline(
            runbook,
            "chain",
            pipeline_id="profile-0001",
            namespace="bench",
            vars={"invoke.dir": str(project), "name": "x"},
            fallback_name="profile",
            invoke_dir=str(project),
            workspaces_dir=ctx.workspaces_dir,
            env=ctx.env,
            runbook_hash=ctx.runbooks.digest(runbook),
            at_ms=ctx.clock.now_ms(),
        )
        t0 = time.perf_counter()
        MARKS.enabled = True
        await start_pipelines(ctx, sup, events)
        while not (store.state.pipelines["profile-0001"].terminal):
            await store.wait_for_change(store.last_seq)
        MARKS.enabled = False
        elapsed = time.perf_counter() - t0
        p = store.state.pipelines["profile-0001"]
        if p.step != "done":
            raise SystemExit(f"profile pipeline ended {p.step}: {p.error}")
        await sup.drain(1)
        await store.aclose()
        nursery.cancel_scope.cancel()
    return steps / elapsed


async def raw_periods(n: int, argv: list[str] = RAW_BASH) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await trio.run_process(argv)
        out.append(time.perf_counter() - t)
    return out


async def raw_sh_periods(n: int) -> list[float]:
    return await raw_periods(n, ["sh", "-c", "true"])


def part1(steps: int, rounds: int, probe: bool) -> None:
    print(f"## in process: real Store + Supervisor + ShellRunner, {steps} chained steps × {rounds}")
    all_phases: list[dict[str, float]] = []
    all_periods: list[float] = []
    cpu_per_step: list[float] = []
    vol: list[int] = []
    invol: list[int] = []
    raw: list[float] = []
    rates: list[float] = []
    undo = instrument()
    try:
        for r in range(rounds):
            root = Path(tempfile.mkdtemp(prefix="ojprof", dir="/tmp"))
            probe_file = root / "probe.txt"
            command = f'printf "%s\\n" "$EPOCHREALTIME" >>{probe_file}' if probe else "true"
            MARKS.stamps.clear()
            MARKS.cpu.clear()
            MARKS.switches.clear()
            try:
                rate = trio.run(run_inprocess, root, steps, command)
                probes: list[float] = []
                if probe:
                    # EPOCHREALTIME is wall clock; map to perf_counter through one pair of reads.
                    offset = time.time() - time.perf_counter()
                    probes = [float(x) - offset for x in probe_file.read_text().split()]
            finally:
                shutil.rmtree(root, ignore_errors=True)
            phases, periods = cut_steps(MARKS.stamps, probes)
            all_phases += phases
            all_periods += periods
            cpu = MARKS.cpu
            cpu_per_step += [b - a for a, b in itertools.pairwise(cpu)]
            sw = MARKS.switches
            vol += [b[0] - a[0] for a, b in itertools.pairwise(sw)]
            invol += [b[1] - a[1] for a, b in itertools.pairwise(sw)]
            rates.append(rate)
            raw += trio.run(raw_periods, min(steps, 200))
            print(f"round {r + 1}: {rate:.0f} steps/s")
    finally:
        for u in reversed(undo):
            u()
    print()
    print("| phase (wall, µs) | median | p90 |")
    print("|---|---:|---:|")
    names = list(dict.fromkeys(name for _, name in CUTS))
    names += ["**step period** (sum)"] + [n for _, _, n in SPANS]
    for ph, period in zip(all_phases, all_periods, strict=True):
        ph["**step period** (sum)"] = period
    for name in names:
        xs = [ph[name] for ph in all_phases if name in ph]
        if not xs:
            continue
        m, p90 = quantiles(xs)
        print(f"| {name} | {m * 1e6:,.0f} | {p90 * 1e6:,.0f} |")
    cm, cp = quantiles(cpu_per_step)
    print(f"| daemon CPU per step (process_time) | {cm * 1e6:,.0f} | {cp * 1e6:,.0f} |")
    rm, rp = quantiles(raw)
    print(
        f"| raw `trio.run_process` of the step's bash script | {rm * 1e6:,.0f} | {rp * 1e6:,.0f} |"
    )
    print(
        f"\ncontext switches of the daemon process per step (mean; each voluntary one is a sleep "
        f"and a wake-up, which waits for a core when the machine is busy): voluntary "
        f"{statistics.fmean(vol):.1f}, involuntary {statistics.fmean(invol):.1f}"
    )
    print(
        f"\nsteps/s in process: {statistics.median(rates):.0f} (median of {rounds}); "
        f"raw bash at c=1: {1 / rm:.0f}/s → {statistics.median(rates) * rm:.0%}"
    )


# ------------------------------------------------------------------------------ part 2: real ojd


def wal_events(state: Path) -> list[dict[str, Any]]:
    out = []
    for line in (state / "wal" / "events.wal").read_text().splitlines():
        if line.strip():
            out.append(json.loads(line)["event"])
    return out


def daemon_cpu_seconds(state: Path) -> float:
    """utime + stime of the running ``ojd`` (all its threads, ended ones included)."""
    pid = int((state / "daemon.pid").read_text())
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def part2(steps: int, rounds: int) -> None:
    print(f"\n## through a real ojd: {steps} chained `true` steps × {rounds}, WAL at_ms stamps")
    root = Path(tempfile.mkdtemp(prefix="ojprof", dir="/tmp"))
    project = root / "p"
    (project / ".oj" / "runbooks").mkdir(parents=True)
    (project / ".oj" / "runbooks" / "chain.hcl").write_text(chain_runbook(steps, "true"))
    state = root / "s"
    daemon = Daemon(state, project)
    started_exited: list[int] = []
    exited_next: list[int] = []
    rates: list[float] = []
    cpu: list[float] = []
    try:
        daemon.wait_all([daemon.run("chain", "warm-up")])
        for r in range(rounds):
            cpu0 = daemon_cpu_seconds(state)
            pid = daemon.run("chain", f"r{r}")
            daemon.wait_all([pid])
            evs = [
                e for e in wal_events(state) if e.get("pipeline_id") == pid or e.get("id") == pid
            ]
            first_started: int | None = None
            last_started: int | None = None
            last_exited: int | None = None
            for e in evs:
                if e["type"] == "step:started":
                    if last_exited is not None:
                        exited_next.append(e["at_ms"] - last_exited)
                    last_started = e["at_ms"]
                    first_started = e["at_ms"] if first_started is None else first_started
                elif e["type"] == "shell:exited" and last_started is not None:
                    started_exited.append(e["at_ms"] - last_started)
                    last_exited = e["at_ms"]
            assert first_started is not None and last_exited is not None
            # From the first step's start to the last step's exit, by the daemon's own stamps
            # (the client's polling for the end is not in it).
            rates.append(steps / ((last_exited - first_started) / 1000))
            # Includes the client's ListPipelines polls (one every 20 ms) and the pipeline's
            # creation: an upper bound for the steps themselves.
            cpu.append((daemon_cpu_seconds(state) - cpu0) / steps)
        raw = trio.run(raw_periods, 200)
        raw_sh = trio.run(raw_sh_periods, 200)
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
    for name, xs in (
        ("step:started → shell:exited", started_exited),
        ("shell:exited → next step:started", exited_next),
    ):
        xs = sorted(xs)
        print(
            f"{name}: median {statistics.median(xs):.1f} ms, p90 {xs[int(len(xs) * 0.9)]} ms, "
            f"mean {statistics.fmean(xs):.2f} ms"
        )
    rate = statistics.median(rates)
    rm, rs = statistics.median(raw), statistics.median(raw_sh)
    print(
        f"daemon CPU per step (utime + stime of ojd, client polls included): "
        f"{statistics.median(cpu) * 1e6:,.0f} µs"
    )
    print(
        f"chain through ojd: {rate:.0f} steps/s (median of {rounds}: "
        f"{', '.join(f'{x:.0f}' for x in rates)}); same run, one at a time: raw bash "
        f"{1 / rm:.0f}/s ({rm * 1e3:.2f} ms) → {rate * rm:.0%}, raw `sh -c true` "
        f"{1 / rs:.0f}/s ({rs * 1e3:.2f} ms) → {rate * rs:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probe", action="store_true", help="stamp when bash runs the command")
    parser.add_argument("--no-daemon", action="store_true", help="skip part 2")
    opts = parser.parse_args()
    print(f"# step profile ({time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f})")
    part1(opts.steps, opts.rounds, opts.probe)
    if not opts.no_daemon:
        part2(opts.steps, opts.rounds)


if __name__ == "__main__":
    main()
