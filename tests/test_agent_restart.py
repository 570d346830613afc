"""Agents outlive the daemon (SPEC §3): a plain stop leaves sessions running and the next daemon
re-attaches; `--kill` ends them; a SIGKILLed daemon re-attaches too; an agent that died while
the daemon was down goes to `on_dead` with the step's real agent id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agentenv import agent_env, needs_tmux, sessions
from blackbox import OjEnv, wait_for

pytestmark = needs_tmux


@pytest.fixture
def env() -> Iterator[OjEnv]:
    with agent_env() as world:
        yield world


def _runbook(env: OjEnv, flag: str) -> None:
    env.runbook(
        "agent.hcl",
        f"""
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
          run     = "while [ ! -f {flag} ]; do sleep 0.1; done; echo finished"
          on_dead = "done"
          on_idle = {{ action = "nudge", attempts = "forever" }}
        }}
        """,
    )


def _agent_id(env: OjEnv, pid: str) -> str:
    return wait_for(lambda: env.pipeline(pid)["steps"][-1].get("agent_id"), what="agent id")


def test_sigkill_then_restart_reattaches_and_completes(env: OjEnv) -> None:
    flag = env.root / "flag"
    _runbook(env, str(flag))
    pid = env.run_pipeline("go", "a")
    agent_id = _agent_id(env, pid)
    wait_for(lambda: sessions(env), what="session")
    env.kill_daemon()
    assert len(sessions(env)) == 1  # the agent survived the crash
    env.ok("daemon", "start")
    flag.write_text("go")
    detail = env.wait_step(pid, "done")
    assert detail["steps"][-1]["agent_id"] == agent_id
    assert "agent re-attached" in env.ok("pipeline", "logs", pid)


def test_agent_dies_while_daemon_is_down_fires_on_dead(env: OjEnv) -> None:
    flag = env.root / "flag"
    _runbook(env, str(flag))
    pid = env.run_pipeline("go", "a")
    agent_id = _agent_id(env, pid)
    wait_for(lambda: sessions(env), what="session")
    env.ok("daemon", "stop")
    assert len(sessions(env)) == 1  # a plain stop leaves agents running
    flag.write_text("go")
    env.ok("daemon", "start")
    detail = env.wait_step(pid, "done")
    assert detail["steps"][-1]["agent_id"] == agent_id


def test_stop_kill_ends_every_session(env: OjEnv) -> None:
    _runbook(env, str(env.root / "never"))
    pid = env.run_pipeline("go", "a")
    _agent_id(env, pid)
    wait_for(lambda: sessions(env), what="session")
    env.ok("daemon", "stop", "--kill")
    assert sessions(env) == []


def test_an_escalated_agent_is_watched_again_after_a_restart(env: OjEnv) -> None:
    flag = env.root / "flag"
    env.runbook(
        "agent.hcl",
        f"""
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
          run     = "echo started; while [ ! -f {flag} ]; do sleep 0.1; done"
          on_idle = "escalate"
          on_dead = "done"
        }}
        """,
    )
    pid = env.run_pipeline("go", "a")
    env.wait_status(pid, "Waiting")
    env.ok("daemon", "stop")
    env.ok("daemon", "start")
    flag.write_text("go")  # the agent ends while escalated: on_dead still applies
    assert env.wait_step(pid, "done")["step_status"] == "Completed"


def test_stop_does_not_wait_the_shell_grace_for_a_running_agent(env: OjEnv) -> None:
    # The grace lets shell steps finish; an agent step never finishes because the daemon stops,
    # so waiting for it would only delay every `oj daemon stop` (here: by ten minutes).
    env.env["OJ_STOP_GRACE_MS"] = "600000"
    flag = env.root / "flag"
    _runbook(env, str(flag))
    pid = env.run_pipeline("go", "a")
    agent_id = _agent_id(env, pid)
    wait_for(lambda: sessions(env), what="session")
    env.ok("daemon", "stop", timeout=120)
    assert len(sessions(env)) == 1
    env.ok("daemon", "start")
    detail = env.pipeline(pid)
    assert (detail["step"], detail["step_status"]) == ("think", "Running")
    flag.write_text("go")
    assert env.wait_step(pid, "done")["steps"][-1]["agent_id"] == agent_id
