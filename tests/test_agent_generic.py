"""Agent steps with the generic adapter (any CLI in tmux), black-box with real tmux."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from agentenv import agent_env, generic_agent_runbook, needs_tmux, sessions, tmux
from blackbox import OjEnv, wait_for

pytestmark = needs_tmux


@pytest.fixture
def env() -> Iterator[OjEnv]:
    with agent_env() as world:
        yield world


runbook = generic_agent_runbook


def test_on_dead_done_completes_and_the_session_is_gone(env: OjEnv) -> None:
    runbook(env, 'on_dead = "done"', run="fake-agent exit 0")
    pid = env.run_pipeline("go", "x")
    detail = env.wait_step(pid, "done")
    assert detail["step_status"] == "Completed"
    assert wait_for(lambda: env.json("session", "list") == [], what="session record gone")
    assert sessions(env) == []


def test_default_on_dead_escalates_and_status_lists_it(env: OjEnv) -> None:
    runbook(env, "", run="fake-agent exit 3")
    pid = env.run_pipeline("go", "x")
    detail = env.wait_status(pid, "Waiting")
    assert detail["error"] == "agent exited (exit 3)"
    status = env.ok("status")
    assert "Needs attention (1)" in status
    assert "agent exited (exit 3)" in status


def test_on_idle_nudge_then_escalate_and_a_trailing_semicolon_arrives(env: OjEnv) -> None:
    record = env.root / "input.txt"
    env.env["FAKE_AGENT_INPUT"] = str(record)
    runbook(env, 'on_idle = { action = "nudge", message = "keep going;" }')
    pid = env.run_pipeline("go", "x")
    detail = env.wait_status(pid, "Waiting")
    assert detail["error"] == "idle attempts exhausted"
    assert record.read_text().splitlines() == ["keep going;"]
    logs = env.ok("pipeline", "logs", pid)
    assert "nudge sent" in logs
    assert "idle attempts exhausted, escalating" in logs


def test_session_name_env_and_private_server(env: OjEnv) -> None:
    dump = env.root / "env.txt"
    # A daemon started from inside tmux (or by systemd) must not hand that on to its agents.
    env.env.update({"TMUX": "/tmp/user-tmux,1,0", "TMUX_PANE": "%99", "JOURNAL_STREAM": "8:1"})
    runbook(env, 'env = { GREETING = "hi ${var.name}" }', run=f"fake-agent env {dump}")
    pid = env.run_pipeline("go", "feature")
    wait_for(dump.exists, what="the agent's env dump")
    names = sessions(env)
    assert len(names) == 1
    name = names[0]
    display = env.pipeline(pid)["name"]
    assert re.fullmatch(rf"oj-{display}-bot-[0-9a-f]{{4}}", name), name
    values = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert values["GREETING"] == "hi feature"
    assert values["OJ_PIPELINE_ID"] == pid
    assert values["OJ_STATE_DIR"] == str(env.state)
    assert values["OJ_AGENT_ID"] == env.pipeline(pid)["steps"][-1]["agent_id"]
    assert values["TMUX"].startswith(f"{env.state}/tmux.sock,")  # the agent's own pane
    assert values["TMUX_PANE"] != "%99"
    assert "JOURNAL_STREAM" not in values
    assert "OJ_NAMESPACE" in values
    # remain-on-exit is on for the agent's session
    shown = tmux(env, "show-options", "-t", name, "-v", "remain-on-exit")
    assert shown.stdout.strip() == "on"


def test_cancel_kills_the_session(env: OjEnv) -> None:
    runbook(env, "", run="fake-agent busy")
    pid = env.run_pipeline("go", "x")
    wait_for(lambda: sessions(env), what="the agent's session")
    env.ok("pipeline", "cancel", pid)
    env.wait_step(pid, "cancelled")
    wait_for(lambda: sessions(env) == [], what="the session killed")


def test_a_missing_command_fails_through_on_fail(env: OjEnv) -> None:
    runbook(env, "", run="no-such-agent-cli --go")
    pid = env.run_pipeline("go", "x")
    detail = env.wait_step(pid, "failed")
    assert detail["error"] == "agent bot: command not found: no-such-agent-cli"


def test_a_missing_cwd_fails_through_on_fail(env: OjEnv) -> None:
    runbook(env, 'cwd = "nowhere"')
    pid = env.run_pipeline("go", "x")
    detail = env.wait_step(pid, "failed")
    assert "working directory does not exist" in detail["error"]


def test_on_idle_done_and_gate(env: OjEnv) -> None:
    runbook(env, 'on_idle = "done"')
    pid = env.run_pipeline("go", "a")
    assert env.wait_step(pid, "done")["step_status"] == "Completed"
    runbook(env, 'on_idle = { action = "gate", run = "test -f ${workspace}/flag" }')
    pid = env.run_pipeline("go", "b")
    detail = env.wait_status(pid, "Waiting")
    assert detail["error"].startswith("gate `test -f ")
    assert "failed (exit 1)" in detail["error"]


def test_on_dead_gate_pass_and_fail(env: OjEnv) -> None:
    runbook(
        env,
        'on_dead = { action = "gate", run = "test -f made.txt" }',
        run="fake-agent write made.txt",
    )
    pid = env.run_pipeline("go", "a")
    assert env.wait_step(pid, "done")["step_status"] == "Completed"
    runbook(env, 'on_dead = { action = "gate", run = "false" }', run="fake-agent exit 0")
    pid = env.run_pipeline("go", "b")
    assert env.wait_status(pid, "Waiting")["error"] == "gate `false` failed (exit 1)"


def test_signal_complete_and_escalate_and_bad_json(env: OjEnv) -> None:
    runbook(env, "", run='fake-agent signal \\"{\\\\\\"kind\\\\\\": \\\\\\"complete\\\\\\"}\\"')
    pid = env.run_pipeline("go", "a")
    assert env.wait_step(pid, "done")["step_status"] == "Completed"
    runbook(env, 'on_idle = "escalate"', run="fake-agent busy")
    pid = env.run_pipeline("go", "b")
    wait_for(lambda: env.pipeline(pid)["steps"][-1].get("agent_id"), what="agent id")
    agent_id = env.pipeline(pid)["steps"][-1]["agent_id"]
    env.ok("emit", "agent:signal", "--agent", agent_id, '{"action": "escalate", "message": "m"}')
    assert env.wait_status(pid, "Waiting")["error"] == "m"
    bad = env.oj("emit", "agent:signal", "--agent", agent_id, "{nope")
    assert bad.returncode != 0
    assert 'Expected: {"kind": "complete"|"escalate"' in bad.stderr
    env.ok("emit", "agent:signal", "--agent", agent_id, input='{"kind": "complete"}')
    assert env.wait_step(pid, "done")["step_status"] == "Completed"


def test_recover_respawns_with_the_message(env: OjEnv) -> None:
    dump = env.root / "prompt.txt"
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
          prompt  = "first"
          run     = "echo \\"${{prompt}}\\" >> {dump}; exit 1"
          on_dead = {{ action = "recover", message = "try again;", append = true, attempts = 2 }}
        }}
        """,
    )
    pid = env.run_pipeline("go", "a")
    detail = env.wait_status(pid, "Waiting")
    assert detail["error"] == "dead attempts exhausted"
    assert dump.read_text().splitlines() == [
        "first",
        "first",
        "",
        "try again;",
        "first",
        "",
        "try again;",
        "",
        "try again;",
    ]
    assert len({s["agent_id"] for s in detail["steps"] if s.get("agent_id")}) == 1  # same record


