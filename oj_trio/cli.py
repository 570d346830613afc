"""`oj`: the command-line client.

Imports only the standard library (plus this package's stdlib-only modules): an `oj status`
must feel instant, and trio, hcl2 or attrs would triple its start-up time. Runbooks are parsed
by the daemon; the one exception, `oj runbook check`, imports the runbook package lazily.

`get_parser()` builds the whole argparse tree without side effects; the man page generator,
`oj completion` and the tests call it directly. It only assembles: each noun module of
`oj_trio.commands` registers its own subcommands and handlers, in the order of `NOUNS`, so a new
verb touches only its noun's module and a new noun is one line in `NOUNS`. `main()` builds only
the tree of the noun on the command line (`get_parser(only=...)`): one command module imported
and one subtree built instead of all of them, which keeps an `oj` round trip within 1.3× of a
bare stdlib socket client as the command set grows (bench/RESULTS.md, "oj start-up"). `main()`
is also the one place that maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Protocol, cast

from ._version import __version__
from .commands._args import AddParser, Handler, Subparsers
from .errors import OjError


class _Noun(Protocol):
    """A module of `oj_trio.commands`: it adds its own top-level command, named like the module
    (`oj_trio.commands.queue` adds `oj queue`), to the tree."""

    def register(self, sub: Subparsers, add: AddParser) -> None: ...


#: The top-level commands, in the order of `oj --help`; each is the module of the same name in
#: `oj_trio.commands`, imported only when the command line names it (or for the whole tree).
NOUNS: tuple[str, ...] = (
    "run",
    "pipeline",
    "workspace",
    "queue",
    "worker",
    "cron",
    "agent",
    "emit",
    "session",
    "status",
    "daemon",
    "runbook",
    "completion",
)

#: The hidden command a completion script runs for the names of queues, workers, ...
NAMES_COMMAND = "__names"

#: Options of the top parser that take a value (so the word after them is not the noun).
_VALUE_OPTIONS = frozenset({"-o", "--output", "--project"})


def noun_module(name: str) -> _Noun:
    """The command module of noun `name` (imported on first use)."""
    # `__import__`, not `importlib.import_module`: the C import path, which `-X importtime`
    # (and so tests/test_daemon_cli.py's import budget) sees.
    return cast(_Noun, __import__(f"{__package__}.commands.{name}", fromlist=["register"]))


def chosen_noun(argv: Sequence[str]) -> str | None:
    """The noun `argv` names, found without building a parser: the first word that is neither
    an option nor an option's value. None when there is none or it is not a noun (then the
    whole tree is built, for `oj --help` and for argparse's "invalid choice" message)."""
    words = iter(argv)
    for word in words:
        if word in ("--", "-h", "--help"):  # `oj -h queue` is the top-level help: whole tree
            return None
        if word in _VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in NOUNS else None
    return None


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


def get_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full `oj` command tree: each noun module in `commands` registers its own parsers.

    With `only`, the tree holds that noun alone: enough to parse a command line that names it.
    """
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
        parent: Subparsers, name: str, help_: str, func: Handler | None = None, **kw: Any
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(
            name, help=help_, description=help_, parents=[out], formatter_class=_Formatter, **kw
        )
        if func is not None:
            p.set_defaults(func=func)
        return p

    for name in NOUNS if only is None else (only,):
        noun_module(name).register(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `oj` console script: run, print errors as one line, exit."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    code: int
    try:
        if args_list[:1] == [NAMES_COMMAND]:
            # A tab press (see `commands.completion`): no parser, no error output.
            from .commands.completion import print_names

            code = print_names(args_list[1:])
            return _exit(code, argv)
        parser = get_parser(only=chosen_noun(args_list))
        args = parser.parse_args(args_list)
        if not hasattr(args, "output"):
            args.output = "text"
        if not hasattr(args, "project"):
            args.project = None
        func: Handler | None = getattr(args, "func", None)
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
    return _exit(code, argv)


def _exit(code: int, argv: Sequence[str] | None) -> int:
    """As a console script (`argv` None) exit with `code`; called with an `argv`, return it."""
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
