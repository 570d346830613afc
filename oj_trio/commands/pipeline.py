"""`oj pipeline list|show|cancel|resume|logs|wait|prune`: inspect and control pipelines.

The daemon owns every pipeline and answers with plain records; this module filters, sorts and
formats them (reference §7). Waiting and following are client-side loops over long polls
(`WaitPipelines` returns as soon as anything changes), so `wait` and `logs -f` need no open
stream. A pipeline is over when the daemon says `terminal`: a step merely *named* `done` is not
the end (SPEC §4.5). `wait` exits 0 done / 1 failed / 4 cancelled / 2 timeout / 3 not found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .. import protocol
from ..client import Client
from ..errors import UsageError
from ..settings import env_seconds
from ._args import (
    AddParser,
    Subparsers,
    non_negative_int,
    parse_cli_duration,
    parse_cli_key_value,
)
from ._output import Column, ago, emit_json, follow_file, project_table, step_duration
from ._progress import Progress, counter_text


def register(sub: Subparsers, add: AddParser) -> None:
    pipeline = add(sub, "pipeline", "inspect and control pipelines")
    psub = pipeline.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(psub, "list", "list pipelines", cmd_pipeline_list)
    p.add_argument("name", nargs="?", help="filter: substring of the display name")
    p.add_argument("--status", help="filter: step status or step name")
    p.add_argument(
        "-n", "--limit", type=non_negative_int, default=20, help="show at most N (default 20)"
    )
    p.add_argument("--no-limit", action="store_true", help="show all")
    p = add(psub, "show", "show one pipeline", cmd_pipeline_show)
    p.add_argument("id", help="pipeline id or unique prefix")
    p.add_argument("-v", "--verbose", action="store_true", help="print variables in full")
    p = add(psub, "cancel", "cancel pipelines", cmd_pipeline_cancel)
    p.add_argument("ids", nargs="+", metavar="ID", help="pipeline ids or unique prefixes")
    p = add(psub, "resume", "re-run the failed step of a pipeline", cmd_pipeline_resume)
    p.add_argument("id", help="pipeline id or unique prefix")
    p.add_argument("-m", "--message", help="message for an agent step")
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="set a variable")
    p = add(psub, "logs", "show a pipeline's log", cmd_pipeline_logs)
    p.add_argument("id", help="pipeline id or unique prefix")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines until the pipeline ends",
    )
    p.add_argument(
        "-n", "--limit", type=non_negative_int, default=50, help="last N lines (default 50)"
    )
    p = add(psub, "wait", "wait until pipelines end", cmd_pipeline_wait)
    p.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="pipeline ids or unique prefixes (none with --all: every active pipeline)",
    )
    p.add_argument("--all", action="store_true", help="wait for all (default: the first to end)")
    p.add_argument("--timeout", help="give up after D (e.g. 30s, 5m, 1h30m)")
    p = add(psub, "peek", "print the pane of a pipeline's agent", cmd_pipeline_peek)
    p.add_argument("id", help="pipeline id or unique prefix")
    p = add(psub, "attach", "attach this terminal to the agent's tmux session", cmd_pipeline_attach)
    p.add_argument("id", help="pipeline id or unique prefix")
    p = add(psub, "prune", "remove old terminal pipelines", cmd_pipeline_prune)
    p.add_argument("--all", action="store_true", help="ignore age")
    p.add_argument("--failed", action="store_true", help="only failed pipelines, any age")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")


TERMINAL = ("done", "failed", "cancelled")


def is_terminal(pipeline: dict[str, Any]) -> bool:
    """A step merely *named* done is not the end (SPEC §4.5): trust the daemon's flag."""
    return bool(pipeline.get("terminal", pipeline["step"] in TERMINAL))


# -- list, show --------------------------------------------------------------------------------


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
    outcome: str = step["outcome"]
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


# -- cancel, resume ----------------------------------------------------------------------------


def cmd_pipeline_cancel(args: argparse.Namespace) -> int:
    response = Client().call(protocol.request("PipelineCancel", ids=list(args.ids)), action=True)
    for pid in response["cancelled"]:
        print(f"Cancelled pipeline {pid}")
    for pid in response["already_terminal"]:
        print(f"Pipeline {pid} was already terminal")
    for pid in response["not_found"]:
        print(f"Pipeline not found: {pid}", file=sys.stderr)
    return 1 if response["not_found"] else 0


#: `--var` keeps its own wording, unlike `oj run -a` (tests/test_pipeline_cancel_resume.py).
_VAR_MESSAGE = "invalid input format '{text}': must be key=value"


def cmd_pipeline_resume(args: argparse.Namespace) -> int:
    variables: dict[str, str] = {}
    for item in args.var:
        key, value = parse_cli_key_value(item, _VAR_MESSAGE)
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


# -- logs --------------------------------------------------------------------------------------


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


# -- wait --------------------------------------------------------------------------------------


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
    # --all counts done/failed/remaining: one live line on a terminal (instead of every step's
    # transitions), a plain line per change otherwise (after the transitions).
    progress = Progress()
    steps_shown = not (args.all and progress.live)
    printer = _WaitPrinter(prefix=len(args.ids) > 1)
    finished: dict[str, dict[str, Any]] = {}
    after = 0
    poll_ms = int(env_seconds("OJ_WAIT_POLL_MS", 1000) * 1000)
    try:
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
                    progress.note(f"Pipeline not found: {given}", sys.stderr)
                    return 3
                if steps_shown:
                    printer.update(detail)
                if is_terminal(detail) and detail["id"] not in finished:
                    finished[detail["id"]] = detail
                    _print_final(detail, progress)
            wanted = len(set(args.ids)) if args.all else 1
            if args.all:
                failed = sum(1 for d in finished.values() if d["step"] != "done")
                left = max(0, wanted - len(finished))
                progress.show(counter_text(len(finished) - failed, failed, left))
            if len(finished) >= min(wanted, len(args.ids)):
                steps = [d["step"] for d in finished.values()]
                if "failed" in steps:
                    return 1
                if "cancelled" in steps:
                    return 4
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                progress.note("Timeout waiting for pipeline(s)", sys.stderr)
                return 2
    finally:
        progress.close()


def _print_final(detail: dict[str, Any], progress: Progress) -> None:
    label = f"Pipeline {detail['name']} ({detail['id'][:8]})"
    if detail["step"] == "done":
        progress.note(f"{label} completed")
    elif detail["step"] == "failed":
        progress.note(f"{label} failed: {detail.get('error') or 'unknown error'}", sys.stderr)
    else:
        progress.note(f"{label} was cancelled", sys.stderr)


# -- prune -------------------------------------------------------------------------------------


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


def cmd_pipeline_peek(args: argparse.Namespace) -> int:
    """`oj pipeline peek` (the tmux side lives in `commands.session`)."""
    from . import session

    return session.pipeline_peek(args)


def cmd_pipeline_attach(args: argparse.Namespace) -> int:
    """`oj pipeline attach`: exec tmux on the pipeline's agent session."""
    from . import session

    return session.pipeline_attach(args)
