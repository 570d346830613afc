"""Agent actions over minutes, in virtual time: the real agent service and its watch loop, the
real driver, store and durable timers, with tmux replaced by an in-memory fake whose panes stay
silent (so the agent idles) until a test says otherwise."""

from __future__ import annotations

from pathlib import Path

import attrs
import trio
from runtime_harness import open_runtime

from oj_trio.adapters.tmux import PaneMonitor, PaneState
from oj_trio.state import StepStatus


@attrs.define
class FakeTmux:
    """The calls the agent service makes, on a dict of panes; sent text is recorded with the
    trio time it was sent."""

    panes_by_name: dict[str, PaneState] = attrs.Factory(dict)
    sent: list[tuple[str, float]] = attrs.Factory(list)
    commands: list[str] = attrs.Factory(list)

    async def new_session(
        self, name: str, command: str, *, cwd: Path, env: dict[str, str], pipe_to: Path | None
    ) -> None:
        self.commands.append(command)
        self.panes_by_name[name] = PaneState(dead=False, exit_status=None, pid=1)
        if pipe_to is not None:
            pipe_to.parent.mkdir(parents=True, exist_ok=True)
            pipe_to.write_text("ready\n")

    async def kill_session(self, name: str) -> bool:
        return self.panes_by_name.pop(name, None) is not None

    async def send_text(self, name: str, text: str, *, enter: bool = True) -> None:
        self.sent.append((text, trio.current_time()))

    async def send_keys(self, name: str, *keys: str) -> None:
        pass

    async def capture(self, name: str, *, lines: int = 40, color: bool = False) -> str:
        return ""

    async def panes(self) -> dict[str, PaneState]:
        return dict(self.panes_by_name)

    def die(self, status: int) -> None:
        for name in self.panes_by_name:
            self.panes_by_name[name] = PaneState(dead=True, exit_status=status, pid=None)


def runbook(agent_body: str) -> str:
    return f"""
    pipeline "work" {{
      step "think" {{
        run = {{ agent = "bot" }}
      }}
    }}
    agent "bot" {{
      adapter = "generic"
      run     = "sleep 100000"
      {agent_body}
    }}
    """


async def test_nudges_wait_their_cooldown_then_attempts_run_out(
    tmp_path: Path, autojump_clock: object
) -> None:
    """Idle timeout 180 s (the default), nudge up to 3 times, 5 minutes apart: nudges at 180 s,
    then at the cooldown's end (480 s, 780 s), not at the next idle; the 4th idle escalates."""
    async with open_runtime(tmp_path, agents=True) as rt:
        fake = FakeTmux()
        rt.supervisor.agents.tmux = fake  # type: ignore[assignment]
        rt.supervisor.agents.monitor = PaneMonitor(fake)  # type: ignore[arg-type]
        start = trio.current_time()
        pid = await rt.start(
            runbook('on_idle = { action = "nudge", attempts = 3, cooldown = "5m" }'), "work"
        )
        await rt.wait_until(lambda: rt.store.state.pipelines[pid].step_status == StepStatus.WAITING)
        p = rt.store.state.pipelines[pid]
        assert p.error == "idle attempts exhausted"
        times = [round(at - start) for _text, at in fake.sent]
        assert [text for text, _ in fake.sent] == ["Please continue with the task."] * 3
        assert all(abs(t - want) <= 3 for t, want in zip(times, (180, 480, 780), strict=True)), (
            times
        )
        assert p.action_attempts == {"idle:0": 3}
        # the cooldowns ran on the durable timers
        assert rt.store.state.timers == {}


async def test_forever_keeps_nudging(tmp_path: Path, autojump_clock: object) -> None:
    async with open_runtime(tmp_path, agents=True) as rt:
        fake = FakeTmux()
        rt.supervisor.agents.tmux = fake  # type: ignore[assignment]
        rt.supervisor.agents.monitor = PaneMonitor(fake)  # type: ignore[arg-type]
        pid = await rt.start(
            runbook('on_idle = { action = "nudge", attempts = "forever" }'), "work"
        )
        await rt.wait_until(lambda: len(fake.sent) >= 10)
        p = rt.store.state.pipelines[pid]
        assert p.step_status == StepStatus.RUNNING
        assert p.action_attempts == {"idle:0": 10}


async def test_on_dead_done_and_the_session_is_ended(
    tmp_path: Path, autojump_clock: object
) -> None:
    async with open_runtime(tmp_path, agents=True) as rt:
        fake = FakeTmux()
        rt.supervisor.agents.tmux = fake  # type: ignore[assignment]
        rt.supervisor.agents.monitor = PaneMonitor(fake)  # type: ignore[arg-type]
        pid = await rt.start(runbook('on_dead = "done"'), "work")
        await rt.wait_until(lambda: bool(fake.panes_by_name))
        fake.die(0)
        p = await rt.wait_ended(pid)
        assert p.step == "done"
        assert fake.panes_by_name == {}
        assert rt.store.state.sessions == {}


async def test_a_claude_agent_without_a_session_log_is_watched_by_its_process(
    tmp_path: Path, autojump_clock: object
) -> None:
    """Reference §4.2: no session log within 30 s → process-only watching, said once in the
    pipeline log; the agent's death still fires on_dead, and Claude's idle hook still works."""
    async with open_runtime(tmp_path, agents=True) as rt:
        fake = FakeTmux()
        service = rt.supervisor.agents
        service.tmux = fake  # type: ignore[assignment]
        service.monitor = PaneMonitor(fake)  # type: ignore[arg-type]
        fakes = Path(__file__).resolve().parent / "fake_agents"
        service.ctx.env["PATH"] = f"{fakes}:/usr/bin:/bin"  # type: ignore[index]
        service.ctx.env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "claude")  # type: ignore[index]
        text = """
        pipeline "work" {
          step "think" {
            run = { agent = "bot" }
          }
        }
        agent "bot" {
          run     = "claude"
          on_idle = "escalate"
          on_dead = "done"
        }
        """
        start = trio.current_time()
        pid = await rt.start(text, "work")
        log = service.ctx.log.path(pid)
        await rt.wait_until(lambda: log.exists() and "watching the process only" in log.read_text())
        assert trio.current_time() - start >= 30
        assert log.read_text().count("watching the process only") == 1
        p = rt.store.state.pipelines[pid]
        assert p.step_status == StepStatus.RUNNING
        agent_id = p.step_history[-1].agent_id
        assert agent_id is not None
        await service.hook(agent_id, "idle", None)
        await rt.wait_until(lambda: rt.store.state.pipelines[pid].step_status == StepStatus.WAITING)
        fake.die(0)
        p = await rt.wait_ended(pid)
        assert p.step == "done"
