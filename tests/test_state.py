"""MaterializedState.apply: deterministic, snapshot-equivalent, and the intended semantics of ref §10."""

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_events import event_strategy

from oj_trio import events as ev
from oj_trio.errors import NotFoundError
from oj_trio.state import (
    AmbiguousPrefixError,
    MaterializedState,
    QueueItemStatus,
    StepStatus,
    WorkerStatus,
    scoped_key,
)

# A tiny vocabulary so random events hit the same pipelines, steps, queues and workers.
POOL = st.sampled_from(["p1", "p10", "p2", "a", "b", "done", "failed", "cancelled", "q", "w", ""])
SMALL_INTS = {"exit_code": st.sampled_from([0, 1]), "at_ms": st.integers(0, 1000)}
interacting_event = st.one_of(
    [event_strategy(cls, POOL, overrides=SMALL_INTS) for cls in ev.EVENT_TYPES]
)
event_lists = st.lists(interacting_event, max_size=60)


def build(events: list[Any], state: MaterializedState | None = None) -> MaterializedState:
    state = MaterializedState() if state is None else state
    for e in events:
        state.apply(e)
    return state


@settings(max_examples=150, deadline=None)
@given(event_lists)
def test_apply_is_deterministic(events: list[Any]) -> None:
    assert build(events) == build(events)
    assert build(events).to_json() == build(events).to_json()


@settings(max_examples=150, deadline=None)
@given(event_lists, st.data())
def test_snapshot_plus_tail_equals_full_replay(events: list[Any], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(events)))
    snap = MaterializedState.from_json(build(events[:cut]).to_json())
    assert build(events[cut:], snap) == build(events)


# --- pipelines -----------------------------------------------------------------------------------


def created(pid: str = "p1", step: str = "a", **kw: Any) -> ev.PipelineCreated:
    return ev.PipelineCreated(
        id=pid,
        kind="build",
        name=f"build-{pid}",
        runbook_hash="h",
        cwd="/tmp",
        vars={"x": "1"},
        initial_step=step,
        created_at_epoch_ms=100,
        **kw,
    )


def test_pipeline_created_is_idempotent() -> None:
    s = build([created(), ev.StepStarted(pipeline_id="p1", step="a", at_ms=101)])
    before = s.to_json()
    s.apply(created())
    assert s.to_json() == before
    p = s.pipelines["p1"]
    assert (p.step, p.step_status, len(p.step_history)) == ("a", StepStatus.RUNNING, 1)


def test_step_lifecycle_and_history() -> None:
    s = build(
        [
            created(),
            ev.StepStarted(pipeline_id="p1", step="a", at_ms=110, agent_id="ag", agent_name="plan"),
            ev.StepCompleted(pipeline_id="p1", step="a", at_ms=120),
            ev.PipelineAdvanced(id="p1", step="b", at_ms=121),
            ev.StepStarted(pipeline_id="p1", step="b", at_ms=122),
            ev.ShellSpawned(pipeline_id="p1", step="b", pid=10, pgid=10, start_ticks=5),
            ev.ShellExited(pipeline_id="p1", step="b", exit_code=3, at_ms=130),
        ]
    )
    p = s.pipelines["p1"]
    assert p.step_status == StepStatus.FAILED
    assert p.error == "shell exit code: 3"
    assert p.shell is None
    h = p.step_history
    assert [(r.name, r.started_at_ms, r.finished_at_ms, r.outcome) for r in h] == [
        ("a", 100, 120, "completed"),
        ("b", 121, 130, "failed"),
    ]
    assert (h[0].agent_id, h[0].agent_name) == ("ag", "plan")
    assert h[1].detail == "shell exit code: 3"
    s.apply(ev.PipelineAdvanced(id="p1", step="failed", at_ms=131))
    assert (p.step, p.terminal, p.step_status) == ("failed", True, StepStatus.FAILED)
    assert len(p.step_history) == 2


