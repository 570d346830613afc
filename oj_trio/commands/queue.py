"""`oj queue push|list|items|drop|retry|prune`: put work on persisted queues and look after it.

The daemon owns the queues (it finds the runbook that defines one, checks the item against the
queue's `vars`, applies `defaults` and makes the push durable before it answers); the client only
turns the command line into item data (reference §3.2) and prints the answers. Item data is
checked here as far as it can be without a runbook — the JSON must parse and be an object, and
there must be some data — so a bad `--file` is refused, naming its line, before anything is sent.
A batch (`--file`) is one request: the daemon accepts or refuses it as a whole.

Every request names the project root and the namespace (`--project` > `OJ_NAMESPACE` > config >
the project directory's name); `list` and `items` are queries and never start a daemon.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import protocol
from ..client import Client
from ..errors import OjError, UsageError
from ..settings import env_seconds
from ._args import AddParser, Subparsers, namespace_of, parse_cli_duration, parse_cli_key_value
from ._output import emit_json
from ._progress import Progress, counter_text


def register(sub: Subparsers, add: AddParser) -> None:
    queue = add(sub, "queue", "push to queues and manage their items")
    qsub = queue.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(qsub, "push", "push an item (or a file of items) to a persisted queue", cmd_queue_push)
    p.add_argument("queue", help="queue name")
    p.add_argument("json", nargs="?", metavar="JSON", help="item data as a JSON object")
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an item field (overrides the JSON; with --file, merged into every item)",
    )
    p.add_argument(
        "--file",
        metavar="FILE",
        help="push one item per line of FILE (a JSON object a line; - reads stdin)",
    )
    add(qsub, "list", "list the project's queues with item counts", cmd_queue_list)
    p = add(qsub, "items", "list the items of a queue", cmd_queue_items)
    p.add_argument("queue", help="queue name")
    p.add_argument("--status", help="only items with this status (pending, active, failed, ...)")
    p = add(qsub, "drop", "remove an item from a queue", cmd_queue_drop)
    p.add_argument("queue", help="queue name")
    p.add_argument("item_id", metavar="ITEM_ID", help="item id or unique prefix")
    p = add(qsub, "retry", "retry a failed or dead item", cmd_queue_retry)
    p.add_argument("queue", help="queue name")
    p.add_argument("item_id", nargs="?", metavar="ITEM_ID", help="item id or unique prefix")
    p.add_argument("--all-dead", action="store_true", help="retry every dead item of the queue")
    p = add(
        qsub,
        "wait",
        "wait until a queue has no pending, active or retry-waiting item "
        "(exit 1 if an item went dead meanwhile, 2 on timeout)",
        cmd_queue_wait,
    )
    p.add_argument("queue", help="queue name")
    p.add_argument("--timeout", metavar="DURATION", help="give up after this long (30s, 5m, 1h)")
    p = add(qsub, "prune", "remove completed and dead items", cmd_queue_prune)
    p.add_argument("queue", help="queue name")
    p.add_argument("--all", action="store_true", help="ignore age (default: ended > 12 h ago)")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")


def short_id(item_id: str) -> str:
    return item_id[:8]


# -- push: item data from the command line (pure) ----------------------------------------------

#: `--var` keeps the wording of `oj pipeline resume --var` (the reference uses one parser).
VAR_MESSAGE = "invalid input format '{text}': must be key=value"
NO_DATA_MESSAGE = "no data provided: use --var key=value or pass a JSON object"
BOTH_MESSAGE = "pass the item data either as a JSON argument or with --file, not both"


def parse_vars(words: Sequence[str]) -> dict[str, str]:
    """`--var k=v` words in order; a later key wins. A bad word is a usage error (exit 2)."""
    variables: dict[str, str] = {}
    for word in words:
        key, value = parse_cli_key_value(word, VAR_MESSAGE)
        variables[key] = value
    return variables


def _no_constant(name: str) -> Any:
    """`NaN`, `Infinity`: Python reads them, JSON (and the daemon's peers) do not."""
    raise ValueError(f"{name} is not a JSON value")


def _json_object(text: str, *, one_line: bool = False) -> dict[str, Any]:
    """`text` as a JSON object, or an `OjError` in reference §3.2's words. Within a line of a
    `--file` the position is a column only (the line number is the file's)."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno} column {exc.colno}"
        # Some messages end in "at" already ("Unterminated string starting at").
        joint = " " if exc.msg.endswith(" at") else " at "
        raise OjError(f"invalid JSON data: {exc.msg}{joint}{where}") from None
    except ValueError as exc:
        raise OjError(f"invalid JSON data: {exc}") from None
    if not isinstance(value, dict):
        raise OjError("JSON data must be an object")
    return value


def build_data(
    json_arg: str | None, variables: Mapping[str, str], *, one_line: bool = False
) -> dict[str, Any]:
    """One item: the JSON object (if any) with the `--var` pairs over it; empty is an error."""
    data = _json_object(json_arg, one_line=one_line) if json_arg is not None else {}
    data.update(variables)
    if not data:
        raise OjError(NO_DATA_MESSAGE)
    return data


def build_batch(
    file_text: str, variables: Mapping[str, str], source: str = "the file"
) -> tuple[list[dict[str, Any]], list[int]]:
    """The items of a `--file`: one JSON object per non-blank line, each with the `--var` pairs
    merged in, and each item's (1-based) line number. Every line is checked; the first bad one
    is reported with its line number (and how many more are bad), so nothing is half-pushed."""
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    errors: list[str] = []
    # Lines end at "\n" only (as editors and `wc -l` count them); str.splitlines would also split
    # at U+2028 and friends, which JSON strings may hold.
    for number, line in enumerate(file_text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            data = build_data(line, variables, one_line=True)
        except OjError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        items.append(data)
        lines.append(number)
    if errors:
        more = len(errors) - 1
        tail = f" (and {more} more bad line{'s' if more > 1 else ''})" if more else ""
        raise OjError(errors[0] + tail)
    if not items:
        raise OjError(f"no items in {source}: expected one JSON object per line")
    return items, lines


def build_items(
    json_arg: str | None, var_words: Sequence[str], file_text: str | None, source: str = "the file"
) -> tuple[list[dict[str, Any]], list[int]]:
    """What `oj queue push` sends: `([data], [])` for one item, `(items, lines)` for a file.

    Raises `UsageError` (exit 2) for a JSON argument together with a file or a bad `--var`,
    `OjError` (exit 1) for bad or missing data.
    """
    if json_arg is not None and file_text is not None:
        raise UsageError(BOTH_MESSAGE)
    variables = parse_vars(var_words)
    if file_text is None:
        return [build_data(json_arg, variables)], []
    return build_batch(file_text, variables, source)


def read_items_file(name: str) -> tuple[str, str]:
    """The text of `--file` (`-`: stdin) and how to call it in a message. Text that is not UTF-8
    is refused with the number of the line it breaks on."""
    if name == "-":
        raw, source = sys.stdin.buffer.read(), "stdin"
    else:
        raw, source = Path(name).read_bytes(), name
    try:
        return raw.decode("utf-8"), source
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise OjError(f"line {line}: not valid UTF-8 text") from None


def push_message(queue: str, item_ids: Sequence[str], batch: bool) -> str:
    if not batch:
        return f"Pushed item '{item_ids[0]}' to queue '{queue}'"
    count = len(item_ids)
    return f"Pushed {count} item{'' if count == 1 else 's'} to queue '{queue}'"


def cmd_queue_push(args: argparse.Namespace) -> int:
    # Everything the client can check is checked before a connection (or a daemon start).
    if args.json is not None and args.file is not None:
        raise UsageError(BOTH_MESSAGE)
    file_text, source = read_items_file(args.file) if args.file is not None else (None, "")
    items, lines = build_items(args.json, args.var, file_text, source)
    root, namespace = namespace_of(args)
    fields: dict[str, Any] = {"data": items[0]} if file_text is None else {"items": items}
    if file_text is not None:
        fields["lines"] = lines
    request = protocol.request(
        "QueuePush", project_root=str(root), namespace=namespace, queue=args.queue, **fields
    )
    response = Client().call(request, action=True)
    print(push_message(response["queue"], response["item_ids"], batch=file_text is not None))
    return 0


# -- list, items -------------------------------------------------------------------------------


def queue_line(queue: Mapping[str, Any]) -> str:
    """`<name>\\t<type>\\tpending=<p> active=<a> dead=<d>\\tworkers=<a, b|->[\\terror: <msg>]`.

    A persisted queue with an error lives in a shared database that cannot be read now: its
    counts are unknown (`?`), not zero. An external queue's counts (its items in flight) stand.
    """
    unknown = queue["type"] == "persisted" and bool(queue.get("error"))
    counts = " ".join(
        f"{key}={'?' if unknown else queue[key]}" for key in ("pending", "active", "dead")
    )
    workers = ", ".join(queue.get("workers") or []) or "-"
    line = f"{queue['name']}\t{queue['type']}\t{counts}\tworkers={workers}"
    if queue.get("error"):
        line += f"\terror: {_one_line(queue['error'])}"
    return line


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def cmd_queue_list(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    queues = Client().query("ListQueues", project_root=str(root), namespace=namespace)["queues"]
    if not queues:
        print("No queues found")
        return 0
    if args.output == "json":
        emit_json(queues)
        return 0
    for queue in queues:
        print(queue_line(queue))
    return 0


def sort_items(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Newest first (reference §7.2). Items of one batch share a timestamp; the daemon lists
    them in push order, so ties are reversed too (a stable sort of the reversed list)."""
    return sorted(reversed(items), key=lambda i: i.get("pushed_at_epoch_ms") or 0, reverse=True)


def item_line(item: Mapping[str, Any]) -> str:
    """`<id8>\\t<status>\\tworker=<name|->\\t<k=v k=v …>` (data in the item's own order)."""
    data = " ".join(f"{k}={_one_line(str(v))}" for k, v in (item.get("data") or {}).items())
    worker = item.get("worker_name") or "-"
    return f"{short_id(item['id'])}\t{item['status']}\tworker={worker}\t{data}"


def cmd_queue_items(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    response = Client().query(
        "ListQueueItems",
        project_root=str(root),
        namespace=namespace,
        queue=args.queue,
        status=args.status.lower() if args.status else None,
    )
    items = sort_items(response["items"])
    if not items:
        print(f"No items in queue '{args.queue}'")
        return 0
    if args.output == "json":
        emit_json(items)
        return 0
    for item in items:
        print(item_line(item))
    return 0


# -- drop, retry, prune ------------------------------------------------------------------------


def cmd_queue_drop(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    request = protocol.request(
        "QueueDrop",
        project_root=str(root),
        namespace=namespace,
        queue=args.queue,
        item_id=args.item_id,
    )
    response = Client().call(request, action=True)
    print(f"Dropped item {short_id(response['item_id'])} from queue {response['queue']}")
    return 0


def retry_lines(queue: str, item_ids: Sequence[str], all_dead: bool) -> list[str]:
    if not item_ids and all_dead:
        return [f"No dead items in queue '{queue}'"]
    return [f"Retrying item {short_id(i)} in queue {queue}" for i in item_ids]


def cmd_queue_retry(args: argparse.Namespace) -> int:
    if (args.item_id is None) == (not args.all_dead):
        raise UsageError("specify either an item ID or --all-dead")
    root, namespace = namespace_of(args)
    request = protocol.request(
        "QueueRetry",
        project_root=str(root),
        namespace=namespace,
        queue=args.queue,
        item_id=args.item_id,
        all_dead=True if args.all_dead else None,
    )
    response = Client().call(request, action=True)
    for line in retry_lines(response["queue"], response["item_ids"], args.all_dead):
        print(line)
    return 0


def prune_lines(pruned: Sequence[Mapping[str, Any]], skipped: int, dry_run: bool) -> list[str]:
    """`Pruned|Would prune <id8> (<status>)` per item, then the count (after a blank line when
    items were listed)."""
    verb = "Would prune" if dry_run else "Pruned"
    lines = [f"{verb} {short_id(item['id'])} ({item['status']})" for item in pruned]
    if lines:
        lines.append("")
    done = "would be pruned" if dry_run else "pruned"
    lines.append(f"{len(pruned)} item(s) {done}, {skipped} skipped")
    return lines


def cmd_queue_prune(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    request = protocol.request(
        "QueuePrune",
        project_root=str(root),
        namespace=namespace,
        queue=args.queue,
        all=True if args.all else None,
        dry_run=True if args.dry_run else None,
    )
    response = Client().call(request, action=True)
    if args.output == "json":
        emit_json(response["pruned"])
        return 0
    for line in prune_lines(response["pruned"], response["skipped"], args.dry_run):
        print(line)
    return 0


# -- wait --------------------------------------------------------------------------------------

#: Item states that keep a queue busy ("failed" items wait for a retry; "dead" ones never run).
BUSY = ("pending", "active", "failed")


def wait_counts(
    start: Mapping[str, str], items: Sequence[Mapping[str, Any]]
) -> tuple[int, int, int]:
    """(done, dead, remaining) of a queue since the wait began (`start`: item id → status then):
    items completed or gone dead since, and items still pending, active or waiting for a retry."""
    done = dead = remaining = 0
    for item in items:
        status, before = item["status"], start.get(item["id"])
        if status in BUSY:
            remaining += 1
        elif status == "completed" and before != "completed":
            done += 1
        elif status == "dead" and before != "dead":
            dead += 1
    return done, dead, remaining


def cmd_queue_wait(args: argparse.Namespace) -> int:
    timeout = parse_cli_duration(args.timeout) if args.timeout else None
    deadline = time.monotonic() + timeout if timeout else None
    root, namespace = namespace_of(args)
    client = Client()
    queues = client.query("ListQueues", project_root=str(root), namespace=namespace)["queues"]
    if any(q["name"] == args.queue and q["type"] == "external" for q in queues):
        # Its items live in the outside system; state only knows what runs now.
        raise OjError(f"queue '{args.queue}' is external: oj cannot tell when it is empty")
    poll = env_seconds("OJ_WAIT_POLL_MS", 1000)
    progress = Progress(live=False if args.output == "json" else None)
    start: dict[str, str] | None = None
    after = 0
    try:
        while True:
            wait = 0.0
            if start is not None:
                wait = min(poll, client.ipc_timeout / 2)
                if deadline is not None:
                    wait = max(0.001, min(wait, deadline - time.monotonic()))
                if not after:  # a daemon that cannot long-poll this queue: poll it
                    time.sleep(wait)
            answer = client.query(
                "ListQueueItems",
                project_root=str(root),
                namespace=namespace,
                queue=args.queue,
                after_seq=after,
                timeout_ms=int(wait * 1000),
            )
            after = answer.get("seq", 0)
            if start is None:
                start = {i["id"]: i["status"] for i in answer["items"]}
            done, dead, remaining = wait_counts(start, answer["items"])
            timed_out = remaining > 0 and deadline is not None and time.monotonic() >= deadline
            if args.output == "json":
                if remaining == 0 or timed_out:
                    summary = {"done": done, "dead": dead, "remaining": remaining}
                    emit_json({"queue": args.queue, **summary, "timed_out": timed_out})
            else:
                progress.show(counter_text(done, dead, remaining))
            if remaining == 0:
                return 1 if dead else 0
            if timed_out:
                progress.note(f"Timeout waiting for queue '{args.queue}'", sys.stderr)
                return 2
    finally:
        progress.close()
