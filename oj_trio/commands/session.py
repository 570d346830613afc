"""`oj session list|send|peek|attach` and `oj pipeline peek|attach`: the tmux side of agents.

Sessions live on the daemon's private tmux server (a socket in the state dir); `attach` execs
`tmux attach` on it so the terminal is handed to tmux (no child process in between to eat
Ctrl-C). `peek` asks the daemon for the pane's last 40 lines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from .. import paths, protocol
from ..client import Client
from ..errors import NotFoundError, OjError
from ._args import AddParser, Subparsers
from ._output import ago, emit_json, table


def register(sub: Subparsers, add: AddParser) -> None:
    session = add(sub, "session", "the tmux sessions agents run in")
    ssub = session.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    add(ssub, "list", "list sessions", cmd_session_list)
    p = add(ssub, "send", "type text into a session (Enter is pressed after it)", cmd_session_send)
    p.add_argument("id", help="session id (or pipeline id)")
    p.add_argument("input", help="text to send")
    p = add(ssub, "peek", "print a session's pane", cmd_session_peek)
    p.add_argument("id", help="session id (or pipeline id)")
    p = add(ssub, "attach", "attach this terminal to a session", cmd_session_attach)
    p.add_argument("id", help="session id (or pipeline id)")


def cmd_session_list(args: argparse.Namespace) -> int:
    sessions = list(Client().query("ListSessions")["sessions"])
    if args.output == "json":
        emit_json(sessions)
        return 0
    if not sessions:
        print("No sessions")
        return 0
    now = int(time.time() * 1000)
    rows = [[s["id"], s["pipeline_id"][:12], ago(s.get("updated_at_ms"), now)] for s in sessions]
    print(table(["SESSION", "PIPELINE", "UPDATED"], rows))
    return 0


def cmd_session_send(args: argparse.Namespace) -> int:
    Client().call(protocol.request("SessionSend", id=args.id, input=args.input), action=True)
    print(f"Sent to session {args.id}")
    return 0


def _framed(session: str, output: str) -> str:
    lines = output.rstrip("\n")
    return f"╭──── peek: {session} ────\n{lines}\n╰──── end peek ────"


def cmd_session_peek(args: argparse.Namespace) -> int:
    reply = Client().query("PeekSession", id=args.id, with_color=sys.stdout.isatty() or None)
    print(_framed(reply["session_id"], reply["output"]))
    return 0


def _exec_attach(session: str) -> int:
    if shutil.which("tmux") is None:
        raise OjError("tmux is not installed")
    server = ["tmux", "-S", str(paths.tmux_socket(paths.state_dir()))]
    # Checked first: once exec'd, tmux's own complaint ("no sessions") would name nothing.
    probe = subprocess.run(
        [*server, "has-session", "-t", f"={session}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        raise OjError(f"Failed to attach to session {session}: it has ended")
    argv = [*server, "attach-session", "-t", f"={session}"]
    os.execvp(argv[0], argv)
    return 1  # not reached


def cmd_session_attach(args: argparse.Namespace) -> int:
    client = Client()
    known = {s["id"] for s in client.query("ListSessions")["sessions"]}
    if args.id in known:
        return _exec_attach(args.id)
    detail = client.query("GetPipeline", id=args.id).get("pipeline")
    if detail and detail.get("session_id"):
        return _exec_attach(detail["session_id"])
    raise NotFoundError(f"Session not found: {args.id}")


def _pipeline_session(client: Client, given: str) -> tuple[dict[str, object], str | None]:
    detail = client.query("GetPipeline", id=given).get("pipeline")
    if detail is None:
        raise NotFoundError(f"pipeline not found: {given}")
    session = detail.get("session_id")
    return dict(detail), str(session) if session else None


def pipeline_peek(args: argparse.Namespace) -> int:
    client = Client()
    detail, session = _pipeline_session(client, args.id)
    short = str(detail["id"])[:12]
    if session is None:
        print(
            f"No active session for pipeline {short} (step: {detail['step']}, "
            f"status: {detail['step_status']})"
        )
        print(f"Try:\n    oj pipeline logs {short}\n    oj pipeline show {short}")
        return 0
    reply = client.query("PeekSession", id=session, with_color=sys.stdout.isatty() or None)
    print(_framed(session, reply["output"]))
    return 0


def pipeline_attach(args: argparse.Namespace) -> int:
    _detail, session = _pipeline_session(Client(), args.id)
    if session is None:
        raise OjError("pipeline has no active session")
    return _exec_attach(session)
