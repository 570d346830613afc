"""What each `oj` subcommand does: build a request, talk to the daemon, print the answer.

Stdlib-only like the rest of the CLI path. Output texts, exit codes and JSON shapes follow
reference §7; the daemon does the thinking (runbook parsing, validation), the client formats.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import paths, project, protocol
from .client import Client, DaemonNotRunning
from .errors import DaemonError, NotFoundError, OjError, UsageError
from .settings import env_seconds

# -- output helpers ----------------------------------------------------------------------------


def emit_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, widths from the data (last column unpadded)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


Column = tuple[str, Callable[[dict[str, Any]], str]]


def project_table(items: list[dict[str, Any]], columns: list[Column]) -> str:
    """A table of daemon records; a PROJECT column follows the first one whenever any record
    belongs to a named namespace (lists are global across projects)."""
    namespaces = {item.get("namespace") or "" for item in items}
    if namespaces != {""}:
        columns = [columns[0], ("PROJECT", lambda i: i.get("namespace") or "-"), *columns[1:]]
    return table([h for h, _ in columns], [[cell(i) for _, cell in columns] for i in items])


def ago(ms: int | None, now_ms: int | None = None) -> str:
    """`Ns`, `Nm`, `Nh`, `Nd` since an epoch-ms timestamp; `-` when unknown."""
    if not ms:
        return "-"
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return short_duration(max(0, now_ms - ms) // 1000)


def short_duration(secs: int) -> str:
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        hours, minutes = divmod(secs // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{secs // 86400}d"


def step_duration(ms: int) -> str:
    """`Ns`, `Nm Ns`, `Nh Nm` as in `pipeline show` and `pipeline wait`."""
    secs = max(0, ms) // 1000
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m {secs % 60}s"
    return f"{secs // 3600}h {(secs % 3600) // 60}m"


def uptime_text(secs: int) -> str:
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m {secs % 60}s"
    return f"{secs // 3600}h {(secs % 3600) // 60}m {secs % 60}s"


def namespace_of(args: argparse.Namespace) -> tuple[Path, str]:
    root = project.find_project_root()
    return root, project.resolve_namespace(root, args.project)


def parse_key_value(text: str, what: str = "key=value") -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"invalid {what}: no `=` found in `{text}`")
    return key, value


_DURATION_PART = re.compile(r"(\d+)([a-zA-Z]*)")


def parse_cli_duration(text: str) -> float:
    """`30s`, `5m`, `1h30m`, or a bare number of seconds (reference §7.2 `pipeline wait`)."""
    raw = text.strip()
    if not raw:
        raise UsageError(f"invalid duration: {text}")
    if raw.isdigit():
        total = float(raw)
    else:
        total = 0.0
        pos = 0
        units = {"h": 3600, "m": 60, "s": 1}
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos:
                raise UsageError(f"invalid duration: {text}")
            number, unit = match.groups()
            if unit not in units:
                raise UsageError(f"unknown duration unit '{unit}' in: {text}")
            total += int(number) * units[unit]
            pos = match.end()
        if pos != len(raw):
            raise UsageError(f"invalid duration: {text}")
    if total <= 0:
        raise UsageError(f"duration must be > 0: {text}")
    return total


# -- run ---------------------------------------------------------------------------------------


def split_run_args(raw: list[str]) -> tuple[list[str], dict[str, str], bool, str | None]:
    """Pull `-a/--arg k=v`, `--runbook FILE` and `-h/--help` out of `oj run` arguments.

    Everything else (including `--` and what follows it) goes to the daemon, which knows the
    command's arg spec and does the real splitting.
    """
    rest: list[str] = []
    named: dict[str, str] = {}
    want_help = False
    runbook: str | None = None
    i = 0
    while i < len(raw):
        arg = raw[i]
        if arg == "--":
            rest.extend(raw[i:])
            break
        if arg in ("-a", "--arg") and i + 1 < len(raw):
            key, value = parse_key_value(raw[i + 1])
            named[key] = value
            i += 2
            continue
        if arg.startswith("--arg="):
            key, value = parse_key_value(arg[len("--arg=") :])
            named[key] = value
        elif arg == "--runbook" and i + 1 < len(raw):
            runbook = raw[i + 1]
            i += 2
            continue
        elif arg in ("-h", "--help"):
            want_help = True
        else:
            rest.append(arg)
        i += 1
    return rest, named, want_help, runbook


def cmd_run(args: argparse.Namespace) -> int:
    client = Client()
    root, namespace = namespace_of(args)
    if args.cmd is None:
        response = client.call(
            protocol.request("ListCommands", project_root=str(root)), action=True
        )
        print(response["usage"], end="", file=sys.stderr)
        return 2
    positional, named, want_help, runbook = split_run_args(list(args.args))
    request = protocol.request(
        "RunCommand",
        project_root=str(root),
        invoke_dir=os.getcwd(),
        namespace=namespace,
        command=args.cmd,
        args=positional,
        named_args=named,
        help=want_help or None,
        runbook=runbook,
    )
    response = client.call(request, action=True)
    if response["type"] == "CommandHelp":
        print(response["text"], end="" if response["text"].endswith("\n") else "\n")
        return 0
    pipeline_id = response["pipeline_id"]
    short = pipeline_id[:12]
    print(f"Project: {namespace}")
    print(f"Command {args.cmd} invoked.")
    print("Waiting for pipeline to start... (Ctrl+C to skip)")
    print()
    sys.stdout.flush()
    started = False
    deadline = time.monotonic() + env_seconds("OJ_RUN_WAIT_MS", 10000)
    after = 0
    try:
        while True:
            # A long poll: the daemon answers as soon as anything changes (or at the timeout).
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            wait_ms = max(1, min(remaining_ms, int(client.ipc_timeout * 500))) if after else 0
            states = client.query(
                "WaitPipelines", ids=[pipeline_id], after_seq=after, timeout_ms=wait_ms
            )
            after = states["seq"]
            detail = states["pipelines"][0]
            if detail is None or detail.get("step_status") != "Pending":
                started = detail is not None
                break
            if time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    if started:
        print(f"Started {response['pipeline_name']} (pipeline: {short})")
    else:
        print("Still waiting for the pipeline to start, check:")
    print(f"    oj pipeline show {short}")
    print(f"    oj pipeline wait {short}      # Wait until pipeline ends")
    print(f"    oj pipeline logs {short} -f   # Follow logs")
    return 0


# -- pipeline ----------------------------------------------------------------------------------


def cmd_pipeline_list(args: argparse.Namespace) -> int:
    pipelines = Client().query("ListPipelines")["pipelines"]
    if args.project:
        pipelines = [p for p in pipelines if p.get("namespace") == args.project]
    if args.name:
        needle = args.name.lower()
        pipelines = [p for p in pipelines if needle in p["name"].lower()]
    if args.status:
        wanted = args.status.lower()
        pipelines = [
            p for p in pipelines if wanted in (p["step_status"].lower(), p["step"].lower())
        ]
    pipelines.sort(key=lambda p: p.get("updated_at_ms") or 0, reverse=True)
    hidden = 0
    if not args.no_limit and len(pipelines) > args.limit:
        hidden = len(pipelines) - args.limit
        pipelines = pipelines[: args.limit]
    if args.output == "json":
        emit_json(pipelines)
        return 0
    if not pipelines:
        print("No pipelines")
        return 0
    now = int(time.time() * 1000)
    columns: list[Column] = [
        ("ID", lambda p: p["id"][:12]),
        ("NAME", lambda p: p["name"]),
        ("KIND", lambda p: p["kind"]),
        ("STEP", lambda p: p["step"]),
        ("UPDATED", lambda p: ago(p.get("updated_at_ms"), now)),
        ("STATUS", lambda p: p["step_status"]),
    ]
    print(project_table(pipelines, columns))
    if hidden:
        print(f"\n... {hidden} more not shown. Use --no-limit or --limit N to see more.")
    return 0


def _step_status_text(step: dict[str, Any]) -> str:
    outcome = step["outcome"]
    detail = step.get("detail")
    if detail and outcome in ("failed", "waiting"):
        cut = detail if len(detail) <= 40 else detail[:37] + "..."
        return f"{outcome} ({cut})"
    return outcome


def _var_text(value: str, verbose: bool) -> str:
    if verbose:
        return value.replace("\n", "\n      ")
    flat = value.replace("\n", "\\n")
    return flat if len(flat) <= 80 else flat[:80] + "..."


def cmd_pipeline_show(args: argparse.Namespace) -> int:
    detail = Client().query("GetPipeline", id=args.id).get("pipeline")
    if args.output == "json":
        emit_json(detail)
        return 0
    if detail is None:
        print(f"Pipeline not found: {args.id}")
        return 0
    now = int(time.time() * 1000)
    print(f"Pipeline: {detail['id']}")
    print(f"  Name: {detail['name']}")
    if detail.get("namespace"):
        print(f"  Project: {detail['namespace']}")
    print(f"  Kind: {detail['kind']}")
    print(f"  Step: {detail['step']}")
    print(f"  Status: {detail['step_status']}")
    if detail.get("steps"):
        print()
        print("  Steps:")
        for step in detail["steps"]:
            end = step.get("finished_at_ms") or now
            duration = step_duration(end - step["started_at_ms"])
            print(f"    {step['name']:<12} {duration:<8} {_step_status_text(step)}")
    if detail.get("workspace_path"):
        print(f"  Workspace: {detail['workspace_path']}")
    if detail.get("error"):
        print(f"  Error: {detail['error']}")
    if detail.get("vars"):
        print("  Vars:")
        for key in sorted(detail["vars"]):
            print(f"    {key}: {_var_text(str(detail['vars'][key]), args.verbose)}")
    return 0


def cmd_pipeline_cancel(args: argparse.Namespace) -> int:
    response = Client().call(protocol.request("PipelineCancel", ids=list(args.ids)), action=True)
    for pid in response["cancelled"]:
        print(f"Cancelled pipeline {pid}")
    for pid in response["already_terminal"]:
        print(f"Pipeline {pid} was already terminal")
    for pid in response["not_found"]:
        print(f"Pipeline not found: {pid}", file=sys.stderr)
    return 1 if response["not_found"] else 0


def cmd_pipeline_resume(args: argparse.Namespace) -> int:
    variables = {}
    for item in args.var:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid input format '{item}': must be key=value")
        variables[key] = value
    request = protocol.request(
        "PipelineResume", id=args.id, message=args.message, vars=variables or None
    )
    response = Client().call(request, action=True)
    pid = response.get("id", args.id)
    if variables:
        print(f"Updated vars and resumed pipeline {pid}")
    else:
        print(f"Resumed pipeline {pid}")
    return 0


def cmd_pipeline_logs(args: argparse.Namespace) -> int:
    client = Client()
    response = client.query("GetPipelineLogs", id=args.id, lines=args.limit)
    lines = response["lines"]
    if args.output == "json":
        if args.follow:
            print("warning: --follow is not supported with -o json", file=sys.stderr)
        emit_json({"log_path": response["log_path"], "lines": lines})
        return 0
    if not lines and not args.follow:
        print(f"No log entries found for pipeline {args.id}", file=sys.stderr)
        return 0
    for line in lines:
        print(line)
    if args.follow:
        sys.stdout.flush()

        def ended() -> bool:
            detail = client.query("GetPipeline", id=args.id).get("pipeline")
            return detail is None or is_terminal(detail)

        follow_file(Path(response["log_path"]), response.get("size", 0), until=ended)
    return 0


def follow_file(path: Path, offset: int, until: Callable[[], bool] | None = None) -> None:
    """`tail -f`: print what is appended after `offset`, until Ctrl-C or, when `until` is
    given, until it says the writer is done (checked about once a second while idle) and the
    file holds nothing more."""
    pending = b""
    next_check = time.monotonic() + 1.0
    finishing = False
    while True:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                print(line.decode("utf-8", "replace"), flush=True)
            continue
        if finishing:
            if pending:
                print(pending.decode("utf-8", "replace"), flush=True)
            return
        if until is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + 1.0
            # One more read after the writer is done catches its last lines.
            finishing = until()
            continue
        time.sleep(0.2)


class _WaitPrinter:
    """Prints each pipeline's new step transitions once, as `oj pipeline wait` observes them."""

    def __init__(self, prefix: bool) -> None:
        self.prefix = prefix
        self.seen: dict[str, list[str]] = {}

    def update(self, detail: dict[str, Any]) -> None:
        printed = self.seen.setdefault(detail["id"], [])
        tag = f"[{detail['name']}] " if self.prefix else ""
        for i, step in enumerate(detail.get("steps", [])):
            outcome = step["outcome"]
            if i >= len(printed):
                printed.append("")
            if printed[i] == outcome:
                continue
            if printed[i] == "" and outcome != "running":
                print(f"{tag}{step['name']} started")
            if outcome == "running":
                print(f"{tag}{step['name']} started")
            elif outcome in ("completed", "failed"):
                took = step_duration((step.get("finished_at_ms") or 0) - step["started_at_ms"])
                extra = f" - {step['detail']}" if outcome == "failed" and step.get("detail") else ""
                print(f"{tag}{step['name']} {outcome} ({took}){extra}")
            elif outcome == "waiting":
                print(f"{tag}{step['name']} waiting ({step.get('detail') or 'unknown'})")
            printed[i] = outcome
        sys.stdout.flush()


