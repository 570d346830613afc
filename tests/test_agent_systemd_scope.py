"""Under systemd (`INVOCATION_ID` set) the command that may start the agents' tmux server runs
through `systemd-run --user --scope`, so `systemctl --user restart ojd` does not take the agents
with it (SPEC §6). No systemd runs on the test machines, so a stand-in `systemd-run` first on PATH
records how it was called and then runs the command, as the real one does for a scope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentenv import agent_env, generic_agent_runbook, needs_tmux, sessions
from blackbox import OjEnv, wait_for

pytestmark = needs_tmux

STAND_IN = """\
#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["SCOPE_CALLS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
while args and args[0].startswith("--"):
    args.pop(0)
os.execvp(args[0], args)
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[OjEnv]:
    with agent_env() as world:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        fake = bindir / "systemd-run"
        fake.write_text(STAND_IN)
        fake.chmod(0o755)
        world.env.update(
            {
                "PATH": f"{bindir}:{world.env['PATH']}",
                "INVOCATION_ID": "0123456789abcdef0123456789abcdef",
                "SCOPE_CALLS_LOG": str(tmp_path / "systemd-run.log"),
            }
        )
        yield world


def test_agents_tmux_server_starts_in_a_scope_of_its_own(env: OjEnv, tmp_path: Path) -> None:
    dump = env.root / "env.txt"
    generic_agent_runbook(env, run=f"fake-agent env {dump}")
    env.run_pipeline("go", "scoped")
    wait_for(dump.exists, what="the agent's env dump")
    assert len(sessions(env)) == 1
    calls = [json.loads(line) for line in (tmp_path / "systemd-run.log").read_text().splitlines()]
    assert calls, "systemd-run was not used under INVOCATION_ID"
    first = calls[0]
    assert first[:2] == ["--user", "--scope"]
    program = next(arg for arg in first if not arg.startswith("--"))
    assert program == "tmux" and "new-session" in first
    # the unit's own variables stay with the daemon
    values = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert "INVOCATION_ID" not in values
