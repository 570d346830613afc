"""`oj workspace list|show|drop|prune`: inspect and remove the directories pipelines run in.

The daemon decides what may go (a workspace still in use is skipped, not deleted) and deletes
it; the client only picks the request (one id, all failed, all) and reports what was removed.
"""

from __future__ import annotations

import argparse

from .. import protocol
from ..client import Client
from ..errors import UsageError
from ._args import AddParser, Subparsers, non_negative_int
from ._output import Column, emit_json, project_table


def register(sub: Subparsers, add: AddParser) -> None:
    workspace = add(sub, "workspace", "inspect and remove workspaces")
    wsub = workspace.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(wsub, "list", "list workspaces", cmd_workspace_list)
    p.add_argument(
        "-n", "--limit", type=non_negative_int, default=20, help="show at most N (default 20)"
    )
    p.add_argument("--no-limit", action="store_true", help="show all")
    p = add(wsub, "show", "show one workspace", cmd_workspace_show)
    p.add_argument("id", help="workspace id")
    p = add(wsub, "drop", "delete workspaces", cmd_workspace_drop)
    p.add_argument("id", nargs="?", help="workspace id or unique prefix")
    p.add_argument("--failed", action="store_true", help="all failed workspaces")
    p.add_argument("--all", action="store_true", help="all workspaces")
    p = add(wsub, "prune", "delete workspaces of ended pipelines", cmd_workspace_prune)
    p.add_argument("--all", action="store_true", help="ignore age")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")


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
