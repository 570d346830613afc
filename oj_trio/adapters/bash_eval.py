"""Short bash snippets whose output the daemon needs, such as a runbook local's ``$(…)``.

Unlike a step (:mod:`.process`: its own process group, logged, cancellable with a grace), a
snippet runs to its end with its output captured, and a failure is a message, not an exit code.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import trio


class SnippetError(Exception):
    """The snippet could not run, or exited non-zero; the text says why (stderr or the exit)."""


async def capture_bash(script: str, *, cwd: str, env: Mapping[str, str]) -> str:
    """Run ``bash -c script`` in ``cwd`` and return its stdout.

    Raises:
        SnippetError: bash could not start, or the script exited non-zero.
    """
    try:
        result = await trio.run_process(
            ["bash", "-c", script],
            cwd=cwd,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise SnippetError(str(exc)) from None
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip() or f"exit {result.returncode}"
        raise SnippetError(detail)
    return result.stdout.decode("utf-8", "replace")
