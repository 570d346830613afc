"""docs/operations.md, "Backing up and restoring": the live copy, WAL first and snapshot second,
restores every acknowledged change even when a snapshot (and the WAL compaction after it) falls
between the two copies — the case that makes the order matter."""

from __future__ import annotations

import shutil
from pathlib import Path

from blackbox import OjEnv

RUNBOOK = """
queue "jobs" {
  type = "persisted"
  vars = ["n"]
}
"""


def _numbers(env: OjEnv) -> list[int]:
    return sorted(int(item["data"]["n"]) for item in env.json("queue", "items", "jobs"))


def test_a_live_copy_wal_first_then_snapshot_restores_everything(ojenv: OjEnv) -> None:
    ojenv.runbook("q.hcl", RUNBOOK)
    for n in range(3):
        ojenv.ok("queue", "push", "jobs", "--var", f"n={n}")
    ojenv.ok("daemon", "restart")  # a snapshot holds 0-2, the WAL starts empty
    for n in range(3, 6):
        ojenv.ok("queue", "push", "jobs", "--var", f"n={n}")

    backup = ojenv.root / "b"
    (backup / "wal").mkdir(parents=True)
    backup.chmod(0o700)
    # 1. the WAL (3-5 after the snapshot of 0-2)
    shutil.copy(ojenv.state / "wal" / "events.wal", backup / "wal" / "events.wal")
    # meanwhile: more pushes, and a stop, whose snapshot covers 0-7 and empties the WAL
    for n in range(6, 8):
        ojenv.ok("queue", "push", "jobs", "--var", f"n={n}")
    ojenv.ok("daemon", "stop")
    assert (ojenv.state / "wal" / "events.wal").stat().st_size == 0
    # 2. the snapshot
    shutil.copy(ojenv.state / "snapshot.json", backup / "snapshot.json")

    restored = OjEnv.__new__(OjEnv)
    restored.__dict__.update(ojenv.__dict__)
    restored.env = {**ojenv.env, "OJ_STATE_DIR": str(backup)}
    try:
        restored.ok("daemon", "start")
        assert _numbers(restored) == list(range(8))
        log = (backup / "daemon.log").read_text()
        assert "Failed to start" not in log
    finally:
        restored.stop()


def test_the_documented_copy_commands_are_the_ones_tested() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    wal, snapshot = (
        "cp ~/.local/state/oj/wal/events.wal ~/backups/oj-live/wal/",
        "cp ~/.local/state/oj/snapshot.json ~/backups/oj-live/",
    )
    assert wal in page and snapshot in page
    assert page.index(wal) < page.index(snapshot), "the WAL must be copied before the snapshot"