TERMINAL = ("done", "failed", "cancelled")


def is_terminal(pipeline: dict[str, Any]) -> bool:
    """A step merely *named* done is not the end (SPEC §4.5): trust the daemon's flag."""
    return bool(pipeline.get("terminal", pipeline["step"] in TERMINAL))


def cmd_pipeline_wait(args: argparse.Namespace) -> int:
    timeout = parse_cli_duration(args.timeout) if args.timeout else None
    deadline = time.monotonic() + timeout if timeout else None
    client = Client()
    if not args.ids:
        if not args.all:
            raise UsageError("specify pipeline IDs, or --all to wait for every active pipeline")
        pipelines = client.query("ListPipelines")["pipelines"]
        args.ids = [
            p["id"]
            for p in pipelines
            if not is_terminal(p) and args.project in (None, p.get("namespace"))
        ]
        if not args.ids:
            print("No active pipelines")
            return 0
    printer = _WaitPrinter(prefix=len(args.ids) > 1)
    finished: dict[str, dict[str, Any]] = {}
    after = 0
    poll_ms = int(env_seconds("OJ_WAIT_POLL_MS", 1000) * 1000)
    while True:
        wait_ms = 0
        if after:
            wait_ms = min(max(poll_ms, 1), int(client.ipc_timeout * 500) or 1)
            if deadline is not None:
                wait_ms = max(1, min(wait_ms, int((deadline - time.monotonic()) * 1000)))
        response = client.query(
            "WaitPipelines", ids=list(args.ids), after_seq=after, timeout_ms=wait_ms
        )
        after = response["seq"]
        for given, detail in zip(args.ids, response["pipelines"], strict=True):
            if detail is None:
                print(f"Pipeline not found: {given}", file=sys.stderr)
                return 3
            printer.update(detail)
            if is_terminal(detail) and detail["id"] not in finished:
                finished[detail["id"]] = detail
                _print_final(detail)
        wanted = len({d for d in args.ids}) if args.all else 1
        if len(finished) >= min(wanted, len(args.ids)):
            steps = [d["step"] for d in finished.values()]
            if "failed" in steps:
                return 1
            if "cancelled" in steps:
                return 4
            return 0
        if deadline is not None and time.monotonic() >= deadline:
            print("Timeout waiting for pipeline(s)", file=sys.stderr)
            return 2


