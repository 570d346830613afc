"""Help texts for ``oj run`` (reference §7.2): the command listing and ``oj run <cmd> --help``.

Pure functions returning strings; the daemon renders them and the CLI prints them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .argspec import render_usage
from .loader import CommandInfo
from .model import Command, Runbook

_LISTING_WIDTH = 40
_HELP_WIDTH = 24


def format_command_listing(commands: Sequence[CommandInfo]) -> str:
    """What ``oj run`` without a command prints (on stderr, exit 2)."""
    lines = ["Usage: oj run <COMMAND> [ARGS]...", "", "Available Commands:"]
    if not commands:
        lines.append("  (none: define commands in runbooks under .oj/runbooks/)")
    for info in commands:
        head = f"  {info.name} {info.usage}".rstrip()
        if info.description:
            head = head.ljust(_LISTING_WIDTH - 1) + " " + info.description
        lines.append(head)
    lines += ["", "For more information, try '--help'."]
    return "\n".join(lines) + "\n"


def _row(label: str, default: str | None) -> str:
    row = f"  {label}"
    if default:
        row = row.ljust(_HELP_WIDTH - 1) + f" [default: {default}]"
    return row


def _flag_label(name: str, short: str | None) -> str:
    if short is None:
        return f"--{name}"
    if short == name:
        return f"-{short}"
    return f"-{short}, --{name}"


_USAGE_LINE = re.compile(r"^(\s*)Usage:", re.MULTILINE)


def format_command_help(runbook: Runbook, command: Command) -> str:
    """``oj run <cmd> --help``: description, usage, arguments, options, long description."""
    spec = command.args
    lines: list[str] = []
    description = command.description or runbook.short_description
    if description:
        lines += [description, ""]
    usage = render_usage(spec)
    lines.append(f"Usage: oj run {command.name}" + (f" {usage}" if usage else ""))
    arguments = [
        _row(f"<{p.name}>" if p.required else f"[{p.name}]", command.defaults.get(p.name))
        for p in spec.positionals
    ]
    if spec.variadic is not None:
        v = spec.variadic
        label = f"<{v.name}...>" if v.required else f"[{v.name}...]"
        arguments.append(_row(label, command.defaults.get(v.name)))
    if arguments:
        lines += ["", "Arguments:", *arguments]
    options = [
        _row(f"{_flag_label(o.name, o.short)} <{o.name}>", command.defaults.get(o.name))
        for o in spec.options
    ]
    options += [
        _row(_flag_label(f.name, f.short), command.defaults.get(f.name)) for f in spec.flags
    ]
    if options:
        lines += ["", "Options:", *options]
    if runbook.long_description:
        lines += ["", "Description:", _USAGE_LINE.sub(r"\1Examples:", runbook.long_description)]
    return "\n".join(lines) + "\n"
