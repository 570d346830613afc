"""The typed runbook model: what a validated runbook file means.

Every class is a frozen ``attrs`` class, so a loaded runbook can be shared between tasks and
hashed into a ``runbook:loaded`` event without defensive copies. Maps (``defaults``, ``env``,
``locals``) are plain dicts kept in declaration order; treat them as read-only.
"""

from __future__ import annotations

from typing import Literal

import attrs

from .argspec import ArgSpec

ActionName = Literal["nudge", "done", "fail", "recover", "escalate", "gate"]
ACTIONS: tuple[str, ...] = ("nudge", "done", "fail", "recover", "escalate", "gate")
ERROR_TYPES: tuple[str, ...] = ("unauthorized", "out_of_credits", "no_internet", "rate_limited")


@attrs.frozen
class RunShell:
    """Run a shell command (a template, escaped for double quotes at run time)."""

    command: str


@attrs.frozen
class RunAgent:
    """Run an agent defined in the same file."""

    agent: str


@attrs.frozen
class RunPipeline:
    """Start a pipeline defined in the same file (commands only: nested pipeline steps are rejected)."""

    pipeline: str


Run = RunShell | RunAgent | RunPipeline


@attrs.frozen
class Transition:
    """Where to go next: ``"x"`` or ``{ step = "x", attempts = N }``.

    ``attempts`` (reference §10 #18, implemented): how many times this transition may be taken in
    one pipeline run; once used up, the outcome is handled as if the transition were absent.
    ``None`` means unlimited.
    """

    step: str
    attempts: int | None = None


@attrs.frozen
class Notify:
    """Desktop notification message templates."""

    on_start: str | None = None
    on_done: str | None = None
    on_fail: str | None = None


@attrs.frozen
class Step:
    name: str
    run: Run
    on_done: Transition | None = None
    on_fail: Transition | None = None
    on_cancel: Transition | None = None


@attrs.frozen
class Pipeline:
    """A pipeline kind. Steps are ordered; the first is the initial step."""

    kind: str
    name: str | None = None  #: display-name template (§1.12)
    vars: tuple[str, ...] = ()
    defaults: dict[str, str] = attrs.field(factory=dict)
    cwd: str | None = None
    workspace: Literal["ephemeral", "persistent"] | None = None
    locals: dict[str, str] = attrs.field(factory=dict)  #: evaluated in this (declaration) order
    notify: Notify = attrs.field(factory=Notify)
    on_done: Transition | None = None
    on_fail: Transition | None = None
    on_cancel: Transition | None = None
    steps: tuple[Step, ...] = ()

    @property
    def initial_step(self) -> str:
        """The first step's name; ``init`` for a pipeline without steps (it never runs anything)."""
        return self.steps[0].name if self.steps else "init"

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


@attrs.frozen
class ActionConfig:
    """What to do on an agent trigger. ``attempts=None`` means "forever"; cooldown in seconds."""

    action: ActionName
    message: str | None = None
    append: bool = False
    run: str | None = None  #: the gate command
    attempts: int | None = 1
    cooldown: str | None = None
    cooldown_seconds: int = 0


@attrs.frozen
class ErrorMatcher:
    """One ``on_error`` rule: ``match`` is an error type, or ``None`` to match every error."""

    match: str | None
    action: ActionConfig


def _default_on_error() -> tuple[ErrorMatcher, ...]:
    return (ErrorMatcher(None, ActionConfig("escalate")),)


#: How oj watches an agent: Claude Code's session log and hooks, or only its tmux pane.
AdapterName = Literal["claude", "generic"]


@attrs.frozen
class Agent:
    name: str
    run: str
    #: ``None``: Claude Code (the reference rule: the command must be claude/claudeless).
    adapter: AdapterName | None = None
    prompt: str | None = None
    prompt_file: str | None = None
    env: dict[str, str] = attrs.field(factory=dict)
    cwd: str | None = None
    prime: tuple[str, ...] = ()  #: a script (one entry) or several commands
    on_idle: ActionConfig = ActionConfig("nudge")
    on_dead: ActionConfig = ActionConfig("escalate")
    on_prompt: ActionConfig = ActionConfig("escalate")
    on_error: tuple[ErrorMatcher, ...] = attrs.field(factory=_default_on_error)
    notify: Notify = attrs.field(factory=Notify)

    @property
    def is_generic(self) -> bool:
        return self.adapter == "generic"

    def action_for_error(self, error_type: str) -> ActionConfig:
        """First rule matching ``error_type`` (or without ``match``); escalate when none does."""
        for rule in self.on_error:
            if rule.match is None or rule.match == error_type:
                return rule.action
        return ActionConfig("escalate")


@attrs.frozen
class Retry:
    """Persisted queues: ``attempts`` automatic retries (an item runs at most attempts + 1 times)."""

    attempts: int = 0
    cooldown: str = "0s"
    cooldown_seconds: int = 0


@attrs.frozen
class Queue:
    name: str
    type: Literal["external", "persisted"] = "external"
    list: str | None = None  #: external: shell printing a JSON array
    take: str | None = None  #: external: shell template with ``${item.<field>}``
    vars: tuple[str, ...] = ()  #: persisted: required item fields
    defaults: dict[str, str] = attrs.field(factory=dict)
    retry: Retry | None = None
    poll: str | None = None  #: external: re-poll interval (SPEC §4.8)
    poll_seconds: int | None = None


@attrs.frozen
class Worker:
    name: str
    queue: str  #: ``source = { queue = "q" }``
    pipeline: str  #: ``handler = { pipeline = "p" }``
    concurrency: int = 1


@attrs.frozen
class Cron:
    """A ``cron "name" { ... }`` block: fire ``pipeline`` on a schedule (issue 11).

    Exactly one of ``schedule`` (a five-field expression, aliases expanded) and ``interval``
    (``interval_seconds``) is set. ``timezone`` is an IANA name (``None``: the daemon's local
    zone); ``catch_up`` the window in which the latest fire missed during downtime still runs.
    """

    name: str
    pipeline: str  #: ``run = { pipeline = "p" }``
    schedule: str | None = None
    interval: str | None = None
    interval_seconds: int | None = None
    timezone: str | None = None
    concurrency: int = 1
    catch_up: str | None = None
    catch_up_seconds: int | None = None


@attrs.frozen
class Command:
    name: str
    run: Run
    args: ArgSpec = attrs.field(factory=ArgSpec)
    args_text: str = ""
    defaults: dict[str, str] = attrs.field(factory=dict)
    description: str | None = None


@attrs.frozen
class Runbook:
    """One runbook file. Names are unique per kind; lookups never cross files."""

    path: str
    commands: dict[str, Command] = attrs.field(factory=dict)
    pipelines: dict[str, Pipeline] = attrs.field(factory=dict)
    agents: dict[str, Agent] = attrs.field(factory=dict)
    queues: dict[str, Queue] = attrs.field(factory=dict)
    workers: dict[str, Worker] = attrs.field(factory=dict)
    crons: dict[str, Cron] = attrs.field(factory=dict)
    short_description: str = ""  #: leading comment block, up to the first empty ``#`` line
    long_description: str = ""  #: the rest of the leading comment block

    def command_description(self, name: str) -> str:
        """For the ``oj run`` listing: the command's own, else the file comment (2nd line first)."""
        command = self.commands[name]
        if command.description:
            return command.description
        lines = self.short_description.splitlines()
        if len(lines) >= 2:
            return lines[1]
        return lines[0] if lines else ""