def _print_final(detail: dict[str, Any]) -> None:
    label = f"Pipeline {detail['name']} ({detail['id'][:8]})"
    if detail["step"] == "done":
        print(f"{label} completed", flush=True)
    elif detail["step"] == "failed":
        print(f"{label} failed: {detail.get('error') or 'unknown error'}", file=sys.stderr)
    else:
        print(f"{label} was cancelled", file=sys.stderr)


def cmd_pipeline_prune(args: argparse.Namespace) -> int:
    request = protocol.request(
        "PipelinePrune",
        all=args.all or None,
        failed=args.failed or None,
        dry_run=args.dry_run or None,
    )
    response = Client().call(request, action=True)
    if args.output == "json":
        emit_json(
            {"dry_run": args.dry_run, "pruned": response["pruned"], "skipped": response["skipped"]}
        )
        return 0
    if args.dry_run:
        print("Dry run — no changes made\n")
    verb = "Would prune" if args.dry_run else "Pruned"
    for entry in response["pruned"]:
        print(f"{verb} {entry['name']} ({entry['id'][:12]}, {entry['step']})")
    done = "would be pruned" if args.dry_run else "pruned"
    print(f"\n{len(response['pruned'])} pipeline(s) {done}, {response['skipped']} skipped")
    return 0