def test_shell_spawned_is_recorded_for_reconciliation_and_interrupted_fails() -> None:
    s = build(
        [
            created(),
            ev.StepStarted(pipeline_id="p1", step="a", at_ms=101),
            ev.ShellSpawned(pipeline_id="p1", step="a", pid=42, pgid=42, start_ticks=999),
        ]
    )
    shell = s.pipelines["p1"].shell
    assert shell is not None and (shell.pid, shell.pgid, shell.start_ticks) == (42, 42, 999)
    msg = "interrupted: daemon stopped while step was running"
    s.apply(ev.StepFailed(pipeline_id="p1", step="a", error=msg, at_ms=200))
    p = s.pipelines["p1"]
    assert (p.step_status, p.error, p.shell) == (StepStatus.FAILED, msg, None)


def test_advanced_to_same_step_is_noop_and_terminal_resume_clears_error() -> None:
    s = build([created(), ev.StepFailed(pipeline_id="p1", step="a", error="boom", at_ms=105)])
    before = s.to_json()
    s.apply(ev.PipelineAdvanced(id="p1", step="a", at_ms=106))
    assert s.to_json() == before
    s.apply(ev.SessionCreated(id="oj-s", pipeline_id="p1"))
    s.apply(ev.PipelineAdvanced(id="p1", step="failed", at_ms=107))
    p = s.pipelines["p1"]
    assert p.terminal and p.error == "boom"
    s.apply(ev.PipelineAdvanced(id="p1", step="a", at_ms=108))  # resume
    assert (p.terminal, p.error, p.session_id, p.step_status) == (
        False,
        None,
        None,
        StepStatus.PENDING,
    )
    assert p.step_history[-1].started_at_ms == 108


def test_step_named_done_is_ordinary_when_runtime_says_so() -> None:
    s = build([created(), ev.PipelineAdvanced(id="p1", step="done", at_ms=110, terminal=False)])
    p = s.pipelines["p1"]
    assert (p.step, p.terminal, p.step_status) == ("done", False, StepStatus.PENDING)
    s.apply(ev.StepStarted(pipeline_id="p1", step="done", at_ms=111))
    s.apply(ev.StepCompleted(pipeline_id="p1", step="done", at_ms=112))
    s.apply(ev.PipelineAdvanced(id="p1", step="done", at_ms=113))  # now terminal
    assert (p.terminal, p.step_status) == (True, StepStatus.COMPLETED)
    assert [r.name for r in p.step_history] == ["a", "done"]


def test_terminal_advance_removes_pipeline_from_worker_active_lists() -> None:
    s = build(
        [
            ev.WorkerStarted(
                worker_name="w", project_root="/r", runbook_hash="h", queue_name="q",
                concurrency=2, namespace="ns",
            ),
            created(),
            ev.WorkerItemDispatched(worker_name="w", item_id="i", pipeline_id="p1", namespace="ns"),
            ev.WorkerItemDispatched(worker_name="w", item_id="i", pipeline_id="p1", namespace="ns"),
        ]
    )  # fmt: skip
    w = s.workers["ns/w"]
    assert w.active_pipeline_ids == ["p1"]
    s.apply(ev.PipelineAdvanced(id="p1", step="cancelled", at_ms=200))
    assert w.active_pipeline_ids == []


def test_agent_signal_targets_pipeline_whose_current_step_has_the_agent() -> None:
    s = build(
        [
            created(),
            ev.StepStarted(pipeline_id="p1", step="a", at_ms=101, agent_id="ag1"),
            ev.AgentSignal(agent_id="ag1", kind="complete"),
            ev.AgentSignal(agent_id="other", kind="escalate"),
        ]
    )
    sig = s.pipelines["p1"].agent_signal
    assert sig is not None and (sig.kind, sig.message) == ("complete", None)
    s.apply(ev.PipelineAdvanced(id="p1", step="b", at_ms=102))
    assert s.pipelines["p1"].agent_signal is None


