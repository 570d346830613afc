"""`oj status` lists each project's agent steps, running or waiting for a person (reference §6.2
`active_agents`), next to the "needs attention" entry an escalation makes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from agentenv import agent_env, generic_agent_runbook, needs_tmux
from blackbox import OjEnv, wait_for

pytestmark = needs_tmux


@pytest.fixture
def env() -> Iterator[OjEnv]:
    with agent_env() as world:
        yield world


def agents(env: OjEnv) -> list[dict[str, Any]]:
    return [a for ns in env.json("status")["namespaces"] for a in ns["active_agents"]]


def test_status_lists_running_then_waiting_agents(env: OjEnv) -> None:
    generic_agent_runbook(env, 'on_idle = "escalate"')
    pid = env.run_pipeline("go", "looked-at")
    listed = wait_for(lambda: agents(env), what="the agent in oj status")
    assert len(listed) == 1
    entry = listed[0]
    assert entry["pipeline_id"] == pid and entry["step_name"] == "think"
    assert entry["agent_name"] == "bot"
    assert entry["agent_id"] == env.pipeline(pid)["steps"][-1]["agent_id"]
    assert entry["status"] in ("running", "waiting")
    # idle → escalated: still listed, now waiting, and it needs attention
    wait_for(lambda: [a["status"] for a in agents(env)] == ["waiting"], what="the escalation")
    text = env.ok("status")
    assert "Agents (1):" in text, text
    assert any(line.split()[:1] == ["bot"] and "waiting" in line for line in text.splitlines())
    assert "Needs attention (1):" in text
    env.ok("pipeline", "cancel", pid)
    wait_for(lambda: agents(env) == [], what="the cancelled agent to leave oj status")
