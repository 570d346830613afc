"""What happens to a pipeline after each step: pure decisions, no I/O.

Theory of operation
-------------------
Rule 1: every choice about where a pipeline goes next lives here, as functions from the durable
pipeline record, its runbook definition and an *outcome* to a :class:`Decision` value. Nothing
here touches trio, files, processes, the clock or an in-memory task; the caller passes the time
(``at``) and whether the next step may be started in the same commit (``prestart``). The driver
(:mod:`oj_trio.runtime.pipeline_driver`) only does "decide → log → commit → act on ``rerun``".

Rule 2: the routing rule is written once (:func:`route`). For a trigger (``on_done``,
``on_fail``, ``on_cancel``) the **step's** transition wins; an ``on_fail`` with ``attempts`` that
are used up falls through. Otherwise the **pipeline's** transition applies, unless the pipeline is
already on that step (a failing ``on_fail`` handler does not route to itself forever). With no
route: success ends the pipeline ``done`` (``cancelled`` if a cancel-cleanup step just ended),
failure ends it ``failed``, cancel ends it ``cancelled`` (reference §2.5, SPEC §4.5).

Rule 3: a transition is one durable batch. The events that caused it (a shell exit, a step
failure) and the events it causes (``pipeline:advanced``, and when allowed the next step's
``step:started``) are committed together, so a crash never leaves a step's end recorded without
its consequence, and a step costs one commit instead of two.

========================  ======================================================================
outcome                   decision
========================  ======================================================================
:class:`Succeeded`        route ``on_done`` → next step / itself again (``rerun``) / end
:class:`Failed`           ``step:failed``; route ``on_fail`` (counting ``attempts``) / end failed
:class:`Cancelled`        ``pipeline:cancelling`` + ``step:failed("cancelled")``; route
                          ``on_cancel`` / end cancelled (the cleanup step is not cancellable)
:class:`Interrupted`      ``step:failed(INTERRUPTED)`` only; routing happens at the next start
========================  ======================================================================

Resume (:func:`resume`) is a decision too: it validates the request against the record and
returns the events to commit, or raises :class:`~oj_trio.errors.OjError` with the message the
user sees; a bad resume changes nothing (SPEC §4.6).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Literal

import attrs

from .. import events as ev
from ..errors import OjError
from ..runbook.model import Pipeline as PipelineDef
from ..runbook.model import RunAgent, Transition
from ..state import Pipeline, StepStatus

INTERRUPTED = "interrupted: daemon stopped while step was running"
#: Steps a transition may name without defining them: they end the pipeline (SPEC §4.5).
TERMINAL_NAMES = ("done", "failed", "cancelled")
#: Pipeline vars that count how often a step-level ``on_fail`` was taken (reset by resume).
ATTEMPTS_PREFIX = "oj.attempts."

Trigger = Literal["on_done", "on_fail", "on_cancel"]


# -- outcomes of a step ------------------------------------------------------------------------


@attrs.frozen
class Succeeded:
    """The step finished well; ``before`` are the events that say so (e.g. ``shell:exited``)."""

    before: tuple[ev.EventBase, ...] = ()
    log: tuple[str, ...] = ()


@attrs.frozen
class Failed:
    """The step failed with ``error`` (a non-zero exit, a spawn failure, a missing step…)."""

    error: str
    before: tuple[ev.EventBase, ...] = ()
    log: tuple[str, ...] = ()


@attrs.frozen
class Cancelled:
    """``oj pipeline cancel`` stopped the step."""


@attrs.frozen
class Interrupted:
    """The daemon stopped (or died) while the step ran; ``log`` says which of the two."""

    log: tuple[str, ...] = ("shell interrupted: daemon stopping",)


Outcome = Succeeded | Failed | Cancelled | Interrupted


# -- decisions -------------------------------------------------------------------------------


@attrs.frozen
class Decision:
    """What to do: log ``log`` (under the step the pipeline was on), commit ``events`` as one
    batch, then run the current step again if ``rerun``. ``prestarted`` names the step whose
    ``step:started`` is already among ``events``: the driver runs it instead of treating it as a
    step interrupted by a crash."""

    events: tuple[ev.EventBase, ...]
    log: tuple[str, ...] = ()
    rerun: bool = False
    prestarted: str | None = None


@attrs.frozen
class Route:
    """A chosen transition: where to, which label the log gives it, and the attempts var to
    count (step-level ``on_fail`` only)."""

    target: str
    label: str
    count_var: str | None = None


_LABELS: dict[Trigger, tuple[str, str]] = {
    # trigger: (step-level label, pipeline-level label)
    "on_done": ("advancing to", "pipeline on_done: advancing to"),
    "on_fail": ("on_fail: advancing to", "pipeline on_fail: advancing to"),
    "on_cancel": ("cancelled: running", "cancelled: running"),
}


def attempts_used(p: Pipeline, var: str) -> int:
    raw = p.vars.get(var)
    return int(raw) if raw and raw.isdigit() else 0


def route(p: Pipeline, definition: PipelineDef, trigger: Trigger) -> Route | None:
    """Rule 2: the step's transition for ``trigger``, else the pipeline's, else none."""
    step_label, pipeline_label = _LABELS[trigger]
    step = definition.step(p.step)
    own: Transition | None = getattr(step, trigger) if step is not None else None
    if own is not None:
        if trigger != "on_fail":
            return Route(own.step, step_label)
        var = f"{ATTEMPTS_PREFIX}on_fail:{p.step}"
        if own.attempts is None or attempts_used(p, var) < own.attempts:
            return Route(own.step, step_label, count_var=var)
    shared: Transition | None = getattr(definition, trigger)
    if shared is not None and p.step != shared.step:
        return Route(shared.step, pipeline_label)
    return None


def goto(
    p: Pipeline,
    definition: PipelineDef,
    target: str,
    at: int,
    *,
    before: tuple[ev.EventBase, ...],
    log: tuple[str, ...],
    prestart: bool,
) -> Decision:
    """Move ``p`` to ``target``: a step (started in the same batch when ``prestart``), the same
    step again, or one of the :data:`TERMINAL_NAMES`.

    Raises:
        OjError: ``target`` is neither a step nor a terminal name (validation prevents this).
    """
    if definition.step(target) is not None:
        if target == p.step:
            # Re-running the same step: history gets a new record when it starts again.
            return Decision(before, log, rerun=True)
        advanced = ev.PipelineAdvanced(id=p.id, step=target, at_ms=at, terminal=False)
        if not prestart:
            return Decision((*before, advanced), log)
        started = ev.StepStarted(pipeline_id=p.id, step=target, at_ms=at)
        return Decision((*before, advanced, started), log, prestarted=target)
    if target in TERMINAL_NAMES:
        ended = ev.PipelineAdvanced(id=p.id, step=target, at_ms=at, terminal=True)
        return Decision((*before, ended), log)
    raise OjError(f"transition to unknown step '{target}'")


def _end(p: Pipeline, step: str, at: int) -> ev.PipelineAdvanced:
    return ev.PipelineAdvanced(id=p.id, step=step, at_ms=at, terminal=True)


def after_success(
    p: Pipeline, definition: PipelineDef, outcome: Succeeded, at: int, *, prestart: bool
) -> Decision:
    chosen = route(p, definition, "on_done")
    log = outcome.log
    if chosen is not None:
        line = f"{chosen.label} {chosen.target}"
        return goto(
            p,
            definition,
            chosen.target,
            at,
            before=outcome.before,
            log=(*log, line),
            prestart=prestart,
        )
    final = "cancelled" if p.cancelling else "done"
    return Decision((*outcome.before, _end(p, final, at)), log)


def after_failure(
    p: Pipeline, definition: PipelineDef, outcome: Failed, at: int, *, prestart: bool
) -> Decision:
    failed = ev.StepFailed(pipeline_id=p.id, step=p.step, error=outcome.error, at_ms=at)
    chosen = route(p, definition, "on_fail")
    if chosen is None:
        line = f"pipeline failed: {outcome.error}"
        return Decision((*outcome.before, failed, _end(p, "failed", at)), (*outcome.log, line))
    events: tuple[ev.EventBase, ...] = (*outcome.before, failed)
    if chosen.count_var is not None:
        # Counted in vars so the count survives restarts and resets on a manual resume.
        count = attempts_used(p, chosen.count_var) + 1
        events = (*events, ev.PipelineUpdated(id=p.id, vars={chosen.count_var: str(count)}))
    line = f"{chosen.label} {chosen.target}"
    return goto(
        p, definition, chosen.target, at, before=events, log=(*outcome.log, line), prestart=prestart
    )


def after_cancel(
    p: Pipeline, definition: PipelineDef, _outcome: Cancelled, at: int, *, prestart: bool
) -> Decision:
    failed = ev.StepFailed(pipeline_id=p.id, step=p.step, error="cancelled", at_ms=at)
    chosen = route(p, definition, "on_cancel")
    if chosen is None:
        return Decision((failed, _end(p, "cancelled", at)), ("pipeline cancelled",))
    line = f"{chosen.label} {chosen.target}"
    before = (ev.PipelineCancelling(id=p.id), failed)
    return goto(p, definition, chosen.target, at, before=before, log=(line,), prestart=prestart)


def after_interrupt(
    p: Pipeline, _definition: PipelineDef, outcome: Interrupted, at: int, *, prestart: bool
) -> Decision:
    del prestart  # nothing starts: routing happens at the next start, from the Failed status
    failed = ev.StepFailed(pipeline_id=p.id, step=p.step, error=INTERRUPTED, at_ms=at)
    return Decision((failed,), outcome.log)


def decide(
    p: Pipeline, definition: PipelineDef, outcome: Outcome, at: int, *, prestart: bool
) -> Decision:
    """The decision for any outcome of ``p``'s current step (the table in the module doc)."""
    if isinstance(outcome, Succeeded):
        return after_success(p, definition, outcome, at, prestart=prestart)
    if isinstance(outcome, Failed):
        return after_failure(p, definition, outcome, at, prestart=prestart)
    if isinstance(outcome, Cancelled):
        return after_cancel(p, definition, outcome, at, prestart=prestart)
    return after_interrupt(p, definition, outcome, at, prestart=prestart)


