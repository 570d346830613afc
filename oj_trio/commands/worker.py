"""`oj worker start|stop|restart|resize|list`: run the workers that drain queues.

The daemon owns the workers: `start` is idempotent (a running worker is only woken), `stop`
dispatches nothing new but cancels nothing, `restart` re-reads the runbook, `resize` changes the
concurrency at run time (SPEC §4.4). Each is an action (it starts a daemon if none runs); `list`
is a query over every project, filtered by `--project` like `oj pipeline list`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from .. import protocol
from ..client import Client
from ..errors import UsageError
from ._args import AddParser, Subparsers, namespace_of
from ._output import Column, emit_json, project_table


def concurrency(text: str) -> int:
    """argparse `type=` for `resize N`: a whole number, 1 or more (else exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def register(sub: Subparsers, add: AddParser) -> None:
    worker = add(sub, "worker", "start, stop and resize queue workers")
    wsub = worker.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(wsub, "start", "start a worker (wakes it if it runs)", cmd_worker_start)
    p.add_argument("name", help="worker name")
    p = add(wsub, "stop", "stop dispatching new items (running pipelines finish)", cmd_worker_stop)
    p.add_argument("name", nargs="?", help="worker name")
    p.add_argument("--all", action="store_true", help="every running worker of the project")
    p = add(wsub, "restart", "stop and start a worker, re-reading its runbook", cmd_worker_restart)
    p.add_argument("name", help="worker name")
    p = add(wsub, "resize", "change a worker's concurrency", cmd_worker_resize)
    p.add_argument("name", help="worker name")
    p.add_argument("concurrency", type=concurrency, metavar="N", help="new concurrency (>= 1)")
    add(wsub, "list", "list workers", cmd_worker_list)


def cmd_worker_start(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    request = protocol.request(
        "WorkerStart", project_root=str(root), namespace=namespace, worker=args.name
    )
    response = Client().call(request, action=True)
    name = response.get("worker", args.name)
    if response.get("already_running"):
        print(f"Worker '{name}' already running (woken)")
    else:
        print(f"Worker '{name}' started")
    return 0


def stop_lines(stopped: Sequence[str], name: str | None) -> list[str]:
    """`Worker '<n>' stopped` per worker the daemon stopped; a named worker that was not
    running, or `--all` with nothing running, says so instead."""
    if not stopped:
        return ["No running workers"] if name is None else [f"Worker '{name}' was not running"]
    return [f"Worker '{n}' stopped" for n in stopped]


def cmd_worker_stop(args: argparse.Namespace) -> int:
    if (args.name is None) == (not args.all):
        raise UsageError("specify either a worker name or --all")
    _, namespace = namespace_of(args)
    request = protocol.request(
        "WorkerStop", namespace=namespace, worker=args.name, all=True if args.all else None
    )
    response = Client().call(request, action=True)
    for line in stop_lines(response["stopped"], args.name):
        print(line)
    return 0


def cmd_worker_restart(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    request = protocol.request(
        "WorkerRestart", project_root=str(root), namespace=namespace, worker=args.name
    )
    response = Client().call(request, action=True)
    print(f"Worker '{response.get('worker', args.name)}' restarted")
    return 0


def cmd_worker_resize(args: argparse.Namespace) -> int:
    _, namespace = namespace_of(args)
    request = protocol.request(
        "WorkerResize", namespace=namespace, worker=args.name, concurrency=args.concurrency
    )
    response = Client().call(request, action=True)
    print(
        f"Worker '{response['worker']}' resized: {response['previous']} → {response['concurrency']}"
    )
    return 0


_COLUMNS: list[Column] = [
    ("NAME", lambda w: w["name"]),
    ("QUEUE", lambda w: w["queue"]),
    ("STATUS", lambda w: w["status"]),
    ("ACTIVE", lambda w: str(w["active"])),
    ("CONCURRENCY", lambda w: str(w["concurrency"])),
]


def select_workers(
    workers: Sequence[Mapping[str, Any]], project: str | None
) -> list[dict[str, Any]]:
    """The workers of `--project` (all without it), sorted by name (then project)."""
    chosen = [dict(w) for w in workers if project is None or w.get("namespace") == project]
    return sorted(chosen, key=lambda w: (w["name"], w.get("namespace") or ""))


def workers_table(workers: list[dict[str, Any]]) -> str:
    """`NAME [PROJECT] QUEUE STATUS ACTIVE CONCURRENCY`, or `No workers found`."""
    if not workers:
        return "No workers found"
    return project_table(workers, _COLUMNS)


def cmd_worker_list(args: argparse.Namespace) -> int:
    workers = select_workers(Client().query("ListWorkers")["workers"], args.project)
    if args.output == "json":
        emit_json(workers)
        return 0
    print(workers_table(workers))
    return 0
