"""The daemon's one time source: epoch milliseconds as an offset over ``trio.current_time()``.

Why an offset over trio's clock instead of ``time.time()``: everything timed (timers, cooldowns, cron,
elapsed times) then runs on trio's clock, so a test's ``MockClock``/``autojump_clock`` drives it, and a
five-minute cooldown takes milliseconds to test. Nothing else in the durable core reads the wall clock.

* :meth:`Clock.system` (production) takes the offset from ``time.time()`` when the daemon starts.
  trio's clock is monotonic and the wall clock is not (NTP steps, suspend/resume), so the two drift;
  :meth:`Clock.resync` re-aligns the offset and the timer service calls it periodically, because
  cron and the epoch deadlines stored in the WAL mean wall time.
* :meth:`Clock.fixed` (tests) starts at a given epoch time and never re-syncs: under ``MockClock`` the
  virtual time is the only time, and a wall-clock read would make tests depend on the real one.

Epoch deadlines convert to trio deadlines with :meth:`Clock.trio_deadline`; :meth:`Clock.now_ms`
rounds to the nearest millisecond, so at the trio deadline of ``ms`` it reads exactly ``ms``.
"""

import time
from collections.abc import Callable

import attrs
import trio

#: A wall-clock drift smaller than this is left alone, so re-syncing does not make ``now_ms`` jitter.
RESYNC_THRESHOLD_MS = 50


def _trio_ms() -> int:
    return round(trio.current_time() * 1000)


@attrs.define
class Clock:
    """Epoch milliseconds = ``offset_ms`` + ``trio.current_time()`` in ms. Build it inside ``trio.run``.

    Attributes:
        offset_ms: epoch milliseconds at trio time 0.
        wall_time: the wall clock :meth:`resync` reads (seconds since the epoch); ``None`` disables
            re-syncing (test clocks).
    """

    offset_ms: int
    wall_time: Callable[[], float] | None = None

    @classmethod
    def system(cls, *, wall_time: Callable[[], float] = time.time) -> "Clock":
        """The production clock: aligned with ``wall_time`` now, re-syncable later."""
        return cls(round(wall_time() * 1000) - _trio_ms(), wall_time)

    @classmethod
    def fixed(cls, epoch_ms: int) -> "Clock":
        """A test clock reading ``epoch_ms`` now and moving only with trio's (mock) clock."""
        return cls(epoch_ms - _trio_ms())

    @property
    def syncs_with_wall(self) -> bool:
        """Whether :meth:`resync` does anything (False for :meth:`fixed` clocks)."""
        return self.wall_time is not None

    def now_ms(self) -> int:
        """Current epoch milliseconds."""
        return self.offset_ms + _trio_ms()

    def trio_deadline(self, epoch_ms: int) -> float:
        """The ``trio.current_time()`` value at which :meth:`now_ms` reaches ``epoch_ms``."""
        return (epoch_ms - self.offset_ms) / 1000

    async def sleep_until_ms(self, epoch_ms: int) -> None:
        """Sleep until :meth:`now_ms` reaches ``epoch_ms`` (a checkpoint even when already past).

        The deadline is converted once: a :meth:`resync` during the sleep does not move it.
        """
        await trio.sleep_until(self.trio_deadline(epoch_ms))

    def resync(self) -> int:
        """Re-align the offset with the wall clock; return the correction applied, in ms.

        0 when re-syncing is disabled or the drift is below :data:`RESYNC_THRESHOLD_MS`.
        """
        if self.wall_time is None:
            return 0
        drift = round(self.wall_time() * 1000) - _trio_ms() - self.offset_ms
        if abs(drift) < RESYNC_THRESHOLD_MS:
            return 0
        self.offset_ms += drift
        return drift
