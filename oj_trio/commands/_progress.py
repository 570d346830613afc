"""A one-line live counter for the `wait` commands: redrawn in place on a terminal, a plain line
per change when the output goes to a pipe or a file (so logs and scripts read it line by line).
Stdlib-only."""

from __future__ import annotations

import sys
from typing import TextIO

#: Carriage return and "erase the whole line": the counter is redrawn where it stands.
_REDRAW = "\r\x1b[2K"


def counter_text(done: int, failed: int, remaining: int) -> str:
    return f"{done} done, {failed} failed, {remaining} remaining"


class Progress:
    """The counter line of one `wait`; `note` prints a line of its own above it."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = sys.stdout if stream is None else stream
        self.live = self.stream.isatty() if live is None else live
        self.last: str | None = None
        self._drawn = False

    def show(self, text: str) -> None:
        """Show `text` as the counter, if it changed."""
        if text == self.last:
            return
        self.last = text
        if self.live:
            self.stream.write(_REDRAW + text)
            self._drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, line: str, stream: TextIO | None = None) -> None:
        """A line that stays (a pipeline that ended, an error): above the live counter."""
        out = self.stream if stream is None else stream
        if self._drawn:
            self.stream.write(_REDRAW)
            self.stream.flush()
        out.write(line + "\n")
        out.flush()
        if self._drawn and self.last is not None:
            self.stream.write(self.last)
            self.stream.flush()

    def close(self) -> None:
        """End the live line, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
