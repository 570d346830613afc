"""The agent CLI as a user meets it, black-box with real tmux: `oj agent logs -f` follows,
`oj session attach` / `oj pipeline attach` hand a real terminal (a pty) to tmux and detach
cleanly, agent notifications reach `notify-send`, and bad input gets a one-line error.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentenv import agent_env, generic_agent_runbook, needs_tmux, sessions, tmux
from blackbox import OJ, LineReader, OjEnv, popen_oj, wait_for

pytestmark = needs_tmux


@pytest.fixture
def env() -> Iterator[OjEnv]:
    # Agents here never go idle during a test (on_idle would move the step to Waiting at a
    # moment that depends on the machine's load); the tests decide when things change.
    with agent_env(idle_ms=600_000) as world:
        yield world


runbook = generic_agent_runbook


def start_idle_agent(env: OjEnv) -> tuple[str, str]:
    """A pipeline whose generic agent echoes its input → (pipeline id, session)."""
    runbook(env, 'on_idle = "escalate"')
    pid = env.run_pipeline("go", "x")
    session = wait_for(lambda: env.pipeline(pid).get("session_id"), what="the agent's session")
    wait_for(
        lambda: "fake agent ready" in tmux(env, "capture-pane", "-p", "-t", session).stdout,
        what="the agent's banner",
    )
    return pid, session


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- oj agent logs -f ---------------------------------------------------------------------------


def test_agent_logs_follow_prints_new_pane_output(env: OjEnv) -> None:
    pid, _session = start_idle_agent(env)
    follower = popen_oj(env, "agent", "logs", "-f", pid)
    try:
        reader = LineReader(follower)
        reader.wait_line("fake agent ready")
        env.ok("agent", "send", pid, "first-followed-line")
        reader.wait_line("got: first-followed-line")
        env.ok("agent", "send", pid, "second-followed-line")
        reader.wait_line("got: second-followed-line")
        assert follower.poll() is None, "logs -f must keep following"
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_agent_logs_follow_of_a_step_that_has_not_logged_yet_waits_for_it(env: OjEnv) -> None:
    # The agent's log file appears only with its first output: -f waits for it.
    runbook(env, 'on_idle = "escalate"', run="sleep 1; fake-agent idle")
    pid = env.run_pipeline("go", "x")
    wait_for(lambda: env.json("agent", "list"), what="the agent record")
    follower = popen_oj(env, "agent", "logs", "-f", "-s", "think", pid)
    try:
        LineReader(follower).wait_line("fake agent ready")
    finally:
        follower.terminate()
        follower.wait(timeout=10)


# -- attach ---------------------------------------------------------------------------------------


class Terminal:
    """`oj …` on a pseudo-terminal (tmux attach needs one), its output drained on a thread."""

    def __init__(self, env: OjEnv, *args: str) -> None:
        master, slave = pty.openpty()
        os.set_blocking(master, True)
        self.master = master
        self.output = b""
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [OJ, *args],
            cwd=env.project,
            env={**env.env, "TERM": "xterm"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def text(self) -> str:
        with self._lock:
            return self.output.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self.master)


def clients_of(env: OjEnv, session: str) -> list[str]:
    out = tmux(env, "list-clients", "-t", session, "-F", "#{client_tty}")
    return out.stdout.split() if out.returncode == 0 else []


@pytest.mark.parametrize("noun", ["session", "pipeline"])
def test_attach_hands_the_terminal_to_tmux_and_detaches(env: OjEnv, noun: str) -> None:
    pid, session = start_idle_agent(env)
    target = session if noun == "session" else pid[:8]
    term = Terminal(env, noun, "attach", target)
    try:
        wait_for(lambda: clients_of(env, session), timeout=20, what="a tmux client attached")
        # The pane is drawn on our terminal (the client is tmux itself: oj exec'd it).
        wait_for(lambda: "fake agent ready" in term.text(), what="the pane on the terminal")
        assert Path(f"/proc/{term.proc.pid}/exe").resolve().name == "tmux"
        # What the user types reaches the agent.
        os.write(term.master, b"typed-through-attach\r")
        wait_for(
            lambda: (
                "got: typed-through-attach" in tmux(env, "capture-pane", "-p", "-t", session).stdout
            ),
            what="typed text echoed by the agent",
        )
        assert tmux(env, "detach-client", "-s", session).returncode == 0
        assert term.proc.wait(timeout=15) == 0
        wait_for(lambda: "detached" in term.text(), what="tmux's detach message")
    finally:
        term.close()
    # Detaching leaves the agent running and watched.
    assert session in sessions(env)
    assert env.pipeline(pid)["step_status"] == "Running"


def test_attach_of_a_session_that_vanished_is_a_one_line_error(env: OjEnv) -> None:
    pid, session = start_idle_agent(env)
    tmux(env, "kill-session", "-t", session)
    env.wait_status(pid, "Waiting")  # default on_dead: escalate
    result = env.oj("session", "attach", session, timeout=20)
    one_line_error(result, session)


# -- notifications --------------------------------------------------------------------------------


def fake_notifier(env: OjEnv) -> Path:
    """A `notify-send` first on the daemon's PATH that records its arguments."""
    folder = env.root / "notifier"
    folder.mkdir()
    record = env.root / "notifications.txt"
    script = folder / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {record}\necho >> {record}\n')
    script.chmod(0o755)
    env.env["PATH"] = f"{folder}:{env.env['PATH']}"
    return record


