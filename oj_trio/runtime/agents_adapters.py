"""How oj starts and reads each kind of agent: Claude Code, or any other CLI (``generic``).

An adapter builds the command line that goes into the tmux pane and an *observer* that the
watcher asks, every poll, whether the agent went idle or hit an error, and at its death how it
ended. The watcher (:mod:`oj_trio.runtime.agents`) owns liveness (the pane's process) and the
actions; the adapters only read.

* **Claude Code** (reference §4.1–§4.2): ``--session-id <agent id> --settings <file>`` with the
  hooks that call ``oj`` back (Stop, Notification, PreToolUse, SessionStart for ``prime``), the
  prompt appended as one shell word unless ``run`` places ``${prompt}`` itself. State comes from
  the last record of the session JSONL under ``CLAUDE_CONFIG_DIR`` (``~/.claude``); the records
  are also turned into the agent log lines of reference §2.8.
* **generic**: the command as written (the prompt only through ``${prompt}``); idle once the
  pane's output (``pipe-pane`` into a file) has not grown for the idle timeout after its first
  output. No error detection: an API error of an arbitrary CLI has no known shape.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from ..pipelines.agent_actions import error_type
from ..runbook import templates

#: Start-up dialogs Claude Code may show before it reads the prompt: (texts that identify the
#: dialog, the key that accepts it). A login screen cannot be accepted: the spawn fails.
DIALOGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Bypass Permissions mode", "1. No", "2. Yes"), "2"),
    (("Accessing workspace", "1. Yes", "2. No"), "1"),
    (("Do you trust",), "y"),
)
LOGIN_MARKERS = ("Select login method", "Choose the text style")
NOT_AUTHENTICATED = (
    "Claude Code is not authenticated. Run `claude` once manually to complete setup."
)


@attrs.frozen
class Trigger:
    """What an observer saw: ``idle``, ``error`` (with its ``error_type``) or ``dead``."""

    kind: str
    detail: str | None = None
    error_type: str | None = None


class Observer(Protocol):
    def poll(self, now_ms: int) -> Trigger | None:
        """Called every watcher tick while the pane's process lives."""
        ...

    def reset(self, now_ms: int) -> None:
        """An action just ran: idle time counts from now."""
        ...

    def idle_due_ms(self) -> int | None:
        """When idle would fire if nothing changes (the watcher wakes then), or None."""
        ...

    def final(self, exit_status: int | None) -> Trigger:
        """The agent's process is gone: how did it end?"""
        ...

    def take_notice(self) -> str | None:
        """A line for the pipeline log about how the agent is watched (once), or None."""
        ...


# -- generic -------------------------------------------------------------------------------------


@attrs.define
class PaneOutputObserver:
    """Idle = the pane's output file has not grown for ``idle_ms`` since it last grew (and it
    grew at least once: a program still starting is not idle)."""

    path: Path
    idle_ms: int
    #: The clock is the wall clock, so the file's mtime says when the output really stopped
    #: (idle then fires within one poll of the timeout, not two).
    wall_clock: bool = False
    size: int = -1
    changed_at_ms: int = 0
    fired: bool = False

    def poll(self, now_ms: int) -> Trigger | None:
        try:
            st = os.stat(self.path)
            size, mtime_ms = st.st_size, st.st_mtime_ns // 1_000_000
        except OSError:
            size, mtime_ms = 0, now_ms
        if size != self.size:
            if self.size >= 0 or size > 0:
                self.changed_at_ms = min(now_ms, mtime_ms) if self.wall_clock else now_ms
                self.fired = False
            self.size = size
            return None
        if size > 0 and not self.fired and now_ms - self.changed_at_ms >= self.idle_ms:
            self.fired = True
            return Trigger("idle")
        return None

    def reset(self, now_ms: int) -> None:
        self.changed_at_ms = max(self.changed_at_ms, now_ms)
        self.fired = False

    def idle_due_ms(self) -> int | None:
        if self.size <= 0 or self.fired:
            return None
        return self.changed_at_ms + self.idle_ms

    def final(self, exit_status: int | None) -> Trigger:
        return Trigger("dead", _exit_text(exit_status))

    def take_notice(self) -> str | None:
        return None


def _exit_text(exit_status: int | None) -> str:
    return "agent exited" if exit_status is None else f"agent exited (exit {exit_status})"


# -- Claude Code ---------------------------------------------------------------------------------

WORKING, WAITING, FAILED = "working", "waiting", "failed"

#: How long the watcher looks for Claude's session log before it watches the process only
#: (reference §4.2: 30 one-second iterations).
LOG_SEARCH_MS = 30_000
PROCESS_ONLY_NOTICE = (
    "agent session log not found after 30s: watching the process only "
    "(no idle or error detection from the log; Claude's hooks still report idle and prompts)"
)


