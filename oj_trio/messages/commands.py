"""`oj run`: start a project's command (or show its help), list the commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._shape import TypedDict

if TYPE_CHECKING:
    from typing import Literal, NotRequired


class RunCommandRequest(TypedDict):
    type: Literal["RunCommand"]
    project_root: str
    invoke_dir: str
    namespace: str
    command: str
    args: NotRequired[list[str]]
    named_args: NotRequired[dict[str, str]]
    help: NotRequired[bool]
    runbook: NotRequired[str]


class ListCommandsRequest(TypedDict):
    type: Literal["ListCommands"]
    project_root: str


class CommandStartedResponse(TypedDict):
    type: Literal["CommandStarted"]
    pipeline_id: str
    pipeline_name: str


class CommandHelpResponse(TypedDict):
    type: Literal["CommandHelp"]
    text: str


class CommandListResponse(TypedDict):
    type: Literal["CommandList"]
    usage: str