def test_session_deleted_clears_pipeline_session_id() -> None:
    s = build([created(), ev.SessionCreated(id="oj-x", pipeline_id="p1")])
    assert s.pipelines["p1"].session_id == "oj-x"
    s.apply(ev.SessionDeleted(id="oj-x"))
    assert s.pipelines["p1"].session_id is None
    assert s.sessions == {}


def test_workspace_created_is_persisted_with_owner() -> None:
    s = build(
        [
            created(),
            ev.WorkspaceCreated(id="ws-1", path="/w/ws-1", owner="p1", at_ms=150),
            ev.WorkspaceReady(id="ws-1"),
        ]
    )
    w = s.workspaces["ws-1"]
    assert (w.status, w.mode, w.created_at_ms) == ("ready", "ephemeral", 150)
    assert (s.pipelines["p1"].workspace_id, s.pipelines["p1"].workspace_path) == (
        "ws-1",
        "/w/ws-1",
    )
    s.apply(ev.WorkspaceFailed(id="ws-1", reason="disk"))
    assert w.status == "failed: disk"
    s.apply(ev.WorkspaceDeleted(id="ws-1"))
    assert s.workspaces == {}


def test_pipeline_prefix_lookup() -> None:
    s = build([created("abc1"), created("abc2"), created("xyz")])
    assert s.get_pipeline("xyz").id == "xyz"
    assert s.get_pipeline("x").id == "xyz"
    assert s.get_pipeline("abc") is None
    assert s.get_pipeline("nope") is None
    assert s.get_pipeline("") is None
    with pytest.raises(AmbiguousPrefixError) as info:
        s.find_pipeline("abc")
    assert info.value.matches == ["abc1", "abc2"]
    assert isinstance(info.value, NotFoundError) and isinstance(info.value, LookupError)
    assert s.find_pipeline("abc2").id == "abc2"


def test_runbook_loaded_is_content_addressed() -> None:
    s = build(
        [ev.RunbookLoaded(hash="h1", runbook={"a": 1}), ev.RunbookLoaded(hash="h1", runbook=2)]
    )
    assert s.runbooks["h1"].data == {"a": 1}


def test_action_attempts_counted_and_reset_on_step_change() -> None:
    s = build([created()] + [ev.PipelineActionAttempted(id="p1", key="idle:0")] * 2)
    assert s.pipelines["p1"].action_attempts == {"idle:0": 2}
    s.apply(ev.PipelineAdvanced(id="p1", step="b", at_ms=300))
    assert s.pipelines["p1"].action_attempts == {}


# --- queues and workers ----------------------------------------------------------------------------


def push(item: str = "i1", ns: str = "ns") -> ev.QueuePushed:
    return ev.QueuePushed(
        queue_name="q", item_id=item, data={"k": "v"}, pushed_at_epoch_ms=1, namespace=ns
    )


def test_queue_push_is_idempotent_and_keyed_by_namespace() -> None:
    s = build([push(), push(), push("i2", ns=""), push("i0")])
    assert list(s.queue_items) == ["ns/q", "q"]
    assert list(s.queue("q", "ns")) == ["i1", "i0"]  # push order
    assert scoped_key("", "q") == "q"


def test_failure_count_survives_automatic_retry_and_manual_retry_resets() -> None:
    q = {"queue_name": "q", "item_id": "i1", "namespace": "ns"}
    s = build(
        [
            push(),
            ev.QueueTaken(worker_name="w", **q),
            ev.QueueFailed(error="pipeline reached 'failed'", **q),
            ev.QueueItemRetry(**q),
            ev.QueueTaken(worker_name="w", **q),
            ev.QueueFailed(**q),
        ]
    )
    item = s.queue("q", "ns")["i1"]
    assert (item.status, item.failure_count) == (QueueItemStatus.FAILED, 2)
    s.apply(ev.QueueItemDead(**q))
    assert item.status == QueueItemStatus.DEAD
    s.apply(ev.QueueItemRetry(manual=True, **q))
    assert (item.status, item.failure_count, item.worker_name) == (QueueItemStatus.PENDING, 0, None)
    s.apply(ev.QueueCompleted(**q))
    assert item.status == QueueItemStatus.COMPLETED
    s.apply(ev.QueueDropped(**q))
    assert s.queue("q", "ns") == {}


