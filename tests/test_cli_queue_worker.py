"""`oj queue …` and `oj worker …` on the client side, without a daemon.

Pins down:
- argument parsing: every usage error exits 2 (argparse's own, and the "exactly one of" rules
  the commands check themselves);
- `oj queue push` item data (reference §3.2): JSON object + `--var` (vars win), every client-side
  error message, and `--file` batches (blank lines skipped, `--var` merged into every line, every
  error naming its line, an empty file refused);
- the requests each command sends match the wire shapes in `oj_trio.messages`
  (`protocol.parse_request` is the daemon's own check), and which are actions and which queries;
- the text of every printer (`queue list|items|retry|prune`, `worker stop|list`, `oj status`'s
  workers and queues);
- through the real `oj`: a client-side error is one `Error:` line with the right exit status and
  comes before any connection: no daemon is started and nothing is sent.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from blackbox import OjEnv

from oj_trio import cli, protocol
from oj_trio.commands import queue as queue_commands
from oj_trio.commands import status as status_commands
from oj_trio.commands import worker as worker_commands
from oj_trio.commands.queue import (
    NO_DATA_MESSAGE,
    build_items,
    item_line,
    prune_lines,
    push_message,
    queue_line,
    read_items_file,
    retry_lines,
    sort_items,
)
from oj_trio.commands.worker import select_workers, stop_lines, workers_table
from oj_trio.errors import OjError, UsageError


def _parse(*argv: str) -> argparse.Namespace:
    args = cli.get_parser().parse_args(list(argv))
    for name, default in (("output", "text"), ("project", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


# -- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker", "resize", "w", "0"], "argument N: must be at least 1: 0"),
        (["worker", "resize", "w", "-3"], "argument N: must be at least 1: -3"),
        (["worker", "resize", "w", "two"], "argument N: invalid number: 'two'"),
        (["worker", "resize", "w"], "the following arguments are required: N"),
        (["worker", "start"], "the following arguments are required: name"),
        (["queue", "push"], "the following arguments are required: queue"),
        (["queue", "push", "q", "{}", "extra"], "unrecognized arguments: extra"),
        (["queue", "drop", "q"], "the following arguments are required: ITEM_ID"),
        (["queue", "items"], "the following arguments are required: queue"),
        (["queue"], "the following arguments are required: SUBCOMMAND"),
        (["worker", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_argparse_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.get_parser().parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_parsed_arguments() -> None:
    args = _parse("queue", "push", "jobs", '{"a": 1}', "--var", "b=2", "--var", "c=3")
    assert (args.queue, args.json, args.var, args.file) == (
        "jobs",
        '{"a": 1}',
        ["b=2", "c=3"],
        None,
    )
    args = _parse("queue", "push", "jobs", "--file", "-", "--project", "p")
    assert (args.json, args.file, args.project) == (None, "-", "p")
    args = _parse("queue", "retry", "jobs", "--all-dead", "-o", "json")
    assert (args.item_id, args.all_dead, args.output) == (None, True, "json")
    args = _parse("queue", "prune", "jobs", "--all", "--dry-run")
    assert (args.all, args.dry_run) == (True, True)
    args = _parse("queue", "items", "jobs", "--status", "dead")
    assert args.status == "dead"
    assert _parse("worker", "resize", "w", "4").concurrency == 4
    assert _parse("worker", "stop", "--all").name is None


class _NoClient:
    def __init__(self) -> None:
        raise AssertionError("a usage error must come before the daemon is asked")


@pytest.mark.parametrize(
    ("module", "argv", "message"),
    [
        (queue_commands, ["queue", "retry", "q"], "specify either an item ID or --all-dead"),
        (queue_commands, ["queue", "retry", "q", "ab", "--all-dead"], "either an item ID"),
        (worker_commands, ["worker", "stop"], "specify either a worker name or --all"),
        (worker_commands, ["worker", "stop", "w", "--all"], "specify either a worker name"),
        (queue_commands, ["queue", "push", "q", "{}", "--file", "x"], "not both"),
        (queue_commands, ["queue", "push", "q", "--var", "oops"], "invalid input format 'oops'"),
    ],
)
def test_command_usage_errors_exit_2_before_any_request(
    monkeypatch: pytest.MonkeyPatch, module: Any, argv: list[str], message: str
) -> None:
    monkeypatch.setattr(module, "Client", _NoClient)
    args = _parse(*argv)
    with pytest.raises(UsageError, match=message) as info:
        args.func(args)
    assert info.value.exit_code == 2


# -- push: one item --------------------------------------------------------------------------------


def test_push_json_object() -> None:
    assert build_items('{"a": "x", "n": 3, "o": {"k": [1]}}', [], None) == (
        [{"a": "x", "n": 3, "o": {"k": [1]}}],
        [],
    )


def test_push_vars_override_json_fields() -> None:
    items, lines = build_items('{"a": "json", "b": "kept"}', ["a=var", "c=new", "c=later"], None)
    assert items == [{"a": "var", "b": "kept", "c": "later"}] and lines == []


def test_push_vars_alone() -> None:
    assert build_items(None, ["branch=main", "url=http://x/?q=1"], None) == (
        [{"branch": "main", "url": "http://x/?q=1"}],
        [],
    )


@pytest.mark.parametrize(
    ("json_arg", "words", "message"),
    [
        (None, [], NO_DATA_MESSAGE),
        ("{}", [], NO_DATA_MESSAGE),
        ('{"a":', [], "invalid JSON data: Expecting value at line 1 column 6"),
        ('{\n"a" 1}', [], "invalid JSON data: Expecting ':' delimiter at line 2 column 5"),
        ("", [], "invalid JSON data: Expecting value at line 1 column 1"),
        ('{"a": NaN}', [], "invalid JSON data: NaN is not a JSON value"),
        ("[1, 2]", ["a=1"], "JSON data must be an object"),
        ('"text"', [], "JSON data must be an object"),
        ("null", [], "JSON data must be an object"),
    ],
)
def test_push_data_errors(json_arg: str | None, words: list[str], message: str) -> None:
    with pytest.raises(OjError) as info:
        build_items(json_arg, words, None)
    assert str(info.value) == message
    assert info.value.exit_code == 1 and not isinstance(info.value, UsageError)


@pytest.mark.parametrize("word", ["novalue", "=v", ""])
def test_push_bad_var_is_a_usage_error(word: str) -> None:
    with pytest.raises(UsageError) as info:
        build_items('{"a": 1}', ["ok=1", word], None)
    assert str(info.value) == f"invalid input format '{word}': must be key=value"


def test_push_json_with_file_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="either as a JSON argument or with --file, not both"):
        build_items("{}", [], '{"a": 1}\n')


# -- push: a file of items -------------------------------------------------------------------------


def test_batch_one_object_per_line_blank_lines_skipped() -> None:
    text = '{"a": "1"}\n\n   \n{"a": "2", "n": 5}\r\n{"a": "3"}'
    items, lines = build_items(None, [], text)
    assert items == [{"a": "1"}, {"a": "2", "n": 5}, {"a": "3"}]
    assert lines == [1, 4, 5]


def test_batch_vars_merge_into_every_line_and_win() -> None:
    items, lines = build_items(None, ["env=prod", "a=forced"], '{"a": "1"}\n{}\n{"b": "2"}\n')
    assert items == [
        {"a": "forced", "env": "prod"},
        {"a": "forced", "env": "prod"},
        {"b": "2", "env": "prod", "a": "forced"},
    ]
    assert lines == [1, 2, 3]


def test_batch_lines_end_at_newline_only() -> None:
    """U+2028 is a line break to str.splitlines but may sit inside a JSON string."""
    items, lines = build_items(None, [], '{"t": "a\u2028b"}\n{"t": "c"}\n')
    assert items == [{"t": "a\u2028b"}, {"t": "c"}] and lines == [1, 2]


@pytest.mark.parametrize(
    ("text", "words", "message"),
    [
        ('{"a": 1}\n\n{"a":\n', [], "line 3: invalid JSON data: Expecting value at column 6"),
        ('{"a": 1}\n[1]\n', [], "line 2: JSON data must be an object"),
        ('{"a": 1}\n{}\n', [], f"line 2: {NO_DATA_MESSAGE}"),
        (
            "oops\n{}\n7\n",
            [],
            "line 1: invalid JSON data: Expecting value at column 1 (and 2 more bad lines)",
        ),
        ('{"a": 1}\n[]\n{"b"}\n', [], "line 2: JSON data must be an object (and 1 more bad line)"),
        ("", [], "no items in the file: expected one JSON object per line"),
        ("\n  \n\r\n", ["a=1"], "no items in the file: expected one JSON object per line"),
    ],
)
def test_batch_errors_name_their_line(text: str, words: list[str], message: str) -> None:
    with pytest.raises(OjError) as info:
        build_items(None, words, text)
    assert str(info.value) == message
    assert info.value.exit_code == 1


def test_batch_empty_stdin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\n\n")))
    text, source = read_items_file("-")
    with pytest.raises(OjError, match=r"^no items in stdin: expected one JSON object per line$"):
        build_items(None, [], text, source)


def test_read_items_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes('{"é": "1"}\n'.encode())
    assert read_items_file(str(path)) == ('{"é": "1"}\n', str(path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"a": "b"}\n')))
    assert read_items_file("-") == ('{"a": "b"}\n', "stdin")
    path.write_bytes(b'{"a": "1"}\n{"a": "2"}\n{"a": "\xff"}\n')
    with pytest.raises(OjError, match=r"^line 3: not valid UTF-8 text$"):
        read_items_file(str(path))
    with pytest.raises(FileNotFoundError):
        read_items_file(str(tmp_path / "missing"))


def test_push_messages() -> None:
    assert (
        push_message("jobs", ["0f3c-uuid"], batch=False)
        == "Pushed item '0f3c-uuid' to queue 'jobs'"
    )
    assert push_message("jobs", ["a", "b", "c"], batch=True) == "Pushed 3 items to queue 'jobs'"
    assert push_message("jobs", ["a"], batch=True) == "Pushed 1 item to queue 'jobs'"


# -- requests on the wire --------------------------------------------------------------------------


class _FakeClient:
    """Records what a command sends; answers with the canned reply for its request type."""

    sent: ClassVar[list[tuple[dict[str, Any], bool]]] = []
    replies: ClassVar[dict[str, dict[str, Any]]] = {}

    def call(self, message: Mapping[str, Any], *, action: bool = False) -> Mapping[str, Any]:
        protocol.parse_request(dict(message))  # the daemon's own check of the wire shapes
        self.sent.append((dict(message), action))
        tag = message["query"]["type"] if message["type"] == "Query" else message["type"]
        return self.replies[tag]

    def query(self, tag: str, **fields: object) -> Mapping[str, Any]:
        return self.call(protocol.query(tag, **fields))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[type[_FakeClient]]:
    (tmp_path / ".oj").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OJ_NAMESPACE", raising=False)
    _FakeClient.sent = []
    _FakeClient.replies = {}
    for module in (queue_commands, worker_commands, status_commands):
        monkeypatch.setattr(module, "Client", _FakeClient)
    yield _FakeClient


def _run(*argv: str) -> int:
    args = _parse(*argv)
    code: int = args.func(args)
    return code


def test_push_one_item_request(
    fake: type[_FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.replies["QueuePush"] = {"type": "QueuePushed", "queue": "jobs", "item_ids": ["abc-123"]}
    assert _run("queue", "push", "jobs", '{"a": 1}', "--var", "b=x", "--project", "proj") == 0
    ((request, action),) = fake.sent
    assert action is True
    assert request == {
        "type": "QueuePush",
        "project_root": str(tmp_path.resolve()),
        "namespace": "proj",
        "queue": "jobs",
        "data": {"a": 1, "b": "x"},
    }
    assert capsys.readouterr().out == "Pushed item 'abc-123' to queue 'jobs'\n"


def test_push_batch_request(
    fake: type[_FakeClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "items.jsonl").write_text('{"a": "1"}\n\n{"a": "2"}\n')
    fake.replies["QueuePush"] = {"type": "QueuePushed", "queue": "jobs", "item_ids": ["x", "y"]}
    assert _run("queue", "push", "jobs", "--file", "items.jsonl", "--var", "k=v") == 0
    ((request, action),) = fake.sent
    assert action is True
    assert request["items"] == [{"a": "1", "k": "v"}, {"a": "2", "k": "v"}]
    assert request["lines"] == [1, 3]
    assert "data" not in request
    assert request["namespace"] == tmp_path.name
    assert capsys.readouterr().out == "Pushed 2 items to queue 'jobs'\n"


def test_push_bad_file_sends_nothing(fake: type[_FakeClient], tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text('{"a": "1"}\n{"a": \n')
    with pytest.raises(OjError, match=r"^line 2: invalid JSON data"):
        _run("queue", "push", "jobs", "--file", "items.jsonl")
    assert fake.sent == []


def test_queue_actions_requests(
    fake: type[_FakeClient], capsys: pytest.CaptureFixture[str]
) -> None:
    fake.replies.update(
        {
            "QueueDrop": {"type": "QueueDropped", "queue": "q", "item_id": "0123456789ab"},
            "QueueRetry": {"type": "QueueRetried", "queue": "q", "item_ids": ["aaaaaaaaXX"]},
            "QueuePrune": {
                "type": "QueuePruned",
                "queue": "q",
                "pruned": [{"id": "bbbbbbbbYY", "status": "dead"}],
                "skipped": 2,
            },
        }
    )
    _run("queue", "drop", "q", "0123")
    _run("queue", "retry", "q", "aaaa")
    _run("queue", "retry", "q", "--all-dead")
    _run("queue", "prune", "q", "--all", "--dry-run")
    sent = [(r["type"], {k: v for k, v in r.items() if k not in ("type", "project_root")}, a)
            for r, a in fake.sent]  # fmt: skip
    ns = sent[0][1]["namespace"]
    assert sent == [
        ("QueueDrop", {"namespace": ns, "queue": "q", "item_id": "0123"}, True),
        ("QueueRetry", {"namespace": ns, "queue": "q", "item_id": "aaaa"}, True),
        ("QueueRetry", {"namespace": ns, "queue": "q", "all_dead": True}, True),
        ("QueuePrune", {"namespace": ns, "queue": "q", "all": True, "dry_run": True}, True),
    ]
    assert capsys.readouterr().out.splitlines() == [
        "Dropped item 01234567 from queue q",
        "Retrying item aaaaaaaa in queue q",
        "Retrying item aaaaaaaa in queue q",
        "Would prune bbbbbbbb (dead)",
        "",
        "1 item(s) would be pruned, 2 skipped",
    ]
    _run("queue", "prune", "q", "-o", "json")
    assert json.loads(capsys.readouterr().out) == [{"id": "bbbbbbbbYY", "status": "dead"}]
    assert fake.sent[-1][0].get("all") is None and fake.sent[-1][0].get("dry_run") is None


def test_queue_queries(fake: type[_FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.replies["ListQueues"] = {"type": "Queues", "queues": []}
    fake.replies["ListQueueItems"] = {"type": "QueueItems", "queue": "q", "items": []}
    for output in ("text", "json"):
        _run("queue", "list", "-o", output)
        _run("queue", "items", "q", "--status", "Dead", "-o", output)
    assert capsys.readouterr().out.splitlines() == [
        "No queues found",
        "No items in queue 'q'",
        "No queues found",
        "No items in queue 'q'",
    ]
    assert all(action is False for _, action in fake.sent)
    assert fake.sent[1][0]["query"]["status"] == "dead"
    items = [_item("old", 1), _item("new", 3), _item("mid", 2)]
    fake.replies["ListQueueItems"]["items"] = items
    _run("queue", "items", "q", "-o", "json")
    assert [i["id"] for i in json.loads(capsys.readouterr().out)] == ["new", "mid", "old"]
    assert "status" not in fake.sent[-1][0]["query"]


def test_worker_requests(fake: type[_FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    fake.replies.update(
        {
            "WorkerStart": {"type": "WorkerStarted", "worker": "w", "already_running": False},
            "WorkerStop": {"type": "WorkersStopped", "stopped": ["a", "b"]},
            "WorkerRestart": {"type": "WorkerStarted", "worker": "w", "already_running": False},
            "WorkerResize": {
                "type": "WorkerResized",
                "worker": "w",
                "concurrency": 4,
                "previous": 2,
            },
            "ListWorkers": {"type": "Workers", "workers": []},
        }
    )
    _run("worker", "start", "w", "--project", "p")
    fake.replies["WorkerStart"]["already_running"] = True
    _run("worker", "start", "w", "--project", "p")
    _run("worker", "stop", "--all", "--project", "p")
    _run("worker", "restart", "w", "--project", "p")
    _run("worker", "resize", "w", "4", "--project", "p")
    _run("worker", "list", "-o", "json")
    assert [(r["type"], a) for r, a in fake.sent] == [
        ("WorkerStart", True),
        ("WorkerStart", True),
        ("WorkerStop", True),
        ("WorkerRestart", True),
        ("WorkerResize", True),
        ("Query", False),
    ]
    assert fake.sent[2][0] == {"type": "WorkerStop", "namespace": "p", "all": True}
    assert fake.sent[4][0] == {
        "type": "WorkerResize",
        "namespace": "p",
        "worker": "w",
        "concurrency": 4,
    }
    assert capsys.readouterr().out.splitlines() == [
        "Worker 'w' started",
        "Worker 'w' already running (woken)",
        "Worker 'a' stopped",
        "Worker 'b' stopped",
        "Worker 'w' restarted",
        "Worker 'w' resized: 2 → 4",
        "[]",
    ]
    _run("worker", "list")
    assert capsys.readouterr().out == "No workers found\n"


# -- printers --------------------------------------------------------------------------------------


def _queue(**kw: Any) -> dict[str, Any]:
    base = {
        "name": "merge",
        "namespace": "proj",
        "type": "persisted",
        "pending": 3,
        "active": 1,
        "failed": 0,
        "dead": 2,
        "completed": 9,
        "workers": ["merger", "fixer"],
        "error": None,
    }
    return {**base, **kw}


def test_queue_line() -> None:
    assert (
        queue_line(_queue()) == "merge\tpersisted\tpending=3 active=1 dead=2\tworkers=merger, fixer"
    )
    line = queue_line(_queue(type="external", workers=[], error="list exited 2\nboom"))
    assert (
        line == "merge\texternal\tpending=3 active=1 dead=2\tworkers=-\terror: list exited 2\\nboom"
    )
    # a shared (PostgreSQL) queue that cannot be read: its counts are unknown, not zero
    away = queue_line(_queue(pending=0, active=0, dead=0, error="unreachable: refused"))
    assert away == (
        "merge\tpersisted\tpending=? active=? dead=?\tworkers=merger, fixer"
        "\terror: unreachable: refused"
    )


def _item(item_id: str, pushed: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": item_id,
        "queue": "q",
        "namespace": "proj",
        "status": "pending",
        "data": {},
        "worker_name": None,
        "pushed_at_epoch_ms": pushed,
        "failure_count": 0,
        "error": None,
    }
    return {**base, **kw}


def test_item_line_and_order() -> None:
    item = _item(
        "0123456789abcdef", 1, status="active", worker_name="w1", data={"b": "2", "a": "x\ny"}
    )
    assert item_line(item) == "01234567\tactive\tworker=w1\tb=2 a=x\\ny"
    assert item_line(_item("abcdefgh-1", 1)) == "abcdefgh\tpending\tworker=-\t"
    ordered = sort_items([_item("a", 5), _item("b", 9), _item("c", 1)])
    assert [i["id"] for i in ordered] == ["b", "a", "c"]
    # one batch: one timestamp, listed in push order by the daemon -> the last pushed first
    batch = [_item("first", 1), _item("b1", 7), _item("b2", 7), _item("b3", 7)]
    assert [i["id"] for i in sort_items(batch)] == ["b3", "b2", "b1", "first"]


def test_retry_lines() -> None:
    assert retry_lines("q", ["0123456789"], all_dead=False) == ["Retrying item 01234567 in queue q"]
    assert retry_lines("q", ["aaaaaaaa1", "bbbbbbbb2"], all_dead=True) == [
        "Retrying item aaaaaaaa in queue q",
        "Retrying item bbbbbbbb in queue q",
    ]
    assert retry_lines("q", [], all_dead=True) == ["No dead items in queue 'q'"]


def test_prune_lines() -> None:
    pruned = [_item("aaaaaaaa1", 1, status="completed"), _item("bbbbbbbb2", 1, status="dead")]
    assert prune_lines(pruned, 3, dry_run=False) == [
        "Pruned aaaaaaaa (completed)",
        "Pruned bbbbbbbb (dead)",
        "",
        "2 item(s) pruned, 3 skipped",
    ]
    assert prune_lines([], 0, dry_run=True) == ["0 item(s) would be pruned, 0 skipped"]


def test_stop_lines() -> None:
    assert stop_lines(["w"], "w") == ["Worker 'w' stopped"]
    assert stop_lines(["a", "b"], None) == ["Worker 'a' stopped", "Worker 'b' stopped"]
    assert stop_lines([], None) == ["No running workers"]
    assert stop_lines([], "w") == ["Worker 'w' was not running"]


def _worker(name: str, namespace: str = "", **kw: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "namespace": namespace,
        "queue": "jobs",
        "status": "running",
        "active": 1,
        "concurrency": 2,
    }
    return {**base, **kw}


def test_worker_table() -> None:
    assert workers_table([]) == "No workers found"
    workers = select_workers([_worker("zeta"), _worker("alpha", status="stopped", active=0)], None)
    assert workers_table(workers).splitlines() == [
        "NAME   QUEUE  STATUS   ACTIVE  CONCURRENCY",
        "alpha  jobs   stopped  0       2",
        "zeta   jobs   running  1       2",
    ]
    mixed = [_worker("b", "proj"), _worker("a", "other"), _worker("a", "proj")]
    assert workers_table(select_workers(mixed, None)).splitlines() == [
        "NAME  PROJECT  QUEUE  STATUS   ACTIVE  CONCURRENCY",
        "a     other    jobs   running  1       2",
        "a     proj     jobs   running  1       2",
        "b     proj     jobs   running  1       2",
    ]
    assert [w["name"] for w in select_workers(mixed, "proj")] == ["a", "b"]


# (`oj status` text: tests/test_status_overview.py)


# -- through the real `oj`: errors before any connection -------------------------------------------


_CLIENT_ERRORS = [
    (["queue", "push", "jobs"], None, 1, f"Error: {NO_DATA_MESSAGE}"),
    (["queue", "push", "jobs", "[1]"], None, 1, "Error: JSON data must be an object"),
    (["queue", "push", "jobs", "{"], None, 1, "Error: invalid JSON data: Expecting property"),
    (["queue", "push", "jobs", "--var", "x"], None, 2, "Error: invalid input format 'x'"),
    (["queue", "push", "jobs", "{}", "--file", "-"], "", 2, "Error: pass the item data either"),
    (
        ["queue", "push", "jobs", "--file", "-"],
        '{"a":1}\n\nnope\n',
        1,
        "Error: line 3: invalid JSON",
    ),
    (["queue", "push", "jobs", "--file", "-"], "{}\n", 1, "Error: line 1: no data provided"),
    (["queue", "push", "jobs", "--file", "-"], "\n\n", 1, "Error: no items in stdin"),
    (["queue", "push", "jobs", "--file", "missing.jsonl"], None, 1, "Error: No such file"),
    (["queue", "retry", "jobs"], None, 2, "Error: specify either an item ID or --all-dead"),
    (["worker", "stop"], None, 2, "Error: specify either a worker name or --all"),
]


@pytest.mark.parametrize(("argv", "stdin", "code", "start"), _CLIENT_ERRORS)
def test_client_side_errors_are_one_line_and_start_no_daemon(
    ojenv: OjEnv, argv: list[str], stdin: str | None, code: int, start: str
) -> None:
    ojenv.state.mkdir()
    result = ojenv.oj(*argv, input=stdin)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), result.stderr
    assert list(ojenv.state.iterdir()) == [], "a daemon was started"


def test_client_side_errors_send_nothing(ojenv: OjEnv) -> None:
    """With something listening on the socket, a refused push never connects to it."""
    ojenv.state.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(ojenv.state / "daemon.sock"))
    listener.listen(8)
    listener.setblocking(False)
    try:
        for argv, stdin, code, _ in _CLIENT_ERRORS[:8]:
            assert ojenv.oj(*argv, input=stdin).returncode == code
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_queries_do_not_start_a_daemon(ojenv: OjEnv) -> None:
    for argv in (["queue", "list"], ["queue", "items", "jobs"], ["worker", "list"]):
        result = ojenv.oj(*argv)
        assert (result.returncode, result.stderr) == (1, "Error: Daemon not running\n"), argv
    assert not ojenv.state.exists()