def exit_outcome(exit_code: int, before: tuple[ev.EventBase, ...]) -> Succeeded | Failed:
    """A shell step's exit code as an outcome, with the reference's log lines and error text."""
    if exit_code == 0:
        return Succeeded(before, ("shell completed (exit 0)",))
    return Failed(
        f"shell exited with code {exit_code}", before, (f"shell failed (exit {exit_code})",)
    )


def internal_error(p: Pipeline, error: str, at: int) -> Decision:
    """A bug or an unreadable runbook record: end the pipeline ``failed`` with the error, not
    through ``on_fail``, which would run the same broken code again."""
    failed = ev.StepFailed(pipeline_id=p.id, step=p.step, error=error, at_ms=at)
    return Decision((failed, _end(p, "failed", at)))


# -- what the driver does next -----------------------------------------------------------------


class Move(Enum):
    """The driver's next move for a pipeline, read from its durable record (:func:`next_move`)."""

    FINISH = "finish"  #: terminal: log, delete an ephemeral workspace after success, notify
    STOP = "stop"  #: nothing to do now (waiting for a human, or the daemon is draining)
    RUN = "run"  #: start the current step (``step:started`` durable before the spawn) and run it
    RECOVER = "recover"  #: the exit was never recorded: kill leftovers, record "interrupted"
    ADVANCE = "advance"  #: the step succeeded but its transition was not recorded
    FAIL = "fail"  #: the step failed but its transition was not recorded