def test_queue_item_prefix_lookup() -> None:
    s = build([push("aaa1"), push("aaa2"), push("bbb")])
    assert s.find_queue_item("q", "b", "ns").id == "bbb"
    assert s.find_queue_item("q", "zz", "ns") is None
    with pytest.raises(AmbiguousPrefixError):
        s.find_queue_item("q", "aaa", "ns")


def test_worker_stop_is_sticky_and_start_keeps_active_ids() -> None:
    started = ev.WorkerStarted(
        worker_name="w", project_root="/r", runbook_hash="h", queue_name="q", concurrency=1,
        namespace="ns",
    )  # fmt: skip
    s = build(
        [
            started,
            ev.WorkerItemDispatched(worker_name="w", item_id="i", pipeline_id="p9", namespace="ns"),
            ev.WorkerStopped(worker_name="w", namespace="ns"),
            ev.WorkerWake(worker_name="w", namespace="ns"),
            ev.WorkerStopped(worker_name="unknown", namespace="ns"),
        ]
    )
    w = s.get_worker("w", "ns")
    assert (w.status, w.active_pipeline_ids) == (WorkerStatus.STOPPED, ["p9"])
    assert "ns/unknown" not in s.workers
    s.apply(started)
    w = s.get_worker("w", "ns")
    assert (w.status, w.active_pipeline_ids) == (WorkerStatus.RUNNING, ["p9"])
    s.apply(ev.WorkerDeleted(worker_name="w", namespace="ns"))
    assert s.get_worker("w", "ns") is None


def test_a_cancel_request_is_kept_until_it_takes_effect() -> None:
    s = build([created()])
    s.apply(ev.PipelineCancel(id="p1"))
    assert s.pipelines["p1"].cancel_requested
    s.apply(ev.PipelineCancelling(id="p1"))
    assert (s.pipelines["p1"].cancel_requested, s.pipelines["p1"].cancelling) == (False, True)
    s = build([created(), ev.PipelineCancel(id="p1")])
    s.apply(ev.PipelineAdvanced(id="p1", step="cancelled", at_ms=5))
    assert not s.pipelines["p1"].cancel_requested
    s.apply(ev.PipelineCancel(id="p1"))  # too late: it has ended
    assert not s.pipelines["p1"].cancel_requested


def test_events_without_state_effect_change_nothing() -> None:
    s = build([created(), push()])
    before = s.to_json()
    for e in [
        ev.AgentWorking(agent_id="x"),
        ev.AgentIdle(agent_id="x"),
        ev.PipelineResume(id="p1", message="go"),
        ev.TimerStart(id="t"),
        ev.SystemShutdown(),
        ev.WorkerPollComplete(worker_name="w", items=[{"a": 1}]),
        ev.CommandRun(
            pipeline_id="p", pipeline_name="n", project_root="/", invoke_dir="/", namespace="",
            command="c",
        ),
        ev.StepStarted(pipeline_id="missing", step="a", at_ms=1),
        ev.QueueTaken(queue_name="q", item_id="missing", worker_name="w", namespace="ns"),
    ]:  # fmt: skip
        s.apply(e)
    assert s.to_json() == before


# --- timers ----------------------------------------------------------------------------------------


def test_timer_set_arms_rearms_and_start_or_cancel_disarm() -> None:
    s = build(
        [
            ev.TimerSet(id="liveness:p1", due_at_ms=1_000),
            ev.TimerSet(id="queue-retry:ns/q:i1", due_at_ms=5_000),
            ev.TimerSet(id="liveness:p1", due_at_ms=2_000),  # re-armed: the latest deadline wins
        ]
    )
    assert s.timers == {"liveness:p1": 2_000, "queue-retry:ns/q:i1": 5_000}
    s.apply(ev.TimerStart(id="liveness:p1"))  # fired
    assert s.timers == {"queue-retry:ns/q:i1": 5_000}
    s.apply(ev.TimerCancelled(id="queue-retry:ns/q:i1"))
    assert s.timers == {}
    before = s.to_json()
    for e in [ev.TimerStart(id="liveness:p1"), ev.TimerCancelled(id="never-armed")]:
        s.apply(e)  # clearing what is not armed is a no-op
    assert s.to_json() == before


