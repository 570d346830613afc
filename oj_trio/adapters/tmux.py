"""tmux sessions: the edge the agent steps will live behind.

For now the daemon only ends sessions (``oj daemon stop --kill``); spawning, watching and
sending keys arrive with agent steps and belong here too, so the runtime never builds a tmux
argv itself. The binary is resolved on the daemon's ``PATH`` at call time.
"""

from __future__ import annotations

import logging

import trio

log = logging.getLogger("oj.adapters.tmux")


async def kill_session(session_id: str) -> bool:
    """End one tmux session. True if tmux ended it; False if it was already gone.

    Raises:
        OSError: tmux cannot be run at all (not installed, not executable).
    """
    result = await trio.run_process(
        ["tmux", "kill-session", "-t", session_id],
        check=False,
        capture_stdout=True,
        capture_stderr=True,
    )
    return result.returncode == 0
