"""`oj`: the command-line client.

Imports only the standard library (plus this package's stdlib-only modules): an `oj status`
must feel instant, and trio, hcl2 or attrs would triple its start-up time. Runbooks are parsed
by the daemon; the one exception, `oj runbook check`, imports the runbook package lazily.

`get_parser()` builds the whole argparse tree without side effects; the man page generator and
the tests call it directly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import OjError

Handler = Callable[[argparse.Namespace], int]


class _Formatter(argparse.HelpFormatter):
    """``Usage:`` capitalised, like the help the daemon generates for runbook commands."""

    def add_usage(self, usage, actions, groups, prefix=None):  # type: ignore[no-untyped-def]
        super().add_usage(usage, actions, groups, "Usage: " if prefix is None else prefix)


def _output_parent() -> argparse.ArgumentParser:
    """`-o/--output` accepted anywhere: before the subcommand and after it."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-o",
        "--output",
        choices=["text", "json"],
        default=argparse.SUPPRESS,
        help="output format (default: text)",
    )
    parent.add_argument(
        "--project",
        default=argparse.SUPPRESS,
        metavar="NAMESPACE",
        help="project namespace (default: $OJ_NAMESPACE, .oj/config.toml, or the project dir name)",
    )
    return parent


def get_parser() -> argparse.ArgumentParser:
    """The full `oj` command tree."""
    out = _output_parent()
    parser = argparse.ArgumentParser(
        prog="oj",
        formatter_class=_Formatter,
        description="Run runbooks: commands, pipelines, queues and workers, through the ojd daemon.",
        parents=[out],
    )
    parser.add_argument("--version", action="version", version=f"oj {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        parent: Any, name: str, help_: str, func: Handler | None = None, **kw: Any
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(
            name, help=help_, description=help_, parents=[out], formatter_class=_Formatter, **kw
        )
        if func is not None:
            p.set_defaults(func=func)
        return p

    from . import cli_commands as c

    # run
    run = add(sub, "run", "run a runbook command", c.cmd_run, add_help=False)
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

    # pipeline
    pipeline = add(sub, "pipeline", "inspect and control pipelines")
    psub = pipeline.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(psub, "list", "list pipelines", c.cmd_pipeline_list)
    p.add_argument("name", nargs="?", help="filter: substring of the display name")
    p.add_argument("--status", help="filter: step status or step name")
    p.add_argument(
        "-n", "--limit", type=_positive_int, default=20, help="show at most N (default 20)"
    )
    p.add_argument("--no-limit", action="store_true", help="show all")
    p = add(psub, "show", "show one pipeline", c.cmd_pipeline_show)
    p.add_argument("id", help="pipeline id or unique prefix")
    p.add_argument("-v", "--verbose", action="store_true", help="print variables in full")
    p = add(psub, "cancel", "cancel pipelines", c.cmd_pipeline_cancel)
    p.add_argument("ids", nargs="+", metavar="ID", help="pipeline ids or unique prefixes")
    p = add(psub, "resume", "re-run the failed step of a pipeline", c.cmd_pipeline_resume)
    p.add_argument("id", help="pipeline id or unique prefix")
    p.add_argument("-m", "--message", help="message for an agent step")
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="set a variable")
    p = add(psub, "logs", "show a pipeline's log", c.cmd_pipeline_logs)
    p.add_argument("id", help="pipeline id or unique prefix")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines until the pipeline ends",
    )
    p.add_argument(
        "-n", "--limit", type=_positive_int, default=50, help="last N lines (default 50)"
    )
    p = add(psub, "wait", "wait until pipelines end", c.cmd_pipeline_wait)
    p.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="pipeline ids or unique prefixes (none with --all: every active pipeline)",
    )
    p.add_argument("--all", action="store_true", help="wait for all (default: the first to end)")
    p.add_argument("--timeout", help="give up after D (e.g. 30s, 5m, 1h30m)")
    p = add(psub, "prune", "remove old terminal pipelines", c.cmd_pipeline_prune)
    p.add_argument("--all", action="store_true", help="ignore age")
    p.add_argument("--failed", action="store_true", help="only failed pipelines, any age")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")

    # workspace
    workspace = add(sub, "workspace", "inspect and remove workspaces")
    wsub = workspace.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(wsub, "list", "list workspaces", c.cmd_workspace_list)
    p.add_argument(
        "-n", "--limit", type=_positive_int, default=20, help="show at most N (default 20)"
    )
    p.add_argument("--no-limit", action="store_true", help="show all")
    p = add(wsub, "show", "show one workspace", c.cmd_workspace_show)
    p.add_argument("id", help="workspace id")
    p = add(wsub, "drop", "delete workspaces", c.cmd_workspace_drop)
    p.add_argument("id", nargs="?", help="workspace id or unique prefix")
    p.add_argument("--failed", action="store_true", help="all failed workspaces")
    p.add_argument("--all", action="store_true", help="all workspaces")
    p = add(wsub, "prune", "delete workspaces of ended pipelines", c.cmd_workspace_prune)
    p.add_argument("--all", action="store_true", help="ignore age")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed")

    # status
    add(sub, "status", "overview of the daemon and its work", c.cmd_status)

    # daemon
    daemon = add(sub, "daemon", "start, stop and inspect the daemon")
    dsub = daemon.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(dsub, "start", "start the daemon", c.cmd_daemon_start)
    p.add_argument("--foreground", action="store_true", help="run attached to this terminal")
    p = add(dsub, "stop", "stop the daemon gracefully", c.cmd_daemon_stop)
    p.add_argument("--kill", action="store_true", help="also kill agent tmux sessions")
    p = add(dsub, "restart", "stop, then start the daemon", c.cmd_daemon_restart)
    p.add_argument("--kill", action="store_true", help="also kill agent tmux sessions")
    add(dsub, "status", "is the daemon running", c.cmd_daemon_status)
    p = add(dsub, "logs", "show the daemon log", c.cmd_daemon_logs)
    p.add_argument("--lines", type=_positive_int, default=100, help="last N lines (default 100)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    p = add(
        dsub, "install-unit", "install the systemd user unit for ojd", c.cmd_daemon_install_unit
    )
    p.add_argument("--dir", type=Path, help="target directory (default ~/.config/systemd/user)")

    # runbook
    runbook = add(sub, "runbook", "work with runbook files")
    rsub = runbook.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(rsub, "check", "validate runbooks", c.cmd_runbook_check)
    p.add_argument("path", nargs="?", help="a runbook file or directory (default: the project's)")

    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `oj` console script: run, print errors as one line, exit."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = get_parser()
        args = parser.parse_args(args_list)
        if not hasattr(args, "output"):
            args.output = "text"
        if not hasattr(args, "project"):
            args.project = None
        func = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return 2
        code = func(args)
    except OjError as exc:
        message = str(exc)
        if message:
            print(f"Error: {message}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # `oj pipeline list | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except OSError as exc:
        # The environment, not oj: an unusable state dir, a full disk, a missing file.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"Error: {exc.strerror or exc}{where}", file=sys.stderr)
        code = 1
    except Exception as exc:
        if os.environ.get("OJ_DEBUG"):
            raise
        print(
            f"Error: internal error: {type(exc).__name__}: {exc} (OJ_DEBUG=1 shows a traceback)",
            file=sys.stderr,
        )
        code = 1
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
