"""Agent steps with the Claude Code adapter, black-box with real tmux and a fake `claude` first
on PATH (tests/fake_agents/claude) that writes session JSONL where the watcher looks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from agentenv import agent_env, needs_tmux
from blackbox import OjEnv, wait_for

pytestmark = needs_tmux


@pytest.fixture
def env() -> Iterator[OjEnv]:
    with agent_env() as world:
        yield world


def runbook(env: OjEnv, mode: str, body: str = "", *, run: str = "claude --model opus") -> None:
    env.runbook(
        "agent.hcl",
        f"""
        command "go" {{
          args = "<name>"
          run  = {{ pipeline = "work" }}
        }}
        pipeline "work" {{
          step "think" {{
            run = {{ agent = "coder" }}
          }}
        }}
        agent "coder" {{
          run    = "{run}"
          prompt = "Fix ${{var.name}}; then stop"
          env    = {{ FAKE_CLAUDE_MODE = "{mode}" }}
          {body}
        }}
        """,
    )


def _agent_id(env: OjEnv, pid: str) -> str:
    return wait_for(lambda: env.pipeline(pid)["steps"][-1].get("agent_id"), what="agent id")


def test_print_mode_on_dead_done_with_session_id_settings_and_hooks(env: OjEnv) -> None:
    runbook(env, "exit", 'on_dead = "done"')
    pid = env.run_pipeline("go", "bug")
    detail = env.wait_step(pid, "done")
    agent_id = detail["steps"][-1]["agent_id"]
    args = json.loads((env.project / ".fake-claude-args").read_text())
    settings = env.state / "agents" / agent_id / "claude-settings.json"
    assert args[:2] == ["--model", "opus"]
    assert args[2:6] == ["--session-id", agent_id, "--settings", str(settings)]
    assert (env.project / ".fake-claude-prompt").read_text() == "Fix bug; then stop"
    hooks = json.loads(settings.read_text())["hooks"]
    assert set(hooks) == {"Stop", "Notification", "PreToolUse"}
    assert hooks["Stop"][0]["hooks"][0]["command"].endswith(f"oj agent hook stop {agent_id}")
    assert [h["matcher"] for h in hooks["Notification"]] == ["idle_prompt", "permission_prompt"]


def test_idle_done_gate_and_default_nudge_then_escalate(env: OjEnv) -> None:
    runbook(env, "idle", 'on_idle = "done"')
    pid = env.run_pipeline("go", "a")
    assert env.wait_step(pid, "done")["step_status"] == "Completed"
    runbook(env, "idle")
    pid = env.run_pipeline("go", "b")
    detail = env.wait_status(pid, "Waiting")
    assert detail["error"] == "idle attempts exhausted"
    inputs = (env.project / ".fake-claude-input").read_text().splitlines()
    assert inputs == ["Please continue with the task."]


def test_on_error_matching(env: OjEnv) -> None:
    body = """on_error = [
            { match = "unauthorized", action = "escalate" },
            { match = "rate_limited", action = "fail" },
          ]"""
    runbook(env, "error", body)
    pid = env.run_pipeline("go", "a")
    detail = env.wait_step(pid, "failed")
    assert detail["error"] == "rate limit exceeded"
    assert "agent error: rate limit exceeded" in env.ok("pipeline", "logs", pid)


def test_the_agent_signals_complete_itself(env: OjEnv) -> None:
    runbook(env, "signal", 'on_idle = "escalate"')
    pid = env.run_pipeline("go", "a")
    assert env.wait_step(pid, "done")["step_status"] == "Completed"
    assert "agent:signal complete" in env.ok("pipeline", "logs", pid)


def test_stop_hook_blocks_until_signalled(env: OjEnv) -> None:
    out = env.root / "hooks.json"
    env.env["FAKE_CLAUDE_OUT"] = str(out)
    runbook(env, "stophook")
    pid = env.run_pipeline("go", "a")
    assert env.wait_status(pid, "Waiting")["error"] == "check me"
    wait_for(out.exists, what="the hook outputs")
    hooks = json.loads(out.read_text())
    assert json.loads(hooks["before"])["decision"] == "block"
    assert hooks["after"] == ""
    # stop_hook_active always allows
    allowed = env.oj("agent", "hook", "stop", "nope", input='{"stop_hook_active": true}')
    assert allowed.returncode == 0 and allowed.stdout == ""
    agent_log = env.ok("agent", "logs", pid)
    assert "stop-hook: blocking exit, signaled=false" in agent_log


def test_agent_log_lines_from_the_session_jsonl(env: OjEnv) -> None:
    runbook(env, "work", 'on_dead = { action = "gate", run = "test -f output.txt" }')
    pid = env.run_pipeline("go", "a")
    env.wait_step(pid, "done")
    text = env.ok("agent", "logs", pid, "--step", "think")
    assert "read: README.md" in text
    assert "wrote: output.txt (new, 2 lines)" in text
    assert "bash: make test" in text
    agents = env.json("agent", "list")
    assert agents[0]["files_read"] == 1 and agents[0]["files_written"] == 1
    assert agents[0]["commands_run"] == 1


def test_prompt_hook_and_escalate_signal_reason(env: OjEnv) -> None:
    runbook(env, "busy", 'on_prompt = "escalate"')
    pid = env.run_pipeline("go", "a")
    agent_id = _agent_id(env, pid)
    env.ok("emit", "agent:prompt", "--agent", agent_id, "--type", "permission")
    assert env.wait_status(pid, "Waiting")["error"] == "agent prompt: permission"
    env.ok("emit", "agent:signal", "--agent", agent_id, '{"kind": "complete"}')
    assert env.wait_step(pid, "done")["step_status"] == "Completed"


def test_generic_only_rules_are_load_errors(env: OjEnv) -> None:
    runbook(env, "idle", run="codex exec")
    bad = env.oj("run", "go", "a")
    assert bad.returncode != 0
    assert "agent command must be 'claude' or 'claudeless', got 'codex'" in bad.stderr
    env.runbook(
        "agent.hcl",
        """
        command "go" {
          args = "<name>"
          run  = { agent = "g" }
        }
        agent "g" {
          adapter = "generic"
          run     = "codex"
          prime   = "echo hi"
        }
        """,
    )
    bad = env.oj("run", "go", "a")
    assert bad.returncode != 0
    assert 'prime is a Claude Code feature; not available with adapter = "generic"' in bad.stderr


def test_feature_runbook_end_to_end_through_the_merge_queue(env: OjEnv) -> None:
    """runbooks/feature.hcl: plan → implement → commit → submit to runbooks/merge.hcl's queue,
    whose worker merges the branch into main; the agents are the fake claude."""
    import shutil
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent / "runbooks"
    for name in ("feature.hcl", "merge.hcl"):
        shutil.copy(repo / name, env.project / ".oj" / "runbooks" / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(env.project)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (env.project / ".gitignore").write_text(".oj/\n.claude/\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True)
    env.env["FAKE_CLAUDE_MODE"] = "feature"
    pid = env.run_pipeline("feature", "login", "Add a login button")
    detail = env.wait_step(pid, "done", timeout=60)
    steps = [s["name"] for s in detail["steps"]]
    assert steps == ["checkout", "plan", "implement", "commit", "submit"]
    merged = wait_for(
        lambda: [
            p for p in env.json("pipeline", "list") if p["kind"] == "merge" and p["step"] == "done"
        ],
        timeout=60,
        what="the merge pipeline to finish",
    )
    assert merged
    shown = subprocess.run([*git, "show", "main:feature.txt"], capture_output=True, text=True)
    assert shown.stdout == "done\n"
    log = subprocess.run([*git, "log", "--format=%s", "main"], capture_output=True, text=True)
    assert "Merge feature/login: Add a login button" in log.stdout


def test_idle_and_pretooluse_hooks_reach_the_actions(env: OjEnv) -> None:
    runbook(env, "busy", 'on_idle = "done"\n          on_prompt = "escalate"')
    pid = env.run_pipeline("go", "a")
    agent_id = _agent_id(env, pid)
    asked = env.oj(
        "agent", "hook", "pretooluse", agent_id, input='{"tool_name": "AskUserQuestion"}'
    )
    assert asked.returncode == 0 and asked.stdout == ""
    assert env.wait_status(pid, "Waiting")["error"] == "agent prompt: question"
    # idle while escalated is expected (a human decides): ignored
    env.ok("emit", "agent:idle", "--agent", agent_id)
    env.ok("pipeline", "resume", pid, "-m", "go on")
    env.wait_status(pid, "Running")
    env.ok("emit", "agent:idle", "--agent", agent_id)
    assert env.wait_step(pid, "done")["step_status"] == "Completed"


def test_agent_wait_logs_and_prune(env: OjEnv) -> None:
    runbook(env, "idle", 'on_idle = "escalate"')
    pid = env.run_pipeline("go", "a")
    agent_id = _agent_id(env, pid)
    waited = env.oj("agent", "wait", agent_id[:8], "--timeout", "30s")
    assert waited.returncode == 0 and waited.stdout == f"Agent {agent_id} waiting\n"
    env.ok("emit", "agent:signal", "--agent", agent_id, '{"kind": "complete"}')
    env.wait_step(pid, "done")
    assert env.ok("agent", "wait", agent_id) == f"Agent {agent_id} completed\n"
    unknown = env.oj("agent", "logs", "nope")
    assert unknown.returncode == 0 and "No log entries found for agent nope" in unknown.stderr
    assert "turn complete" in env.ok("agent", "logs", pid)
    dry = env.ok("agent", "prune", "--all", "--dry-run")
    assert f"Would prune agent {agent_id}" in dry
    assert (env.state / "logs" / "agent" / f"{agent_id}.log").exists()
    env.ok("agent", "prune", "--all")
    assert not (env.state / "logs" / "agent" / f"{agent_id}.log").exists()


def test_resume_of_a_failed_agent_step_respawns_with_the_message(env: OjEnv) -> None:
    runbook(env, "exit", 'on_dead = "fail"')
    pid = env.run_pipeline("go", "a")
    env.wait_step(pid, "failed")
    first = env.pipeline(pid)["steps"][-1]["agent_id"]
    env.ok("pipeline", "resume", pid, "-m", "mind the tests;")
    wait_for(
        lambda: (env.project / ".fake-claude-prompt").read_text().endswith("mind the tests;"),
        what="the respawned agent's prompt",
    )
    assert (
        env.project / ".fake-claude-prompt"
    ).read_text() == "Fix a; then stop\n\nmind the tests;"
    detail = env.wait_step(pid, "failed")
    assert detail["steps"][-1]["agent_id"] != first


def test_prompt_file_relative_to_the_project_and_the_inline_prompt(env: OjEnv) -> None:
    (env.project / "prompts").mkdir()
    (env.project / "prompts" / "task.md").write_text('Task for ${var.name}: it\'s "quoted"')
    env.runbook(
        "agent.hcl",
        """
        command "go" {
          args = "<name>"
          run  = { pipeline = "work" }
        }
        pipeline "work" {
          step "think" {
            run = { agent = "coder" }
          }
        }
        agent "coder" {
          run         = "claude --model opus \\"${prompt}\\" --verbose"
          prompt_file = "prompts/task.md"
          env         = { FAKE_CLAUDE_MODE = "exit" }
          on_dead     = "done"
        }
        """,
    )
    pid = env.run_pipeline("go", "x")
    env.wait_step(pid, "done")
    args = json.loads((env.project / ".fake-claude-args").read_text())
    # the prompt sits where ${prompt} is, once, as one word
    assert args[:4] == ["--model", "opus", 'Task for x: it\'s "quoted"', "--verbose"]
    assert args.count('Task for x: it\'s "quoted"') == 1
    missing = env.runbook(
        "agent.hcl",
        (env.project / ".oj" / "runbooks" / "agent.hcl")
        .read_text()
        .replace("prompts/task.md", "prompts/nope.md"),
    )
    assert missing.exists()
    pid = env.run_pipeline("go", "y")
    detail = env.wait_step(pid, "failed")
    assert detail["error"].startswith("prompt error for agent coder: No such file or directory")


def test_a_trust_dialog_is_accepted_and_a_login_screen_fails_the_step(env: OjEnv) -> None:
    runbook(env, "trust", 'on_idle = "done"')
    pid = env.run_pipeline("go", "a")
    assert env.wait_step(pid, "done")["step_status"] == "Completed"
    assert (env.project / ".fake-claude-trust").read_text() == "y"
    runbook(env, "login")
    pid = env.run_pipeline("go", "b")
    detail = env.wait_step(pid, "failed")
    assert detail["error"].startswith("Claude Code is not authenticated.")
