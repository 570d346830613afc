"""`oj emit agent:signal|agent:idle|agent:prompt`: what agents (and Claude Code's hooks) call to
report to the daemon. Connect-only (never starts a daemon), silent on success; a malformed
signal is a one-line error naming the expected shape (reference §4.4).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .. import protocol
from ..client import Client
from ..errors import OjError, UsageError
from ._args import AddParser, Subparsers

SIGNAL_SHAPE = '{"kind": "complete"|"escalate", "message": "..."}'
PROMPT_TYPES = ("permission", "idle", "plan_approval", "question", "other")


def register(sub: Subparsers, add: AddParser) -> None:
    emit = add(sub, "emit", "report an agent event to the daemon (used by agents and hooks)")
    esub = emit.add_subparsers(dest="event", metavar="EVENT", required=True)
    p = add(
        esub,
        "agent:signal",
        "the agent is done (complete) or needs a human (escalate)",
        cmd_emit_agent_signal,
    )
    p.add_argument("--agent", required=True, metavar="ID", help="the agent id ($OJ_AGENT_ID)")
    p.add_argument("payload", nargs="?", help=f"JSON {SIGNAL_SHAPE} (stdin when omitted)")
    p = add(esub, "agent:idle", "the agent waits for input", cmd_emit_agent_idle)
    p.add_argument("--agent", required=True, metavar="ID", help="the agent id")
    p = add(esub, "agent:prompt", "the agent shows a prompt", cmd_emit_agent_prompt)
    p.add_argument("--agent", required=True, metavar="ID", help="the agent id")
    p.add_argument("--type", default="other", choices=PROMPT_TYPES, help="prompt type")


def parse_signal(text: str) -> tuple[str, str | None]:
    """A signal payload → (kind, message); `action` is an alias of `kind`."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"invalid JSON payload: {exc}. Expected: {SIGNAL_SHAPE}") from None
    if not isinstance(data, dict):
        raise UsageError(f"invalid JSON payload: not an object. Expected: {SIGNAL_SHAPE}")
    kind = data.get("kind", data.get("action"))
    if kind not in ("complete", "escalate"):
        raise UsageError(f"invalid signal kind {kind!r}. Expected: {SIGNAL_SHAPE}")
    message = data.get("message")
    return kind, None if message is None else str(message)


def signal_call(request: dict[str, Any]) -> None:
    """Connect-only; one retry on a connection hiccup (an agent must not lose its signal)."""
    try:
        Client().call(request)
    except OjError:
        raise
    except OSError:
        time.sleep(0.2)
        Client().call(request)


def cmd_emit_agent_signal(args: argparse.Namespace) -> int:
    text = args.payload if args.payload is not None else sys.stdin.read()
    kind, message = parse_signal(text)
    signal_call(protocol.request("AgentSignal", agent_id=args.agent, kind=kind, message=message))
    return 0


def cmd_emit_agent_idle(args: argparse.Namespace) -> int:
    signal_call(protocol.request("AgentHook", agent_id=args.agent, trigger="idle"))
    return 0


def cmd_emit_agent_prompt(args: argparse.Namespace) -> int:
    request = protocol.request(
        "AgentHook", agent_id=args.agent, trigger="prompt", prompt_type=args.type
    )
    signal_call(request)
    return 0