# -- workspace ---------------------------------------------------------------------------------


def cmd_workspace_list(args: argparse.Namespace) -> int:
    workspaces = Client().query("ListWorkspaces")["workspaces"]
    workspaces.sort(key=lambda w: w.get("created_at_ms") or 0, reverse=True)
    if not args.no_limit:
        workspaces = workspaces[: args.limit]
    if args.output == "json":
        emit_json(workspaces)
        return 0
    if not workspaces:
        print("No workspaces")
        return 0
    columns: list[Column] = [
        ("ID", lambda w: w["id"]),
        ("PATH", lambda w: w["path"]),
        ("BRANCH", lambda w: w.get("branch") or "-"),
        ("STATUS", lambda w: w["status"]),
    ]
    print(project_table(workspaces, columns))
    return 0


def cmd_workspace_show(args: argparse.Namespace) -> int:
    detail = Client().query("GetWorkspace", id=args.id).get("workspace")
    if args.output == "json":
        emit_json(detail)
        return 0
    if detail is None:
        print(f"Workspace not found: {args.id}")
        return 0
    print(f"Workspace: {detail['id']}")
    print(f"  Path: {detail['path']}")
    print(f"  Branch: {detail.get('branch') or '-'}")
    print(f"  Owner: {detail.get('owner') or '-'}")
    print(f"  Status: {detail['status']}")
    return 0