def test_timer_table_survives_a_snapshot_round_trip() -> None:
    s = build([created(), ev.TimerSet(id="cooldown:p1:idle:0", due_at_ms=1_700_000_060_000)])
    data = s.to_dict()
    assert data["timers"] == {"cooldown:p1:idle:0": 1_700_000_060_000}
    again = MaterializedState.from_json(s.to_json())
    assert again == s and again.timers == {"cooldown:p1:idle:0": 1_700_000_060_000}
    assert "timers" not in MaterializedState().to_dict()  # an empty table is not written


def test_snapshot_from_before_timers_and_at_ms_loads_with_defaults() -> None:
    """What an older oj wrote: no ``timers`` table, no ``failed_at_ms``/``action_attempted_at_ms``."""
    old = {
        "pipelines": {
            "p1": {
                "id": "p1", "name": "n", "kind": "k", "namespace": "", "step": "a",
                "runbook_hash": "h", "cwd": "/", "created_at_ms": 5,
                "step_history": [{"name": "a", "started_at_ms": 5}],
                "action_attempts": {"idle:0": 1}, "updated_at_ms": 5,
            }
        },
        "queue_items": {
            "ns/q": {
                "i1": {
                    "id": "i1", "queue_name": "q", "namespace": "ns", "data": {},
                    "pushed_at_ms": 7, "status": "failed", "failure_count": 1, "error": "boom",
                }
            }
        },
    }  # fmt: skip
    s = MaterializedState.from_dict(old)
    assert s.timers == {}
    assert s.pipelines["p1"].action_attempted_at_ms == {}
    assert s.queue("q", "ns")["i1"].failed_at_ms == 0


def test_cooldown_starts_are_recorded_from_at_ms() -> None:
    q = {"queue_name": "q", "item_id": "i1", "namespace": "ns"}
    s = build(
        [
            created(),
            ev.PipelineActionAttempted(id="p1", key="idle:0", at_ms=150),
            ev.PipelineActionAttempted(id="p1", key="idle:0", at_ms=170),
            push(),
            ev.QueueFailed(error="x", at_ms=190, **q),
        ]
    )
    p = s.pipelines["p1"]
    assert (p.action_attempts, p.action_attempted_at_ms) == ({"idle:0": 2}, {"idle:0": 170})
    assert s.queue("q", "ns")["i1"].failed_at_ms == 190
    s.apply(ev.PipelineAdvanced(id="p1", step="b", at_ms=200))
    assert (p.action_attempts, p.action_attempted_at_ms) == ({}, {})


def test_every_reducer_is_registered_once_for_an_event_type() -> None:
    from oj_trio import reducers

    assert set(reducers.HANDLERS) <= set(ev.EVENT_TYPES)
    for noun in (
        reducers.pipelines, reducers.sessions, reducers.workspaces, reducers.runbooks,
        reducers.workers, reducers.queues, reducers.timers, reducers.crons,
    ):  # fmt: skip
        assert noun.HANDLERS, noun.__name__
        for event_type, reducer in noun.HANDLERS.items():
            assert reducers.HANDLERS[event_type] is reducer
    with pytest.raises(ValueError, match="two reducers for timer:set"):
        reducers.table(*reducers.timers.HANDLERS.items(), *reducers.timers.HANDLERS.items())


# --- worker items, resize, restart; item end times (queues and workers) -----------------------------


def worker_started(concurrency: int = 2, *, restart: bool = False) -> ev.WorkerStarted:
    return ev.WorkerStarted(
        worker_name="w", project_root="/r", runbook_hash="h", queue_name="q",
        concurrency=concurrency, namespace="ns", restart=restart,
    )  # fmt: skip


