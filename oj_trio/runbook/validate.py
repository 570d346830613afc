"""Semantic checks of one runbook (reference §1.13, in its order), after the model is built.

Cross-file references are impossible by design (a command and its pipeline, a worker and its
queue and handler live in one file), so every check looks at one :class:`Runbook` only.
"""

from __future__ import annotations

from .diagnostics import Diagnostics
from .locations import Where
from .model import (
    ActionConfig,
    Agent,
    Pipeline,
    RunAgent,
    Runbook,
    RunPipeline,
    RunShell,
    Transition,
)
from .shell import agent_run_problems, check_shell_syntax
from .templates import template_references

#: trigger → action → reason it is not allowed (reference §1.7).
_NOT_ALLOWED: dict[str, dict[str, str]] = {
    "on_idle": {"recover": "recover is for re-spawning after exit; agent is still running"},
    "on_dead": {"nudge": "nudge sends a message to a running agent; agent has exited"},
    "on_error": {
        "nudge": "nudge sends a message to a running agent; use escalate instead",
        "recover": "recover is for clean exits; use escalate for error handling",
        "done": "done marks success; API errors are not success states",
    },
    "on_prompt": {
        "recover": "recover is for re-spawning after exit; agent is still running",
        "nudge": "nudge sends a message; agent is at a prompt, not idle",
    },
}
_ALLOWED: dict[str, frozenset[str]] = {
    "on_idle": frozenset({"nudge", "done", "fail", "escalate", "gate"}),
    "on_dead": frozenset({"done", "recover", "fail", "escalate", "gate"}),
    "on_error": frozenset({"fail", "escalate", "gate"}),
    "on_prompt": frozenset({"done", "escalate", "fail", "gate"}),
}

_COMMAND_RUN_HINTS: tuple[tuple[str, str], ...] = (
    ("var.", "use ${args.<name>} to reference command arguments"),
    ("input.", "use ${args.<name>} to reference command arguments"),
    ("local.", "${local.*} is only available in pipeline steps"),
    ("step.", "${step.*} is only available in pipeline steps"),
    ("workspace.", "commands have ${workspace} (the execution path), not ${workspace.*}"),
)


def _available(names: list[str], *, sort: bool = True) -> str:
    if not names:
        return "(none)"
    return ", ".join(sorted(names) if sort else names)


def validate_runbook(runbook: Runbook, diag: Diagnostics, *, check_shell: bool = True) -> None:
    """Record every semantic problem of ``runbook`` (and its warnings) in ``diag``."""
    _check_shell_fields(runbook, diag, check_shell)
    _check_queues(runbook, diag)
    _check_workers(runbook, diag)
    _check_crons(runbook, diag)
    _check_actions(runbook, diag)
    for pipeline in runbook.pipelines.values():
        _check_duplicate_steps(pipeline, diag)
    for pipeline in runbook.pipelines.values():
        _check_transitions(pipeline, diag)
    _check_run_references(runbook, diag)
    for pipeline in runbook.pipelines.values():
        _warn_flow(pipeline, diag)


def _step_where(pipeline: Pipeline, index: int) -> Where:
    name = pipeline.steps[index].name
    occurrence = 1 + sum(1 for s in pipeline.steps[:index] if s.name == name)
    return Where("pipeline", pipeline.kind).at_step(index, name or None, occurrence)


