"""`oj runbook check`: validate runbook files and report one located error per problem.

The only CLI command that parses runbooks on the client, so checking needs no daemon. The
runbook package needs attrs and hcl2, so it is imported inside
`cmd_runbook_check`, never at module level: every other `oj` command stays stdlib-only.
"""

from __future__ import annotations

import argparse
import sys

from .. import project
from ._args import AddParser, Subparsers


def register(sub: Subparsers, add: AddParser) -> None:
    runbook = add(sub, "runbook", "work with runbook files")
    rsub = runbook.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
    p = add(rsub, "check", "validate runbooks", cmd_runbook_check)
    p.add_argument("path", nargs="?", help="a runbook file or directory (default: the project's)")


def cmd_runbook_check(args: argparse.Namespace) -> int:
    from ..runbook.check import check_command

    root = project.find_project_root()
    return check_command(root, args.path, args.output, sys.stdout, sys.stderr)
