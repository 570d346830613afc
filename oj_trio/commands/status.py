"""`oj status`: one screen about the daemon and its work, grouped by project namespace.

A query, never an action: it does not start a daemon, and "not running" is an answer (exit 0),
not an error, so scripts and prompts can call it cheaply. Per namespace: active and escalated
pipelines, then workers, running crons (with their next fire) and the queues that hold pending,
active or dead items.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from ..client import Client, DaemonNotRunning
from ._args import AddParser, Subparsers
from ._output import emit_json, short_duration, until


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
        emit_json(
            {
                "uptime_secs": overview["uptime_secs"],
                "namespaces": overview["namespaces"],
                "queue_errors": overview.get("queue_errors") or [],
            }
        )
        return 0
    print("\n".join(status_lines(overview)))
    return 0


def status_lines(overview: Mapping[str, Any]) -> list[str]:
    """The text of `oj status` for a `StatusOverview` reply (reference §7.2)."""
    namespaces = overview["namespaces"]
    active = sum(len(ns["active_pipelines"]) for ns in namespaces)
    escalated = sum(len(ns["escalated_pipelines"]) for ns in namespaces)
    head = f"oj daemon: up {short_duration(overview['uptime_secs'])}"
    if active:
        head += f" | {active} active pipeline(s)"
    if escalated:
        head += f" | {escalated} escalated"
    lines = [head]
    lines.extend(f"⚠ {error}" for error in overview.get("queue_errors") or [])
    for ns in namespaces:
        lines.append("")
        title = f"── {ns['namespace'] or '(default)'} "
        lines.append(title + "─" * max(3, 48 - len(title)))
        if ns["active_pipelines"]:
            lines.append(f"  Pipelines ({len(ns['active_pipelines'])} active):")
            for p in ns["active_pipelines"]:
                elapsed = short_duration(p["elapsed_ms"] // 1000)
                lines.append(
                    f"    {p['id'][:12]}  {p['name']}  {p['step']}  {p['step_status']}  {elapsed}"
                )
        if ns["escalated_pipelines"]:
            lines.append(f"  Escalated ({len(ns['escalated_pipelines'])}):")
            for p in ns["escalated_pipelines"]:
                elapsed = short_duration(p["elapsed_ms"] // 1000)
                lines.append(
                    f"    ⚠ {p['id'][:12]}  {p['name']}  {p['step']}  {p['step_status']}  {elapsed}"
                )
                if p.get("waiting_reason"):
                    lines.append(f"      → {p['waiting_reason']}")
        workers = ns.get("workers") or []
        if workers:
            lines.append("  Workers:")
            lines.extend(worker_row(w) for w in workers)
        crons = ns.get("crons") or []
        if crons:
            lines.append("  Crons:")
            lines.extend(cron_row(c) for c in crons)
        queues = [q for q in ns.get("queues") or [] if q["pending"] or q["active"] or q["dead"]]
        if queues:
            lines.append("  Queues:")
            lines.extend(queue_row(q) for q in queues)
    return lines


def worker_row(worker: Mapping[str, Any]) -> str:
    """`    <name>  ●|○ <status>  <active>/<concurrency> active` (● running, ○ otherwise)."""
    dot = "●" if worker["status"] == "running" else "○"
    load = f"{worker['active']}/{worker['concurrency']} active"
    return f"    {worker['name']}  {dot} {worker['status']}  {load}"


def cron_row(cron: Mapping[str, Any]) -> str:
    """`    <name>  <schedule>  next in <duration>` (`next: -` when none is armed)."""
    text = f"    {cron['name']}  {cron['schedule']}"
    if cron.get("next_fire_at_ms"):
        return f"{text}  next in {until(cron['next_fire_at_ms'])}"
    return f"{text}  next: -"


def queue_row(queue: Mapping[str, Any]) -> str:
    """`    <name>  <p> pending, <a> active[, <d> dead]`."""
    text = f"    {queue['name']}  {queue['pending']} pending, {queue['active']} active"
    if queue["dead"]:
        text += f", {queue['dead']} dead"
    return text
