"""`oj run`: list a project's commands, show a command's help, start a command's pipeline."""

from __future__ import annotations

import uuid
from pathlib import Path

from .. import events as ev
from ..errors import OjError
from ..messages import (
    CommandHelpResponse,
    CommandListResponse,
    CommandStartedResponse,
    ListCommandsRequest,
    RunCommandRequest,
)
from ..pipeline_setup import prepare_pipeline
from ..runbook.model import RunPipeline, RunShell
from ..runtime.pipeline_start import start_pipelines
from . import Route, Services


async def list_commands(s: Services, request: ListCommandsRequest) -> CommandListResponse:
    usage = await s.ctx.runbooks.list_commands(Path(request["project_root"]))
    return {"type": "CommandList", "usage": usage}


async def run_command(
    s: Services, request: RunCommandRequest
) -> CommandStartedResponse | CommandHelpResponse:
    from ..runbook import format_command_help
    from ..runbook.argspec import map_args, split_args, validate_args

    ctx = s.ctx
    root = Path(request["project_root"])
    name = request["command"]
    runbook, command = await ctx.runbooks.find_command(root, name, request.get("runbook"))
    if request.get("help"):
        return {"type": "CommandHelp", "text": format_command_help(runbook, command)}
    split = split_args(command.args, list(request.get("args") or []))
    named = {
        **split.named,
        **{str(k): str(v) for k, v in (request.get("named_args") or {}).items()},
    }
    validate_args(command.args, split.positionals, named, command.defaults)
    args = map_args(command.args, split.positionals, named, command.defaults)

    pipeline_id = str(uuid.uuid4())
    namespace = request["namespace"]
    invoke_dir = request["invoke_dir"]
    if isinstance(command.run, RunShell):
        runbook = ctx.runbooks.shell_runbook(runbook, command, command.run, str(root))
        kind = command.name
    elif isinstance(command.run, RunPipeline):
        kind = command.run.pipeline
    else:
        raise OjError(
            f"invalid run directive for command: agent ({command.run.agent}): agent commands are not supported yet"
        )
    events = ctx.runbooks.load_events(runbook)
    events.append(
        ev.CommandRun(
            pipeline_id=pipeline_id,
            pipeline_name=kind,
            project_root=str(root),
            invoke_dir=invoke_dir,
            namespace=namespace,
            command=name,
            args=args,
        )
    )
    created = await prepare_pipeline(
        runbook,
        kind,
        pipeline_id=pipeline_id,
        namespace=namespace,
        vars={**args, "invoke.dir": invoke_dir},
        fallback_name=args.get("name") or pipeline_id,
        invoke_dir=invoke_dir,
        workspaces_dir=ctx.workspaces_dir,
        env=ctx.env,
        runbook_hash=ctx.runbooks.digest(runbook),
        at_ms=ctx.clock.now_ms(),
    )
    await start_pipelines(ctx, s.supervisor, events + created)
    return {"type": "CommandStarted", "pipeline_id": pipeline_id, "pipeline_name": kind}


ROUTES = [
    Route("ListCommands", list_commands, mutates=False),
    Route("RunCommand", run_command, mutates=True),
]