def next_move(p: Pipeline, *, rerun: bool, prestarted: str | None, draining: bool) -> Move:
    """Rule of the driver loop: the same record means the same move, whether the pipeline is
    fresh or the daemon just restarted after a crash.

    ``rerun``: a decision asked to run the current step again. ``prestarted``: the step whose
    ``step:started`` went out with the transition into it (it is running as far as the record
    says, and gets the drain's grace like any running step). ``draining``: no new step starts.
    """
    if p.terminal:
        return Move.FINISH
    if draining and prestarted != p.step:
        return Move.STOP
    if rerun or p.step_status == StepStatus.PENDING:
        return Move.RUN
    if p.step_status == StepStatus.RUNNING:
        return Move.RUN if prestarted == p.step else Move.RECOVER
    if p.step_status == StepStatus.COMPLETED:
        return Move.ADVANCE
    if p.step_status == StepStatus.FAILED:
        return Move.FAIL
    return Move.STOP  # Waiting: a human decides (oj pipeline resume)


# -- resume ----------------------------------------------------------------------------------


@attrs.frozen
class ResumePlan:
    """A validated resume: commit ``events``, log ``resumed`` under ``target``, then start the
    pipeline's task, re-running the current step if ``rerun``."""

    target: str
    events: tuple[ev.EventBase, ...]
    rerun: bool


def resume(
    p: Pipeline,
    definition: PipelineDef,
    *,
    running: bool,
    message: str | None,
    vars: Mapping[str, str] | None,
    at: int,
) -> ResumePlan:
    """Validate ``oj pipeline resume`` and plan it (reference §2.7 with SPEC §4.6).

    ``running``: the pipeline has a live task on a Pending/Running step.

    Raises:
        OjError: the resume is not possible; the message says why and what to do.
    """
    short = p.id[:12]
    if running:
        raise OjError(f"pipeline {short} is running step '{p.step}'; nothing to resume")
    if p.terminal and p.step in ("done", "cancelled"):
        state = "completed" if p.step == "done" else "was cancelled"
        raise OjError(f"pipeline {short} {state}; only failed or waiting pipelines can be resumed")
    if p.terminal:
        found = resume_target(p, definition)
        if found is None:
            raise OjError(f"pipeline {short} has no failed step to resume")
        target = found
    else:
        target = p.step
    step = definition.step(target)
    if step is None:
        raise OjError(f"step not found: {target}")
    if isinstance(step.run, RunAgent) and not message:
        raise OjError(
            "agent steps require --message for resume. Example:\n"
            f'  oj pipeline resume {short} -m "I fixed the import, try again"'
        )
    events: list[ev.EventBase] = [
        ev.PipelineResume(id=p.id, message=message, vars=dict(vars) if vars is not None else None)
    ]
    reset = {k: "0" for k in p.vars if k.startswith(ATTEMPTS_PREFIX)}
    merged = {**reset, **(vars or {})}
    if merged:
        events.append(ev.PipelineUpdated(id=p.id, vars=merged))
    if p.terminal:
        events.append(ev.PipelineAdvanced(id=p.id, step=target, at_ms=at, terminal=False))
    return ResumePlan(target, tuple(events), rerun=not p.terminal)


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
        step = definition.step(before.name)
        routes = {
            t.step
            for t in (step.on_fail if step is not None else None, definition.on_fail)
            if t is not None
        }
        if history[index].name not in routes:
            break
        index -= 1
    return history[index].name