def cmd_workspace_drop(args: argparse.Namespace) -> int:
    if args.all:
        request = protocol.request("WorkspaceDropAll")
    elif args.failed:
        request = protocol.request("WorkspaceDropFailed")
    elif args.id:
        request = protocol.request("WorkspaceDrop", id=args.id)
    else:
        raise UsageError("specify a workspace ID, --failed, or --all")
    dropped = Client().call(request, action=True)["dropped"]
    if args.output == "json":
        emit_json(dropped)
        return 0
    if not dropped:
        print("No workspaces deleted")
        return 0
    for ws in dropped:
        print(f"Dropping {ws.get('branch') or ws['id'][:12]} ({ws['path']})")
    print(f"Deleted {len(dropped)} workspace(s)")
    return 0


def cmd_workspace_prune(args: argparse.Namespace) -> int:
    request = protocol.request("WorkspacePrune", all=args.all or None, dry_run=args.dry_run or None)
    response = Client().call(request, action=True)
    if args.output == "json":
        emit_json(
            {"dry_run": args.dry_run, "pruned": response["pruned"], "skipped": response["skipped"]}
        )
        return 0
    verb = "Would prune" if args.dry_run else "Pruned"
    for ws in response["pruned"]:
        print(f"{verb} {ws['id'][:12]} ({ws['path']})")
    done = "would be pruned" if args.dry_run else "pruned"
    print(
        f"\n{len(response['pruned'])} workspace(s) {done}, {response['skipped']} active workspace(s) skipped"
    )
    return 0


