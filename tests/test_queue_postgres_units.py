"""Units of the shared-queue backend that need no database: where a project's queues live,
how a URL is shown, how long a worker backs off."""

from __future__ import annotations

from pathlib import Path

import pytest

from oj_trio.errors import OjError
from oj_trio.project import queue_url

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")

from oj_trio.queues.pg_client import BACKOFF_MAX, PgClient, redact  # noqa: E402


def test_queue_url_env_wins_over_config_and_neither_means_the_wal(tmp_path: Path) -> None:
    assert queue_url(tmp_path, {}) is None
    (tmp_path / ".oj").mkdir()
    (tmp_path / ".oj" / "config.toml").write_text('[queues]\nurl = "postgresql:///a"\n')
    assert queue_url(tmp_path, {}) == "postgresql:///a"
    assert queue_url(tmp_path, {"OJ_QUEUE_URL": "postgresql:///b"}) == "postgresql:///b"
    assert queue_url(tmp_path, {"OJ_QUEUE_URL": ""}) == "postgresql:///a"


@pytest.mark.parametrize("text", ['[queues]\nurl = ""\n', "queues = 1\n", "[project]\n"])
def test_queue_url_without_a_url_means_the_wal(tmp_path: Path, text: str) -> None:
    (tmp_path / ".oj").mkdir()
    (tmp_path / ".oj" / "config.toml").write_text(text)
    assert queue_url(tmp_path, {}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("not toml [", "config.toml: "), ("[queues]\nurl = 3\n", "[queues] url must be a string")],
)
def test_a_malformed_config_is_an_error_not_a_private_queue(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / ".oj").mkdir()
    (tmp_path / ".oj" / "config.toml").write_text(text)
    with pytest.raises(OjError) as raised:
        queue_url(tmp_path, {})
    assert message in str(raised.value) and "\n" not in str(raised.value)
    # The daemon's environment still wins without reading the file.
    assert queue_url(tmp_path, {"OJ_QUEUE_URL": "postgresql:///b"}) == "postgresql:///b"


def test_redact_hides_the_password_only() -> None:
    assert redact("postgresql://oj:s3cret@db:5432/oj") == "postgresql://oj:***@db:5432/oj"
    assert redact("postgresql://oj@db/oj") == "postgresql://oj@db/oj"
    assert redact("postgresql:///oj?host=/tmp/x") == "postgresql:///oj?host=/tmp/x"


def test_backoff_doubles_up_to_its_ceiling() -> None:
    client = PgClient(
        "postgresql:///x",
        owner="h:1",
        lease_ms=30000,
        poll_seconds=5,
        on_wake=lambda _q: None,
        on_lost=lambda _p: None,
    )
    delays = []
    for failures in range(12):
        client._failures = failures
        delays.append(client.backoff)
    assert delays[0] == 0
    assert delays[1:4] == [0.2, 0.4, 0.8]
    assert delays == sorted(delays) and delays[-1] == BACKOFF_MAX