def dispatched(item: str, pipeline: str, worker: str = "w") -> ev.WorkerItemDispatched:
    return ev.WorkerItemDispatched(
        worker_name=worker, item_id=item, pipeline_id=pipeline, namespace="ns"
    )


def item_settled(pipeline: str) -> ev.WorkerItemSettled:
    return ev.WorkerItemSettled(worker_name="w", pipeline_id=pipeline, namespace="ns")


def test_item_dispatched_records_the_pipeline_and_its_item_once() -> None:
    s = build([worker_started(), dispatched("i1", "p1"), dispatched("i2", "p2")])
    before = s.to_json()
    s.apply(dispatched("i1", "p1"))  # a repeat changes nothing
    assert s.to_json() == before
    w = s.workers["ns/w"]
    assert (w.active_pipeline_ids, w.items) == (["p1", "p2"], {"p1": "i1", "p2": "i2"})
    s.apply(dispatched("i3", "p3", worker="unknown"))
    assert s.to_json() == before


def test_item_settled_releases_the_pipeline_and_its_item() -> None:
    s = build([worker_started(), dispatched("i1", "p1"), dispatched("i2", "p2")])
    s.apply(item_settled("p1"))
    w = s.workers["ns/w"]
    assert (w.active_pipeline_ids, w.items) == (["p2"], {"p2": "i2"})
    before = s.to_json()
    s.apply(item_settled("p1"))  # settling twice is a no-op
    s.apply(ev.WorkerItemSettled(worker_name="unknown", pipeline_id="p2", namespace="ns"))
    assert s.to_json() == before


def test_a_pipeline_end_frees_the_slot_but_keeps_its_item_until_settled() -> None:
    s = build([worker_started(), created("p1"), dispatched("i1", "p1")])
    s.apply(ev.PipelineAdvanced(id="p1", step="failed", at_ms=200))
    w = s.workers["ns/w"]
    assert (w.active_pipeline_ids, w.items) == ([], {"p1": "i1"})
    s.apply(item_settled("p1"))
    assert w.items == {}


def test_resize_wins_over_the_runbook_until_a_restart() -> None:
    s = build([worker_started(2), ev.WorkerResized(worker_name="w", concurrency=5, namespace="ns")])
    w = s.workers["ns/w"]
    assert (w.concurrency, w.resized_to, w.effective_concurrency) == (2, 5, 5)
    # stop and start keep it (durable until the next resize or restart)
    s.apply(ev.WorkerStopped(worker_name="w", namespace="ns"))
    s.apply(worker_started(3))
    w = s.workers["ns/w"]
    assert (w.concurrency, w.resized_to, w.effective_concurrency) == (3, 5, 5)
    s.apply(ev.WorkerResized(worker_name="w", concurrency=1, namespace="ns"))
    assert s.workers["ns/w"].effective_concurrency == 1
    s.apply(worker_started(3, restart=True))
    w = s.workers["ns/w"]
    assert (w.resized_to, w.effective_concurrency) == (None, 3)
    before = s.to_json()
    s.apply(ev.WorkerResized(worker_name="unknown", concurrency=9, namespace="ns"))
    s.apply(ev.WorkerResized(worker_name="w", concurrency=9, namespace="other"))
    assert s.to_json() == before


def test_a_resize_of_a_stopped_worker_is_kept_for_its_start() -> None:
    s = build(
        [
            worker_started(2),
            ev.WorkerStopped(worker_name="w", namespace="ns"),
            ev.WorkerResized(worker_name="w", concurrency=4, namespace="ns"),
        ]
    )
    w = s.workers["ns/w"]
    assert (w.status, w.effective_concurrency) == (WorkerStatus.STOPPED, 4)
    s.apply(worker_started(2))
    w = s.workers["ns/w"]
    assert (w.status, w.effective_concurrency) == (WorkerStatus.RUNNING, 4)


