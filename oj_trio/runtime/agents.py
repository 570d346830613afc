"""Agent steps: an AI coding agent in a tmux pane, watched, answered by its runbook's actions.

Theory of operation
-------------------
An agent step is one call of :meth:`AgentService.run_step` inside its pipeline's task, like a
shell step, and it lasts as long as the step: spawn (or re-attach after a restart), then a watch
loop that returns the step's outcome. The loop wakes every ``OJ_WATCHER_POLL_MS`` (default
1000) or when something is delivered to the agent's inbox (a signal or hook from ``oj emit``, a
``resume -m``, a cooldown timer). Each tick:

* **liveness** from the pane's process (``#{pane_dead}``, one ``list-panes -a`` shared by every
  watcher, :class:`~oj_trio.adapters.tmux.PaneMonitor`): a dead pane or a vanished session is
  the ``dead`` trigger (an API error in Claude's last record makes it ``error`` instead);
* **idle** and **error** from the adapter's observer (:mod:`.agents_adapters`).

A trigger goes through the pure decision table (:mod:`oj_trio.pipelines.agent_actions`):
attempts counted durably (``pipeline:action_attempted``), cooldowns on the durable timers
(``cooldown:<pipeline>:<trigger>:0``), then the action: ``nudge`` types into the pane, ``done``/
``gate`` passed return success, ``fail`` returns failure, ``recover`` respawns with the message,
``escalate`` records ``step:waiting`` with a reason (``oj status`` lists it under "needs
attention") while the watch goes on (idle/prompt are ignored while waiting; a signal, a resume
or the agent's death still count).

Durability order (SPEC §2): ``step:started`` with the agent id and ``session:created`` are durable
before tmux is asked to start anything; a restart finds the session by that record. The session
is killed when the step ends or is cancelled, but **not** when the daemon drains: the step stays
``Running``, and the next daemon re-attaches (the driver routes a ``Running`` agent step back
here) or, if the pane died meanwhile, fires ``on_dead`` with the step's real agent id.
"""

from __future__ import annotations

import json
import logging
import secrets
import shlex
import shutil
import sys
import uuid
from pathlib import Path

import attrs
import trio

from .. import events as ev
from .. import paths
from ..adapters.notify import notify
from ..adapters.tmux import PaneMonitor, Tmux, TmuxError
from ..errors import NotFoundError, OjError, UsageError
from ..pipeline_setup import pipeline_context
from ..pipelines import agent_actions as actions
from ..pipelines.transitions import Failed, Succeeded
from ..runbook import templates
from ..runbook.model import ActionConfig, Agent, RunAgent, Step
from ..settings import env_seconds
from ..state import Pipeline, StepStatus
from ..timers import CooldownTimer, cooldown_id
from .agents_adapters import (
    NOT_AUTHENTICATED,
    Observer,
    PaneOutputObserver,
    SessionLogObserver,
    Trigger,
    append_prompt,
    claude_command,
    claude_config_dir,
    claude_settings,
    dialog_key,
    needs_login,
    read_project_settings,
    session_log_path,
)
from .context import RuntimeContext, Supervision
from .pipeline_driver import commit_outcome
from .timer_service import FiredTimer

log = logging.getLogger("oj.agents")

Outcome = Succeeded | Failed


# -- what reaches a watched agent from outside ----------------------------------------------------


@attrs.frozen
class SignalMsg:
    kind: str  #: complete | escalate
    message: str | None = None


@attrs.frozen
class HookMsg:
    trigger: str  #: idle | prompt
    detail: str | None = None


@attrs.frozen
class ResumeMsg:
    message: str


@attrs.frozen
class CooldownMsg:
    trigger: str


@attrs.frozen
class SpawnFailedMsg:
    error: str


Message = SignalMsg | HookMsg | ResumeMsg | CooldownMsg | SpawnFailedMsg


# -- names ---------------------------------------------------------------------------------------


