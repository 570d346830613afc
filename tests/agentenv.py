"""Black-box agent tests: an `OjEnv` whose daemon finds the fake agents first on PATH, with short
watcher/idle timings, and whose private tmux server is killed afterwards.

Skips (with the reason) when tmux is not installed; CI installs it (`.ci/run`).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from blackbox import BIN, OjEnv, oj_env

FAKES = Path(__file__).resolve().parent / "fake_agents"

needs_tmux = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (agent steps run in tmux)"
)


def tmux(env: OjEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """A command on the daemon's private tmux server."""
    return subprocess.run(
        ["tmux", "-S", str(env.state / "tmux.sock"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def sessions(env: OjEnv) -> list[str]:
    out = tmux(env, "list-sessions", "-F", "#{session_name}")
    return out.stdout.split() if out.returncode == 0 else []


@contextlib.contextmanager
def agent_env(*, idle_ms: int = 700) -> Iterator[OjEnv]:
    with oj_env() as env:
        env.env.update(
            {
                "PATH": f"{FAKES}:{BIN}:{env.env.get('PATH', '/usr/bin:/bin')}",
                "OJ_BIN": str(BIN / "oj"),
                "CLAUDE_CONFIG_DIR": str(env.state / "claude"),
                "OJ_WATCHER_POLL_MS": "100",
                "OJ_IDLE_TIMEOUT_MS": str(idle_ms),
                "OJ_PROMPT_POLL_MS": "50",
            }
        )
        try:
            yield env
        finally:
            with contextlib.suppress(Exception):
                env.oj("daemon", "stop", "--kill", timeout=30)
            tmux(env, "kill-server")


def generic_agent_runbook(
    env: OjEnv, agent_body: str = "", *, run: str = "fake-agent idle"
) -> None:
    """`oj run go <name>`: a pipeline `work` whose one step `think` runs the generic agent `bot`
    (``run``, plus ``agent_body`` lines inside its block)."""
    env.runbook(
        "agent.hcl",
        f"""
        command "go" {{
          args = "<name>"
          run  = {{ pipeline = "work" }}
        }}
        pipeline "work" {{
          name = "${{var.name}}"
          step "think" {{
            run = {{ agent = "bot" }}
          }}
        }}
        agent "bot" {{
          adapter = "generic"
          run     = "{run}"
          {agent_body}
        }}
        """,
    )
