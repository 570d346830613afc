"""What an agent trigger leads to: the action decision table, pure (no trio, no tmux, no clock).

A watcher reports a *trigger* (the agent went idle, died, hit an API error, showed a prompt); the
agent's runbook block says which action answers it (``on_idle``, ``on_dead``, ``on_error``,
``on_prompt``), how many times (``attempts``, ``None`` = "forever") and how far apart
(``cooldown``). This module turns (trigger, action config, attempts so far, time of the last
attempt, now) into one :class:`Plan`. The runtime (:mod:`oj_trio.runtime.agents`) carries plans
out; the attempt counts live in the durable pipeline record (``pipeline:action_attempted``), so
they survive a restart and reset when the step changes.

=====================================  =================================================
attempts so far / cooldown             plan
=====================================  =================================================
``attempts`` used up                   :class:`Exhausted` (escalate, "<trigger> attempts
                                       exhausted")
a retry, cooldown not over yet         :class:`CoolDown` until ``due_at_ms`` (a durable
                                       timer; the action runs when it fires)
otherwise                              :class:`Act`: count the attempt, run the action
=====================================  =================================================

Reference §4.3 with §10 #7 fixed: after the cooldown the action *runs* (the original only
re-armed the timer until the attempts ran out).
"""

from __future__ import annotations

import attrs

from ..runbook.model import ActionConfig, Agent

#: Triggers and the agent field that configures each.
TRIGGERS = ("idle", "dead", "error", "prompt")

#: Sent by ``nudge`` when the action has no ``message`` (reference §4.3).
DEFAULT_NUDGE = "Please continue with the task."


@attrs.frozen
class Act:
    """Run ``config.action`` now; this is attempt number ``attempt`` (1-based)."""

    config: ActionConfig
    attempt: int


@attrs.frozen
class CoolDown:
    """Wait: the next attempt may run at epoch ``due_at_ms``."""

    config: ActionConfig
    due_at_ms: int
    attempt: int


@attrs.frozen
class Exhausted:
    """No attempts left: escalate with ``reason``."""

    reason: str


Plan = Act | CoolDown | Exhausted


def attempts_key(trigger: str) -> str:
    """The ``Pipeline.action_attempts`` key of a trigger (reference: ``<trigger>:<pos>``)."""
    return f"{trigger}:0"


def action_for(agent: Agent, trigger: str, error_type: str | None = None) -> ActionConfig:
    """The configured answer to ``trigger`` (``error``: the first matching ``on_error`` rule)."""
    if trigger == "idle":
        return agent.on_idle
    if trigger == "dead":
        return agent.on_dead
    if trigger == "prompt":
        return agent.on_prompt
    if trigger == "error":
        return agent.action_for_error(error_type or "")
    raise ValueError(f"unknown agent trigger {trigger!r}")


def plan(
    trigger: str, config: ActionConfig, *, attempts: int, last_attempt_ms: int, now_ms: int
) -> Plan:
    """The table above. ``attempts``: how many times this trigger's action already ran in this
    step; ``last_attempt_ms``: when the latest of them ran (epoch ms)."""
    if config.attempts is not None and attempts >= config.attempts:
        return Exhausted(f"{trigger} attempts exhausted")
    if attempts > 0 and config.cooldown_seconds > 0:
        due = last_attempt_ms + config.cooldown_seconds * 1000
        if now_ms < due:
            return CoolDown(config, due, attempts + 1)
    return Act(config, attempts + 1)


def error_type(text: str) -> str:
    """An API error text → the ``on_error`` ``match`` type (reference §4.2), or ``other``."""
    lower = text.lower()
    if "unauthorized" in lower or "invalid api key" in lower:
        return "unauthorized"
    if "credit" in lower or "quota" in lower or "billing" in lower:
        return "out_of_credits"
    if "network" in lower or "connection" in lower or "offline" in lower:
        return "no_internet"
    if "rate limit" in lower or "too many requests" in lower or "rate_limit" in lower:
        return "rate_limited"
    return "other"


def recover_prompt(previous: str, config: ActionConfig) -> str:
    """The prompt a ``recover`` respawns with: the message alone, or appended (``append``)."""
    message = config.message or ""
    if not message:
        return previous
    if config.append and previous:
        return f"{previous}\n\n{message}"
    return message
