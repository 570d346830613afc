"""systemd's notify protocol (sd_notify(3)) without a dependency: one datagram per message.

No-op when ``NOTIFY_SOCKET`` is unset, so the daemon can call it unconditionally. A leading
``@`` names a socket in the abstract namespace.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("oj.sdnotify")


def notify(message: str, env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Send ``message`` (e.g. ``"READY=1"``); True if it was sent."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode("utf-8"), address)
    except OSError as exc:
        log.warning("sd_notify(%s) failed: %s", message.split("=", 1)[0], exc)
        return False
    return True


def watchdog_interval(env: dict[str, str] | os._Environ[str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not requested."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
