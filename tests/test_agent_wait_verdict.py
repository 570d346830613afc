"""`oj agent wait`'s verdicts (reference §7), from an agent summary and its pipeline."""

from __future__ import annotations

from typing import Any

import pytest

from oj_trio.commands.agent import agent_wait_verdict

AGENT = "a1b2c3d4-0000-0000-0000-000000000000"


def agent(status: str, exit_reason: str | None = None) -> dict[str, Any]:
    return {
        "agent_id": AGENT,
        "pipeline_id": "p" * 32,
        "status": status,
        "exit_reason": exit_reason,
    }


def pipeline(
    step: str = "think", terminal: bool = False, error: str | None = None
) -> dict[str, Any]:
    return {"name": "feat", "step": step, "terminal": terminal, "error": error}


@pytest.mark.parametrize(
    ("summary", "detail", "verdict"),
    [
        (agent("running"), pipeline(), None),
        (agent("completed", "completed"), pipeline("review"), (0, f"Agent {AGENT} completed")),
        (agent("waiting", "idle"), pipeline(), (0, f"Agent {AGENT} waiting")),
        (agent("failed", "failed: boom"), pipeline(), (1, f"Agent {AGENT} failed: boom")),
        (agent("failed", "gone"), pipeline(), (1, f"Agent {AGENT} session gone")),
        (agent("running"), pipeline("cancelled", True), (4, "Pipeline feat was cancelled")),
        (agent("failed"), pipeline("cancelled", True), (4, "Pipeline feat was cancelled")),
        (
            agent("running"),
            pipeline("done", True),
            (0, f"Agent {AGENT} completed (no longer active)"),
        ),
        (
            agent("running"),
            pipeline("failed", True, "x broke"),
            (1, "Pipeline feat failed: x broke"),
        ),
        (agent("running"), None, (3, f"Pipeline {'p' * 12} of agent {AGENT} vanished")),
    ],
)
def test_agent_wait_verdicts(
    summary: dict[str, Any], detail: dict[str, Any] | None, verdict: tuple[int, str] | None
) -> None:
    assert agent_wait_verdict(summary, detail) == verdict