def test_resume_with_message_nudges_a_live_agent(env: OjEnv) -> None:
    record = env.root / "input.txt"
    env.env["FAKE_AGENT_INPUT"] = str(record)
    runbook(env, 'on_idle = "escalate"')
    pid = env.run_pipeline("go", "a")
    env.wait_status(pid, "Waiting")
    env.ok("pipeline", "resume", pid, "-m", "carry on;")
    wait_for(lambda: record.exists() and "carry on;" in record.read_text(), what="the message")
    # it idles again and is escalated again
    env.wait_status(pid, "Waiting")


def test_session_list_peek_and_agent_commands(env: OjEnv) -> None:
    runbook(env, 'on_idle = "escalate"')
    pid = env.run_pipeline("go", "a")
    env.wait_status(pid, "Waiting")
    listed = env.json("session", "list")
    assert [s["pipeline_id"] for s in listed] == [pid]
    peek = env.ok("session", "peek", listed[0]["id"])
    assert "fake agent ready (idle)" in peek
    assert "fake agent ready (idle)" in env.ok("pipeline", "peek", pid[:8])
    agents = env.json("agent", "list")
    assert agents[0]["pipeline_id"] == pid and agents[0]["status"] == "waiting"
    env.ok("agent", "send", pid[:8], "hello")
    wait_for(lambda: "got: hello" in env.ok("session", "peek", listed[0]["id"]), what="echo")
    env.ok("session", "send", listed[0]["id"], "again")
    wait_for(lambda: "got: again" in env.ok("session", "peek", listed[0]["id"]), what="echo 2")
    missing = env.oj("session", "peek", "oj-nope")
    assert missing.returncode != 0 and "Session not found: oj-nope" in missing.stderr


def test_attach_and_peek_without_a_session_say_so(env: OjEnv) -> None:
    runbook(env, 'on_dead = "done"', run="fake-agent exit 0")
    pid = env.run_pipeline("go", "x")
    env.wait_step(pid, "done")
    attach = env.oj("pipeline", "attach", pid)
    assert attach.returncode == 1 and "pipeline has no active session" in attach.stderr
    peek = env.ok("pipeline", "peek", pid)
    assert peek.startswith(f"No active session for pipeline {pid[:12]} (step: done")
    missing = env.oj("session", "attach", "oj-nope")
    assert missing.returncode != 0 and "Session not found: oj-nope" in missing.stderr
