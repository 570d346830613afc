"""Agent step figures (issue 10). Prints figures; never a pass/fail test. Needs tmux.

* step start → the agent's pane running: ``step:started`` (its ``started_at_ms``) to the first
  thing the agent's command does (it writes ``date +%s%N`` to a file), over sequential runs;
* watcher CPU with N idle agents (default 50): ojd's CPU (its own plus the tmux clients it
  reaps) and the tmux server's, over a window, as % of one core, total and per agent;
* idle → ``on_idle``: from the agent's last output to the step's end by ``on_idle = "done"``,
  minus the idle timeout (so: the detection delay the watcher adds), at the default poll
  interval (1 s) and at 100 ms.

Usage: .venv/bin/python bench/agent_bench.py [--agents 50] [--runs 20] [--window 20]
       [--report FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import Report, add_report_argument  # noqa: E402

from oj_trio import protocol  # noqa: E402

RUN_ALL_ORDER = 50
RUN_ALL_ARGS = ["--agents", "20", "--runs", "10", "--window", "10"]
RUN_ALL_SMOKE_ARGS = ["--agents", "2", "--runs", "2", "--window", "1"]
RUN_ALL_TIMEOUT = 240

#: What this run measured, for ``--report`` (bench/run_all).
REPORT = Report("agent", "Agent steps (issue 10)")
from oj_trio.client import Client  # noqa: E402

BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")


def runbook(run: str, on_idle: str) -> str:
    return f"""