def test_a_worker_restart_keeps_its_running_pipelines_and_items() -> None:
    s = build([worker_started(2), dispatched("i1", "p1"), dispatched("i2", "p2")])
    s.apply(ev.WorkerStopped(worker_name="w", namespace="ns"))
    s.apply(worker_started(1, restart=True))
    w = s.workers["ns/w"]
    assert w.status == WorkerStatus.RUNNING
    assert (w.active_pipeline_ids, w.items) == (["p1", "p2"], {"p1": "i1", "p2": "i2"})
    assert w.concurrency == 1  # re-read from the runbook; the two running still count
    assert w.effective_concurrency - len(w.active_pipeline_ids) == -1


def test_completed_and_dead_items_record_when_they_ended_and_a_retry_clears_it() -> None:
    q = {"queue_name": "q", "item_id": "i1", "namespace": "ns"}
    s = build([push(), ev.QueueTaken(worker_name="w", **q), ev.QueueCompleted(at_ms=500, **q)])
    item = s.queue("q", "ns")["i1"]
    assert (item.status, item.ended_at_ms) == (QueueItemStatus.COMPLETED, 500)
    s.apply(push("i2"))
    q2 = {**q, "item_id": "i2"}
    s.apply(ev.QueueFailed(error="x", at_ms=600, **q2))
    dead = s.queue("q", "ns")["i2"]
    assert (dead.status, dead.ended_at_ms, dead.failed_at_ms) == (QueueItemStatus.FAILED, 0, 600)
    s.apply(ev.QueueItemDead(at_ms=610, **q2))
    assert (dead.status, dead.ended_at_ms) == (QueueItemStatus.DEAD, 610)
    s.apply(ev.QueueItemRetry(manual=True, **q2))
    assert (dead.status, dead.ended_at_ms, dead.failure_count) == (QueueItemStatus.PENDING, 0, 0)
    # events written before at_ms existed leave the end time unknown (0)
    s.apply(ev.QueueItemDead(**q2))
    assert dead.ended_at_ms == 0


def test_worker_items_resize_and_end_times_survive_a_snapshot_round_trip() -> None:
    q = {"queue_name": "q", "item_id": "i1", "namespace": "ns"}
    s = build(
        [
            worker_started(2),
            ev.WorkerResized(worker_name="w", concurrency=3, namespace="ns"),
            dispatched("i2", "p2"),
            push(),
            ev.QueueCompleted(at_ms=700, **q),
        ]
    )
    again = MaterializedState.from_json(s.to_json())
    assert again == s
    w = again.workers["ns/w"]
    assert (w.items, w.resized_to) == ({"p2": "i2"}, 3)
    assert again.queue("q", "ns")["i1"].ended_at_ms == 700


def test_snapshot_from_before_worker_items_resize_and_end_times_loads_with_defaults() -> None:
    """What an older oj wrote: worker records without ``items``/``resized_to``, queue items
    without ``ended_at_ms``."""
    old = {
        "workers": {
            "ns/w": {
                "name": "w", "namespace": "ns", "project_root": "/r", "runbook_hash": "h",
                "queue_name": "q", "concurrency": 2, "status": "running",
                "active_pipeline_ids": ["p1"],
            }
        },
        "queue_items": {
            "ns/q": {
                "i1": {
                    "id": "i1", "queue_name": "q", "namespace": "ns", "data": {"k": "v"},
                    "pushed_at_ms": 7, "status": "completed",
                }
            }
        },
    }  # fmt: skip
    s = MaterializedState.from_dict(old)
    w = s.workers["ns/w"]
    assert (w.items, w.resized_to, w.effective_concurrency) == ({}, None, 2)
    assert w.active_pipeline_ids == ["p1"]
    item = s.queue("q", "ns")["i1"]
    assert (item.status, item.ended_at_ms, item.failed_at_ms) == (QueueItemStatus.COMPLETED, 0, 0)
    # and it keeps working: a settle of the old pipeline, a resize
    s.apply(item_settled("p1"))
    s.apply(ev.WorkerResized(worker_name="w", concurrency=1, namespace="ns"))
    assert (w.active_pipeline_ids, w.effective_concurrency) == ([], 1)
