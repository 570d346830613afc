"""``oj runbook check [PATH]``: validate runbooks without the daemon.

Prints one located line per problem (``<file>:<line>:<col>: <entity>: <message>``), warnings
prefixed ``warning:``, then a summary; exit status 1 if any error. ``-o json`` prints
``{"files", "errors", "warnings"}`` instead. PATH may be a file or a directory; without it the
project's ``.oj/runbooks/`` is checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from ..errors import RunbookError
from .loader import LoadedRunbook, discover_runbooks, load_runbook, runbook_dir


def _display(file: Path, base: Path, shown_base: str) -> str:
    if file == base:
        return shown_base
    relative = file.relative_to(base)
    return str(Path(shown_base) / relative) if shown_base not in ("", ".") else str(relative)


def check_paths(target: Path, shown: str) -> list[LoadedRunbook]:
    """Load every runbook under ``target`` (a file or directory), shown relative to ``shown``."""
    return [load_runbook(file, _display(file, target, shown)) for file in discover_runbooks(target)]


def _as_json(error: RunbookError) -> dict[str, Any]:
    return {
        "file": error.path,
        "entity": error.entity,
        "line": error.line,
        "column": error.column,
        "message": error.message,
    }


def check_command(
    project_root: Path, path: str | None, output: str, stdout: TextIO, stderr: TextIO
) -> int:
    """Run the check and write its report; returns the exit code (0 ok, 1 errors found)."""
    if path is None:
        target = runbook_dir(project_root)
        shown = str(target.relative_to(project_root))
    else:
        target = Path(path)
        shown = path.rstrip("/") or path
        if not target.exists():
            stderr.write(f"Error: no such file or directory: {path}\n")
            return 1
    results = check_paths(target, shown)
    errors = [e for r in results for e in r.errors]
    warnings = [w for r in results for w in r.warnings]
    if output == "json":
        report = {
            "files": [r.path for r in results],
            "errors": [_as_json(e) for e in errors],
            "warnings": [_as_json(w) for w in warnings],
        }
        stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for error in errors:
            stdout.write(f"{error}\n")
        for warning in warnings:
            stdout.write(f"warning: {warning}\n")
        stdout.write(
            f"{len(results)} runbook(s) checked, {len(errors)} error(s), "
            f"{len(warnings)} warning(s)\n"
        )
    return 1 if errors else 0