def claude_config_dir(env: Mapping[str, str]) -> Path:
    explicit = env.get("CLAUDE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude"


def session_log_path(config_dir: Path, cwd: Path, agent_id: str) -> Path:
    """``<config>/projects/<cwd with / and . as ->/<agent id>.jsonl`` (reference §4.2)."""
    folder = str(cwd.resolve()).replace("/", "-").replace(".", "-")
    return config_dir / "projects" / folder / f"{agent_id}.jsonl"


def record_state(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """One JSONL record → (state, error text) by the rules of reference §4.2."""
    message = record.get("message")
    error = record.get("error")
    if not error and isinstance(message, Mapping):
        error = message.get("error")
    if error:
        return FAILED, str(error)
    kind = record.get("type")
    if kind == "assistant" and isinstance(message, Mapping):
        if message.get("stop_reason") is not None:
            return WORKING, None
        content = message.get("content") or []
        if any(
            isinstance(b, Mapping) and b.get("type") in ("tool_use", "thinking") for b in content
        ):
            return WORKING, None
        return WAITING, None
    return WORKING, None


def log_lines(record: Mapping[str, Any]) -> list[str]:
    """Agent log lines for one session record (reference §2.8), without timestamps."""
    out: list[str] = []
    message = record.get("message")
    state, error = record_state(record)
    if state == FAILED:
        return [f"error: {error}"]
    if record.get("type") != "assistant" or not isinstance(message, Mapping):
        return out
    for block in message.get("content") or []:
        if not isinstance(block, Mapping) or block.get("type") != "tool_use":
            continue
        name, data = block.get("name"), block.get("input") or {}
        path = data.get("file_path") or data.get("notebook_path") or ""
        if name == "Read":
            out.append(f"read: {path}")
        elif name == "Write":
            lines = len(str(data.get("content", "")).splitlines())
            out.append(f"wrote: {path} (new, {lines} lines)")
        elif name == "Edit":
            out.append(f"edited: {path}")
        elif name == "NotebookEdit":
            out.append(f"edited: {path} (notebook)")
        elif name == "Bash":
            command = str(data.get("command", ""))
            if command.startswith(("oj ", "./oj ")):
                out.append(f"oj: {command.split(' ', 1)[1]}")
            else:
                out.append(f"bash: {command[:80]}")
    if state == WAITING:
        usage = message.get("usage") or {}
        tokens = sum(int(v) for v in usage.values() if isinstance(v, int))
        out.append(f"turn complete (?s, {tokens} tokens)" if tokens else "turn complete")
    return out


@attrs.define
class SessionLogObserver:
    """Reads Claude Code's session JSONL as it grows: the state of its last record, the agent
    log lines of every new record. Idle = ``waiting`` unchanged for ``idle_ms``."""

    path: Path
    agent_log: Path
    idle_ms: int
    offset: int = 0
    partial: bytes = b""
    state: str = WORKING
    error: str | None = None
    changed_at_ms: int = 0
    fired: bool = False
    error_fired: bool = False
    #: The log being read (``path``, or the fallback file found in its folder), once found.
    source: Path | None = None
    #: Watch clock time after which a missing log means process-only watching.
    search_until_ms: int | None = None
    #: Wall time the watch began: a fallback log must have been written since.
    since: float = attrs.Factory(time.time)
    process_only: bool = False
    notice: str | None = None

    def catch_up(self, now_ms: int, *, wall_clock: bool = False) -> None:
        """Re-attached after a restart: read what is there for the state only; its agent log
        lines were written by the daemon before. An agent already waiting counts as idle since
        its last record (the file's mtime, when the clock is the wall clock), so one idle
        longer than the timeout fires at once (reference §4.2), not a whole timeout later."""
        self.since = 0.0  # the agent may have written its log long before this daemon started
        self._read(now_ms, quiet=True)
        if wall_clock and self.source is not None and self.state == WAITING:
            try:
                mtime_ms = self.source.stat().st_mtime_ns // 1_000_000
            except OSError:
                return
            self.changed_at_ms = min(now_ms, mtime_ms)

    def _locate(self, now_ms: int) -> Path | None:
        """The session log to read (reference §4.2): the agent's own file, else the newest
        ``.jsonl`` in its folder written since the watch began (never an older agent's log,
        e.g. the one a ``recover`` replaced). Nothing within :data:`LOG_SEARCH_MS` → the
        process only."""
        if self.source == self.path or self.process_only:
            return self.source
        if self.path.exists():
            if self.source is not None:  # leave the fallback for the agent's own file
                self.offset, self.partial = 0, b""
            self.source = self.path
            return self.source
        if self.source is not None:
            return self.source
        newest: tuple[float, Path] | None = None
        try:
            for candidate in self.path.parent.glob("*.jsonl"):
                mtime = candidate.stat().st_mtime
                if mtime >= self.since and (newest is None or mtime > newest[0]):
                    newest = (mtime, candidate)
        except OSError:
            newest = None
        if newest is not None:
            self.source = newest[1]
            return self.source
        if self.search_until_ms is None:
            self.search_until_ms = now_ms + LOG_SEARCH_MS
        elif now_ms >= self.search_until_ms:
            self.process_only = True
            self.notice = PROCESS_ONLY_NOTICE
        return None

    def take_notice(self) -> str | None:
        notice, self.notice = self.notice, None
        return notice

    def _read(self, now_ms: int, *, quiet: bool = False) -> None:
        path = self._locate(now_ms)
        if path is None:
            return
        try:
            with open(path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return
        if not chunk:
            return
        self.offset += len(chunk)
        data = self.partial + chunk
        *lines, self.partial = data.split(b"\n")
        written: list[str] = []
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for raw in lines:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            state, error = record_state(record)
            if state != self.state or error != self.error:
                self.changed_at_ms = now_ms
                self.fired = False
                self.error_fired = self.error_fired and state == FAILED
            self.state, self.error = state, error
            written += [f"{stamp} {line}" for line in log_lines(record)]
        if written and not quiet:
            self.agent_log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.agent_log, "a", encoding="utf-8") as fh:
                fh.write("".join(line + "\n" for line in written))

    def poll(self, now_ms: int) -> Trigger | None:
        self._read(now_ms)
        if self.state == FAILED and not self.error_fired:
            self.error_fired = True
            text = self.error or "error"
            return Trigger("error", text, error_type(text))
        if self.state == WAITING and not self.fired and now_ms - self.changed_at_ms >= self.idle_ms:
            self.fired = True
            return Trigger("idle")
        return None

    def reset(self, now_ms: int) -> None:
        self.changed_at_ms = now_ms
        self.fired = False

    def idle_due_ms(self) -> int | None:
        if self.state != WAITING or self.fired:
            return None
        return self.changed_at_ms + self.idle_ms

    def final(self, exit_status: int | None) -> Trigger:
        self._read(0)
        if self.state == FAILED and not self.error_fired:
            text = self.error or "error"
            return Trigger("error", text, error_type(text))
        return Trigger("dead", _exit_text(exit_status))


def claude_settings(
    base: Mapping[str, Any], *, oj: str, agent_id: str, prime_script: Path | None
) -> dict[str, Any]:
    """The ``--settings`` file: the project's ``.claude/settings.json`` with oj's hooks (§4.1)."""

    def hook(matcher: str, command: str) -> dict[str, Any]:
        return {"matcher": matcher, "hooks": [{"type": "command", "command": command}]}

    hooks: dict[str, Any] = {
        "Stop": [hook("", f"{oj} agent hook stop {agent_id}")],
        "Notification": [
            hook("idle_prompt", f"{oj} emit agent:idle --agent {agent_id}"),
            hook(
                "permission_prompt", f"{oj} emit agent:prompt --agent {agent_id} --type permission"
            ),
        ],
        "PreToolUse": [
            hook(
                "ExitPlanMode|AskUserQuestion|EnterPlanMode",
                f"{oj} agent hook pretooluse {agent_id}",
            )
        ],
    }
    if prime_script is not None:
        hooks["SessionStart"] = [hook("", f"bash {prime_script}")]
    return {**base, "hooks": hooks}


def read_project_settings(exec_dir: Path) -> dict[str, Any]:
    """``<exec dir>/.claude/settings.json`` (``{}`` when absent or not a JSON object)."""
    try:
        data = json.loads((exec_dir / ".claude" / "settings.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def claude_command(run: str, *, agent_id: str, settings: Path, prompt: str) -> str:
    """``run`` (already interpolated) + ``--session-id --settings`` + the prompt as one shell
    word, unless ``run`` placed the prompt itself with ``${prompt}`` (checked by the caller on
    the template: ``inline``)."""
    command = f"{run} --session-id {agent_id} --settings {settings}"
    if (
        "--dangerously-skip-permissions" in run
        and "--allow-dangerously-skip-permissions" not in run
    ):
        command += " --allow-dangerously-skip-permissions"
    return command


def append_prompt(command: str, prompt: str) -> str:
    return f'{command} "{templates.escape_shell(prompt)}"'


def dialog_key(pane: str) -> str | None:
    """The key that accepts a start-up dialog shown in ``pane``, if one is."""
    for markers, key in DIALOGS:
        if all(marker in pane for marker in markers):
            return key
    return None


def needs_login(pane: str) -> bool:
    return any(marker in pane for marker in LOGIN_MARKERS)
