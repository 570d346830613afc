"""Agents and sessions: signals and hooks, send, list, logs, prune; session list/send/peek.

Signals and hooks are recorded (WAL) and then handed to the agent's watcher
(:class:`~oj_trio.runtime.agents.AgentService`); sending text and peeking act on tmux directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import trio

from .. import paths
from ..errors import NotFoundError, UsageError
from ..messages import (
    AgentHookRequest,
    AgentLogsResponse,
    AgentPruneRequest,
    AgentSendRequest,
    AgentSentResponse,
    AgentSignalRequest,
    AgentSignalResponse,
    AgentsPrunedResponse,
    AgentsResponse,
    AgentSummary,
    GetAgentLogsQuery,
    GetAgentSignalQuery,
    ListAgentsQuery,
    ListSessionsQuery,
    OkResponse,
    PeekSessionQuery,
    PrunedAgent,
    SessionPeekResponse,
    SessionSendRequest,
    SessionsResponse,
)
from ..pipeline_log import read_tail
from ..state import Pipeline
from ..views.agents import agent_records, agent_summary, session_summary
from . import Route, Services

#: ``oj agent prune`` keeps agents of pipelines that ended less than this long ago.
AGENT_PRUNE_AGE_MS = 24 * 3600 * 1000
SIGNAL_KINDS = ("complete", "escalate")
PROMPT_TYPES = ("permission", "idle", "plan_approval", "question", "other")


async def signal(s: Services, request: AgentSignalRequest) -> OkResponse:
    kind = request["kind"]
    if kind not in SIGNAL_KINDS:
        raise UsageError(f"unknown signal kind '{kind}'; expected complete or escalate")
    await s.agents.signal(request["agent_id"], kind, request.get("message"))
    return {"type": "Ok"}


async def hook(s: Services, request: AgentHookRequest) -> OkResponse:
    trigger = request["trigger"]
    detail = request.get("prompt_type")
    if trigger not in ("idle", "prompt"):
        raise UsageError(f"unknown agent hook '{trigger}'; expected idle or prompt")
    if detail is not None and detail not in PROMPT_TYPES:
        raise UsageError(
            f"unknown prompt type '{detail}'; expected one of {', '.join(PROMPT_TYPES)}"
        )
    await s.agents.hook(request["agent_id"], trigger, detail)
    return {"type": "Ok"}


async def get_signal(s: Services, query: GetAgentSignalQuery) -> AgentSignalResponse:
    p = s.ctx.state.pipeline_for_agent(query["agent_id"])
    if p is None or p.agent_signal is None:
        return {"type": "AgentSignal", "signaled": False}
    reply: AgentSignalResponse = {
        "type": "AgentSignal",
        "signaled": True,
        "kind": p.agent_signal.kind,
    }
    if p.agent_signal.message is not None:
        reply["message"] = p.agent_signal.message
    return reply


async def send(s: Services, request: AgentSendRequest) -> AgentSentResponse:
    _p, agent_id = s.agents.resolve(request["agent_id"])
    await s.agents.send(agent_id, request["message"])
    return {"type": "AgentSent", "agent_id": agent_id}


async def list_agents(s: Services, query: ListAgentsQuery) -> AgentsResponse:
    state_dir = s.ctx.state_dir
    wanted_pipeline = query.get("pipeline_id")
    wanted_status = query.get("status")
    chosen = [
        (p, rec)
        for p, rec in agent_records(s.ctx.state)
        if (wanted_pipeline is None or p.id.startswith(wanted_pipeline))
        and (wanted_status is None or rec.outcome == wanted_status)
    ]

    def summaries() -> list[AgentSummary]:
        out = [
            agent_summary(p, rec, paths.agent_log_path(state_dir, rec.agent_id or ""))
            for p, rec in chosen
        ]
        return sorted(out, key=lambda a: a["updated_at_ms"], reverse=True)

    return {"type": "Agents", "agents": await trio.to_thread.run_sync(summaries)}


def _logs_of(s: Services, given: str) -> tuple[Pipeline | None, list[tuple[str, str]]]:
    """(pipeline, [(step, agent id)…]) for a pipeline id/prefix, or an agent id."""
    p = s.ctx.state.get_pipeline(given)
    if p is not None:
        return p, [(r.name, r.agent_id) for r in p.step_history if r.agent_id]
    for q, rec in agent_records(s.ctx.state):
        if rec.agent_id == given:
            return q, [(rec.name, given)]
    return None, []


async def get_logs(s: Services, query: GetAgentLogsQuery) -> AgentLogsResponse:
    _p, agents = _logs_of(s, query["id"])
    step = query.get("step")
    if step is not None:
        agents = [(name, agent_id) for name, agent_id in agents if name == step]
    lines = query.get("lines", 50)
    base = s.ctx.state_dir
    found = [(name, str(paths.agent_log_path(base, agent_id))) for name, agent_id in agents]

    def read() -> str:
        sections: list[str] = []
        for name, path in found:
            try:
                tail = (
                    read_tail(Path(path), lines) if lines else Path(path).read_text().splitlines()
                )
            except OSError:
                tail = []
            if step is not None:
                sections.append("\n".join(tail))
            else:
                sections.append("\n".join([f"=== {name} ===", *tail]))
        return "\n".join(x for x in sections if x)

    content = await trio.to_thread.run_sync(read)
    log_path = found[-1][1] if found else str(paths.logs_dir(base) / "agent")
    return {
        "type": "AgentLogs",
        "log_path": log_path,
        "content": content,
        "steps": [name for name, _ in found],
        "paths": [[name, path] for name, path in found],
    }


async def prune(s: Services, request: AgentPruneRequest) -> AgentsPrunedResponse:
    cutoff = s.ctx.clock.now_ms() - AGENT_PRUNE_AGE_MS
    pruned: list[PrunedAgent] = []
    skipped = 0
    for p in s.ctx.state.pipelines.values():
        records = [r for r in p.step_history if r.agent_id]
        if not records:
            continue
        if not p.terminal or (not request.get("all") and p.updated_at_ms > cutoff):
            skipped += 1
            continue
        pruned += [
            {"agent_id": r.agent_id or "", "pipeline_id": p.id, "step_name": r.name}
            for r in records
        ]
    if not request.get("dry_run") and pruned:
        base = s.ctx.state_dir

        def remove() -> None:
            for entry in pruned:
                log = paths.agent_log_path(base, entry["agent_id"])
                log.unlink(missing_ok=True)
                shutil.rmtree(log.with_suffix(""), ignore_errors=True)
                shutil.rmtree(paths.agents_dir(base) / entry["agent_id"], ignore_errors=True)

        await trio.to_thread.run_sync(remove)
    return {"type": "AgentsPruned", "pruned": pruned, "skipped": skipped}


# -- sessions -----------------------------------------------------------------------------------


def _session_of(s: Services, given: str) -> str:
    """A session id, or the session of a pipeline id/prefix."""
    if given in s.ctx.state.sessions:
        return given
    p = s.ctx.state.get_pipeline(given)
    if p is not None and p.session_id:
        return p.session_id
    raise NotFoundError(f"Session not found: {given}")


async def list_sessions(s: Services, _query: ListSessionsQuery) -> SessionsResponse:
    state = s.ctx.state
    return {
        "type": "Sessions",
        "sessions": [session_summary(x, state) for x in state.sessions.values()],
    }


async def session_send(s: Services, request: SessionSendRequest) -> OkResponse:
    await s.agents.send_to_session(_session_of(s, request["id"]), request["input"])
    return {"type": "Ok"}


async def peek(s: Services, query: PeekSessionQuery) -> SessionPeekResponse:
    session = _session_of(s, query["id"])
    output = await s.agents.peek(session, color=bool(query.get("with_color")))
    return {"type": "SessionPeek", "session_id": session, "output": output}


ROUTES = [
    Route("AgentSignal", signal, mutates=True),
    Route("AgentHook", hook, mutates=True),
    Route("AgentSend", send, mutates=True),
    Route("AgentPrune", prune, mutates=True),
    Route("SessionSend", session_send, mutates=True),
    Route("GetAgentSignal", get_signal, mutates=False, query=True),
    Route("ListAgents", list_agents, mutates=False, query=True),
    Route("GetAgentLogs", get_logs, mutates=False, query=True),
    Route("ListSessions", list_sessions, mutates=False, query=True),
    Route("PeekSession", peek, mutates=False, query=True),
]
