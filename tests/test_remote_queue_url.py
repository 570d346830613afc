"""Which database a project's queues live in (RemoteQueues.url): asked twice per job, so the
answer is kept while `.oj/config.toml` keeps its stamp — and never kept past a change."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from oj_trio.errors import OjError
from oj_trio.runtime import remote_queues
from oj_trio.runtime.remote_queues import RemoteQueues


def make(env: dict[str, str] | None = None) -> RemoteQueues:
    ctx = cast(Any, SimpleNamespace(env=env or {}))
    return RemoteQueues(ctx, on_wake=cast(Any, None), on_lost=lambda _id: None)


def write_config(root: Path, text: str, *, age: float = 0.0) -> None:
    config = root / ".oj" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    if age:
        then = time.time() - age
        os.utime(config, (then, then))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = remote_queues.queue_url

    def counting(root: Path, env: Any) -> str | None:
        seen.append(root)
        return real(root, env)

    monkeypatch.setattr(remote_queues, "queue_url", counting)
    return seen


def test_no_config_means_the_wal_and_is_read_once(tmp_path: Path, reads: list[Path]) -> None:
    queues = make()
    assert queues.url(str(tmp_path)) is None
    assert queues.url(str(tmp_path)) is None
    assert len(reads) == 1


def test_a_settled_config_is_read_once(tmp_path: Path, reads: list[Path]) -> None:
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/a"\n', age=60)
    queues = make()
    assert queues.url(str(tmp_path)) == "postgresql://db/a"
    assert queues.url(str(tmp_path)) == "postgresql://db/a"
    assert len(reads) == 1


def test_a_fresh_config_is_read_every_time(tmp_path: Path, reads: list[Path]) -> None:
    queues = make()
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/a"\n')
    assert queues.url(str(tmp_path)) == "postgresql://db/a"
    # Same size, same second: only a fresh read can tell.
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/b"\n')
    assert queues.url(str(tmp_path)) == "postgresql://db/b"
    assert len(reads) == 2


def test_a_change_is_seen_whatever_its_age(tmp_path: Path, reads: list[Path]) -> None:
    queues = make()
    assert queues.url(str(tmp_path)) is None
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/a"\n', age=60)
    assert queues.url(str(tmp_path)) == "postgresql://db/a"
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/b"\n', age=30)
    assert queues.url(str(tmp_path)) == "postgresql://db/b"
    (tmp_path / ".oj" / "config.toml").unlink()
    assert queues.url(str(tmp_path)) is None


def test_a_malformed_config_is_an_error_every_time(tmp_path: Path) -> None:
    write_config(tmp_path, "[queues\n", age=60)
    queues = make()
    for _ in range(2):
        with pytest.raises(OjError, match=r"config\.toml"):
            queues.url(str(tmp_path))


def test_the_environment_wins(tmp_path: Path, reads: list[Path]) -> None:
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/a"\n', age=60)
    queues = make({"OJ_QUEUE_URL": "postgresql://env/q"})
    assert queues.url(str(tmp_path)) == "postgresql://env/q"
    assert reads == []


def test_a_rewrite_that_puts_the_old_mtime_back_is_seen(tmp_path: Path, reads: list[Path]) -> None:
    write_config(tmp_path, '[queues]\nurl = "postgresql://db/a"\n', age=60)
    queues = make()
    assert queues.url(str(tmp_path)) == "postgresql://db/a"
    config = tmp_path / ".oj" / "config.toml"
    before = config.stat()
    while time.time_ns() - before.st_ctime_ns < 50_000_000:  # past the file clock's tick
        time.sleep(0.01)
    config.write_text('[queues]\nurl = "postgresql://db/b"\n')  # same size, same inode
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))  # as cp -p / touch -r do
    assert queues.url(str(tmp_path)) == "postgresql://db/b"
