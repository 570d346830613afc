"""`oj status [--watch]`: the screen a user opens first, grouped by project namespace.

A query, never an action: it does not start a daemon, and "not running" is an answer (exit 0),
not an error, so scripts and prompts can call it cheaply. Per namespace: live pipelines (name,
step, age), workers (status, active/concurrency and their queue's counts), queues without a
worker, crons with their next fire, and **needs attention** (escalated pipelines and agents,
pipelines failed in the last day, dead items, a queue backend that cannot be read), each with the
command that deals with it; a shared queue database that does not answer is listed above every
project. `-o json` is the daemon's overview as is.

The text is made by `RENDERERS`, one function per part of a namespace section: a noun that adds
a part to the daemon's overview (``oj_trio.views.status.SECTIONS``) adds its renderer here with
one line. `--watch` redraws the screen in place on a terminal until Ctrl-C (elsewhere: one
snapshot per interval, separated by a blank line; with `-o json`, one JSON document a line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..client import Client, DaemonNotRunning
from ._args import AddParser, Subparsers
from ._output import emit_json, short_duration

Section = Mapping[str, Any]


def register(sub: Subparsers, add: AddParser) -> None:
    p = add(sub, "status", "overview of the daemon and its work", cmd_status)
    p.add_argument(
        "--watch", action="store_true", help="redraw every --interval seconds until Ctrl-C"
    )
    p.add_argument(
        "--interval",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between redraws with --watch (default: 1)",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
    return value


def overview(project: str | None) -> Mapping[str, Any] | None:
    """The daemon's `StatusOverview` (only `project`'s section with `--project`), or None when
    no daemon runs."""
    try:
        answer = Client().query("StatusOverview")
    except DaemonNotRunning:
        return None
    if project is None:
        return answer
    return {**answer, "namespaces": [n for n in answer["namespaces"] if n["namespace"] == project]}


def as_json(answer: Mapping[str, Any] | None) -> dict[str, Any]:
    if answer is None:
        return {"status": "not_running"}
    return {
        "uptime_secs": answer["uptime_secs"],
        "namespaces": answer["namespaces"],
        "queue_errors": answer.get("queue_errors") or [],
    }


def cmd_status(args: argparse.Namespace) -> int:
    if args.watch:
        return watch(args)
    answer = overview(args.project)
    if args.output == "json":
        emit_json(as_json(answer))
    else:
        print("\n".join(status_lines(answer, time.time() * 1000)))
    return 0


# -- --watch -------------------------------------------------------------------------------------

#: Cursor home, then for each line "erase to its end"; "erase below" after the last line; hide and
#: show the cursor while redrawing. No full clear: the screen does not flicker.
_HOME, _EOL, _BELOW, _HIDE, _SHOW = "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[?25l", "\x1b[?25h"


def watch(args: argparse.Namespace, *, rounds: int | None = None) -> int:
    """Redraw until Ctrl-C (exit 0); `rounds` bounds it for tests."""
    out = sys.stdout
    live = out.isatty() and args.output != "json"
    drawn = 0
    try:
        if live:
            out.write(_HIDE + "\x1b[2J")
        while rounds is None or drawn < rounds:
            answer = overview(args.project)
            if args.output == "json":
                out.write(json.dumps(as_json(answer), separators=(",", ":")) + "\n")
            else:
                lines = status_lines(answer, time.time() * 1000)
                stamp = time.strftime("%H:%M:%S")
                lines[0] += f"  ({stamp}, every {args.interval:g}s, Ctrl-C to quit)"
                if live:
                    out.write(_HOME + "".join(line + _EOL + "\n" for line in lines) + _BELOW)
                else:
                    out.write(("\n" if drawn else "") + "\n".join(lines) + "\n")
            out.flush()
            drawn += 1
            if rounds is None or drawn < rounds:
                time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        if live:
            out.write(_SHOW)
            out.flush()
    return 0


# -- text ----------------------------------------------------------------------------------------


def status_lines(answer: Mapping[str, Any] | None, now_ms: float) -> list[str]:
    """The text of `oj status` for a `StatusOverview` answer (None: no daemon)."""
    if answer is None:
        return ["oj daemon: not running"]
    namespaces: Sequence[Section] = answer["namespaces"]
    active = sum(len(ns["active_pipelines"]) for ns in namespaces)
    #: Shared queue databases that do not answer: daemon-wide, above every project.
    backend_errors: Sequence[str] = answer.get("queue_errors") or []
    attention = len(backend_errors) + sum(len(ns.get("attention") or []) for ns in namespaces)
    head = f"oj daemon: up {short_duration(answer['uptime_secs'])}"
    if active:
        head += f" | {active} active pipeline{'' if active == 1 else 's'}"
    if attention:
        head += f" | {attention} need{'s' if attention == 1 else ''} attention"
    lines = [head]
    lines.extend(f"⚠ {error}" for error in backend_errors)
    for ns in namespaces:
        lines.append("")
        title = f"── {ns['namespace'] or '(default)'} "
        lines.append(title + "─" * max(3, 48 - len(title)))
        for render in RENDERERS:
            lines.extend(render(ns, now_ms))
    return lines


def pipelines_lines(ns: Section, _now_ms: float) -> list[str]:
    live = ns["active_pipelines"]
    if not live:
        return []
    rows = [
        [
            p["id"][:12],  # as in `oj pipeline list`
            p["name"],
            p["step"],
            p["step_status"],
            short_duration(p["elapsed_ms"] // 1000),
        ]
        for p in live
    ]
    return [f"  Pipelines ({len(live)} active):", *_table(rows)]


def queue_counts(queue: Mapping[str, Any]) -> str:
    """`3 pending, 1 active[, 2 retrying][, 1 dead]`."""
    text = f"{queue['pending']} pending, {queue['active']} active"
    if queue.get("failed"):
        text += f", {queue['failed']} retrying"
    if queue["dead"]:
        text += f", {queue['dead']} dead"
    return text


def workers_lines(ns: Section, _now_ms: float) -> list[str]:
    workers = ns.get("workers") or []
    if not workers:
        return []
    queues = {q["name"]: q for q in ns.get("queues") or []}
    rows = []
    for w in workers:
        dot = "●" if w["status"] == "running" else "○"
        queue = queues.get(w.get("queue") or "")
        counts = f"{w.get('queue')}: {queue_counts(queue)}" if queue else f"{w.get('queue')}: idle"
        rows.append(
            [w["name"], f"{dot} {w['status']}", f"{w['active']}/{w['concurrency']} active", counts]
        )
    return ["  Workers:", *_table(rows)]


def queues_lines(ns: Section, _now_ms: float) -> list[str]:
    """Queues with items but no worker in the namespace (a worker's queue is on its line)."""
    served = {w.get("queue") for w in ns.get("workers") or []}
    queues = [q for q in ns.get("queues") or [] if q["name"] not in served]
    if not queues:
        return []
    return ["  Queues:", *_table([[q["name"], queue_counts(q)] for q in queues])]


def agents_lines(ns: Section, _now_ms: float) -> list[str]:
    agents = ns.get("active_agents") or []
    if not agents:
        return []
    rows = [
        [
            a.get("agent_name") or "agent",
            f"{a['pipeline_name']}/{a['step_name']}",
            f"{'●' if a['status'] == 'running' else '◐'} {a['status']}",
            short_duration(a["elapsed_ms"] // 1000),
            a["agent_id"][:8],
        ]
        for a in agents
    ]
    return [f"  Agents ({len(agents)}):", *_table(rows)]


def crons_lines(ns: Section, now_ms: float) -> list[str]:
    crons = ns.get("crons") or []
    if not crons:
        return []
    rows = []
    for c in crons:
        dot = "●" if c["status"] == "running" else "○"
        at = c.get("next_fire_at_ms")
        when = "—" if at is None else f"next in {short_duration(max(0, int(at - now_ms)) // 1000)}"
        rows.append([c["name"], f"{dot} {c['status']}", when])
    return ["  Crons:", *_table(rows)]


def attention_lines(ns: Section, now_ms: float) -> list[str]:
    items = ns.get("attention") or []
    if not items:
        return []
    lines = [f"  Needs attention ({len(items)}):"]
    for item in items:
        who = f"{item['kind']} {item['name']}"
        if item.get("id"):
            who += f" ({item['id'][:8]})"
        since = item.get("since_ms")
        ago = f" {short_duration(max(0, int(now_ms - since)) // 1000)} ago" if since else ""
        lines.append(f"    ⚠ {who}{ago}: {item['reason']}")
        if item.get("hint"):
            lines.append(f"      → {item['hint']}")
    return lines


#: The parts of a namespace section, in order: (section, now in epoch ms) → lines.
RENDERERS: tuple[Callable[[Section, float], list[str]], ...] = (
    pipelines_lines,
    workers_lines,
    queues_lines,
    agents_lines,
    crons_lines,
    attention_lines,
)


def _table(rows: list[list[str]]) -> list[str]:
    """Rows indented under their heading, columns aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "    "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
