"""`oj cron start|stop|once|list`: run pipelines on the schedules of `cron` blocks (issue 11).

The daemon owns the crons: `start` is idempotent (a running cron keeps its phase), `stop` is
sticky across daemon restarts and cancels nothing, `once` fires a cron now whatever its status.
Each is an action (it starts a daemon if none runs); `list` is a query over every project,
filtered by `--project` like `oj worker list`, with each cron's last and next fire.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from .. import protocol
from ..client import Client
from ..errors import UsageError
from ._args import AddParser, Subparsers, namespace_of
from ._output import Column, ago, emit_json, project_table, until


def register(sub: Subparsers, add: AddParser) -> None:
    cron = add(sub, "cron", "start, stop and fire scheduled pipelines (cron blocks)")
    csub = cron.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(csub, "start", "start a cron (a running one keeps its schedule)", cmd_cron_start)
    p.add_argument("name", nargs="?", help="cron name")
    p.add_argument("--all", action="store_true", help="every cron of the project's runbooks")
    p = add(csub, "stop", "stop a cron (running pipelines finish)", cmd_cron_stop)
    p.add_argument("name", nargs="?", help="cron name")
    p.add_argument("--all", action="store_true", help="every running cron of the project")
    p = add(csub, "once", "fire a cron now, whatever its status", cmd_cron_once)
    p.add_argument("name", help="cron name")
    add(csub, "list", "list crons with their last and next fire", cmd_cron_list)


def _one_or_all(args: argparse.Namespace) -> None:
    if (args.name is None) == (not args.all):
        raise UsageError("specify either a cron name or --all")


def cmd_cron_start(args: argparse.Namespace) -> int:
    _one_or_all(args)
    root, namespace = namespace_of(args)
    request = protocol.request(
        "CronStart",
        project_root=str(root),
        namespace=namespace,
        cron=args.name,
        all=True if args.all else None,
    )
    response = Client().call(request, action=True)
    if not response["crons"]:
        print("No crons defined")
    for started in response["crons"]:
        state = "already running" if started["already_running"] else "started"
        print(f"Cron '{started['cron']}' {state}{_next(started['next_fire_at_ms'])}")
    return 0


def _next(ms: int | None) -> str:
    """`; next fire in 2s` (`; next fire now` once it is due: the reply may come late)."""
    if not ms:
        return ""
    left = until(ms)
    return "; next fire now" if left == "now" else f"; next fire in {left}"


def stop_lines(stopped: Sequence[str], name: str | None) -> list[str]:
    """`Cron '<n>' stopped` per cron the daemon stopped; a named cron that was not running, or
    `--all` with nothing running, says so instead."""
    if not stopped:
        return ["No running crons"] if name is None else [f"Cron '{name}' was not running"]
    return [f"Cron '{n}' stopped" for n in stopped]


def cmd_cron_stop(args: argparse.Namespace) -> int:
    _one_or_all(args)
    _, namespace = namespace_of(args)
    request = protocol.request(
        "CronStop", namespace=namespace, cron=args.name, all=True if args.all else None
    )
    response = Client().call(request, action=True)
    for line in stop_lines(response["stopped"], args.name):
        print(line)
    return 0


def cmd_cron_once(args: argparse.Namespace) -> int:
    root, namespace = namespace_of(args)
    request = protocol.request(
        "CronOnce", project_root=str(root), namespace=namespace, cron=args.name
    )
    response = Client().call(request, action=True)
    print(f"Cron '{response['cron']}' fired: pipeline {response['pipeline_id'][:12]}")
    return 0


_COLUMNS: list[Column] = [
    ("NAME", lambda c: c["name"]),
    ("SCHEDULE", lambda c: c["schedule"]),
    ("STATUS", lambda c: c["status"]),
    ("LAST", lambda c: ago(c["last_fire_at_ms"]) + (" ago" if c["last_fire_at_ms"] else "")),
    ("NEXT", lambda c: ("in " + until(c["next_fire_at_ms"])) if c["next_fire_at_ms"] else "-"),
]


def select_crons(crons: Sequence[Mapping[str, Any]], project: str | None) -> list[dict[str, Any]]:
    """The crons of `--project` (all without it), sorted by name (then project)."""
    chosen = [dict(c) for c in crons if project is None or c.get("namespace") == project]
    return sorted(chosen, key=lambda c: (c["name"], c.get("namespace") or ""))


def crons_table(crons: list[dict[str, Any]]) -> str:
    """`NAME [PROJECT] SCHEDULE STATUS LAST NEXT`, or `No crons found`."""
    if not crons:
        return "No crons found"
    return project_table(crons, _COLUMNS)


def cmd_cron_list(args: argparse.Namespace) -> int:
    crons = select_crons(Client().query("ListCrons")["crons"], args.project)
    if args.output == "json":
        emit_json(crons)
        return 0
    print(crons_table(crons))
    return 0
