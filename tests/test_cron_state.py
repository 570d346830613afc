"""Reducers of the cron events (issue 11) and the crons table in snapshots: pure, no trio."""

from __future__ import annotations

from oj_trio import events as ev
from oj_trio.state import CronStatus, MaterializedState


def created(pid: str) -> ev.PipelineCreated:
    return ev.PipelineCreated(
        id=pid,
        kind="job",
        name=pid,
        runbook_hash="h",
        cwd="/p",
        initial_step="run",
        created_at_epoch_ms=1,
        namespace="ns",
    )


def fired(pid: str, at: int, *, manual: bool = False, name: str = "c") -> ev.CronFired:
    return ev.CronFired(
        cron_name=name,
        namespace="ns",
        scheduled_at_ms=at,
        pipeline_id=pid,
        manual=manual,
        at_ms=at + 5,
        project_root="/p",
        runbook_hash="h2",
        schedule="every 1m",
    )


def test_start_fire_skip_stop_and_start_again() -> None:
    s = MaterializedState()
    s.apply(
        ev.CronStarted(
            cron_name="c",
            namespace="ns",
            project_root="/p",
            runbook_hash="h",
            schedule="every 1m",
            at_ms=100,
        )
    )
    c = s.crons["ns/c"]
    assert (c.status, c.started_at_ms, c.last_scheduled_at_ms) == (CronStatus.RUNNING, 100, 0)
    for n, pid in enumerate(("p1", "p2", "p3")):
        s.apply(fired(pid, 1000 * (n + 1)))
        s.apply(created(pid))
    s.apply(ev.PipelineAdvanced(id="p1", step="done", at_ms=9))
    s.apply(ev.PipelineDeleted(id="p2"))
    s.apply(fired("p4", 9000, manual=True))
    # ended and deleted pipelines are dropped at the next fire; a manual fire keeps the phase
    assert c.pipeline_ids == ["p3", "p4"]
    assert (c.fires, c.last_fire_at_ms, c.last_scheduled_at_ms) == (4, 9005, 3000)
    s.apply(
        ev.CronSkipped(
            cron_name="c", namespace="ns", scheduled_at_ms=4000, reason="missed", count=3, at_ms=7
        )
    )
    assert (c.skipped, c.last_scheduled_at_ms) == (3, 4000)
    s.apply(ev.CronStopped(cron_name="c", namespace="ns"))
    assert c.status == CronStatus.STOPPED
    restored = MaterializedState.from_json(s.to_json())
    assert restored == s
    s.apply(
        ev.CronStarted(
            cron_name="c",
            namespace="ns",
            project_root="/p",
            runbook_hash="h3",
            schedule="every 2m",
            at_ms=500,
        )
    )
    again = s.crons["ns/c"]
    assert (again.status, again.runbook_hash, again.started_at_ms) == (
        CronStatus.RUNNING,
        "h3",
        500,
    )
    assert (again.fires, again.skipped, again.pipeline_ids) == (4, 3, ["p3", "p4"])
    assert again.last_scheduled_at_ms == 0  # a fresh phase


def test_a_fire_of_a_cron_never_started_leaves_a_stopped_record() -> None:
    s = MaterializedState()
    s.apply(fired("p1", 1000, manual=True, name="once"))
    c = s.crons["ns/once"]
    assert (c.status, c.fires, c.runbook_hash, c.schedule) == (
        CronStatus.STOPPED,
        1,
        "h2",
        "every 1m",
    )
    # events about crons that are gone are ignored
    s.apply(ev.CronStopped(cron_name="gone", namespace="ns"))
    s.apply(ev.CronSkipped(cron_name="gone", scheduled_at_ms=1, reason="missed", at_ms=1))
    assert set(s.crons) == {"ns/once"}


def test_a_snapshot_without_the_crons_table_loads() -> None:
    data = MaterializedState().to_dict()
    data.pop("crons", None)
    assert MaterializedState.from_dict(data).crons == {}
