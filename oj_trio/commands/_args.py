"""Argument plumbing shared by the noun modules: the `register` contract, argparse value types
and the parsers for values that argparse hands over as raw strings.

Kept apart from the noun modules so that each parses the same way (one duration syntax, one
key=value rule, one number check) and reports a bad value as a `UsageError` (exit 2), never as a
traceback. Stdlib-only.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from .. import keyvalue, project
from ..errors import UsageError

#: What `add_subparsers()` returns: the parent that `add` hangs a (sub)command on. (A string:
#: argparse's class is generic only in the type stubs.)
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: A command's implementation: parsed arguments in, exit code out.
Handler = Callable[[argparse.Namespace], int]


class AddParser(Protocol):
    """`oj_trio.cli`'s factory for one (sub)command parser.

    Gives the parser `help_` as both its help line and its description, the shared
    `-o/--output` and `--project` options and the house help formatter; with `func`, running the
    command calls it. Extra keywords go to `add_parser` (e.g. `add_help=False`).
    """

    def __call__(
        self,
        parent: Subparsers,
        name: str,
        help_: str,
        func: Handler | None = None,
        **kw: Any,
    ) -> argparse.ArgumentParser: ...


def namespace_of(args: argparse.Namespace) -> tuple[Path, str]:
    """The project root around the working directory and its namespace (`--project` wins)."""
    root = project.find_project_root()
    return root, project.resolve_namespace(root, args.project)


def non_negative_int(text: str) -> int:
    """argparse `type=` for counts such as `--limit`: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def parse_cli_key_value(text: str, message: str = keyvalue.NO_EQUALS_MESSAGE) -> tuple[str, str]:
    """`k=v` from the command line (`-a/--arg`, `--var`); a bad word is a usage error."""
    return keyvalue.parse_key_value(text, UsageError, message=message)


_DURATION_PART = re.compile(r"(\d+)([a-zA-Z]*)")


def parse_cli_duration(text: str) -> float:
    """`30s`, `5m`, `1h30m`, or a bare number of seconds (reference §7.2 `pipeline wait`)."""
    raw = text.strip()
    if not raw:
        raise UsageError(f"invalid duration: {text}")
    if raw.isdigit():
        total = float(raw)
    else:
        total = 0.0
        pos = 0
        units = {"h": 3600, "m": 60, "s": 1}
        for match in _DURATION_PART.finditer(raw):
            if match.start() != pos:
                raise UsageError(f"invalid duration: {text}")
            number, unit = match.groups()
            if unit not in units:
                raise UsageError(f"unknown duration unit '{unit}' in: {text}")
            total += int(number) * units[unit]
            pos = match.end()
        if pos != len(raw):
            raise UsageError(f"invalid duration: {text}")
    if total <= 0:
        raise UsageError(f"duration must be > 0: {text}")
    return total