command "go" {{
  args = "<name>"
  run  = {{ pipeline = "work" }}
}}
pipeline "work" {{
  step "think" {{
    run = {{ agent = "bot" }}
  }}
}}
agent "bot" {{
  adapter = "generic"
  run     = "{run}"
  on_idle = {on_idle}
  on_dead = "done"
}}
"""


class World:
    """One isolated daemon with a project whose runbook is ``text``."""

    def __init__(self, text: str, **env: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ojb", dir="/tmp"))
        self.state = self.root / "s"
        self.project = self.root / "p"
        (self.project / ".oj" / "runbooks").mkdir(parents=True)
        (self.project / ".oj" / "runbooks" / "agent.hcl").write_text(text)
        self.env = {
            **os.environ,
            "OJ_STATE_DIR": str(self.state),
            "OJ_DAEMON_BINARY": str(BIN / "ojd"),
            **env,
        }
        self.client = Client(self.env)
        self.client.ensure_running()

    def run(self, name: str) -> str:
        reply = self.client.call(
            protocol.request(
                "RunCommand",
                project_root=str(self.project),
                invoke_dir=str(self.project),
                namespace="bench",
                command="go",
                args=[name],
            )
        )
        return str(reply["pipeline_id"])

    def pipeline(self, pid: str) -> dict[str, object]:
        return dict(self.client.query("GetPipeline", id=pid)["pipeline"])

    def wait(self, pid: str, pred: object, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            detail = self.pipeline(pid)
            if pred(detail):  # type: ignore[operator]
                return detail
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {detail}")
            time.sleep(0.02)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.call(protocol.request("Shutdown", kill=True))
        time.sleep(0.5)
        subprocess.run(
            ["tmux", "-S", str(self.state / "tmux.sock"), "kill-server"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def cpu_ticks(pid: int, *, children: bool) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime + (cutime + cstime if children else 0)


def tmux_server_pid(state: Path) -> int | None:
    out = subprocess.run(
        ["tmux", "-S", str(state / "tmux.sock"), "display", "-p", "#{pid}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(out.stdout.strip()) if out.stdout.strip().isdigit() else None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spawn_latency(runs: int) -> None:
    stamp = "/tmp/ojb-stamp-$OJ_AGENT_ID"
    world = World(runbook(f"date +%s%N > {stamp}; exec cat", '"escalate"'))
    try:
        delays = []
        for n in range(runs):
            pid = world.run(f"s{n}")
            detail = world.wait(pid, lambda d: d["steps"][-1].get("agent_id"))
            agent_id = detail["steps"][-1]["agent_id"]  # type: ignore[index]
            path = Path(f"/tmp/ojb-stamp-{agent_id}")
            deadline = time.monotonic() + 10
            while not (path.exists() and path.read_text().strip()):
                if time.monotonic() > deadline:
                    raise SystemExit("the agent never started")
                time.sleep(0.005)
            started_ns = int(path.read_text())
            path.unlink()
            step_ms = detail["steps"][-1]["started_at_ms"]  # type: ignore[index]
            delays.append(started_ns / 1e6 - float(step_ms))  # type: ignore[arg-type]
            world.client.call(protocol.request("PipelineCancel", ids=[pid]))
        REPORT.figure(
            "agent_start", "agent step start → its pane running, p50", statistics.median(delays),
            "ms", note=f"p95 {pct(delays, 0.95):.1f} ms, min {min(delays):.1f} ms, {runs} runs",
        )  # fmt: skip
        print(
            f"step start → pane running ({runs} sequential): p50 {statistics.median(delays):.1f} ms,"
            f" p95 {pct(delays, 0.95):.1f} ms, min {min(delays):.1f} ms"
        )
    finally:
        world.close()


def idle_cpu(agents: int, window: float) -> None:
    world = World(runbook("exec cat", '"escalate"'))
    try:
        ids = [world.run(f"i{n}") for n in range(agents)]
        for pid in ids:
            world.wait(pid, lambda d: d["step_status"] == "Running" and d.get("session_id"))
        time.sleep(3)
        ojd = int((world.state / "daemon.pid").read_text())
        server = tmux_server_pid(world.state)
        before = cpu_ticks(ojd, children=True), cpu_ticks(server, children=False) if server else 0
        start = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - start
        after = cpu_ticks(ojd, children=True), cpu_ticks(server, children=False) if server else 0
        daemon_pct = (after[0] - before[0]) / TICKS / elapsed * 100
        tmux_pct = (after[1] - before[1]) / TICKS / elapsed * 100
        total = daemon_pct + tmux_pct
        REPORT.figure(
            "agent_idle_cpu", f"{agents} idle agents: ojd + tmux server CPU, % of one core",
            total, "% of a core", note=f"ojd {daemon_pct:.2f} %, tmux {tmux_pct:.2f} %; "
            f"{total / agents:.3f} % per agent; {window:.0f} s window",
        )  # fmt: skip
        print(
            f"{agents} idle agents, {window:.0f} s window: ojd {daemon_pct:.2f} % of a core "
            f"(incl. the tmux clients it runs), tmux server {tmux_pct:.2f} %; total {total:.2f} % "
            f"= {total / agents:.3f} % per agent"
        )
    finally:
        world.close()


def idle_to_action(runs: int, poll_ms: int, idle_ms: int) -> None:
    stamp = "/tmp/ojb-idle-$OJ_AGENT_ID"
    world = World(
        runbook(f"echo hello; date +%s%N > {stamp}; exec cat", '"done"'),
        OJ_WATCHER_POLL_MS=str(poll_ms),
        OJ_IDLE_TIMEOUT_MS=str(idle_ms),
    )
    try:
        delays = []
        for n in range(runs):
            pid = world.run(f"d{n}")
            detail = world.wait(pid, lambda d: d["step"] == "done", timeout=120)
            rec = [s for s in detail["steps"] if s["name"] == "think"][-1]  # type: ignore[union-attr]
            path = Path(f"/tmp/ojb-idle-{rec['agent_id']}")
            output_ms = int(path.read_text()) / 1e6
            path.unlink()
            delays.append(float(rec["finished_at_ms"]) - output_ms - idle_ms)
        REPORT.figure(
            f"agent_idle_action_{poll_ms}",
            f"agent idle → `on_idle` beyond the idle timeout, poll {poll_ms} ms, p50",
            statistics.median(delays), "ms", note=f"p95 {pct(delays, 0.95):.0f} ms, {runs} runs",
        )  # fmt: skip
        print(
            f"idle → on_idle (poll {poll_ms} ms, idle timeout {idle_ms} ms, {runs} runs): "
            f"delay after the timeout p50 {statistics.median(delays):.0f} ms, "
            f"p95 {pct(delays, 0.95):.0f} ms"
        )
    finally:
        world.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--window", type=float, default=20.0)
    add_report_argument(parser)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        REPORT.skip("tmux is not installed")
        REPORT.write(args.report)
        raise SystemExit("tmux is not installed")
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    spawn_latency(args.runs)
    idle_cpu(args.agents, args.window)
    idle_to_action(max(5, args.runs // 2), 1000, 1000)
    idle_to_action(max(5, args.runs // 2), 100, 1000)
    print(f"load average {os.getloadavg()[0]:.1f}")
    REPORT.write(args.report)


if __name__ == "__main__":
    main()
