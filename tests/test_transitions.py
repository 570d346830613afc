"""Unit tests of the pure transition rules (``oj_trio.pipelines.transitions``).

Table-driven in the style of h11's ``test_state.py``: each row of a ``parametrize`` table is a
situation (runbook definition, durable record, outcome) and the decision it must produce.
Events are compared as compact tuples (``TAG`` plus the fields that matter), log lines and the
``rerun``/``prestarted`` flags exactly. The rules come from reference §2.5/§2.7 and SPEC §4
items 5 and 6, as the module implements them. No daemon, no trio, no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oj_trio import events as ev
from oj_trio.errors import OjError
from oj_trio.pipelines.transitions import (
    ATTEMPTS_PREFIX,
    INTERRUPTED,
    TERMINAL_NAMES,
    Cancelled,
    Decision,
    Failed,
    Interrupted,
    Move,
    Outcome,
    Route,
    Succeeded,
    attempts_used,
    decide,
    exit_outcome,
    internal_error,
    next_move,
    resume,
    resume_target,
    route,
)
from oj_trio.runbook.model import Pipeline as PipelineDef
from oj_trio.runbook.model import RunAgent, RunShell, Step, Transition
from oj_trio.state import Pipeline, StepRecord, StepStatus

PID = "pipe-0123456789abcdef"
SHORT = PID[:12]
AT = 5_000

# -- builders ----------------------------------------------------------------------------------

TransitionSpec = str | tuple[str, int | None] | None


def _t(spec: TransitionSpec) -> Transition | None:
    """``"x"`` → ``Transition("x")``; ``("x", 2)`` → ``Transition("x", attempts=2)``."""
    if spec is None:
        return None
    if isinstance(spec, tuple):
        return Transition(spec[0], attempts=spec[1])
    return Transition(spec)


def step(
    name: str,
    on_done: TransitionSpec = None,
    on_fail: TransitionSpec = None,
    on_cancel: TransitionSpec = None,
    *,
    agent: bool = False,
) -> Step:
    run = RunAgent("a") if agent else RunShell("true")
    return Step(
        name=name, run=run, on_done=_t(on_done), on_fail=_t(on_fail), on_cancel=_t(on_cancel)
    )


def pdef(
    *steps: Step,
    on_done: TransitionSpec = None,
    on_fail: TransitionSpec = None,
    on_cancel: TransitionSpec = None,
) -> PipelineDef:
    return PipelineDef(
        kind="build",
        on_done=_t(on_done),
        on_fail=_t(on_fail),
        on_cancel=_t(on_cancel),
        steps=steps,
    )


def record(
    at: str = "build",
    status: StepStatus = StepStatus.RUNNING,
    *,
    terminal: bool = False,
    cancelling: bool = False,
    vars: dict[str, str] | None = None,
    history: list[tuple[str, str]] | None = None,
) -> Pipeline:
    """A pipeline record on step ``at``; ``history`` is ``[(step, outcome), …]``."""
    rows = history if history is not None else [(at, "running")]
    return Pipeline(
        id=PID,
        name="build-1",
        kind="build",
        namespace="",
        step=at,
        runbook_hash="h",
        cwd="/tmp",
        created_at_ms=1_000,
        step_status=status,
        step_history=[
            StepRecord(
                name=n,
                started_at_ms=1_000 + i,
                finished_at_ms=None if o == "running" else 1_000 + i,
                outcome=o,
                detail="boom" if o == "failed" else None,
            )
            for i, (n, o) in enumerate(rows)
        ],
        vars=dict(vars or {}),
        terminal=terminal,
        cancelling=cancelling,
        error="boom" if status == StepStatus.FAILED else None,
    )


def counter(name: str) -> str:
    return f"{ATTEMPTS_PREFIX}on_fail:{name}"


def exited(code: int, at: str = "build") -> ev.ShellExited:
    return ev.ShellExited(pipeline_id=PID, step=at, exit_code=code, at_ms=AT)


def compact(e: ev.EventBase) -> tuple[Any, ...]:
    """An event as ``(TAG, key fields…)``; also checks it names this pipeline and time."""
    if isinstance(e, ev.PipelineAdvanced):
        assert (e.id, e.at_ms) == (PID, AT)
        return (e.TAG, e.step, e.terminal)
    if isinstance(e, ev.StepStarted):
        assert (e.pipeline_id, e.at_ms) == (PID, AT)
        return (e.TAG, e.step)
    if isinstance(e, ev.StepFailed):
        assert (e.pipeline_id, e.at_ms) == (PID, AT)
        return (e.TAG, e.step, e.error)
    if isinstance(e, ev.PipelineUpdated):
        assert e.id == PID
        return (e.TAG, e.vars)
    if isinstance(e, ev.PipelineCancelling):
        assert e.id == PID
        return (e.TAG,)
    if isinstance(e, ev.PipelineResume):
        assert e.id == PID
        return (e.TAG, e.message, e.vars)
    if isinstance(e, ev.ShellExited):
        assert (e.pipeline_id, e.at_ms) == (PID, AT)
        return (e.TAG, e.step, e.exit_code)
    raise AssertionError(f"unexpected event in a decision: {e!r}")


def compact_all(events: tuple[ev.EventBase, ...]) -> list[tuple[Any, ...]]:
    return [compact(e) for e in events]


def snapshot(p: Pipeline) -> dict[str, Any]:
    return attrs.asdict(p)


def adv(to: str, terminal: bool) -> tuple[Any, ...]:
    return ("pipeline:advanced", to, terminal)


def started(at: str) -> tuple[Any, ...]:
    return ("step:started", at)


def failed(at: str, error: str) -> tuple[Any, ...]:
    return ("step:failed", at, error)


def updated(**kv: str) -> tuple[Any, ...]:
    return ("pipeline:updated", kv)


def count_update(name: str, n: int) -> tuple[Any, ...]:
    return ("pipeline:updated", {counter(name): str(n)})


CANCELLING = ("pipeline:cancelling",)
SHELL_OK = ("shell:exited", "build", 0)
SHELL_2 = ("shell:exited", "build", 2)

# -- definitions shared by the tables ------------------------------------------------------------

#: build → test → deploy, build's failure goes to fix, cancel goes to cleanup.
CHAIN = pdef(
    step("build", on_done="test", on_fail="fix", on_cancel="cleanup"),
    step("test", on_done="deploy"),
    step("deploy"),
    step("fix"),
    step("cleanup"),
)
#: Only pipeline-level transitions.
SHARED = pdef(
    step("build"),
    step("notify"),
    step("cleanup"),
    step("undo"),
    on_done="notify",
    on_fail="cleanup",
    on_cancel="undo",
)
#: Both levels: the step's own transition must win.
BOTH = pdef(
    step("build", on_done="test", on_fail="fix", on_cancel="undo"),
    step("test"),
    step("fix"),
    step("notify"),
    step("cleanup"),
    step("undo"),
    step("teardown"),
    on_done="notify",
    on_fail="cleanup",
    on_cancel="teardown",
)
#: No transition anywhere.
BARE = pdef(step("build"), step("test"))
#: Steps named like the terminal names are ordinary steps (SPEC §4.5).
RESERVED = pdef(
    step("build", on_done="done", on_fail="failed", on_cancel="cancelled"),
    step("done"),
    step("failed"),
    step("cancelled"),
)
#: Transitions to terminal names that are not defined steps.
TO_TERMINALS = pdef(
    step("build", on_done="done", on_fail="done", on_cancel="cancelled"),
    step("test", on_done="cancelled", on_fail="failed", on_cancel="done"),
    step("lint", on_done="failed"),
)
#: Transitions to the step itself (re-run).
SELF = pdef(
    step("build", on_done="build", on_fail="build", on_cancel="build"),
    on_done="build",
    on_fail="build",
)
#: Counted retries: build may go to fix twice, then the pipeline on_fail applies.
COUNTED = pdef(
    step("build", on_fail=("fix", 2)),
    step("fix"),
    step("cleanup"),
    on_fail="cleanup",
)
COUNTED_NO_FALLBACK = pdef(step("build", on_fail=("fix", 2)), step("fix"))
ZERO_ATTEMPTS = pdef(step("build", on_fail=("fix", 0)), step("fix"))
RETRY_SELF = pdef(step("build", on_fail=("build", 3)))

# -- success (reference §2.5 "Advance") --------------------------------------------------------

SUCCESS_CASES = [
    # id, definition, record, outcome, prestart, events, log, rerun, prestarted
    pytest.param(
        CHAIN,
        record("build"),
        Succeeded(),
        True,
        [adv("test", False), started("test")],
        ("advancing to test",),
        False,
        "test",
        id="step-on_done-prestarted-in-same-batch",
    ),
    pytest.param(
        CHAIN,
        record("build"),
        Succeeded(),
        False,
        [adv("test", False)],
        ("advancing to test",),
        False,
        None,
        id="step-on_done-no-prestart",
    ),
    pytest.param(
        CHAIN,
        record("build"),
        Succeeded(before=(exited(0),), log=("shell completed (exit 0)",)),
        True,
        [SHELL_OK, adv("test", False), started("test")],
        ("shell completed (exit 0)", "advancing to test"),
        False,
        "test",
        id="before-events-and-log-come-first",
    ),
    pytest.param(
        BOTH,
        record("build"),
        Succeeded(),
        True,
        [adv("test", False), started("test")],
        ("advancing to test",),
        False,
        "test",
        id="step-on_done-wins-over-pipeline-on_done",
    ),
    pytest.param(
        SHARED,
        record("build"),
        Succeeded(),
        True,
        [adv("notify", False), started("notify")],
        ("pipeline on_done: advancing to notify",),
        False,
        "notify",
        id="pipeline-on_done-from-another-step",
    ),
    pytest.param(
        SHARED,
        record("build"),
        Succeeded(),
        False,
        [adv("notify", False)],
        ("pipeline on_done: advancing to notify",),
        False,
        None,
        id="pipeline-on_done-no-prestart",
    ),
    pytest.param(
        SHARED,
        record("notify"),
        Succeeded(),
        True,
        [adv("done", True)],
        (),
        False,
        None,
        id="pipeline-on_done-already-on-its-step-ends-done",
    ),
    pytest.param(
        BARE,
        record("build"),
        Succeeded(),
        True,
        [adv("done", True)],
        (),
        False,
        None,
        id="no-route-ends-done",
    ),
    pytest.param(
        BARE,
        record("build"),
        Succeeded(before=(exited(0),), log=("shell completed (exit 0)",)),
        True,
        [SHELL_OK, adv("done", True)],
        ("shell completed (exit 0)",),
        False,
        None,
        id="no-route-before-events-first",
    ),
    pytest.param(
        BARE,
        record("build", cancelling=True),
        Succeeded(),
        True,
        [adv("cancelled", True)],
        (),
        False,
        None,
        id="no-route-while-cancelling-ends-cancelled",
    ),
    pytest.param(
        CHAIN,
        record("build", cancelling=True),
        Succeeded(),
        True,
        [adv("test", False), started("test")],
        ("advancing to test",),
        False,
        "test",
        id="cancel-cleanup-follows-its-own-on_done",
    ),
    pytest.param(
        SHARED,
        record("build", cancelling=True),
        Succeeded(),
        True,
        [adv("notify", False), started("notify")],
        ("pipeline on_done: advancing to notify",),
        False,
        "notify",
        id="cancel-cleanup-follows-pipeline-on_done",
    ),
    pytest.param(
        SHARED,
        record("notify", cancelling=True),
        Succeeded(),
        True,
        [adv("cancelled", True)],
        (),
        False,
        None,
        id="cancel-cleanup-on-pipeline-on_done-step-ends-cancelled",
    ),
    pytest.param(
        TO_TERMINALS,
        record("build"),
        Succeeded(),
        True,
        [adv("done", True)],
        ("advancing to done",),
        False,
        None,
        id="on_done-to-undefined-done-is-terminal",
    ),
    pytest.param(
        TO_TERMINALS,
        record("test"),
        Succeeded(),
        True,
        [adv("cancelled", True)],
        ("advancing to cancelled",),
        False,
        None,
        id="on_done-to-undefined-cancelled-is-terminal",
    ),
    pytest.param(
        TO_TERMINALS,
        record("lint"),
        Succeeded(),
        True,
        [adv("failed", True)],
        ("advancing to failed",),
        False,
        None,
        id="on_done-to-undefined-failed-is-terminal",
    ),
    pytest.param(
        RESERVED,
        record("build"),
        Succeeded(),
        True,
        [adv("done", False), started("done")],
        ("advancing to done",),
        False,
        "done",
        id="on_done-to-defined-done-step-is-ordinary",
    ),
    pytest.param(
        RESERVED,
        record("done"),
        Succeeded(),
        True,
        [adv("done", True)],
        (),
        False,
        None,
        id="defined-done-step-finishing-ends-done",
    ),
    pytest.param(
        SELF,
        record("build"),
        Succeeded(),
        True,
        [],
        ("advancing to build",),
        True,
        None,
        id="on_done-to-itself-reruns",
    ),
    pytest.param(
        SELF,
        record("build"),
        Succeeded(before=(exited(0),), log=("shell completed (exit 0)",)),
        True,
        [SHELL_OK],
        ("shell completed (exit 0)", "advancing to build"),
        True,
        None,
        id="on_done-to-itself-keeps-only-before-events",
    ),
]

# -- failure (reference §2.5 "Fail", §10 #18 attempts) -----------------------------------------

FAILURE_CASES = [
    pytest.param(
        CHAIN,
        record("build"),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 1), adv("fix", False), started("fix")],
        ("on_fail: advancing to fix",),
        False,
        "fix",
        id="step-on_fail-counts-and-advances",
    ),
    pytest.param(
        CHAIN,
        record("build"),
        Failed("boom"),
        False,
        [failed("build", "boom"), count_update("build", 1), adv("fix", False)],
        ("on_fail: advancing to fix",),
        False,
        None,
        id="step-on_fail-no-prestart",
    ),
    pytest.param(
        CHAIN,
        record("build"),
        exit_outcome(2, (exited(2),)),
        True,
        [
            SHELL_2,
            failed("build", "shell exited with code 2"),
            count_update("build", 1),
            adv("fix", False),
            started("fix"),
        ],
        ("shell failed (exit 2)", "on_fail: advancing to fix"),
        False,
        "fix",
        id="shell-exit-before-step-failed",
    ),
    pytest.param(
        BOTH,
        record("build"),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 1), adv("fix", False), started("fix")],
        ("on_fail: advancing to fix",),
        False,
        "fix",
        id="step-on_fail-wins-over-pipeline-on_fail",
    ),
    pytest.param(
        COUNTED,
        record("build", vars={counter("build"): "1"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 2), adv("fix", False), started("fix")],
        ("on_fail: advancing to fix",),
        False,
        "fix",
        id="attempts-left-counter-incremented",
    ),
    pytest.param(
        COUNTED,
        record("build", vars={counter("build"): "2"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("cleanup", False), started("cleanup")],
        ("pipeline on_fail: advancing to cleanup",),
        False,
        "cleanup",
        id="attempts-used-up-falls-through-to-pipeline-on_fail",
    ),
    pytest.param(
        COUNTED_NO_FALLBACK,
        record("build", vars={counter("build"): "2"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("failed", True)],
        ("pipeline failed: boom",),
        False,
        None,
        id="attempts-used-up-no-fallback-ends-failed",
    ),
    pytest.param(
        COUNTED_NO_FALLBACK,
        record("build", vars={counter("build"): "7"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("failed", True)],
        ("pipeline failed: boom",),
        False,
        None,
        id="attempts-over-used-ends-failed",
    ),
    pytest.param(
        COUNTED_NO_FALLBACK,
        record("build", vars={counter("build"): "garbage"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 1), adv("fix", False), started("fix")],
        ("on_fail: advancing to fix",),
        False,
        "fix",
        id="unreadable-counter-counts-as-zero",
    ),
    pytest.param(
        COUNTED_NO_FALLBACK,
        record("build", vars={counter("fix"): "9"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 1), adv("fix", False), started("fix")],
        ("on_fail: advancing to fix",),
        False,
        "fix",
        id="counters-are-per-step",
    ),
    pytest.param(
        ZERO_ATTEMPTS,
        record("build"),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("failed", True)],
        ("pipeline failed: boom",),
        False,
        None,
        id="zero-attempts-never-taken",
    ),
    pytest.param(
        SHARED,
        record("build"),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("cleanup", False), started("cleanup")],
        ("pipeline on_fail: advancing to cleanup",),
        False,
        "cleanup",
        id="pipeline-on_fail-from-another-step-not-counted",
    ),
    pytest.param(
        SHARED,
        record("cleanup"),
        Failed("boom"),
        True,
        [failed("cleanup", "boom"), adv("failed", True)],
        ("pipeline failed: boom",),
        False,
        None,
        id="pipeline-on_fail-already-on-its-step-ends-failed",
    ),
    pytest.param(
        BARE,
        record("build"),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("failed", True)],
        ("pipeline failed: boom",),
        False,
        None,
        id="no-route-ends-failed",
    ),
    pytest.param(
        BARE,
        record("build"),
        exit_outcome(2, (exited(2),)),
        True,
        [SHELL_2, failed("build", "shell exited with code 2"), adv("failed", True)],
        ("shell failed (exit 2)", "pipeline failed: shell exited with code 2"),
        False,
        None,
        id="no-route-shell-exit-first",
    ),
    pytest.param(
        RETRY_SELF,
        record("build", vars={counter("build"): "1"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 2)],
        ("on_fail: advancing to build",),
        True,
        None,
        id="on_fail-to-itself-reruns-and-counts",
    ),
    pytest.param(
        RETRY_SELF,
        record("build", vars={counter("build"): "3"}),
        Failed("boom"),
        True,
        [failed("build", "boom"), adv("failed", True)],
        ("pipeline failed: boom",),
        False,
        None,
        id="on_fail-to-itself-until-attempts-used-up",
    ),
    pytest.param(
        RESERVED,
        record("build"),
        Failed("boom"),
        True,
        [
            failed("build", "boom"),
            count_update("build", 1),
            adv("failed", False),
            started("failed"),
        ],
        ("on_fail: advancing to failed",),
        False,
        "failed",
        id="on_fail-to-defined-failed-step-is-ordinary",
    ),
    pytest.param(
        TO_TERMINALS,
        record("test"),
        Failed("boom"),
        True,
        [failed("test", "boom"), count_update("test", 1), adv("failed", True)],
        ("on_fail: advancing to failed",),
        False,
        None,
        id="on_fail-to-undefined-failed-is-terminal",
    ),
    pytest.param(
        TO_TERMINALS,
        record("build"),
        Failed("boom"),
        True,
        [failed("build", "boom"), count_update("build", 1), adv("done", True)],
        ("on_fail: advancing to done",),
        False,
        None,
        id="on_fail-to-undefined-done-ends-done",
    ),
]

# -- cancel (reference §2.5 "Cancel") -----------------------------------------------------------

CANCEL_CASES = [
    pytest.param(
        CHAIN,
        record("build"),
        Cancelled(),
        True,
        [CANCELLING, failed("build", "cancelled"), adv("cleanup", False), started("cleanup")],
        ("cancelled: running cleanup",),
        False,
        "cleanup",
        id="step-on_cancel",
    ),
    pytest.param(
        CHAIN,
        record("build"),
        Cancelled(),
        False,
        [CANCELLING, failed("build", "cancelled"), adv("cleanup", False)],
        ("cancelled: running cleanup",),
        False,
        None,
        id="step-on_cancel-no-prestart",
    ),
    pytest.param(
        BOTH,
        record("build"),
        Cancelled(),
        True,
        [CANCELLING, failed("build", "cancelled"), adv("undo", False), started("undo")],
        ("cancelled: running undo",),
        False,
        "undo",
        id="step-on_cancel-wins-over-pipeline-on_cancel",
    ),
    pytest.param(
        SHARED,
        record("build"),
        Cancelled(),
        True,
        [CANCELLING, failed("build", "cancelled"), adv("undo", False), started("undo")],
        ("cancelled: running undo",),
        False,
        "undo",
        id="pipeline-on_cancel-from-another-step",
    ),
    pytest.param(
        SHARED,
        record("undo"),
        Cancelled(),
        True,
        [failed("undo", "cancelled"), adv("cancelled", True)],
        ("pipeline cancelled",),
        False,
        None,
        id="pipeline-on_cancel-already-on-its-step-ends-cancelled",
    ),
    pytest.param(
        BARE,
        record("build"),
        Cancelled(),
        True,
        [failed("build", "cancelled"), adv("cancelled", True)],
        ("pipeline cancelled",),
        False,
        None,
        id="no-route-ends-cancelled",
    ),
    pytest.param(
        TO_TERMINALS,
        record("build"),
        Cancelled(),
        True,
        [CANCELLING, failed("build", "cancelled"), adv("cancelled", True)],
        ("cancelled: running cancelled",),
        False,
        None,
        id="on_cancel-to-undefined-cancelled-is-terminal",
    ),
    pytest.param(
        RESERVED,
        record("build"),
        Cancelled(),
        True,
        [CANCELLING, failed("build", "cancelled"), adv("cancelled", False), started("cancelled")],
        ("cancelled: running cancelled",),
        False,
        "cancelled",
        id="on_cancel-to-defined-cancelled-step-is-ordinary",
    ),
]

# -- interrupted (driver stop or crash): record the failure, route at the next start -----------

INTERRUPT_CASES = [
    pytest.param(
        definition,
        record("build"),
        outcome,
        prestart,
        [failed("build", INTERRUPTED)],
        outcome.log,
        False,
        None,
        id=f"interrupted-{name}-{'prestart' if prestart else 'no-prestart'}",
    )
    for name, definition, outcome in [
        ("routed-stop", CHAIN, Interrupted()),
        ("shared-stop", SHARED, Interrupted()),
        ("bare-crash", BARE, Interrupted(log=(INTERRUPTED,))),
        ("self-stop", SELF, Interrupted()),
    ]
    for prestart in (True, False)
]


@pytest.mark.parametrize(
    ("definition", "p", "outcome", "prestart", "events", "log", "rerun", "prestarted"),
    SUCCESS_CASES + FAILURE_CASES + CANCEL_CASES + INTERRUPT_CASES,
)
def test_decide(
    definition: PipelineDef,
    p: Pipeline,
    outcome: Outcome,
    prestart: bool,
    events: list[tuple[Any, ...]],
    log: tuple[str, ...],
    rerun: bool,
    prestarted: str | None,
) -> None:
    before = snapshot(p)
    decision = decide(p, definition, outcome, AT, prestart=prestart)
    assert compact_all(decision.events) == events
    assert decision.log == log
    assert decision.rerun is rerun
    assert decision.prestarted == prestarted
    assert snapshot(p) == before, "decide must not mutate the record"


def test_interrupted_default_log() -> None:
    assert Interrupted().log == ("shell interrupted: daemon stopping",)


@pytest.mark.parametrize(
    ("definition", "at", "outcome"),
    [
        pytest.param(pdef(step("build", on_done="nowhere")), "build", Succeeded(), id="on_done"),
        pytest.param(pdef(step("build"), on_done="nowhere"), "build", Succeeded(), id="pipe-done"),
        pytest.param(pdef(step("build", on_fail="nowhere")), "build", Failed("x"), id="on_fail"),
        pytest.param(pdef(step("build"), on_fail="nowhere"), "build", Failed("x"), id="pipe-fail"),
        pytest.param(pdef(step("build", on_cancel="nowhere")), "build", Cancelled(), id="cancel"),
        pytest.param(pdef(step("b"), on_cancel="nowhere"), "b", Cancelled(), id="pipe-cancel"),
    ],
)
def test_transition_to_unknown_step_raises(
    definition: PipelineDef, at: str, outcome: Outcome
) -> None:
    with pytest.raises(OjError, match=r"^transition to unknown step 'nowhere'$"):
        decide(record(at), definition, outcome, AT, prestart=True)


# -- route: the one routing rule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "p", "trigger", "expected"),
    [
        pytest.param(CHAIN, record("build"), "on_done", Route("test", "advancing to"), id="d-step"),
        pytest.param(
            SHARED,
            record("build"),
            "on_done",
            Route("notify", "pipeline on_done: advancing to"),
            id="d-pipe",
        ),
        pytest.param(SHARED, record("notify"), "on_done", None, id="d-pipe-self"),
        pytest.param(BARE, record("build"), "on_done", None, id="d-none"),
        pytest.param(
            CHAIN,
            record("build"),
            "on_fail",
            Route("fix", "on_fail: advancing to", counter("build")),
            id="f-step-counted",
        ),
        pytest.param(
            SHARED,
            record("build"),
            "on_fail",
            Route("cleanup", "pipeline on_fail: advancing to"),
            id="f-pipe-uncounted",
        ),
        pytest.param(
            COUNTED,
            record("build", vars={counter("build"): "2"}),
            "on_fail",
            Route("cleanup", "pipeline on_fail: advancing to"),
            id="f-used-up-falls-through",
        ),
        pytest.param(SHARED, record("cleanup"), "on_fail", None, id="f-pipe-self"),
        pytest.param(
            CHAIN, record("build"), "on_cancel", Route("cleanup", "cancelled: running"), id="c-step"
        ),
        pytest.param(
            SHARED, record("build"), "on_cancel", Route("undo", "cancelled: running"), id="c-pipe"
        ),
        pytest.param(SHARED, record("undo"), "on_cancel", None, id="c-pipe-self"),
        pytest.param(BARE, record("build"), "on_cancel", None, id="c-none"),
        pytest.param(
            SHARED,
            record("gone"),
            "on_done",
            Route("notify", "pipeline on_done: advancing to"),
            id="d-undefined-current-step-uses-pipeline",
        ),
    ],
)
def test_route(definition: PipelineDef, p: Pipeline, trigger: Any, expected: Route | None) -> None:
    assert route(p, definition, trigger) == expected


@pytest.mark.parametrize(
    ("vars", "expected"),
    [({}, 0), ({counter("build"): "3"}, 3), ({counter("build"): ""}, 0)]
    + [({counter("build"): bad}, 0) for bad in ("x", "-1", "1.5", " 2")],
)
def test_attempts_used(vars: dict[str, str], expected: int) -> None:
    assert attempts_used(record(vars=vars), counter("build")) == expected


# -- exit_outcome and internal_error -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, Succeeded((exited(0),), ("shell completed (exit 0)",))),
        (1, Failed("shell exited with code 1", (exited(1),), ("shell failed (exit 1)",))),
        (2, Failed("shell exited with code 2", (exited(2),), ("shell failed (exit 2)",))),
        (127, Failed("shell exited with code 127", (exited(127),), ("shell failed (exit 127)",))),
        (-9, Failed("shell exited with code -9", (exited(-9),), ("shell failed (exit -9)",))),
    ],
)
def test_exit_outcome(code: int, expected: Outcome) -> None:
    assert exit_outcome(code, (exited(code),)) == expected


@pytest.mark.parametrize(
    "p",
    [
        pytest.param(record("build"), id="running"),
        pytest.param(record("build", StepStatus.PENDING), id="pending"),
        pytest.param(record("fix", StepStatus.COMPLETED), id="completed"),
        pytest.param(record("build", cancelling=True), id="cancelling"),
    ],
)
def test_internal_error_ends_failed_without_routing(p: Pipeline) -> None:
    before = snapshot(p)
    decision = internal_error(p, "internal error: KeyError: 'x'", AT)
    assert compact_all(decision.events) == [
        failed(p.step, "internal error: KeyError: 'x'"),
        adv("failed", True),
    ]
    assert decision == Decision(decision.events)  # no log, no rerun, nothing prestarted
    assert snapshot(p) == before


# -- next_move: the driver's table over the durable record ---------------------------------------

S = StepStatus


@pytest.mark.parametrize(
    ("terminal", "status", "rerun", "prestarted", "draining", "move"),
    [
        pytest.param(True, S.COMPLETED, False, None, False, Move.FINISH, id="terminal"),
        pytest.param(True, S.FAILED, True, "build", True, Move.FINISH, id="terminal-wins"),
        pytest.param(False, S.PENDING, False, None, True, Move.STOP, id="draining-pending"),
        pytest.param(False, S.RUNNING, False, None, True, Move.STOP, id="draining-running"),
        pytest.param(False, S.COMPLETED, False, None, True, Move.STOP, id="draining-completed"),
        pytest.param(False, S.FAILED, False, None, True, Move.STOP, id="draining-failed"),
        pytest.param(False, S.COMPLETED, True, None, True, Move.STOP, id="draining-beats-rerun"),
        pytest.param(False, S.RUNNING, False, "other", True, Move.STOP, id="draining-other-pre"),
        pytest.param(False, S.RUNNING, False, "build", True, Move.RUN, id="draining-prestarted"),
        pytest.param(False, S.COMPLETED, True, None, False, Move.RUN, id="rerun-completed"),
        pytest.param(False, S.FAILED, True, None, False, Move.RUN, id="rerun-failed"),
        pytest.param(False, S.WAITING, True, None, False, Move.RUN, id="rerun-waiting"),
        pytest.param(False, S.PENDING, False, None, False, Move.RUN, id="pending"),
        pytest.param(False, S.RUNNING, False, "build", False, Move.RUN, id="running-prestarted"),
        pytest.param(False, S.RUNNING, False, None, False, Move.RECOVER, id="running-not-pre"),
        pytest.param(False, S.RUNNING, False, "other", False, Move.RECOVER, id="running-other"),
        pytest.param(False, S.COMPLETED, False, None, False, Move.ADVANCE, id="completed"),
        pytest.param(False, S.FAILED, False, None, False, Move.FAIL, id="failed"),
        pytest.param(False, S.WAITING, False, None, False, Move.STOP, id="waiting"),
    ],
)
def test_next_move(
    terminal: bool,
    status: StepStatus,
    rerun: bool,
    prestarted: str | None,
    draining: bool,
    move: Move,
) -> None:
    p = record("build", status, terminal=terminal)
    assert next_move(p, rerun=rerun, prestarted=prestarted, draining=draining) is move


# -- resume (reference §2.7, SPEC §4.6) ----------------------------------------------------------

F, C = "failed", "completed"
AGENTIC = pdef(step("build"), step("review", agent=True))
#: test's failure goes to fix, fix's to the pipeline on_fail cleanup.
HANDLERS = pdef(
    step("build", on_done="test"),
    step("test", on_done="deploy", on_fail="fix"),
    step("fix", on_done="test"),
    step("deploy"),
    step("cleanup"),
    on_fail="cleanup",
)


def ended_failed(history: list[tuple[str, str]], vars: dict[str, str] | None = None) -> Pipeline:
    return record("failed", S.FAILED, terminal=True, history=history, vars=vars)


RESUME_ERRORS = [
    pytest.param(
        BARE,
        record("build"),
        True,
        None,
        f"pipeline {SHORT} is running step 'build'; nothing to resume",
        id="running",
    ),
    pytest.param(
        BARE,
        record("done", S.COMPLETED, terminal=True, history=[("build", C)]),
        False,
        "m",
        f"pipeline {SHORT} completed; only failed or waiting pipelines can be resumed",
        id="done",
    ),
    pytest.param(
        BARE,
        record("cancelled", S.FAILED, terminal=True, history=[("build", F)]),
        False,
        "m",
        f"pipeline {SHORT} was cancelled; only failed or waiting pipelines can be resumed",
        id="cancelled",
    ),
    pytest.param(
        BARE,
        ended_failed([("build", C), ("test", C)]),
        False,
        None,
        f"pipeline {SHORT} has no failed step to resume",
        id="no-failed-record",
    ),
    pytest.param(
        BARE,
        ended_failed([("gone", F)]),
        False,
        None,
        "step not found: gone",
        id="target-no-longer-defined",
    ),
    pytest.param(
        AGENTIC,
        ended_failed([("build", C), ("review", F)]),
        False,
        None,
        "agent steps require --message for resume. Example:\n"
        f'  oj pipeline resume {SHORT} -m "I fixed the import, try again"',
        id="agent-failed-no-message",
    ),
    pytest.param(
        AGENTIC,
        ended_failed([("review", F)]),
        False,
        "",
        "agent steps require --message",
        id="agent-empty-message",
    ),
    pytest.param(
        AGENTIC,
        record("review", S.WAITING, history=[("review", "waiting")]),
        False,
        None,
        "agent steps require --message",
        id="agent-waiting-no-message",
    ),
]


@pytest.mark.parametrize(("definition", "p", "running", "message", "error"), RESUME_ERRORS)
def test_resume_rejected_changes_nothing(
    definition: PipelineDef, p: Pipeline, running: bool, message: str | None, error: str
) -> None:
    before = snapshot(p)
    with pytest.raises(OjError) as caught:
        resume(p, definition, running=running, message=message, vars={"x": "1"}, at=AT)
    assert str(caught.value).startswith(error)
    assert snapshot(p) == before


RESUME_PLANS = [
    # definition, record, message, vars, target, events, rerun
    pytest.param(
        BARE,
        ended_failed([("build", C), ("test", F)]),
        None,
        None,
        "test",
        [("pipeline:resume", None, None), adv("test", False)],
        False,
        id="failed-reruns-last-failed-step",
    ),
    pytest.param(
        BARE,
        ended_failed([("build", F), ("build", C), ("test", F)]),
        "again",
        None,
        "test",
        [("pipeline:resume", "again", None), adv("test", False)],
        False,
        id="failed-most-recent-failure-wins",
    ),
    pytest.param(
        HANDLERS,
        ended_failed([("build", C), ("test", F), ("fix", F), ("cleanup", F)]),
        None,
        None,
        "test",
        [("pipeline:resume", None, None), adv("test", False)],
        False,
        id="walk-back-past-step-and-pipeline-on_fail-handlers",
    ),
    pytest.param(
        HANDLERS,
        ended_failed([("build", F), ("cleanup", F)]),
        None,
        None,
        "build",
        [("pipeline:resume", None, None), adv("build", False)],
        False,
        id="walk-back-past-pipeline-on_fail-handler",
    ),
    pytest.param(
        HANDLERS,
        ended_failed([("test", F), ("fix", C), ("test", C), ("deploy", F), ("cleanup", F)]),
        None,
        None,
        "deploy",
        [("pipeline:resume", None, None), adv("deploy", False)],
        False,
        id="walk-stops-at-a-completed-record",
    ),
    pytest.param(
        HANDLERS,
        ended_failed([("fix", F), ("deploy", F)]),
        None,
        None,
        "deploy",
        [("pipeline:resume", None, None), adv("deploy", False)],
        False,
        id="walk-stops-when-not-entered-by-failure-routing",
    ),
    pytest.param(
        RETRY_SELF,
        ended_failed([("build", F), ("build", F), ("build", F)]),
        None,
        None,
        "build",
        [("pipeline:resume", None, None), adv("build", False)],
        False,
        id="walk-through-self-retries",
    ),
    pytest.param(
        AGENTIC,
        ended_failed([("build", C), ("review", F)]),
        "I fixed it",
        None,
        "review",
        [("pipeline:resume", "I fixed it", None), adv("review", False)],
        False,
        id="agent-step-with-message",
    ),
    pytest.param(
        AGENTIC,
        record("review", S.WAITING, history=[("build", C), ("review", "waiting")]),
        "go on",
        None,
        "review",
        [("pipeline:resume", "go on", None)],
        True,
        id="waiting-reruns-in-place",
    ),
    pytest.param(
        BARE,
        record("test", S.FAILED, history=[("build", C), ("test", F)]),
        None,
        None,
        "test",
        [("pipeline:resume", None, None)],
        True,
        id="non-terminal-failed-reruns-in-place",
    ),
    pytest.param(
        BARE,
        record("build", S.WAITING),
        "ignored for shell steps",
        None,
        "build",
        [("pipeline:resume", "ignored for shell steps", None)],
        True,
        id="shell-step-message-not-required",
    ),
    pytest.param(
        COUNTED,
        ended_failed(
            [("build", F), ("fix", C), ("build", F), ("cleanup", F)],
            vars={counter("build"): "2", counter("fix"): "1", "x": "old", "keep": "k"},
        ),
        None,
        {"x": "new", "y": "2"},
        "build",
        [
            ("pipeline:resume", None, {"x": "new", "y": "2"}),
            updated(**{counter("build"): "0", counter("fix"): "0", "x": "new", "y": "2"}),
            adv("build", False),
        ],
        False,
        id="vars-merged-and-attempts-reset",
    ),
    pytest.param(
        COUNTED,
        record("build", S.WAITING, vars={counter("build"): "2"}),
        None,
        None,
        "build",
        [("pipeline:resume", None, None), updated(**{counter("build"): "0"})],
        True,
        id="attempts-reset-without-vars",
    ),
    pytest.param(
        COUNTED,
        record("build", S.WAITING, vars={counter("build"): "2"}),
        None,
        {counter("build"): "1"},
        "build",
        [
            ("pipeline:resume", None, {counter("build"): "1"}),
            updated(**{counter("build"): "1"}),
        ],
        True,
        id="given-var-beats-reset",
    ),
    pytest.param(
        BARE,
        record("build", S.WAITING, vars={"x": "1"}),
        None,
        {},
        "build",
        [("pipeline:resume", None, {})],
        True,
        id="nothing-to-update",
    ),
]


@pytest.mark.parametrize(
    ("definition", "p", "message", "vars", "target", "events", "rerun"), RESUME_PLANS
)
def test_resume_plan(
    definition: PipelineDef,
    p: Pipeline,
    message: str | None,
    vars: dict[str, str] | None,
    target: str,
    events: list[tuple[Any, ...]],
    rerun: bool,
) -> None:
    before = snapshot(p)
    plan = resume(p, definition, running=False, message=message, vars=vars, at=AT)
    assert plan.target == target
    assert compact_all(plan.events) == events
    assert plan.rerun is rerun
    assert snapshot(p) == before


@pytest.mark.parametrize(
    ("history", "target"),
    [
        ([], None),
        ([("build", C)], None),
        ([("build", F)], "build"),
        ([("test", F), ("fix", F)], "test"),
        ([("test", F), ("fix", F), ("cleanup", F)], "test"),
        ([("test", F), ("cleanup", F)], "test"),
        ([("deploy", F), ("cleanup", F)], "deploy"),
        ([("cleanup", F), ("cleanup", F)], "cleanup"),
        ([("test", C), ("fix", F)], "fix"),
        ([("test", F), ("fix", F), ("test", C)], "test"),
        ([("test", F), ("deploy", F)], "deploy"),
    ],
)
def test_resume_target(history: list[tuple[str, str]], target: str | None) -> None:
    assert resume_target(ended_failed(history), HANDLERS) == target


# -- property: any definition, any outcome ------------------------------------------------------

NAMES = ("build", "test", "cleanup", "done", "failed")


@st.composite
def situations(draw: st.DrawFn) -> tuple[PipelineDef, Pipeline, Outcome, bool]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    targets = st.sampled_from(sorted({*names, *TERMINAL_NAMES}))
    transition = st.none() | st.builds(Transition, targets, attempts=st.none() | st.integers(0, 3))
    steps = tuple(
        Step(
            name=n,
            run=RunShell("true"),
            on_done=draw(transition),
            on_fail=draw(transition),
            on_cancel=draw(transition),
        )
        for n in names
    )
    definition = PipelineDef(
        kind="k",
        on_done=draw(transition),
        on_fail=draw(transition),
        on_cancel=draw(transition),
        steps=steps,
    )
    at = draw(st.sampled_from(names))
    used = draw(st.none() | st.integers(0, 4).map(str) | st.just("junk"))
    p = record(
        at,
        draw(st.sampled_from(list(StepStatus))),
        cancelling=draw(st.booleans()),
        vars={} if used is None else {counter(at): used, "other": "v"},
        history=[(n, draw(st.sampled_from(["completed", "failed"]))) for n in names] + [(at, F)],
    )
    outcome = draw(
        st.one_of(
            st.just(Succeeded()),
            st.just(Failed("boom")),
            st.builds(lambda c: exit_outcome(c, (exited(c, at),)), st.integers(0, 3)),
            st.just(Cancelled()),
            st.just(Interrupted()),
        )
    )
    return definition, p, outcome, draw(st.booleans())


@settings(max_examples=400, deadline=None)
@given(situations())
def test_decide_property(case: tuple[PipelineDef, Pipeline, Outcome, bool]) -> None:
    definition, p, outcome, prestart = case
    defined = {s.name for s in definition.steps}
    before, deep = snapshot(p), copy.deepcopy(p)

    decision = decide(p, definition, outcome, AT, prestart=prestart)

    assert snapshot(p) == before and p == deep, "decide must not mutate the record"
    compact_all(decision.events)  # every event names this pipeline and this time
    advanced = [e for e in decision.events if isinstance(e, ev.PipelineAdvanced)]
    starts = [e for e in decision.events if isinstance(e, ev.StepStarted)]
    fails = [e for e in decision.events if isinstance(e, ev.StepFailed)]
    assert all(f.step == p.step for f in fails)
    if decision.rerun or isinstance(outcome, Interrupted):
        assert not advanced and not starts and decision.prestarted is None
        assert not (decision.rerun and isinstance(outcome, Interrupted))
        return
    assert len(advanced) == 1
    last = advanced[-1]
    assert last.step in defined or last.step in TERMINAL_NAMES
    # Only a defined step other than the current one is entered; an undefined (terminal) name
    # always ends the pipeline, and so does "no route" even when a step shares that name.
    if last.step not in defined:
        assert last.terminal
    if not last.terminal:
        assert last.step in defined and last.step != p.step
    if prestart and not last.terminal:
        assert decision.prestarted == last.step
        assert decision.events[-1] == ev.StepStarted(pipeline_id=PID, step=last.step, at_ms=AT)
    else:
        assert decision.prestarted is None and not starts
    if not isinstance(outcome, Succeeded):
        assert len(fails) == 1
