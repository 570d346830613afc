"""How the noun modules print: JSON, aligned tables, short durations, and following a file.

Shared so that every list looks the same (two-space columns, a PROJECT column whenever records
span namespaces) and every duration reads the same way in `list`, `show`, `wait` and `status`.
Output texts follow reference §7; the daemon sends raw records and epoch-ms timestamps, and the
formatting happens here, on the client. Stdlib-only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def emit_json(value: Any) -> None:
    """`-o json`: indented, non-ASCII kept as is."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns two spaces apart, widths from the data (last column unpadded)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


#: A table column: its header and how to render a daemon record as that column's cell.
Column = tuple[str, Callable[[dict[str, Any]], str]]


def project_table(items: list[dict[str, Any]], columns: list[Column]) -> str:
    """A table of daemon records; a PROJECT column follows the first one whenever any record
    belongs to a named namespace (lists are global across projects)."""
    namespaces = {item.get("namespace") or "" for item in items}
    if namespaces != {""}:
        columns = [columns[0], ("PROJECT", lambda i: i.get("namespace") or "-"), *columns[1:]]
    return table([h for h, _ in columns], [[cell(i) for _, cell in columns] for i in items])


def ago(ms: int | None, now_ms: int | None = None) -> str:
    """`Ns`, `Nm`, `Nh`, `Nd` since an epoch-ms timestamp; `-` when unknown."""
    if not ms:
        return "-"
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return short_duration(max(0, now_ms - ms) // 1000)


def until(ms: int | None, now_ms: int | None = None) -> str:
    """`Ns`, `Nm`, `Nh`, `Nd` from now until an epoch-ms timestamp (`now` once it passed);
    `-` when unknown."""
    if not ms:
        return "-"
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if ms <= now_ms:
        return "now"
    return short_duration(-(-(ms - now_ms) // 1000))


def short_duration(secs: int) -> str:
    """`Ns`, `Nm`, `NhNm` (or `Nh`), `Nd`: one coarse figure for lists and `oj status`."""
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        hours, minutes = divmod(secs // 60, 60)
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    return f"{secs // 86400}d"


def step_duration(ms: int) -> str:
    """`Ns`, `Nm Ns`, `Nh Nm` as in `pipeline show` and `pipeline wait`."""
    secs = max(0, ms) // 1000
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m {secs % 60}s"
    return f"{secs // 3600}h {(secs % 3600) // 60}m"


def uptime_text(secs: int) -> str:
    """`Ns`, `Nm Ns`, `Nh Nm Ns`: the daemon's uptime in `oj daemon status`."""
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m {secs % 60}s"
    return f"{secs // 3600}h {(secs % 3600) // 60}m {secs % 60}s"


def tail_lines(path: Path, count: int) -> tuple[list[str], int]:
    """Last `count` lines of a file without reading all of a large one; also the file size."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        block = 64 * 1024
        data = b""
        pos = size
        while pos > 0 and data.count(b"\n") <= count:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return (lines[-count:] if count else lines), size


def follow_file(path: Path, offset: int, until: Callable[[], bool] | None = None) -> None:
    """`tail -f`: print what is appended after `offset`, until Ctrl-C or, when `until` is
    given, until it says the writer is done (checked about once a second while idle) and the
    file holds nothing more."""
    pending = b""
    next_check = time.monotonic() + 1.0
    finishing = False
    while True:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            offset += len(chunk)
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                print(line.decode("utf-8", "replace"), flush=True)
            continue
        if finishing:
            if pending:
                print(pending.decode("utf-8", "replace"), flush=True)
            return
        if until is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + 1.0
            # One more read after the writer is done catches its last lines.
            finishing = until()
            continue
        time.sleep(0.2)