def notifications(record: Path) -> list[str]:
    try:
        return record.read_text().splitlines()
    except FileNotFoundError:
        return []


def test_agent_notifications_on_start_and_on_done(env: OjEnv) -> None:
    record = fake_notifier(env)
    runbook(
        env,
        """
        on_dead = "done"
        notify {
          on_start = "started ${agent} for ${var.name}"
          on_done  = "finished ${step} of ${name}"
        }
        """,
        run="sleep 0.5; fake-agent exit 0",
    )
    pid = env.run_pipeline("go", "x")
    env.wait_step(pid, "done")
    wait_for(lambda: len(notifications(record)) >= 2, what="two notifications")
    started, finished = notifications(record)
    assert started == "--app-name=oj|--|bot|started bot for x|"
    name = env.pipeline(pid)["name"]  # the display name
    assert finished == f"--app-name=oj|--|bot|finished think of {name}|"


def test_agent_notification_on_fail_carries_the_error(env: OjEnv) -> None:
    record = fake_notifier(env)
    runbook(
        env,
        """
        on_dead = "fail"
        notify { on_fail = "${agent} failed: ${error}" }
        """,
        run="fake-agent exit 4",
    )
    pid = env.run_pipeline("go", "x")
    env.wait_status(pid, "Failed")
    wait_for(lambda: notifications(record), what="a notification")
    assert notifications(record) == ["--app-name=oj|--|bot|bot failed: agent exited (exit 4)|"]


def test_escalation_notifies_that_the_pipeline_needs_attention(env: OjEnv) -> None:
    record = fake_notifier(env)
    runbook(env, "", run="fake-agent exit 3")
    pid = env.run_pipeline("go", "x")
    env.wait_status(pid, "Waiting")
    wait_for(lambda: notifications(record), what="a notification")
    name = env.pipeline(pid)["name"]
    assert notifications(record) == [
        f"--app-name=oj|--|Pipeline needs attention: {name}|agent exited (exit 3)|"
    ]


# -- bad input ----------------------------------------------------------------------------------


def test_malformed_signals_are_one_line_errors_and_change_nothing(env: OjEnv) -> None:
    pid, _session = start_idle_agent(env)
    agent_id = env.json("agent", "list")[0]["agent_id"]
    cases = {
        "{bad": "invalid JSON payload",
        "[1]": "invalid JSON payload: not an object",
        "": "invalid JSON payload",
        '{"kind": "finish"}': "invalid signal kind 'finish'",
        '{"message": "no kind"}': "invalid signal kind None",
    }
    for payload, needle in cases.items():
        result = env.oj("emit", "agent:signal", "--agent", agent_id, payload)
        one_line_error(result, needle, '{"kind": "complete"|"escalate"')
    # The stdin form validates the same way.
    result = env.oj("emit", "agent:signal", "--agent", agent_id, input="not json")
    one_line_error(result, "invalid JSON payload")
    detail = env.pipeline(pid)
    assert detail["step_status"] == "Running"
    assert env.json("agent", "list")[0]["status"] == "running"