def _check_shell_fields(runbook: Runbook, diag: Diagnostics, check_shell: bool) -> None:
    fields: list[tuple[Where, str]] = []
    for command in runbook.commands.values():
        if isinstance(command.run, RunShell):
            where = Where("command", command.name).field("run")
            fields.append((where, command.run.command))
            for ref in template_references(command.run.command):
                for prefix, hint in _COMMAND_RUN_HINTS:
                    if ref.startswith(prefix):
                        diag.error(
                            where,
                            f"template reference ${{{ref}}} is not available in command.run; "
                            f"{hint}",
                        )
    for pipeline in runbook.pipelines.values():
        for index, step in enumerate(pipeline.steps):
            if isinstance(step.run, RunShell):
                fields.append((_step_where(pipeline, index).field("run"), step.run.command))
    for agent in runbook.agents.values():
        where = Where("agent", agent.name)
        fields.append((where.field("run"), agent.run))
        has_prompt = agent.prompt is not None or agent.prompt_file is not None
        if not agent.is_generic:
            for problem in agent_run_problems(agent.run, has_prompt):
                diag.error(where.field("run"), problem)
        for index, prime in enumerate(agent.prime):
            fields.append((where.field("prime", index), prime))
        for trigger, action in _agent_actions(agent):
            if action.run is not None:
                fields.append((where.field(trigger, "run"), action.run))
    for queue in runbook.queues.values():
        for key in ("list", "take"):
            shell: str | None = getattr(queue, key)
            if shell is not None:
                fields.append((Where("queue", queue.name).field(key), shell))
    if not check_shell:
        return
    results = check_shell_syntax([text for _, text in fields])
    for (where, _), syntax_error in zip(fields, results, strict=True):
        if syntax_error is not None:
            diag.error(where, f"invalid shell command: {syntax_error}")


def _agent_actions(agent: Agent) -> list[tuple[str, ActionConfig]]:
    out = [
        ("on_idle", agent.on_idle),
        ("on_dead", agent.on_dead),
        ("on_prompt", agent.on_prompt),
    ]
    out += [("on_error", rule.action) for rule in agent.on_error]
    return out


def _check_queues(runbook: Runbook, diag: Diagnostics) -> None:
    for queue in runbook.queues.values():
        where = Where("queue", queue.name)
        if queue.type == "external":
            for key in ("list", "take"):
                if getattr(queue, key) is None:
                    diag.error(where, f"external queue requires '{key}' field")
            if queue.retry is not None:
                diag.error(where.field("retry"), "external queue must not have 'retry' field")
        else:
            if not queue.vars:
                diag.error(where, "persisted queue requires 'vars' field")
            for key in ("list", "take", "poll"):
                if getattr(queue, key) is not None:
                    diag.error(where.field(key), f"persisted queue must not have '{key}' field")


def _check_workers(runbook: Runbook, diag: Diagnostics) -> None:
    queues = list(runbook.queues)
    pipelines = list(runbook.pipelines)
    for worker in runbook.workers.values():
        where = Where("worker", worker.name)
        if worker.queue and worker.queue not in runbook.queues:
            diag.error(
                where.field("source", "queue"),
                f"references unknown queue '{worker.queue}'; "
                f"available queues: {_available(queues, sort=False)}",
            )
        if worker.pipeline and worker.pipeline not in runbook.pipelines:
            diag.error(
                where.field("handler", "pipeline"),
                f"references unknown pipeline '{worker.pipeline}'; "
                f"available pipelines: {_available(pipelines, sort=False)}",
            )


def _check_crons(runbook: Runbook, diag: Diagnostics) -> None:
    pipelines = list(runbook.pipelines)
    for cron in runbook.crons.values():
        where = Where("cron", cron.name)
        if ":" in cron.name or "/" in cron.name:
            diag.error(where, f"invalid cron name '{cron.name}': it must not contain ':' or '/'")
        if cron.pipeline and cron.pipeline not in runbook.pipelines:
            diag.error(
                where.field("run", "pipeline"),
                f"references unknown pipeline '{cron.pipeline}'; "
                f"available pipelines: {_available(pipelines, sort=False)}",
            )


def _check_actions(runbook: Runbook, diag: Diagnostics) -> None:
    for agent in runbook.agents.values():
        where = Where("agent", agent.name)
        for trigger, action in _agent_actions(agent):
            if action.action in _ALLOWED[trigger]:
                continue
            reason = _NOT_ALLOWED[trigger].get(action.action, "action not allowed for this trigger")
            diag.error(
                where.field(trigger),
                f"action '{action.action}' is not valid for {trigger}: {reason}",
            )


