"""The runtime: every pipeline is one trio task, driving its steps through durable state.

Each pipeline task is a small state machine over the *durable* pipeline record, so the same
code serves a fresh run and a restart after a crash:

====================  ==========================================================================
record says           the task does
====================  ==========================================================================
terminal              finish: log, delete an ephemeral workspace after success, notify; stop
``Pending``           start the step (``step:started`` is durable *before* the spawn), run it
``Running``           the exit was never recorded (daemon died): kill what is left of the step's
                      process group, record ``interrupted: …`` and route through ``on_fail``
``Completed``         the step succeeded but the transition was not recorded: advance
``Failed``            the step failed but the transition was not recorded: route the failure
``Waiting``           nothing (an escalated step waits for a human: ``oj pipeline resume``)
====================  ==========================================================================

Cancelling a pipeline cancels the cancel scope around its running step; the process adapter
kills the step's whole process group (SIGTERM, grace, SIGKILL) before the task routes through
``on_cancel``. A cleanup step reached through ``on_cancel`` is not cancellable again.

Graceful stop (:meth:`Runtime.drain`): no new steps start; running steps get a grace period;
what still runs afterwards is killed and recorded as interrupted (routing happens at the next
start, from the durable ``Failed`` status).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from . import events as ev
from . import paths, protocol, views
from .adapters.notify import notify
from .adapters.process import (
    ProcessInfo,
    ProcessSpawnError,
    raise_fd_limit,
    run_shell,
    terminate_orphans,
)
from .adapters.workspace import remove_workspace
from .errors import NotFoundError, OjError
from .pipeline_log import PipelineLog, read_tail
from .pipeline_setup import (
    find_step,
    now_ms,
    prepare_pipeline,
    shell_command_runbook,
    template_context,
)
from .runbook import templates
from .runbook.model import Pipeline as PipelineDef
from .runbook.model import RunAgent, Runbook, RunPipeline, RunShell, Step, Transition
from .settings import env_seconds
from .state import MaterializedState, Pipeline, StepStatus
from .store import Store

log = logging.getLogger("oj.runtime")

INTERRUPTED = "interrupted: daemon stopped while step was running"
#: Seconds a cancel request waits for the cancellation to become durable before answering.
CANCEL_REPLY_WAIT = 2.0
TERMINAL_NAMES = ("done", "failed", "cancelled")

RequestHandler = Callable[[protocol.Message], Awaitable[protocol.Message]]


@attrs.define
class _Task:
    """What the runtime knows about a live pipeline task (in memory only)."""

    scope: trio.CancelScope | None = None
    cancel_requested: bool = False
    interrupted: bool = False
    #: The step whose ``step:started`` went out with the transition into it (one commit instead
    #: of two per step); the task must run it rather than treat it as interrupted.
    prestarted: str | None = None
    idle: trio.Event = attrs.Factory(trio.Event)


class Runtime:
    """Owns the pipeline nursery and every request that creates or changes pipelines."""

    def __init__(self, store: Store, state_dir: Path, env: dict[str, str] | None = None) -> None:
        self.store = store
        self.state_dir = state_dir
        self.env = dict(os.environ if env is None else env)
        self.log = PipelineLog.for_state_dir(state_dir)
        self.workspaces_dir = paths.workspaces_dir(state_dir)
        self.step_grace = env_seconds("OJ_STEP_KILL_GRACE_MS", 5000, self.env)
        self._nursery: trio.Nursery | None = None
        self._tasks: dict[str, _Task] = {}
        self._runbooks: dict[str, Runbook] = {}
        self._digests: dict[int, tuple[Runbook, str]] = {}
        self._shell_runbooks: dict[tuple[int, str, str], tuple[Runbook, Runbook]] = {}
        self._draining = False
        #: Runbook loading goes through one thread at a time: the loader caches by file stamp,
        #: and a burst of requests on a cold cache would otherwise parse the same file (and
        #: build the HCL parser) once per request, all at once.
        self._load_lock = trio.Lock()

    @property
    def state(self) -> MaterializedState:
        return self.store.state

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Each running step holds up to three descriptors; 1,000 concurrent steps need more
        # than the usual soft limit of 1,024.
        raise_fd_limit()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for pipeline in list(self.state.pipelines.values()):
                if not pipeline.terminal and pipeline.step_status != StepStatus.WAITING:
                    self._spawn(pipeline.id)
            task_status.started()
            await trio.sleep_forever()

    def _spawn(self, pipeline_id: str, *, rerun: bool = False) -> None:
        if pipeline_id in self._tasks or self._nursery is None or self._draining:
            return
        task = _Task()
        self._tasks[pipeline_id] = task
        self._nursery.start_soon(
            self._drive, pipeline_id, task, rerun, name=f"pipeline {pipeline_id[:12]}"
        )

    async def drain(self, grace: float, *, kill_sessions: bool = False) -> None:
        """Stop starting steps, let running ones finish for ``grace`` s, interrupt the rest."""
        self._draining = True
        with trio.move_on_after(grace):
            while self._tasks:
                await next(iter(self._tasks.values())).idle.wait()
        for task in list(self._tasks.values()):
            task.interrupted = True
            if task.scope is not None:
                task.scope.cancel()
        with trio.move_on_after(self.step_grace + 5):
            while self._tasks:
                await next(iter(self._tasks.values())).idle.wait()
        self.log.close_all()
        if kill_sessions:
            await self._kill_sessions()

    async def _kill_sessions(self) -> None:
        """`oj daemon stop --kill`: end every tmux session the state knows (agents), best effort."""
        killed = 0
        for session_id in list(self.state.sessions):
            try:
                result = await trio.run_process(
                    ["tmux", "kill-session", "-t", session_id],
                    check=False,
                    capture_stdout=True,
                    capture_stderr=True,
                )
            except OSError as exc:
                log.warning("cannot kill session %s: %s", session_id, exc)
                continue
            if result.returncode == 0:
                killed += 1
            await self._commit(ev.SessionDeleted(id=session_id))
        if killed:
            log.info("killed %d session(s) on shutdown", killed)

    def abort_drain(self) -> None:
        """Second signal: stop waiting for steps to finish."""
        self._draining = True
        for task in list(self._tasks.values()):
            task.interrupted = True
            if task.scope is not None:
                task.scope.cancel()

    # -- the pipeline task ---------------------------------------------------------------------

    async def _drive(self, pipeline_id: str, task: _Task, rerun: bool) -> None:
        try:
            while True:
                p = self.state.pipelines.get(pipeline_id)
                if p is None:
                    return
                if p.terminal:
                    await self._finish(p)
                    return
                if self._draining and task.prestarted != p.step:
                    # A step whose start went out with its transition is already running as far
                    # as the record says: it gets the drain's grace like any running step.
                    return
                if rerun or p.step_status == StepStatus.PENDING:
                    rerun = False
                    await self._run_step(p, task)
                elif p.step_status == StepStatus.RUNNING:
                    if task.prestarted == p.step:
                        await self._run_step(p, task)
                    else:
                        await self._recover_interrupted(p)
                elif p.step_status == StepStatus.COMPLETED:
                    await self._advance(p)
                elif p.step_status == StepStatus.FAILED:
                    await self._fail(p, p.error or "step failed")
                else:  # Waiting: a human decides
                    return
        except Exception as exc:
            # A bug or an unreadable runbook record: fail the pipeline visibly (not through
            # on_fail, which would run the same broken code again) and keep the daemon up.
            log.exception("pipeline %s: runtime error", pipeline_id)
            p = self.state.pipelines.get(pipeline_id)
            if p is not None and not p.terminal:
                error = f"internal error: {type(exc).__name__}: {exc}"
                with contextlib.suppress(Exception):
                    await self._commit(
                        ev.StepFailed(pipeline_id=p.id, step=p.step, error=error, at_ms=now_ms()),
                        ev.PipelineAdvanced(id=p.id, step="failed", at_ms=now_ms(), terminal=True),
                    )
        finally:
            self._tasks.pop(pipeline_id, None)
            task.idle.set()

    async def _commit(self, *events: ev.EventBase) -> None:
        await self.store.commit(*events)

    def runbook_for(self, p: Pipeline) -> Runbook:
        runbook = self._runbooks.get(p.runbook_hash)
        if runbook is None:
            from .runbook import runbook_from_json

            stored = self.state.runbooks.get(p.runbook_hash)
            if stored is None:
                raise OjError(
                    f"runbook {p.runbook_hash[:12]} of pipeline {p.id[:12]} is not in state"
                )
            runbook = runbook_from_json(stored.data)
            self._runbooks[p.runbook_hash] = runbook
        return runbook

    def pipeline_def(self, p: Pipeline) -> PipelineDef:
        definition = self.runbook_for(p).pipelines.get(p.kind)
        if definition is None:
            raise OjError(f"pipeline '{p.kind}' is not defined in its runbook")
        return definition

    def context(self, p: Pipeline, *, extra: dict[str, str] | None = None) -> dict[str, str]:
        return template_context(
            p.vars, pipeline_id=p.id, name=p.name, workspace=p.workspace_path or p.cwd, extra=extra
        )

    def step_env(self, p: Pipeline) -> dict[str, str]:
        env = dict(self.env)
        if p.namespace:
            env["OJ_NAMESPACE"] = p.namespace
        env["OJ_PIPELINE_ID"] = p.id
        env["OJ_STEP"] = p.step
        env["OJ_STATE_DIR"] = str(self.state_dir)
        return env

    async def _run_step(self, p: Pipeline, task: _Task) -> None:
        definition = self.pipeline_def(p)
        step = find_step(definition, p.step)
        if step is None:
            await self._fail(p, f"step not found: {p.step}")
            return
        if not isinstance(step.run, RunShell):
            kind = "agent" if isinstance(step.run, RunAgent) else "nested pipeline"
            target = step.run.agent if isinstance(step.run, RunAgent) else step.run.pipeline  # type: ignore[union-attr]
            await self._commit(ev.StepStarted(pipeline_id=p.id, step=p.step, at_ms=now_ms()))
            self.log.write(p.id, p.step, "step started")
            await self._fail(
                p, f"{kind} steps are not supported by this daemon yet: {kind} '{target}'"
            )
            return
        if task.prestarted != p.step or p.step_status != StepStatus.RUNNING:
            await self._commit(ev.StepStarted(pipeline_id=p.id, step=p.step, at_ms=now_ms()))
        task.prestarted = None
        self.log.write(p.id, p.step, "step started")
        cwd = Path(p.workspace_path or p.cwd)
        command = templates.interpolate_shell(step.run.command, self.context(p), env=self.env)
        self.log.write(p.id, p.step, f"shell (cwd: {cwd}): {command}")
        step_name = p.step

        async def record_spawn(info: ProcessInfo) -> None:
            await self._commit(
                ev.ShellSpawned(
                    pipeline_id=p.id,
                    step=step_name,
                    pid=info.pid,
                    pgid=info.pgid,
                    start_ticks=info.start_ticks,
                )
            )

        code: int | None = None
        spawn_error: str | None = None
        with trio.CancelScope() as scope:
            task.scope = scope
            if task.cancel_requested or task.interrupted:
                scope.cancel()
            try:
                code = await run_shell(
                    command,
                    cwd=cwd,
                    env=self.step_env(p),
                    on_output=self.log.output_callback(p.id, step_name),
                    on_spawn=record_spawn,
                    grace=self.step_grace,
                )
            except ProcessSpawnError as exc:
                spawn_error = str(exc)
        task.scope = None
        if scope.cancelled_caught:
            if task.interrupted:
                self.log.write(p.id, step_name, "shell interrupted: daemon stopping")
                await self._commit(
                    ev.StepFailed(
                        pipeline_id=p.id, step=step_name, error=INTERRUPTED, at_ms=now_ms()
                    )
                )
                return
            task.cancel_requested = False
            await self._cancel_route(p)
            return
        if spawn_error is not None:
            self.log.write(p.id, step_name, f"shell failed to start: {spawn_error}")
            await self._fail(p, spawn_error)
            return
        assert code is not None
        exit_code = code if code >= 0 else -1
        exited = ev.ShellExited(
            pipeline_id=p.id, step=step_name, exit_code=exit_code, at_ms=now_ms()
        )
        # The exit and the transition it causes are one durable batch.
        if exit_code == 0:
            self.log.write(p.id, step_name, "shell completed (exit 0)")
            await self._advance(p, before=[exited])
        else:
            self.log.write(p.id, step_name, f"shell failed (exit {exit_code})")
            await self._fail(p, f"shell exited with code {exit_code}", before=[exited])

    async def _recover_interrupted(self, p: Pipeline) -> None:
        """A step whose exit was never recorded: kill leftovers, then fail it as interrupted."""
        found = await terminate_orphans(p.id, p.step, grace=self.step_grace)
        if found:
            self.log.write(
                p.id, p.step, f"killed {found} leftover process(es) of the interrupted step"
            )
        self.log.write(p.id, p.step, INTERRUPTED)
        await self._commit(
            ev.StepFailed(pipeline_id=p.id, step=p.step, error=INTERRUPTED, at_ms=now_ms())
        )

    # -- transitions (reference §2.5, SPEC §4.5) -------------------------------------------------

    def _target_events(
        self, p: Pipeline, definition: PipelineDef, target: str
    ) -> list[ev.EventBase]:
        """Events that move ``p`` to ``target``: a step, or the end of the pipeline."""
        at = now_ms()
        if find_step(definition, target) is not None:
            advanced = ev.PipelineAdvanced(id=p.id, step=target, at_ms=at, terminal=False)
            task = self._tasks.get(p.id)
            if task is None or self._draining or task.cancel_requested or task.interrupted:
                return [advanced]
            task.prestarted = target
            return [advanced, ev.StepStarted(pipeline_id=p.id, step=target, at_ms=at)]
        if target in TERMINAL_NAMES:
            return [ev.PipelineAdvanced(id=p.id, step=target, at_ms=at, terminal=True)]
        raise OjError(f"transition to unknown step '{target}'")

    async def _goto(
        self, p: Pipeline, target: str, *, before: list[ev.EventBase], message: str
    ) -> None:
        definition = self.pipeline_def(p)
        if target == p.step and find_step(definition, target) is not None:
            # Re-running the same step: history gets a new record when it starts again.
            self.log.write(p.id, p.step, message)
            await self._commit(*before)
            await self._rerun_same(p)
            return
        self.log.write(p.id, p.step, message)
        await self._commit(*before, *self._target_events(p, definition, target))

    async def _rerun_same(self, p: Pipeline) -> None:
        task = self._tasks.get(p.id)
        if task is not None:
            await self._run_step(p, task)

    async def _advance(self, p: Pipeline, *, before: Sequence[ev.EventBase] = ()) -> None:
        definition = self.pipeline_def(p)
        step = find_step(definition, p.step)
        at = now_ms()
        if step is not None and step.on_done is not None:
            target = step.on_done.step
            await self._goto(p, target, before=[*before], message=f"advancing to {target}")
            return
        if definition.on_done is not None and p.step != definition.on_done.step:
            target = definition.on_done.step
            await self._goto(
                p, target, before=[*before], message=f"pipeline on_done: advancing to {target}"
            )
            return
        final = "cancelled" if p.cancelling else "done"
        await self._commit(
            *before, ev.PipelineAdvanced(id=p.id, step=final, at_ms=at, terminal=True)
        )

    def _on_fail_target(
        self, p: Pipeline, definition: PipelineDef, step: Step | None
    ) -> tuple[Transition | None, str]:
        if step is not None and step.on_fail is not None:
            transition = step.on_fail
            key = f"on_fail:{p.step}"
            used = self._attempts(p, key)
            if transition.attempts is None or used < transition.attempts:
                return transition, key
        if definition.on_fail is not None and p.step != definition.on_fail.step:
            return definition.on_fail, ""
        return None, ""

    def _attempts(self, p: Pipeline, key: str) -> int:
        raw = p.vars.get(f"oj.attempts.{key}")
        return int(raw) if raw and raw.isdigit() else 0

    async def _fail(self, p: Pipeline, error: str, *, before: Sequence[ev.EventBase] = ()) -> None:
        definition = self.pipeline_def(p)
        step = find_step(definition, p.step)
        at = now_ms()
        failed = ev.StepFailed(pipeline_id=p.id, step=p.step, error=error, at_ms=at)
        transition, key = self._on_fail_target(p, definition, step)
        if transition is not None:
            events: list[ev.EventBase] = [*before, failed]
            if key:
                # Counted in vars so the count survives restarts and resets on a manual resume.
                count = self._attempts(p, key) + 1
                events.append(ev.PipelineUpdated(id=p.id, vars={f"oj.attempts.{key}": str(count)}))
            label = "on_fail" if key else "pipeline on_fail"
            await self._goto(
                p,
                transition.step,
                before=events,
                message=f"{label}: advancing to {transition.step}",
            )
            return
        self.log.write(p.id, p.step, f"pipeline failed: {error}")
        await self._commit(
            *before, failed, ev.PipelineAdvanced(id=p.id, step="failed", at_ms=at, terminal=True)
        )

    async def _cancel_route(self, p: Pipeline) -> None:
        definition = self.pipeline_def(p)
        step = find_step(definition, p.step)
        at = now_ms()
        failed = ev.StepFailed(pipeline_id=p.id, step=p.step, error="cancelled", at_ms=at)
        target: str | None = None
        if step is not None and step.on_cancel is not None:
            target = step.on_cancel.step
        elif definition.on_cancel is not None and p.step != definition.on_cancel.step:
            target = definition.on_cancel.step
        if target is not None:
            await self._goto(
                p,
                target,
                before=[ev.PipelineCancelling(id=p.id), failed],
                message=f"cancelled: running {target}",
            )
            return
        self.log.write(p.id, p.step, "pipeline cancelled")
        await self._commit(
            failed, ev.PipelineAdvanced(id=p.id, step="cancelled", at_ms=at, terminal=True)
        )

    async def _finish(self, p: Pipeline) -> None:
        """Side effects of a terminal pipeline: log, ephemeral workspace cleanup, notification."""
        definition: PipelineDef | None
        try:
            definition = self.pipeline_def(p)
        except OjError:
            definition = None
        context = self.context(p, extra={"error": p.error or ""})
        ending = f": {p.error}" if p.step != "done" and p.error else ""
        log.info("pipeline %s (%s) ended %s%s", p.id[:12], p.name, p.step, ending)
        if p.step == "done":
            self.log.write(p.id, p.step, "pipeline completed")
            if definition is not None and definition.workspace == "ephemeral" and p.workspace_id:
                await self._delete_workspace(p.workspace_id)
            message = definition.notify.on_done if definition is not None else None
        elif p.step == "cancelled":
            message = None
        else:
            message = definition.notify.on_fail if definition is not None else None
        self.log.close(p.id)
        if message:
            await notify(p.name, templates.interpolate(message, context, env=self.env))

    # -- creating pipelines (RunCommand) ---------------------------------------------------------

    def request_handlers(self) -> dict[str, RequestHandler]:
        return {
            "RunCommand": self._run_command,
            "ListCommands": self._list_commands,
            "PipelineCancel": self._pipeline_cancel,
            "PipelineResume": self._pipeline_resume,
            "PipelinePrune": self._pipeline_prune,
            "WorkspaceDrop": self._workspace_drop,
            "WorkspaceDropFailed": self._workspace_drop,
            "WorkspaceDropAll": self._workspace_drop,
            "WorkspacePrune": self._workspace_prune,
        }

    async def _list_commands(self, request: protocol.Message) -> protocol.Message:
        from .runbook import format_command_listing, list_commands

        root = Path(request["project_root"])
        async with self._load_lock:
            commands = await trio.to_thread.run_sync(list_commands, root)
        usage = format_command_listing(commands)
        return {"type": "CommandList", "usage": usage}

    async def _run_command(self, request: protocol.Message) -> protocol.Message:
        from .runbook import find_command, format_command_help
        from .runbook.argspec import map_args, split_args, validate_args

        root = Path(request["project_root"])
        name = request["command"]
        async with self._load_lock:
            runbook, command = await trio.to_thread.run_sync(
                find_command, root, name, request.get("runbook")
            )
        if request.get("help"):
            return {"type": "CommandHelp", "text": format_command_help(runbook, command)}
        split = split_args(command.args, list(request.get("args") or []))
        named = {
            **split.named,
            **{str(k): str(v) for k, v in (request.get("named_args") or {}).items()},
        }
        validate_args(command.args, split.positionals, named, command.defaults)
        args = map_args(command.args, split.positionals, named, command.defaults)

        pipeline_id = str(uuid.uuid4())
        namespace = request["namespace"]
        invoke_dir = request["invoke_dir"]
        if isinstance(command.run, RunShell):
            runbook = self._shell_runbook(runbook, command, str(root))
            kind = command.name
        elif isinstance(command.run, RunPipeline):
            kind = command.run.pipeline
        else:
            raise OjError(
                f"invalid run directive for command: agent ({command.run.agent}): agent commands are not supported yet"
            )
        events = self._load_runbook_events(runbook)
        events.append(
            ev.CommandRun(
                pipeline_id=pipeline_id,
                pipeline_name=kind,
                project_root=str(root),
                invoke_dir=invoke_dir,
                namespace=namespace,
                command=name,
                args=args,
            )
        )
        created = await prepare_pipeline(
            runbook,
            kind,
            pipeline_id=pipeline_id,
            namespace=namespace,
            vars={**args, "invoke.dir": invoke_dir},
            fallback_name=args.get("name") or pipeline_id,
            invoke_dir=invoke_dir,
            workspaces_dir=self.workspaces_dir,
            env=self.env,
            runbook_hash=self._digest(runbook),
        )
        await self._create(events + created)
        return {"type": "CommandStarted", "pipeline_id": pipeline_id, "pipeline_name": kind}

    def _digest(self, runbook: Runbook) -> str:
        """The runbook's content hash, memoised per object: the loader hands out the same
        object while the file is unchanged, and hashing costs a full serialisation."""
        from .runbook import runbook_hash

        hit = self._digests.get(id(runbook))
        if hit is not None and hit[0] is runbook:
            return hit[1]
        if len(self._digests) > 256:
            self._digests.clear()
        digest = runbook_hash(runbook)
        self._digests[id(runbook)] = (runbook, digest)
        self._runbooks.setdefault(digest, runbook)
        return digest

    def _shell_runbook(self, runbook: Runbook, command: Any, cwd: str) -> Runbook:
        key = (id(runbook), command.name, cwd)
        hit = self._shell_runbooks.get(key)
        if hit is not None and hit[0] is runbook:
            return hit[1]
        if len(self._shell_runbooks) > 256:
            self._shell_runbooks.clear()
        synthesized = shell_command_runbook(runbook, command.name, command.run, cwd=cwd)
        self._shell_runbooks[key] = (runbook, synthesized)
        return synthesized

    def _load_runbook_events(self, runbook: Runbook) -> list[ev.EventBase]:
        from .runbook import runbook_to_json

        digest = self._digest(runbook)
        if digest in self.state.runbooks:
            return []
        return [ev.RunbookLoaded(hash=digest, version=1, runbook=runbook_to_json(runbook))]

    async def _create(self, events: list[ev.EventBase]) -> None:
        """Commit creation events, make the workspace, start the task."""
        await self._commit(*events)
        for event in events:
            if isinstance(event, ev.PipelineCreated):
                log.info("pipeline %s (%s) created, kind %s", event.id[:12], event.name, event.kind)
                self.log.write(event.id, "init", "pipeline created")
        for event in events:
            if isinstance(event, ev.WorkspaceCreated):
                try:
                    Path(event.path).mkdir(parents=True, exist_ok=True, mode=0o700)
                except OSError as exc:
                    await self._commit(ev.WorkspaceFailed(id=event.id, reason=str(exc)))
                    p = self.state.pipelines[event.owner or ""]
                    await self._fail(p, f"workspace {event.id}: {exc.strerror or exc}")
                else:
                    await self._commit(ev.WorkspaceReady(id=event.id))
        for event in events:
            if isinstance(event, ev.PipelineCreated):
                created = self.state.pipelines.get(event.id)
                if created is not None:
                    definition = self.pipeline_def(created)
                    if definition.notify.on_start:
                        message = templates.interpolate(
                            definition.notify.on_start, self.context(created), env=self.env
                        )
                        self._nursery_soon(notify, created.name, message)
                    self._spawn(event.id)

    async def _wait_changed(self, after_seq: int, timeout: float) -> None:
        with trio.move_on_after(timeout):
            await self.store.wait_for_change(after_seq)

    def _nursery_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    # -- cancel / resume / prune -----------------------------------------------------------------

    async def _pipeline_cancel(self, request: protocol.Message) -> protocol.Message:
        cancelled: list[str] = []
        terminal: list[str] = []
        missing: list[str] = []
        for given in request["ids"]:
            p = self.state.get_pipeline(str(given))
            if p is None:
                missing.append(given)
            elif p.terminal:
                terminal.append(given)
            else:
                await self.cancel(p)
                cancelled.append(given)
        return {
            "type": "PipelinesCancelled",
            "cancelled": cancelled,
            "already_terminal": terminal,
            "not_found": missing,
        }

    async def cancel(self, p: Pipeline) -> None:
        """Cancel and wait until the cancellation is durable (bounded by the kill grace)."""
        if p.cancelling:
            return
        task = self._tasks.get(p.id)
        if task is None:
            await self._cancel_route(p)
            self._spawn(p.id)
            return
        task.cancel_requested = True
        if task.scope is not None:
            task.scope.cancel()
        # Usually the group dies at SIGTERM and the cancellation is durable in milliseconds; a
        # step that ignores SIGTERM holds out for the kill grace, longer than a client waits for
        # an answer, so after CANCEL_REPLY_WAIT the reply goes out while the kill proceeds.
        with trio.move_on_after(CANCEL_REPLY_WAIT):
            while True:
                current = self.state.pipelines.get(p.id)
                if current is None or current.terminal or current.cancelling:
                    return
                await self._wait_changed(self.store.last_seq, 1.0)

    async def _pipeline_resume(self, request: protocol.Message) -> protocol.Message:
        p = self.state.get_pipeline(request["id"])
        if p is None:
            raise NotFoundError(f"pipeline not found: {request['id']}")
        if p.id in self._tasks and p.step_status in (StepStatus.RUNNING, StepStatus.PENDING):
            raise OjError(f"pipeline {p.id[:12]} is running step '{p.step}'; nothing to resume")
        if p.terminal and p.step in ("done", "cancelled"):
            state = "completed" if p.step == "done" else "was cancelled"
            raise OjError(
                f"pipeline {p.id[:12]} {state}; only failed or waiting pipelines can be resumed"
            )
        definition = self.pipeline_def(p)
        if p.terminal:
            target = resume_target(p, definition)
            if target is None:
                raise OjError(f"pipeline {p.id[:12]} has no failed step to resume")
        else:
            target = p.step
        step = find_step(definition, target)
        if step is None:
            raise OjError(f"step not found: {target}")
        if isinstance(step.run, RunAgent) and not request.get("message"):
            raise OjError(
                "agent steps require --message for resume. Example:\n"
                f'  oj pipeline resume {p.id[:12]} -m "I fixed the import, try again"'
            )
        events: list[ev.EventBase] = [
            ev.PipelineResume(id=p.id, message=request.get("message"), vars=request.get("vars"))
        ]
        reset = {k: "0" for k in p.vars if k.startswith("oj.attempts.")}
        merged = {**reset, **{str(k): str(v) for k, v in (request.get("vars") or {}).items()}}
        if merged:
            events.append(ev.PipelineUpdated(id=p.id, vars=merged))
        rerun = True
        if p.terminal:
            events.append(ev.PipelineAdvanced(id=p.id, step=target, at_ms=now_ms(), terminal=False))
            rerun = False
        await self._commit(*events)
        self.log.write(p.id, target, "resumed")
        self._spawn(p.id, rerun=rerun)
        return {"type": "Ok", "id": p.id}

    async def _pipeline_prune(self, request: protocol.Message) -> protocol.Message:
        include_all = bool(request.get("all"))
        failed_only = bool(request.get("failed"))
        dry_run = bool(request.get("dry_run"))
        cutoff = now_ms() - 12 * 3600 * 1000
        pruned: list[dict[str, str]] = []
        skipped = 0
        for p in list(self.state.pipelines.values()):
            if not p.terminal or (failed_only and p.step != "failed"):
                skipped += 1
                continue
            old_enough = (
                include_all or p.step == "cancelled" or (failed_only and p.step == "failed")
            )
            if not old_enough and p.created_at_ms > cutoff:
                skipped += 1
                continue
            pruned.append({"id": p.id, "name": p.name, "step": p.step})
        if not dry_run and pruned:
            await self._commit(*[ev.PipelineDeleted(id=e["id"]) for e in pruned])
            for entry in pruned:
                self.log.close(entry["id"])
                for path in (
                    self.log.path(entry["id"]),
                    self.log.logs_dir / f"{entry['id']}.crumb.json",
                ):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        return {"type": "PipelinesPruned", "pruned": pruned, "skipped": skipped}

    # -- workspaces ----------------------------------------------------------------------------

    async def _delete_workspace(self, ws_id: str) -> dict[str, Any] | None:
        ws = self.state.workspaces.get(ws_id)
        if ws is None:
            return None
        path = Path(ws.path)
        await trio.to_thread.run_sync(remove_workspace, path)
        await self._commit(ev.WorkspaceDeleted(id=ws_id))
        return {"id": ws_id, "path": str(path), "branch": ws.branch}

    def _workspace_busy(self, ws_id: str) -> bool:
        ws = self.state.workspaces.get(ws_id)
        owner = self.state.pipelines.get(ws.owner) if ws is not None and ws.owner else None
        return owner is not None and not owner.terminal

    async def _workspace_drop(self, request: protocol.Message) -> protocol.Message:
        workspaces = self.state.workspaces
        if request["type"] == "WorkspaceDrop":
            given = request["id"]
            matches = [w for w in workspaces if w == given] or [
                w for w in workspaces if w.startswith(given)
            ]
            if not matches:
                raise NotFoundError(f"workspace not found: {given}")
            if len(matches) > 1:
                raise OjError(f"ambiguous workspace ID '{given}': {len(matches)} matches")
            targets = matches
        elif request["type"] == "WorkspaceDropFailed":
            targets = [w for w, ws in workspaces.items() if ws.status.startswith("failed")]
        else:
            targets = list(workspaces)
        dropped = []
        for ws_id in targets:
            if self._workspace_busy(ws_id):
                if request["type"] == "WorkspaceDrop":
                    raise OjError(
                        f"workspace {ws_id} is in use by a running pipeline; cancel it first"
                    )
                continue
            result = await self._delete_workspace(ws_id)
            if result is not None:
                dropped.append(result)
        return {"type": "WorkspacesDropped", "dropped": dropped}

    async def _workspace_prune(self, request: protocol.Message) -> protocol.Message:
        """Delete workspaces whose pipeline ended (or is gone), older than 12 h unless --all."""
        include_all = bool(request.get("all"))
        dry_run = bool(request.get("dry_run"))
        cutoff = now_ms() - 12 * 3600 * 1000
        pruned = []
        skipped = 0
        for ws_id, ws in list(self.state.workspaces.items()):
            if self._workspace_busy(ws_id) or (not include_all and ws.created_at_ms > cutoff):
                skipped += 1
                continue
            pruned.append({"id": ws_id, "path": ws.path, "branch": ws.branch})
            if not dry_run:
                await self._delete_workspace(ws_id)
        return {"type": "WorkspacesPruned", "pruned": pruned, "skipped": skipped}

    # -- queries -------------------------------------------------------------------------------

    async def query(self, query: protocol.Message) -> protocol.Message:
        tag = query["type"]
        if tag == "ListPipelines":
            return {
                "type": "Pipelines",
                "pipelines": [views.pipeline_summary(p) for p in self.state.pipelines.values()],
            }
        if tag == "GetPipeline":
            p = self.state.get_pipeline(query["id"])
            return {
                "type": "Pipeline",
                "pipeline": views.pipeline_detail(p) if p is not None else None,
            }
        if tag == "GetPipelineLogs":
            p = self.state.get_pipeline(query["id"])
            path = self.log.path(p.id if p is not None else query["id"])
            lines = query.get("lines", 50)
            content = await trio.to_thread.run_sync(_tail_or_empty, path, lines)
            size = path.stat().st_size if path.exists() else 0
            return {"type": "PipelineLogs", "log_path": str(path), "lines": content, "size": size}
        if tag == "WaitPipelines":
            after = query.get("after_seq", 0)
            timeout = query.get("timeout_ms", 0) / 1000.0
            if after and self.store.last_seq <= after and timeout > 0:
                await self._wait_changed(after, timeout)
            pipelines = []
            for given in query["ids"]:
                p = self.state.get_pipeline(str(given))
                pipelines.append(views.pipeline_detail(p) if p is not None else None)
            return {"type": "PipelineStates", "seq": self.store.last_seq, "pipelines": pipelines}
        if tag == "ListWorkspaces":
            return {
                "type": "Workspaces",
                "workspaces": [
                    views.workspace_summary(self.state, w) for w in self.state.workspaces.values()
                ],
            }
        if tag == "GetWorkspace":
            ws = self.state.workspaces.get(query["id"])
            return {
                "type": "Workspace",
                "workspace": views.workspace_detail(ws) if ws is not None else None,
            }
        raise OjError(f"unsupported query: {tag}")

    def counts(self) -> dict[str, int]:
        return views.counts(self.state)

    def status_overview(self) -> list[dict[str, Any]]:
        return views.status_overview(self.state, now_ms())


def _tail_or_empty(path: Path, lines: int) -> list[str]:
    try:
        return read_tail(path, lines) if lines else path.read_text("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []


def resume_target(p: Pipeline, definition: PipelineDef) -> str | None:
    """The step a resume of a failed pipeline re-runs: the step whose failure started the
    final failure chain, not the on_fail handler that failed after it.

    Walking back from the last failed record, a failed record that was entered through its
    predecessor's failure routing (step-level or pipeline-level ``on_fail``) hands the blame
    back to that predecessor. Re-running a failed cleanup step would only repeat the cleanup.
    """
    history = p.step_history
    index = max((i for i, r in enumerate(history) if r.outcome == "failed"), default=None)
    if index is None:
        return None
    while index > 0:
        before = history[index - 1]
        if before.outcome != "failed":
            break
        step = find_step(definition, before.name)
        routes = {
            t.step
            for t in (step.on_fail if step is not None else None, definition.on_fail)
            if t is not None
        }
        if history[index].name not in routes:
            break
        index -= 1
    return history[index].name
