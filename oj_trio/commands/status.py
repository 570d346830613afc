"""`oj status`: one screen about the daemon and its work, grouped by project namespace.

A query, never an action: it does not start a daemon, and "not running" is an answer (exit 0),
not an error, so scripts and prompts can call it cheaply.
"""

from __future__ import annotations

import argparse

from ..client import Client, DaemonNotRunning
from ._args import AddParser, Subparsers
from ._output import emit_json, short_duration


def register(sub: Subparsers, add: AddParser) -> None:
    add(sub, "status", "overview of the daemon and its work", cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        overview = Client().query("StatusOverview")
    except DaemonNotRunning:
        if args.output == "json":
            emit_json({"status": "not_running"})
        else:
            print("oj daemon: not running")
        return 0
    if args.output == "json":
        emit_json({"uptime_secs": overview["uptime_secs"], "namespaces": overview["namespaces"]})
        return 0
    namespaces = overview["namespaces"]
    active = sum(len(ns["active_pipelines"]) for ns in namespaces)
    escalated = sum(len(ns["escalated_pipelines"]) for ns in namespaces)
    head = f"oj daemon: up {short_duration(overview['uptime_secs'])}"
    if active:
        head += f" | {active} active pipeline(s)"
    if escalated:
        head += f" | {escalated} escalated"
    print(head)
    for ns in namespaces:
        print()
        title = f"── {ns['namespace'] or '(default)'} "
        print(title + "─" * max(3, 48 - len(title)))
        if ns["active_pipelines"]:
            print(f"  Pipelines ({len(ns['active_pipelines'])} active):")
            for p in ns["active_pipelines"]:
                elapsed = short_duration(p["elapsed_ms"] // 1000)
                print(
                    f"    {p['id'][:12]}  {p['name']}  {p['step']}  {p['step_status']}  {elapsed}"
                )
        if ns["escalated_pipelines"]:
            print(f"  Escalated ({len(ns['escalated_pipelines'])}):")
            for p in ns["escalated_pipelines"]:
                elapsed = short_duration(p["elapsed_ms"] // 1000)
                print(
                    f"    ⚠ {p['id'][:12]}  {p['name']}  {p['step']}  {p['step_status']}  {elapsed}"
                )
                if p.get("waiting_reason"):
                    print(f"      → {p['waiting_reason']}")
    return 0
