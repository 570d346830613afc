"""`oj run`: list the project's runbook commands, or start one and report its pipeline.

The client knows nothing about a command's arg spec: it pulls out only the options that belong
to `oj run` itself (`-a/--arg k=v`, `--runbook FILE`, `-h/--help`) and sends the rest to the
daemon, which splits, validates and maps the arguments (reference §1.4). That is also why the
parser takes `ARGS` as a remainder and handles `-h` by hand: `oj run CMD --help` must reach the
daemon, which answers with the command's generated help.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .. import protocol
from ..client import Client
from ..settings import env_seconds
from ._args import AddParser, Subparsers, namespace_of, parse_cli_key_value


def register(sub: Subparsers, add: AddParser) -> None:
    run = add(sub, "run", "run a runbook command", cmd_run, add_help=False)
    # Help for `oj run` itself; `oj run CMD --help` ends up in ARGS and asks the daemon for the
    # command's generated help instead.
    run.add_argument("-h", "--help", action="help", help="show this help message and exit")
    run.add_argument("cmd", nargs="?", metavar="COMMAND", help="command name from a runbook")
    run.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="arguments for the command; also -a/--arg KEY=VALUE, --runbook FILE, -h/--help",
    )


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
            key, value = parse_cli_key_value(raw[i + 1])
            named[key] = value
            i += 2
            continue
        if arg.startswith("--arg="):
            key, value = parse_cli_key_value(arg[len("--arg=") :])
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