# -- status ------------------------------------------------------------------------------------


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


# -- daemon ------------------------------------------------------------------------------------


def cmd_daemon_start(args: argparse.Namespace) -> int:
    client = Client()
    if args.foreground:
        import subprocess

        result = subprocess.run(client.daemon_command(), check=False)
        if result.returncode != 0:
            raise OjError(f"Daemon exited with status: {result.returncode}")
        return 0
    try:
        status = client.send(protocol.request("Status"))
        if status.get("type") == "Status":
            print(f"Daemon already running (uptime: {status['uptime_secs']}s)")
            return 0
    except DaemonError:
        # Not only "nothing listens": a connect that fails for another reason (e.g. a socket
        # path too long for AF_UNIX) must go on to the start, whose error names the real cause.
        pass
    client.ensure_running()
    print("Daemon started")
    return 0


def cmd_daemon_stop(args: argparse.Namespace) -> int:
    print("Daemon stopped" if Client().stop(kill=args.kill) else "Daemon not running")
    return 0


def cmd_daemon_restart(args: argparse.Namespace) -> int:
    client = Client()
    client.stop(kill=args.kill)
    client.ensure_running()
    print("Daemon restarted")
    return 0


def cmd_daemon_status(args: argparse.Namespace) -> int:
    try:
        status = Client().call(protocol.request("Status"))
    except DaemonNotRunning:
        if args.output == "json":
            emit_json({"status": "not_running"})
        else:
            print("Daemon not running")
        return 0
    uptime = uptime_text(status["uptime_secs"])
    if args.output == "json":
        emit_json(
            {
                "status": "running",
                "version": status.get("version"),
                "uptime_secs": status["uptime_secs"],
                "uptime": uptime,
                "pipelines_active": status["pipelines_active"],
                "sessions_active": status["sessions_active"],
                "orphan_count": status.get("orphan_count", 0),
            }
        )
        return 0
    print("Status: running")
    print(f"Version: {status.get('version') or 'unknown'}")
    print(f"Uptime: {uptime}")
    print(f"Pipelines: {status['pipelines_active']} active")
    print(f"Sessions: {status['sessions_active']} active")
    return 0


def cmd_daemon_logs(args: argparse.Namespace) -> int:
    path = paths.log_path(paths.state_dir())
    if not path.exists():
        raise NotFoundError(f"No log file found at {path}")
    lines, size = tail_lines(path, args.lines)
    if args.output == "json":
        emit_json({"log_path": str(path), "lines": lines})
        return 0
    for line in lines:
        print(line)
    if args.follow:
        sys.stdout.flush()
        follow_file(path, size)
    return 0


def tail_lines(path: Path, count: int) -> tuple[list[str], int]:
    """Last `count` lines of a file without reading all of a large one; also the file size."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        block = 64 * 1024
        data = b""
        pos = size
        while pos > 0 and data.count(b"\n") <= count:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return (lines[-count:] if count else lines), size


def cmd_daemon_install_unit(args: argparse.Namespace) -> int:
    from .systemd_unit import install_unit

    target = install_unit(Client().daemon_command(), args.dir)
    print(f"Installed {target}")
    print("Enable and start it with:")
    print("    systemctl --user daemon-reload")
    print("    systemctl --user enable --now ojd.service")
    print("Keep it running after you log out with:")
    print(f"    loginctl enable-linger {os.environ.get('USER', '$USER')}")
    return 0


# -- runbook -----------------------------------------------------------------------------------


def cmd_runbook_check(args: argparse.Namespace) -> int:
    from .runbook.check import check_command

    root = project.find_project_root()
    return check_command(root, args.path, args.output, sys.stdout, sys.stderr)
