"""`oj agent list|send|logs|wait|prune|hook`: the agents of agent steps.

`agent hook` is what Claude Code calls back (like `oj emit`, it never starts a daemon). The stop hook implements Claude
Code's contract (reference §4.5): an agent may stop only after it signalled; otherwise it gets
a `{"decision": "block"}` telling it how to signal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import paths, protocol
from ..client import Client
from ..errors import OjError
from ._args import AddParser, Subparsers, non_negative_int, parse_cli_duration
from ._output import ago, emit_json, follow_file, table
from .emit import signal_call


def register(sub: Subparsers, add: AddParser) -> None:
    agent = add(sub, "agent", "inspect and talk to the agents of agent steps")
    asub = agent.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(asub, "list", "list agents", cmd_agent_list)
    p.add_argument("--pipeline", help="filter: pipeline id prefix")
    p.add_argument("--status", help="filter: running, completed, failed or waiting")
    p.add_argument("-n", "--limit", type=non_negative_int, default=20, help="show at most N")
    p.add_argument("--no-limit", action="store_true", help="show all")
    p = add(asub, "send", "type a message into an agent's pane", cmd_agent_send)
    p.add_argument("id", help="agent id, or pipeline id (prefixes work)")
    p.add_argument("message", help="the text to send (Enter is pressed after it)")
    p = add(asub, "logs", "show the agent logs of a pipeline", cmd_agent_logs)
    p.add_argument("id", help="pipeline id or prefix (or an agent id)")
    p.add_argument("-s", "--step", help="only this step's agent")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p.add_argument("-n", "--limit", type=non_negative_int, default=50, help="last N lines per step")
    p = add(asub, "wait", "wait until an agent is idle, done or gone", cmd_agent_wait)
    p.add_argument("id", help="agent id or prefix")
    p.add_argument("--timeout", help="give up after D (e.g. 30s, 5m)")
    p = add(asub, "prune", "delete the logs of agents of ended pipelines", cmd_agent_prune)
    p.add_argument("--all", action="store_true", help="ignore age (default: older than 24h)")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")
    hook = add(asub, "hook", "hooks Claude Code calls (stop, pretooluse)")
    hsub = hook.add_subparsers(dest="hook", metavar="HOOK", required=True)
    p = add(
        hsub,
        "stop",
        "Claude Code's Stop hook: block until the agent signalled",
        cmd_agent_hook_stop,
    )
    p.add_argument("agent_id")
    p = add(
        hsub,
        "pretooluse",
        "Claude Code's PreToolUse hook: report prompts",
        cmd_agent_hook_pretooluse,
    )
    p.add_argument("agent_id")


# -- emit and hooks (called by agents) ---------------------------------------------------------


def _agent_log(agent_id: str, line: str) -> None:
    path = paths.agent_log_path(paths.state_dir(), agent_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{stamp} {line}\n")
    except OSError:
        pass


def _hook_input() -> dict[str, Any]:
    try:
        data = json.loads(sys.stdin.read() or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def cmd_agent_hook_stop(args: argparse.Namespace) -> int:
    data = _hook_input()
    active = bool(data.get("stop_hook_active"))
    _agent_log(args.agent_id, f"stop-hook: invoked, stop_hook_active={str(active).lower()}")
    if active:
        return 0
    reply = Client().query("GetAgentSignal", agent_id=args.agent_id)
    if reply.get("signaled"):
        _agent_log(args.agent_id, "stop-hook: allowing exit, signaled=true")
        return 0
    _agent_log(args.agent_id, "stop-hook: blocking exit, signaled=false")
    reason = (
        "You must explicitly signal completion before stopping. Run: oj emit agent:signal "
        f'--agent {args.agent_id} \'<json>\' where <json> is {{"action": "complete"}} or '
        '{"action": "escalate", "message": "..."}'
    )
    print(json.dumps({"decision": "block", "reason": reason}))
    return 0


def cmd_agent_hook_pretooluse(args: argparse.Namespace) -> int:
    tool = _hook_input().get("tool_name")
    kind = {"ExitPlanMode": "plan_approval", "EnterPlanMode": "plan_approval"}.get(str(tool))
    if tool == "AskUserQuestion":
        kind = "question"
    if kind is not None:
        signal_call(
            protocol.request(
                "AgentHook", agent_id=args.agent_id, trigger="prompt", prompt_type=kind
            )
        )
    return 0


# -- list, send, logs, wait, prune -------------------------------------------------------------


def cmd_agent_list(args: argparse.Namespace) -> int:
    agents = list(
        Client().query("ListAgents", pipeline_id=args.pipeline, status=args.status)["agents"]
    )
    if args.project:
        agents = [a for a in agents if a.get("namespace") == args.project]
    if not args.no_limit:
        agents = agents[: args.limit]
    if args.output == "json":
        emit_json(agents)
        return 0
    if not agents:
        print("No agents found")
        return 0
    rows = [
        [
            a["agent_id"][:12],
            a.get("agent_name") or "",
            a.get("namespace") or "",
            a["pipeline_id"][:12],
            a["step_name"],
            a["status"],
            str(a["files_read"]),
            str(a["files_written"]),
            str(a["commands_run"]),
            ago(a.get("updated_at_ms")),
        ]
        for a in agents
    ]
    headers = ["ID", "NAME", "PROJECT", "PIPELINE", "STEP", "STATUS", "READ", "WRITE", "CMDS"]
    print(table([*headers, "UPDATED"], rows))
    return 0


def cmd_agent_send(args: argparse.Namespace) -> int:
    reply = Client().call(
        protocol.request("AgentSend", agent_id=args.id, message=args.message), action=True
    )
    print(f"Sent to agent {reply['agent_id']}")
    return 0


def cmd_agent_logs(args: argparse.Namespace) -> int:
    reply = Client().query("GetAgentLogs", id=args.id, step=args.step, lines=args.limit)
    if args.output == "json":
        if args.follow:
            print("warning: --follow is not supported with -o json", file=sys.stderr)
        emit_json({"log_path": reply["log_path"], "content": reply["content"]})
        return 0
    if reply["content"]:
        print(reply["content"])
    elif not args.follow:
        print(f"No log entries found for agent {args.id}", file=sys.stderr)
    if args.follow and reply["paths"]:
        _follow_agents(args, list(reply["paths"][-1]))
    return 0


def _follow_agents(args: argparse.Namespace, current: list[str]) -> None:
    """Tail the latest agent's log; when a later step starts another agent (plan → implement),
    go on with that one's log under a ``=== <step> ===`` header (Ctrl-C ends)."""
    latest = _LatestAgent(args.id, args.step, current)
    path = Path(current[1])
    offset = path.stat().st_size if path.exists() else 0
    while True:
        follow_file(path, offset, until=latest.moved)
        print(f"=== {latest.current[0]} ===", flush=True)
        path, offset = Path(latest.current[1]), 0