def _sanitize(text: str, limit: int) -> str:
    out = "".join(c if c.isalnum() or c in "_-" else "-" for c in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")[:limit].strip("-")


def session_name(pipeline_name: str, agent_name: str) -> str:
    """``oj-<pipeline ≤20>-<agent ≤15>-<4 hex>`` (reference §1.12)."""
    return f"oj-{_sanitize(pipeline_name, 20)}-{_sanitize(agent_name, 15)}-{secrets.token_hex(2)}"


def project_root_of(p: Pipeline) -> Path:
    """The directory holding ``.oj/`` above the pipeline's invoking dir (else that dir)."""
    start = Path(p.vars.get("invoke.dir") or p.cwd)
    for folder in (start, *start.parents):
        if (folder / ".oj").is_dir():
            return folder
    return start


def oj_binary() -> str:
    """The ``oj`` beside the running interpreter (the venv's), else ``oj`` on PATH: hooks call it."""
    beside = Path(sys.executable).parent / "oj"
    return str(beside) if beside.exists() else "oj"


#: First words that are the shell's, not a program to look up on PATH.
SHELL_WORDS = frozenset(
    [
        "while",
        "until",
        "for",
        "if",
        "case",
        "select",
        "function",
        "time",
        "!",
        "{",
        "(",
        "[",
        "[[",
        ".",
        ":",
        "cd",
        "echo",
        "printf",
        "exec",
        "export",
        "set",
        "source",
        "test",
        "true",
        "false",
        "eval",
        "read",
        "trap",
        "wait",
        "command",
        "builtin",
    ]
)


def _program_of(command: str) -> str | None:
    """The program a command line runs, if it is a plain word (no variable, no substitution,
    no shell keyword or builtin): a spawn fails early, through ``on_fail``, when it is missing."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for word in words:
        if "=" in word.split("/", 1)[0] and not word.startswith("="):
            continue  # FOO=bar prefix
        if any(c in word for c in "$`(;|&<>") or word in SHELL_WORDS:
            return None
        return word
    return None


# -- one agent being watched ---------------------------------------------------------------------


@attrs.define
class AgentRun:
    """The agent a step runs now (a ``recover`` replaces it)."""

    pipeline_id: str
    step: str
    definition: Agent
    agent_id: str
    session: str
    cwd: Path
    prompt: str
    observer: Observer
    inbox: trio.MemorySendChannel[Message]
    outbox: trio.MemoryReceiveChannel[Message]
    #: trio time after which a pane snapshot must contain the session.
    spawned_at: float
    dead_handled: bool = False
    cooling: set[str] = attrs.Factory(set)


class AgentService:
    """Spawns, watches and answers agents; the step runner for ``run = { agent = … }``."""

    def __init__(self, ctx: RuntimeContext, supervision: Supervision) -> None:
        self.ctx = ctx
        self.supervision = supervision
        self.tmux = Tmux(ctx.state_dir, ctx.env)
        self.monitor = PaneMonitor(self.tmux)
        self.poll = env_seconds("OJ_WATCHER_POLL_MS", 1000, ctx.env)
        self.idle_ms = int(env_seconds("OJ_IDLE_TIMEOUT_MS", 180_000, ctx.env) * 1000)
        self.prompt_poll = env_seconds("OJ_PROMPT_POLL_MS", 200, ctx.env)
        self.live: dict[str, AgentRun] = {}
        #: ``resume -m`` messages for a pipeline whose agent step has no watcher yet.
        self.pending_resume: dict[str, str] = {}
        #: pipeline id → the session being started for it, until a watcher owns it.
        self.spawning: dict[str, str] = {}

    # -- lookups used by handlers ----------------------------------------------------------------

    def live_for_pipeline(self, pipeline_id: str) -> AgentRun | None:
        return next((r for r in self.live.values() if r.pipeline_id == pipeline_id), None)

    def watched_pipelines(self) -> set[str]:
        """Pipelines on an agent step right now (watched, or its agent being started)."""
        return {r.pipeline_id for r in self.live.values()} | set(self.spawning)

    def deliver(self, agent_id: str, message: Message) -> bool:
        """Hand ``message`` to the watcher of ``agent_id``; False if no watcher runs for it."""
        run = self.live.get(agent_id)
        if run is None:
            return False
        try:
            run.inbox.send_nowait(message)
        except trio.WouldBlock:
            log.warning("agent %s: inbox full, dropped %r", agent_id[:12], message)
        return True

    def watches_while_waiting(self, p: Pipeline) -> bool:
        """Whether boot should re-attach to ``p``: escalated on an agent step whose session (and
        agent id) the state still records."""
        rec = p.current_record()
        return (
            not p.terminal
            and p.step_status == StepStatus.WAITING
            and p.session_id is not None
            and p.session_id in self.ctx.state.sessions
            and rec is not None
            and rec.agent_id is not None
            and rec.finished_at_ms is None
        )

    def agent_definition(self, p: Pipeline) -> Agent | None:
        step = self.ctx.runbooks.pipeline_def(p).step(p.step)
        if step is None or not isinstance(step.run, RunAgent):
            return None
        return self.ctx.runbooks.runbook_for(p).agents.get(step.run.agent)

    # -- the step runner -------------------------------------------------------------------------

    async def run_step(self, p: Pipeline, step: Step) -> Outcome:
        assert isinstance(step.run, RunAgent)
        ctx = self.ctx
        agent = ctx.runbooks.runbook_for(p).agents.get(step.run.agent)
        if agent is None:
            return Failed(f"agent '{step.run.agent}' is not defined in the runbook")
        extra = self.pending_resume.pop(p.id, None)
        rec = p.current_record()
        run: AgentRun | Failed
        if (
            rec is not None
            and rec.agent_id
            and rec.finished_at_ms is None
            and p.session_id is not None
            and p.session_id in ctx.state.sessions
        ):
            run = self._attach(p, agent, rec.agent_id, p.session_id)
            ctx.log.write(p.id, p.step, f"agent re-attached: {agent.name} ({p.session_id})")
            if extra:
                run.inbox.send_nowait(ResumeMsg(extra))
        else:
            try:
                run = await self._spawn(p, agent, extra_prompt=extra)
            finally:
                # Cancelled while tmux was starting it: the session must not outlive the step.
                await self._end_unwatched(p.id)
        if isinstance(run, Failed):
            return run
        holder = [run]
        try:
            async with trio.open_nursery() as nursery:
                outcome = await self._watch(holder, nursery)
                nursery.cancel_scope.cancel()
            return outcome
        finally:
            current = holder[0]
            self.live.pop(current.agent_id, None)
            await self._end_unwatched(p.id)
            if not self.supervision.is_draining():
                with trio.CancelScope(shield=True):
                    await self._end_session(current.session)

    async def _end_unwatched(self, pipeline_id: str) -> None:
        """End a session whose spawn was interrupted before a watcher took it over."""
        session = self.spawning.pop(pipeline_id, None)
        if session is not None and not self.supervision.is_draining():
            with trio.CancelScope(shield=True):
                await self._end_session(session)

    async def _end_session(self, session: str) -> None:
        try:
            await self.tmux.kill_session(session)
        except OSError as exc:
            log.warning("cannot kill session %s: %s", session, exc)
        if session in self.ctx.state.sessions:
            await self.ctx.commit(ev.SessionDeleted(id=session))

    def _attach(self, p: Pipeline, agent: Agent, agent_id: str, session: str) -> AgentRun:
        cwd = Path(p.workspace_path or p.cwd)
        run = self._new_run(p, agent, agent_id, session, cwd, prompt=p.vars.get("prompt", ""))
        run.spawned_at = -1.0  # an old session: a snapshot without it means it is gone
        if isinstance(run.observer, SessionLogObserver):
            run.observer.catch_up(
                self.ctx.clock.now_ms(), wall_clock=self.ctx.clock.syncs_with_wall
            )
        return run

    def _new_run(
        self, p: Pipeline, agent: Agent, agent_id: str, session: str, cwd: Path, prompt: str
    ) -> AgentRun:
        agent_log = paths.agent_log_path(self.ctx.state_dir, agent_id)
        observer: Observer
        if agent.is_generic:
            observer = PaneOutputObserver(
                agent_log, self.idle_ms, wall_clock=self.ctx.clock.syncs_with_wall
            )
        else:
            observer = SessionLogObserver(
                session_log_path(claude_config_dir(self.ctx.env), cwd, agent_id),
                agent_log,
                self.idle_ms,
            )
        observer.reset(self.ctx.clock.now_ms())
        inbox, outbox = trio.open_memory_channel[Message](64)
        run = AgentRun(
            pipeline_id=p.id,
            step=p.step,
            definition=agent,
            agent_id=agent_id,
            session=session,
            cwd=cwd,
            prompt=prompt,
            observer=observer,
            inbox=inbox,
            outbox=outbox,
            spawned_at=trio.current_time(),
        )
        self.live[agent_id] = run
        return run

    # -- spawn -----------------------------------------------------------------------------------

    async def _spawn(
        self,
        p: Pipeline,
        agent: Agent,
        *,
        extra_prompt: str | None = None,
        prompt: str | None = None,
    ) -> AgentRun | Failed:
        ctx = self.ctx
        agent_id = str(uuid.uuid4())
        session = session_name(p.name, agent.name)
        exec_dir = Path(p.workspace_path or p.cwd)
        context = pipeline_context(
            p, extra={"agent_id": agent_id, "agent": agent.name, "step": p.step}
        )
        cwd = exec_dir
        if agent.cwd:
            cwd = exec_dir / templates.interpolate(agent.cwd, context, env=ctx.env)
        if not cwd.is_dir():
            return Failed(f"agent {agent.name}: working directory does not exist: {cwd}")
        if prompt is None:
            try:
                prompt = await self._render_prompt(p, agent, context)
            except OjError as exc:
                return Failed(str(exc))
            if extra_prompt:
                prompt = f"{prompt}\n\n{extra_prompt}" if prompt else extra_prompt
        run_context = {**context, "prompt": templates.escape_shell(prompt)}
        command = templates.interpolate(agent.run, run_context, env=ctx.env)
        agent_dir = paths.agents_dir(ctx.state_dir) / agent_id
        env = {k: templates.interpolate(v, context, env=ctx.env) for k, v in agent.env.items()}
        for key in ("CLAUDE_CONFIG_DIR", "CLAUDE_CODE_OAUTH_TOKEN"):
            if key in ctx.env and key not in env:
                env[key] = ctx.env[key]
        env.update(
            {
                "OJ_STATE_DIR": str(ctx.state_dir),
                "OJ_PIPELINE_ID": p.id,
                "OJ_AGENT_ID": agent_id,
                "OJ_STEP": p.step,
            }
        )
        if p.namespace:
            env["OJ_NAMESPACE"] = p.namespace
        program = _program_of(command)
        search = env.get("PATH") or ctx.env.get("PATH")
        if program is not None and shutil.which(program, path=search) is None:
            where = f" (in {cwd})" if "/" in program else ""
            return Failed(f"agent {agent.name}: command not found: {program}{where}")
        pane_log: Path | None = None
        if agent.is_generic:
            pane_log = paths.agent_log_path(ctx.state_dir, agent_id)
        else:
            try:
                settings = await trio.to_thread.run_sync(
                    self._write_claude_files, agent, context, agent_dir, exec_dir, agent_id
                )
            except OSError as exc:
                return Failed(f"agent {agent.name}: cannot write its settings: {exc}")
            command = claude_command(command, agent_id=agent_id, settings=settings, prompt=prompt)
            if "${prompt}" not in agent.run:
                command = append_prompt(command, prompt)
        # Durable before tmux starts anything: a restart finds the session by this record.
        at = ctx.clock.now_ms()
        announce: list[ev.EventBase] = [
            ev.StepStarted(
                pipeline_id=p.id, step=p.step, at_ms=at, agent_id=agent_id, agent_name=agent.name
            ),
            ev.SessionCreated(id=session, pipeline_id=p.id),
        ]
        if prompt != p.vars.get("prompt", ""):
            # Kept for a re-attach after a restart (recover/resume build on it).
            announce.append(ev.PipelineUpdated(id=p.id, vars={"prompt": prompt}))
        self.spawning[p.id] = session
        await ctx.commit(*announce)
        ctx.log.write(p.id, p.step, f"agent spawned: {agent.name} ({command})")
        ctx.log.write(p.id, p.step, f"agent log: {paths.agent_log_path(ctx.state_dir, agent_id)}")
        # The exit status also goes to a file: with pipe-pane, tmux 3.3a sometimes leaves
        # #{pane_dead_status} empty (measured: 1 pane in 15).
        status_file = shlex.quote(str(exit_status_path(ctx.state_dir, agent_id)))
        pane_command = f'( {command}\n); s=$?; printf %s "$s" > {status_file}; exit $s'
        try:
            agent_dir.mkdir(parents=True, exist_ok=True)
            await self.tmux.new_session(session, pane_command, cwd=cwd, env=env, pipe_to=pane_log)
        except (TmuxError, OSError) as exc:
            self.spawning.pop(p.id, None)
            await self._end_session(session)
            return Failed(f"agent {agent.name} failed to start: {exc}")
        if agent.notify.on_start:
            self._notify(p, agent, agent.notify.on_start)
        run = self._new_run(p, agent, agent_id, session, cwd, prompt)
        self.spawning.pop(p.id, None)
        return run

    async def _render_prompt(self, p: Pipeline, agent: Agent, context: dict[str, str]) -> str:
        if agent.prompt_file:
            path = Path(templates.interpolate(agent.prompt_file, context, env=self.ctx.env))
            if not path.is_absolute():
                path = project_root_of(p) / path
            try:
                text = await trio.to_thread.run_sync(path.read_text, "utf-8")
            except OSError as exc:
                raise OjError(
                    f"prompt error for agent {agent.name}: {exc.strerror or exc}: {path}"
                ) from None
            return templates.interpolate(text, context, env=self.ctx.env)
        if agent.prompt:
            return templates.interpolate(agent.prompt, context, env=self.ctx.env)
        return ""

    def _write_claude_files(
        self, agent: Agent, context: dict[str, str], agent_dir: Path, exec_dir: Path, agent_id: str
    ) -> Path:
        agent_dir.mkdir(parents=True, exist_ok=True)
        (exec_dir / ".claude").mkdir(parents=True, exist_ok=True)
        prime: Path | None = None
        if agent.prime:
            prime = agent_dir / "prime.sh"
            body = "\n".join(
                templates.interpolate(x, context, env=self.ctx.env) for x in agent.prime
            )
            prime.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\n{body}\n")
            prime.chmod(0o755)
        settings = agent_dir / "claude-settings.json"
        data = claude_settings(
            read_project_settings(exec_dir), oj=oj_binary(), agent_id=agent_id, prime_script=prime
        )
        settings.write_text(json.dumps(data, indent=2))
        return settings

    # -- watch -----------------------------------------------------------------------------------

    async def _watch(self, holder: list[AgentRun], nursery: trio.Nursery) -> Outcome:
        if not holder[0].definition.is_generic:
            nursery.start_soon(self._dialogs, holder[0])
        while True:
            run = holder[0]
            message: Message | None = None
            wait = self.poll
            due = run.observer.idle_due_ms()
            if due is not None:
                # Wake when idle falls due rather than up to a poll later.
                wait = min(wait, max(0.005, (due - self.ctx.clock.now_ms()) / 1000))
            with trio.move_on_after(wait):
                message = await run.outbox.receive()
            if message is not None:
                outcome = await self._on_message(holder, nursery, message)
                if outcome is not None:
                    return outcome
                continue
            taken_at, panes = await self.monitor.snapshot(self.poll / 2)
            if panes is None:
                continue
            pane = panes.get(run.session)
            if pane is None and taken_at < run.spawned_at:
                continue  # the snapshot predates the session
            now = self.ctx.clock.now_ms()
            trigger: Trigger | None
            if pane is None or pane.dead:
                if run.dead_handled:
                    continue
                run.dead_handled = True
                status = pane.exit_status if pane is not None else None
                if status is None:
                    status = _read_status(exit_status_path(self.ctx.state_dir, run.agent_id))
                self.ctx.log.write(
                    run.pipeline_id,
                    run.step,
                    "agent exited" if pane is not None else "agent session ended",
                )
                await self.ctx.commit(ev.AgentExited(agent_id=run.agent_id, exit_code=status))
                trigger = run.observer.final(status)
            else:
                trigger = run.observer.poll(now)
                notice = run.observer.take_notice()
                if notice is not None:
                    self.ctx.log.write(run.pipeline_id, run.step, notice)
            if trigger is not None:
                outcome = await self._fire(holder, nursery, trigger)
                if outcome is not None:
                    return outcome

    async def _dialogs(self, run: AgentRun) -> None:
        """Accept Claude Code's start-up dialogs (trust, bypass-permissions) off the event loop's
        critical path; a login screen fails the spawn (reference §4.1, §10 #19)."""
        checks = max(1, int(15 * 0.2 / max(self.prompt_poll, 0.01)))
        for _ in range(checks):
            await trio.sleep(self.prompt_poll)
            try:
                pane = await self.tmux.capture(run.session, lines=50)
            except (TmuxError, OSError):
                return
            if needs_login(pane):
                run.inbox.send_nowait(SpawnFailedMsg(NOT_AUTHENTICATED))
                return
            key = dialog_key(pane)
            if key is not None:
                try:
                    await self.tmux.send_keys(run.session, key)
                except (TmuxError, OSError):
                    return

    async def _on_message(
        self, holder: list[AgentRun], nursery: trio.Nursery, message: Message
    ) -> Outcome | None:
        run = holder[0]
        ctx = self.ctx
        if isinstance(message, SignalMsg):
            if message.kind == "complete":
                ctx.log.write(run.pipeline_id, run.step, "agent:signal complete")
                self._notify_done(run)
                return Succeeded()
            reason = message.message or "Agent requested escalation"
            ctx.log.write(run.pipeline_id, run.step, f"agent:signal: {reason}")
            await self._escalate(run, reason, title_is_name=True)
            return None
        if isinstance(message, HookMsg):
            if message.trigger == "prompt":
                ctx.log.write(run.pipeline_id, run.step, f"agent prompt: {message.detail}")
            return await self._fire(holder, nursery, Trigger(message.trigger, message.detail))
        if isinstance(message, CooldownMsg):
            if message.trigger in run.cooling:
                run.cooling.discard(message.trigger)
                return await self._fire(holder, nursery, Trigger(message.trigger))
            return None
        if isinstance(message, SpawnFailedMsg):
            return Failed(message.error)
        await self._resume(holder, nursery, message.message)
        return None

    async def _resume(self, holder: list[AgentRun], nursery: trio.Nursery, text: str) -> None:
        """``oj pipeline resume -m``: nudge a live agent; respawn a dead one with the message."""
        run = holder[0]
        ctx = self.ctx
        _taken, panes = await self.monitor.snapshot(0)
        pane = (panes or {}).get(run.session)
        p = ctx.state.pipelines[run.pipeline_id]
        if pane is not None and not pane.dead:
            try:
                await self.tmux.send_text(run.session, text)
            except (TmuxError, OSError) as exc:
                log.warning("agent %s: resume message not sent: %s", run.agent_id[:12], exc)
            await ctx.commit(
                ev.StepStarted(
                    pipeline_id=p.id,
                    step=p.step,
                    at_ms=ctx.clock.now_ms(),
                    agent_id=run.agent_id,
                    agent_name=run.definition.name,
                )
            )
            ctx.log.write(p.id, p.step, "resumed: message sent to the agent")
            run.observer.reset(ctx.clock.now_ms())
            return
        prompt = f"{run.prompt}\n\n{text}" if run.prompt else text
        await self._respawn(holder, nursery, prompt)

    async def _respawn(self, holder: list[AgentRun], nursery: trio.Nursery, prompt: str) -> None:
        run = holder[0]
        self.live.pop(run.agent_id, None)
        await self._end_session(run.session)
        p = self.ctx.state.pipelines[run.pipeline_id]
        fresh = await self._spawn(p, run.definition, prompt=prompt)
        if isinstance(fresh, Failed):
            # Keep watching the old (dead) run; the failure reaches the loop as a message.
            self.live[run.agent_id] = run
            run.inbox.send_nowait(SpawnFailedMsg(fresh.error))
            return
        holder[0] = fresh
        if not fresh.definition.is_generic:
            nursery.start_soon(self._dialogs, fresh)

    # -- triggers and actions --------------------------------------------------------------------

    async def _fire(
        self, holder: list[AgentRun], nursery: trio.Nursery, trigger: Trigger
    ) -> Outcome | None:
        run = holder[0]
        ctx = self.ctx
        p = ctx.state.pipelines.get(run.pipeline_id)
        if p is None or p.terminal:
            return Failed("pipeline ended")
        if trigger.kind in ("idle", "prompt") and p.step_status == StepStatus.WAITING:
            return None  # escalated: a human decides; the agent idling is expected
        if trigger.kind == "idle":
            ctx.log.write(p.id, p.step, "agent idle")
        elif trigger.kind == "error":
            ctx.log.write(p.id, p.step, f"agent error: {trigger.detail}")
            await ctx.commit(ev.AgentFailed(agent_id=run.agent_id, error=trigger.detail or ""))
        config = actions.action_for(run.definition, trigger.kind, trigger.error_type)
        key = actions.attempts_key(trigger.kind)
        now = ctx.clock.now_ms()
        plan = actions.plan(
            trigger.kind,
            config,
            attempts=p.action_attempts.get(key, 0),
            last_attempt_ms=p.action_attempted_at_ms.get(key, 0),
            now_ms=now,
        )
        if isinstance(plan, actions.Exhausted):
            ctx.log.write(p.id, p.step, f"{trigger.kind} attempts exhausted, escalating")
            await self._escalate(run, plan.reason)
            return None
        if isinstance(plan, actions.CoolDown):
            timer = cooldown_id(p.id, trigger.kind, 0)
            if trigger.kind not in run.cooling:
                run.cooling.add(trigger.kind)
                seconds = config.cooldown_seconds
                ctx.log.write(
                    p.id, p.step, f"{trigger.kind} attempt {plan.attempt} cooldown {seconds}s"
                )
                await ctx.commit(ev.TimerSet(id=timer, due_at_ms=plan.due_at_ms))
            return None
        await ctx.commit(ev.PipelineActionAttempted(id=p.id, key=key, at_ms=now))
        return await self._act(holder, nursery, p, trigger, plan.config)

    async def _act(
        self,
        holder: list[AgentRun],
        nursery: trio.Nursery,
        p: Pipeline,
        trigger: Trigger,
        config: ActionConfig,
    ) -> Outcome | None:
        run = holder[0]
        ctx = self.ctx
        action = config.action
        if action == "nudge":
            text = config.message or actions.DEFAULT_NUDGE
            text = templates.interpolate(text, pipeline_context(p), env=ctx.env)
            try:
                await self.tmux.send_text(run.session, text)
                ctx.log.write(p.id, p.step, "nudge sent")
            except (TmuxError, OSError) as exc:
                ctx.log.write(p.id, p.step, f"nudge failed: {exc}")
            run.observer.reset(ctx.clock.now_ms())
            return None
        if action == "done":
            self._notify_done(run)
            return Succeeded(log=(f"{_trigger_text(trigger)}: done",))
        if action == "fail":
            error = _trigger_text(trigger)
            if run.definition.notify.on_fail:
                self._notify(p, run.definition, run.definition.notify.on_fail, error=error)
            return Failed(error)
        if action == "recover":
            prompt = actions.recover_prompt(run.prompt, config)
            ctx.log.write(p.id, p.step, "recover: respawning the agent")
            await self._respawn(holder, nursery, prompt)
            return None
        if action == "gate":
            return await self._gate(run, p, config)
        await self._escalate(run, _trigger_text(trigger))
        return None

    async def _gate(self, run: AgentRun, p: Pipeline, config: ActionConfig) -> Outcome | None:
        ctx = self.ctx
        if not config.run:
            await self._escalate(run, "gate action requires a 'run' field")
            return None
        command = templates.interpolate_shell(config.run, pipeline_context(p), env=ctx.env)
        cwd = Path(p.workspace_path or p.cwd)
        ctx.log.write(p.id, p.step, f"gate (cwd: {cwd}): {command}")
        try:
            result = await trio.run_process(
                ["sh", "-c", command],
                cwd=cwd,
                env=ctx.env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        except OSError as exc:
            reason = f"gate `{command}` execution error: {exc}"
        else:
            if result.returncode == 0:
                ctx.log.write(p.id, p.step, "gate passed, advancing")
                self._notify_done(run)
                return Succeeded()
            stderr = result.stderr.decode("utf-8", "replace").strip()
            reason = f"gate `{command}` failed (exit {result.returncode})"
            if stderr:
                reason += f": {stderr.splitlines()[-1]}"
        ctx.log.write(p.id, p.step, f"gate failed: {reason}")
        await self._escalate(run, reason)
        return None

    async def _escalate(self, run: AgentRun, reason: str, *, title_is_name: bool = False) -> None:
        """Step ``Waiting`` with ``reason``; the agent keeps running (reference §4.3)."""
        ctx = self.ctx
        p = ctx.state.pipelines[run.pipeline_id]
        await ctx.commit(
            ev.StepWaiting(pipeline_id=p.id, step=p.step, at_ms=ctx.clock.now_ms(), reason=reason)
        )
        ctx.log.write(p.id, p.step, f"escalated: {reason}")
        title = p.name if title_is_name else f"Pipeline needs attention: {p.name}"
        self.supervision.start_soon_background(notify, title, reason)

    def _notify_done(self, run: AgentRun) -> None:
        if run.definition.notify.on_done:
            p = self.ctx.state.pipelines[run.pipeline_id]
            self._notify(p, run.definition, run.definition.notify.on_done)

    def _notify(self, p: Pipeline, agent: Agent, template: str, *, error: str = "") -> None:
        extra = {"agent": agent.name, "step": p.step, "error": error or p.error or ""}
        message = templates.interpolate(
            template, pipeline_context(p, extra=extra), env=self.ctx.env
        )
        self.supervision.start_soon_background(notify, agent.name, message)

    # -- from outside: signals, hooks, resume, timers ----------------------------------------------

    def resolve(self, given: str) -> tuple[Pipeline, str]:
        """An agent id (or unique prefix), or a pipeline id/prefix → (pipeline, agent id) of the
        pipeline's latest agent.

        Raises:
            NotFoundError: nothing matches.
        """
        if not given.strip():
            raise UsageError("an agent id (or pipeline id) is required")
        state = self.ctx.state
        matches = {
            rec.agent_id: p
            for p in state.pipelines.values()
            if (rec := p.current_record()) is not None
            and rec.agent_id
            and rec.agent_id.startswith(given)
        }
        if len(matches) > 1:
            raise UsageError(f"agent id prefix '{given}' is ambiguous ({len(matches)} agents)")
        for agent_id, p in matches.items():
            return p, agent_id
        found = state.get_pipeline(given)
        if found is not None:
            for rec in reversed(found.step_history):
                if rec.agent_id:
                    return found, rec.agent_id
        raise NotFoundError(f"Agent not found: {given}")

    async def signal(self, agent_id: str, kind: str, message: str | None) -> None:
        """``oj emit agent:signal``: durable, then acted on (also without a watcher: an escalated
        step after a restart)."""
        ctx = self.ctx
        p = ctx.state.pipeline_for_agent(agent_id)
        if p is None:
            raise NotFoundError(f"Agent not found: {agent_id}")
        await ctx.commit(ev.AgentSignal(agent_id=agent_id, kind=kind, message=message))
        if self.deliver(agent_id, SignalMsg(kind, message)):
            return
        if kind == "complete":
            if p.session_id:
                await self._end_session(p.session_id)
            ctx.log.write(p.id, p.step, "agent:signal complete")
            decision = await commit_outcome(ctx, p, Succeeded())
            self.supervision.spawn(p.id, rerun=decision.rerun, prestarted=decision.prestarted)
        else:
            reason = message or "Agent requested escalation"
            await ctx.commit(
                ev.StepWaiting(
                    pipeline_id=p.id, step=p.step, at_ms=ctx.clock.now_ms(), reason=reason
                )
            )

    async def hook(self, agent_id: str, trigger: str, detail: str | None) -> None:
        """``oj emit agent:idle|agent:prompt`` (Claude's hooks): ignored once the step has a
        signal, or when no watcher runs for the agent."""
        p = self.ctx.state.pipeline_for_agent(agent_id)
        if p is None:
            raise NotFoundError(f"Agent not found: {agent_id}")
        if trigger == "idle":
            await self.ctx.commit(ev.AgentIdle(agent_id=agent_id))
        else:
            await self.ctx.commit(ev.AgentPrompt(agent_id=agent_id, prompt_type=detail or "other"))
        if p.agent_signal is None:
            self.deliver(agent_id, HookMsg(trigger, detail))

    async def send(self, agent_id: str, text: str) -> str:
        """``oj agent send``: type ``text`` + Enter into the agent's pane; returns the session.
        The input is recorded only once it reached a live pane."""
        p = self.ctx.state.pipeline_for_agent(agent_id)
        session = p.session_id if p is not None else None
        if session is None:
            raise NotFoundError(f"Agent not found: {agent_id}")
        await self.send_to_session(session, text)
        await self.ctx.commit(ev.AgentInput(agent_id=agent_id, input=text))
        return session

    async def send_to_session(self, session: str, text: str) -> None:
        """Type into a session whose agent still runs.

        Raises:
            NotFoundError: no such tmux session.
            OjError: the session is there but its agent's process has exited (typing into a
                dead pane would be lost without a word).
        """
        _taken, panes = await self.monitor.snapshot(0)
        pane = (panes or {}).get(session)
        if panes is not None and pane is None:
            raise NotFoundError(f"Session not found: {session}")
        if pane is not None and pane.dead:
            raise OjError(f"agent in session {session} is not running (its process exited)")
        try:
            await self.tmux.send_text(session, text)
        except TmuxError:
            raise NotFoundError(f"Session not found: {session}") from None

    async def peek(self, session: str, *, color: bool = False) -> str:
        try:
            return await self.tmux.capture(session, lines=40, color=color)
        except TmuxError:
            raise NotFoundError(f"Session not found: {session}") from None
        except OSError as exc:
            raise OjError(f"failed to run tmux: {exc}") from None

    def resume(self, p: Pipeline, message: str | None) -> None:
        """After ``oj pipeline resume`` committed: the message goes to the running watcher, or
        waits for the step's next start."""
        if not message or self.agent_definition(p) is None:
            return
        run = self.live_for_pipeline(p.id)
        if run is not None:
            self.deliver(run.agent_id, ResumeMsg(message))
        else:
            self.pending_resume[p.id] = message

    async def on_cooldown_timer(self, fired: FiredTimer) -> None:
        key = fired.key
        assert isinstance(key, CooldownTimer)
        run = self.live_for_pipeline(key.pipeline_id)
        if run is not None:
            self.deliver(run.agent_id, CooldownMsg(key.trigger))

    async def kill_all(self) -> int:
        """``oj daemon stop --kill``: end every session the state knows."""
        killed = 0
        for session in list(self.ctx.state.sessions):
            try:
                if await self.tmux.kill_session(session):
                    killed += 1
            except OSError as exc:
                log.warning("cannot kill session %s: %s", session, exc)
                continue
            await self.ctx.commit(ev.SessionDeleted(id=session))
        return killed


def exit_status_path(state_dir: Path, agent_id: str) -> Path:
    return paths.agents_dir(state_dir) / agent_id / "exit"


def _read_status(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.lstrip("-").isdigit() else None


def _trigger_text(trigger: Trigger) -> str:
    if trigger.kind == "idle":
        return "agent idle"
    if trigger.kind == "prompt":
        return f"agent prompt: {trigger.detail or 'other'}"
    return trigger.detail or trigger.kind
