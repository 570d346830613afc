"""The agent action decision table (pure): attempts, "forever", cooldown, exhaustion; and the
Claude session-record rules the watcher reads state from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from oj_trio.pipelines import agent_actions as aa
from oj_trio.runbook.model import ActionConfig, Agent, ErrorMatcher
from oj_trio.runtime.agents_adapters import WAITING, WORKING, log_lines, record_state


def test_first_attempt_acts_then_default_attempts_are_exhausted() -> None:
    nudge = ActionConfig("nudge")
    assert aa.plan("idle", nudge, attempts=0, last_attempt_ms=0, now_ms=5) == aa.Act(nudge, 1)
    assert aa.plan("idle", nudge, attempts=1, last_attempt_ms=0, now_ms=5) == aa.Exhausted(
        "idle attempts exhausted"
    )


def test_cooldown_waits_between_attempts_then_acts() -> None:
    config = ActionConfig("nudge", attempts=3, cooldown="1m", cooldown_seconds=60)
    assert aa.plan("idle", config, attempts=1, last_attempt_ms=1000, now_ms=2000) == aa.CoolDown(
        config, 61_000, 2
    )
    assert aa.plan("idle", config, attempts=1, last_attempt_ms=1000, now_ms=61_000) == aa.Act(
        config, 2
    )
    # the first attempt never waits
    assert aa.plan("idle", config, attempts=0, last_attempt_ms=0, now_ms=0) == aa.Act(config, 1)


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10**9))
def test_forever_never_exhausts(attempts: int, now: int) -> None:
    config = ActionConfig("nudge", attempts=None)
    assert not isinstance(
        aa.plan("idle", config, attempts=attempts, last_attempt_ms=0, now_ms=now), aa.Exhausted
    )


@given(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=100))
def test_attempts_bound_the_actions(limit: int, done: int) -> None:
    config = ActionConfig("nudge", attempts=limit)
    result = aa.plan("dead", config, attempts=done, last_attempt_ms=0, now_ms=0)
    assert isinstance(result, aa.Exhausted) == (done >= limit)


def test_action_for_each_trigger_and_error_matching() -> None:
    agent = Agent(
        name="a",
        run="claude",
        on_error=(
            ErrorMatcher("rate_limited", ActionConfig("fail")),
            ErrorMatcher(None, ActionConfig("gate", run="true")),
        ),
    )
    assert aa.action_for(agent, "idle").action == "nudge"
    assert aa.action_for(agent, "dead").action == "escalate"
    assert aa.action_for(agent, "prompt").action == "escalate"
    assert aa.action_for(agent, "error", "rate_limited").action == "fail"
    assert aa.action_for(agent, "error", "unauthorized").action == "gate"


def test_error_types_and_recover_prompt() -> None:
    assert aa.error_type("Rate limit exceeded") == "rate_limited"
    assert aa.error_type("Invalid API key") == "unauthorized"
    assert aa.error_type("credit balance too low") == "out_of_credits"
    assert aa.error_type("network unreachable") == "no_internet"
    assert aa.error_type("boom") == "other"
    append = ActionConfig("recover", message="again", append=True)
    assert aa.recover_prompt("first", append) == "first\n\nagain"
    assert aa.recover_prompt("first", ActionConfig("recover", message="only")) == "only"
    assert aa.recover_prompt("first", ActionConfig("recover")) == "first"


def test_session_records_give_the_state_and_log_lines() -> None:
    text = {"type": "assistant", "message": {"stop_reason": None, "content": [{"type": "text"}]}}
    tool = {
        "type": "assistant",
        "message": {
            "stop_reason": None,
            "content": [{"type": "tool_use", "name": "Bash", "input": {"command": "oj status"}}],
        },
    }
    assert record_state(text) == (WAITING, None)
    assert record_state(tool) == (WORKING, None)
    assert record_state({"type": "user"}) == (WORKING, None)
    assert record_state({"error": "rate limit"})[0] == "failed"
    assert log_lines(tool) == ["oj: status"]
    assert log_lines({"error": "x"}) == ["error: x"]


def test_start_up_dialogs_and_the_login_screen() -> None:
    from oj_trio.runtime.agents_adapters import dialog_key, needs_login

    bypass = (
        "WARNING: Claude Code running in Bypass Permissions mode\n 1. No, exit\n 2. Yes, I accept"
    )
    workspace = "Accessing workspace:\n/w\n Do you trust the files in this folder?\n 1. Yes, proceed\n 2. No, exit"
    assert dialog_key(bypass) == "2"
    assert dialog_key(workspace) == "1"  # the numbered form wins over the y/n one
    assert dialog_key("Do you trust the files in this folder? (y/n)") == "y"
    assert dialog_key("> ready for input") is None
    assert dialog_key("Bypass Permissions mode") is None  # not the whole dialog yet
    assert needs_login("Select login method:\n 1. Claude account")
    assert needs_login("Choose the text style that looks best")
    assert not needs_login(workspace)