class _LatestAgent:
    """Which agent's log `agent logs -f` should follow: [step, log path] of the latest one."""

    def __init__(self, given: str, step: str | None, current: list[str]) -> None:
        self.given, self.step, self.current = given, step, current

    def moved(self) -> bool:
        """Whether a newer agent took over (then ``current`` is it)."""
        try:
            found = Client().query("GetAgentLogs", id=self.given, step=self.step, lines=1)
        except (OjError, OSError):
            return False  # the daemon is away: keep following what we have
        latest = list(found["paths"][-1]) if found["paths"] else self.current
        if latest == self.current:
            return False
        self.current = latest
        return True


def _find_agent(client: Client, given: str) -> dict[str, Any] | None:
    for agent in client.query("ListAgents")["agents"]:
        if agent["agent_id"].startswith(given):
            return dict(agent)
    return None


def agent_wait_verdict(
    agent: Mapping[str, Any], pipeline: Mapping[str, Any] | None
) -> tuple[int, str] | None:
    """(exit status, final line) once `oj agent wait` is done with ``agent``, else None (reference
    §7: completed/waiting → 0, failed or gone → 1, cancelled → 4, pipeline vanished → 3; an agent
    whose pipeline ended while its record still says running is "completed (no longer active)"
    when the pipeline completed)."""
    agent_id = agent["agent_id"]
    if pipeline is None:
        return 3, f"Pipeline {agent['pipeline_id'][:12]} of agent {agent_id} vanished"
    name = pipeline.get("name") or agent["pipeline_id"][:12]
    if pipeline.get("step") == "cancelled":
        return 4, f"Pipeline {name} was cancelled"
    status = agent["status"]
    if status == "completed":
        return 0, f"Agent {agent_id} completed"
    if status == "waiting":
        return 0, f"Agent {agent_id} waiting"
    if status == "failed":
        reason = agent.get("exit_reason") or "failed"
        return 1, f"Agent {agent_id} {'session gone' if reason == 'gone' else reason}"
    if pipeline.get("terminal"):
        if pipeline.get("step") == "done":
            return 0, f"Agent {agent_id} completed (no longer active)"
        return 1, f"Pipeline {name} failed: {pipeline.get('error') or 'unknown error'}"
    return None


def cmd_agent_wait(args: argparse.Namespace) -> int:
    client = Client()
    timeout = parse_cli_duration(args.timeout) if args.timeout else None
    start = time.monotonic()
    while True:
        agent = _find_agent(client, args.id)
        if agent is None and time.monotonic() - start > 10:
            print(f"Agent not found: {args.id}", file=sys.stderr)
            return 3
        if agent is not None:
            pipeline = client.query("GetPipeline", id=agent["pipeline_id"]).get("pipeline")
            verdict = agent_wait_verdict(agent, pipeline)
            if verdict is not None:
                code, line = verdict
                print(line, file=sys.stdout if code == 0 else sys.stderr)
                return code
        if timeout is not None and time.monotonic() - start > timeout:
            print(f"Timeout waiting for agent {args.id}", file=sys.stderr)
            return 2
        time.sleep(0.2)


def cmd_agent_prune(args: argparse.Namespace) -> int:
    reply = Client().call(
        protocol.request("AgentPrune", all=args.all or None, dry_run=args.dry_run or None),
        action=True,
    )
    if args.output == "json":
        emit_json({"dry_run": args.dry_run, "pruned": reply["pruned"], "skipped": reply["skipped"]})
        return 0
    verb = "Would prune" if args.dry_run else "Pruned"
    if args.dry_run:
        print("Dry run — no changes made\n")
    for entry in reply["pruned"]:
        print(
            f"{verb} agent {entry['agent_id']} ({entry['pipeline_id'][:12]}, {entry['step_name']})"
        )
    done = "would be pruned" if args.dry_run else "pruned"
    print(f"\n{len(reply['pruned'])} agent(s) {done}, {reply['skipped']} pipeline(s) skipped")
    return 0