def _check_duplicate_steps(pipeline: Pipeline, diag: Diagnostics) -> None:
    seen: set[str] = set()
    for index, step in enumerate(pipeline.steps):
        if not step.name:
            continue
        if step.name in seen:
            diag.error(_step_where(pipeline, index), f"duplicate step name '{step.name}'")
        seen.add(step.name)


def _step_transitions(pipeline: Pipeline) -> list[tuple[Where, Transition]]:
    out: list[tuple[Where, Transition]] = []
    base = Where("pipeline", pipeline.kind)
    for key in ("on_done", "on_fail", "on_cancel"):
        transition = getattr(pipeline, key)
        if transition is not None:
            out.append((base.field(key), transition))
    for index, step in enumerate(pipeline.steps):
        for key in ("on_done", "on_fail", "on_cancel"):
            transition = getattr(step, key)
            if transition is not None:
                out.append((_step_where(pipeline, index).field(key), transition))
    return out


def _check_transitions(pipeline: Pipeline, diag: Diagnostics) -> None:
    names = [s.name for s in pipeline.steps if s.name]
    for where, transition in _step_transitions(pipeline):
        if transition.step in names or transition.step == "done":
            continue  # a transition to a missing `done` step completes the pipeline (SPEC §4.5)
        diag.error(
            where,
            f"references unknown step '{transition.step}'; available steps: {_available(names)}",
        )


def _check_run_references(runbook: Runbook, diag: Diagnostics) -> None:
    agents = list(runbook.agents)
    pipelines = list(runbook.pipelines)
    for pipeline in runbook.pipelines.values():
        for index, step in enumerate(pipeline.steps):
            where = _step_where(pipeline, index).field("run")
            if isinstance(step.run, RunAgent) and step.run.agent not in runbook.agents:
                diag.error(
                    where,
                    f"references unknown agent '{step.run.agent}'; "
                    f"available agents: {_available(agents)}",
                )
            elif isinstance(step.run, RunPipeline):
                diag.error(where, "nested pipeline steps are not supported")
    for command in runbook.commands.values():
        where = Where("command", command.name).field("run")
        if isinstance(command.run, RunAgent) and command.run.agent not in runbook.agents:
            diag.error(
                where,
                f"references unknown agent '{command.run.agent}'; "
                f"available agents: {_available(agents)}",
            )
        if isinstance(command.run, RunPipeline) and command.run.pipeline not in runbook.pipelines:
            diag.error(
                where,
                f"references unknown pipeline '{command.run.pipeline}'; "
                f"available pipelines: {_available(pipelines)}",
            )


def _warn_flow(pipeline: Pipeline, diag: Diagnostics) -> None:
    """Unreachable steps, and success-path steps that end the pipeline early.

    A step reached only through ``on_fail``/``on_cancel`` is a failure handler: ending the
    pipeline there is its job, so it gets no "no on_done" warning.
    """
    transitions = _step_transitions(pipeline)
    targets = {t.step for _, t in transitions}
    handlers_only = {
        t.step for where, t in transitions if where.fields[-1] in ("on_fail", "on_cancel")
    } - {t.step for where, t in transitions if where.fields[-1] == "on_done"}
    last = len(pipeline.steps) - 1
    for index, step in enumerate(pipeline.steps):
        where = _step_where(pipeline, index)
        if index > 0 and step.name not in targets:
            diag.warn(where, f"step '{step.name}' is unreachable (no transition leads to it)")
        on_success_path = index == 0 or step.name not in handlers_only
        if on_success_path and index < last and step.on_done is None and pipeline.on_done is None:
            diag.warn(
                where,
                f"step '{step.name}' has no on_done; it will complete the pipeline instead "
                "of advancing",
            )
