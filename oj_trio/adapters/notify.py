"""Desktop notifications (reference §2.10): ``notify-send`` when installed, else a log line.

Notifications are a courtesy, never a dependency: a headless server has no ``notify-send``, a
desktop may have no session bus, and either way the pipeline must carry on. So :func:`notify` never
raises for the notifier's sake, bounds the child with a short timeout, and reports trouble through
``logging.getLogger("oj.notify")`` only. Call it from a task of its own (``nursery.start_soon``) to
keep it fire-and-forget.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess

import trio

__all__ = ["NOTIFY_TIMEOUT", "notify"]

log = logging.getLogger("oj.notify")

#: How long a notifier may take before it is killed (a hung D-Bus call must not pile up children).
NOTIFY_TIMEOUT = 5.0


async def _kill_now(proc: trio.Process) -> None:
    """``deliver_cancel`` for the notifier: no grace, it is only a notification."""
    with contextlib.suppress(OSError):
        proc.send_signal(signal.SIGKILL)


async def notify(title: str, message: str, *, kill_after: float = NOTIFY_TIMEOUT) -> bool:
    """Show ``title``/``message`` as a desktop notification; return whether ``notify-send`` ran and
    succeeded. The notifier is killed after ``kill_after`` seconds (an internal bound rather than
    the caller's cancel scope, because callers start this and forget it). ``notify-send`` is
    looked up on the daemon's ``PATH`` at each call (cheap, and a desktop session can appear after
    the daemon started). Arguments go after ``--`` so a title starting with ``-`` is not an option.
    """
    exe = shutil.which("notify-send")
    if exe is None:
        log.info("notification (notify-send not installed): %s: %s", title, message)
        return False
    argv = [exe, "--app-name=oj", "--", title, message]
    try:
        with trio.move_on_after(kill_after) as scope:
            result = await trio.run_process(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                capture_stderr=True,
                check=False,
                deliver_cancel=_kill_now,
            )
    except OSError as exc:
        log.warning("notify-send could not be started: %s", exc)
        return False
    if scope.cancelled_caught:
        log.warning("notify-send did not finish within %.1fs; killed", kill_after)
        return False
    if result.returncode != 0:
        err = os.fsdecode(result.stderr).strip().splitlines()
        log.warning(
            "notify-send exited with %d%s", result.returncode, f": {err[-1]}" if err else ""
        )
        return False
    log.debug("notification sent: %s: %s", title, message)
    return True