def test_unknown_agents_are_one_line_errors(env: OjEnv) -> None:
    start_idle_agent(env)
    missing = "00000000-0000-0000-0000-000000000000"
    for args in (
        ("emit", "agent:signal", "--agent", missing, '{"kind": "complete"}'),
        ("emit", "agent:idle", "--agent", missing),
        ("emit", "agent:prompt", "--agent", missing, "--type", "question"),
        ("agent", "send", missing, "hello"),
        ("session", "send", "oj-no-such-session", "hello"),
        ("session", "peek", "oj-no-such-session"),
        ("session", "attach", "oj-no-such-session"),
        ("pipeline", "attach", "no-such-pipeline"),
    ):
        one_line_error(env.oj(*args), "not found")


def test_agent_send_needs_an_id_that_names_one_agent(env: OjEnv) -> None:
    start_idle_agent(env)
    one_line_error(env.oj("agent", "send", "", "hello"), "agent id")


def test_agent_send_to_a_dead_agent_is_a_one_line_error(env: OjEnv) -> None:
    pid, session = start_idle_agent(env)
    agent_id = env.json("agent", "list")[0]["agent_id"]
    # The agent's process ends; its pane stays (remain-on-exit) and the step escalates.
    tmux(env, "send-keys", "-t", session, "C-c")
    env.wait_status(pid, "Waiting")
    for given in (agent_id, pid):
        one_line_error(env.oj("agent", "send", given, "anyone there?"), "not running")
    one_line_error(env.oj("session", "send", session, "anyone there?"), "not running")


def test_agent_wait_on_a_cancelled_pipeline_exits_4(env: OjEnv) -> None:
    pid, _session = start_idle_agent(env)
    agent_id = env.json("agent", "list")[0]["agent_id"]
    env.ok("pipeline", "cancel", pid)
    env.wait_step(pid, "cancelled")
    waited = env.oj("agent", "wait", agent_id[:8], "--timeout", "30s")
    assert waited.returncode == 4, waited
    assert waited.stderr.strip().endswith("was cancelled"), waited.stderr


def test_agent_logs_follow_with_json_warns_and_returns(env: OjEnv) -> None:
    pid, _session = start_idle_agent(env)
    result = env.oj("-o", "json", "agent", "logs", "-f", pid, timeout=30)
    assert result.returncode == 0
    assert "--follow is not supported with -o json" in result.stderr
    assert "fake agent ready" in json.loads(result.stdout)["content"]


def test_agent_logs_follow_goes_on_with_the_next_steps_agent(env: OjEnv) -> None:
    # plan → implement: a user following the pipeline's agent logs sees both agents.
    flag = env.root / "flag"
    env.runbook(
        "agent.hcl",
        f"""
        command "go" {{
          args = "<name>"
          run  = {{ pipeline = "work" }}
        }}
        pipeline "work" {{
          step "plan" {{
            run     = {{ agent = "planner" }}
            on_done = "implement"
          }}
          step "implement" {{
            run = {{ agent = "coder" }}
          }}
        }}
        agent "planner" {{
          adapter = "generic"
          run     = "echo planning; while [ ! -f {flag} ]; do sleep 0.1; done; echo planned"
          on_dead = "done"
        }}
        agent "coder" {{
          adapter = "generic"
          run     = "fake-agent idle"
        }}
        """,
    )
    pid = env.run_pipeline("go", "x")
    wait_for(lambda: env.json("agent", "list"), what="the planner's record")
    follower = popen_oj(env, "agent", "logs", "-f", pid)
    try:
        reader = LineReader(follower)
        reader.wait_line("planning")
        flag.write_text("go")
        reader.wait_line("=== implement ===", timeout=30)
        reader.wait_line("fake agent ready")
    finally:
        follower.terminate()
        follower.wait(timeout=10)
