"""Where a step's process is spawned: on the event loop, or in a worker thread (pure).

For a step's options ``subprocess`` uses ``vfork``: the spawning thread is suspended until the
child has called ``exec``. How long that takes depends on the machine, not on us:

* With a core to spare, ≈ 0.2–0.3 ms. Spawning right on the trio thread is then the cheapest
  way by far: a worker thread adds three hand-offs (the thread must wake up and take the GIL,
  then the loop must take the result back), and while both cores are busy each hand-off waits
  for the scheduler. Measured at concurrency 16 on an otherwise quiet 2-core machine
  (bench/HISTORY.md, "Spawning on and off the loop"): spawn → pid 8 ms through a thread against
  0.3 ms inline, and 1,000 jobs 1.1–1.3 s against 0.9–1.0 s.
* When other programs keep every core busy, the child waits for one before it can exec —
  milliseconds, during which an inline spawn would stall every other pipeline. There, a worker
  thread wins by far (1,000 jobs 1.5 s in threads against 2.8 s inline, with two CPU burners
  beside them).

So the choice is made from measurements: the daemon spawns inline while inline spawns are
quick (a moving average of their duration under :attr:`SpawnPolicy.limit`), and otherwise in
threads, trying one spawn inline every :attr:`SpawnPolicy.probe_every` seconds to notice when
the machine has calmed down. A spawn when nothing else is going on is always inline: there is
nothing to stall.
"""

from __future__ import annotations

import attrs


@attrs.define
class SpawnPolicy:
    """Decides inline vs. thread for each spawn; fed the duration of every inline spawn."""

    #: Inline spawns stay the rule while their moving average is at most this (seconds). Quiet
    #: machine: mean ≈ 0.3 ms; all cores busy: ≈ 2 ms (median 0.7 ms).
    limit: float = 0.0008
    #: While spawning in threads, one spawn this often (seconds) runs inline to re-measure.
    probe_every: float = 0.1
    #: Weight of the newest inline spawn in the moving average.
    alpha: float = 0.2
    average: float = 0.0
    next_probe: float = 0.0

    def inline(self, now: float, *, idle: bool) -> bool:
        """Whether the spawn about to happen at ``now`` (monotonic seconds) runs on the loop.

        ``idle``: nothing else of the daemon is running or waiting to run.
        """
        if idle or self.average <= self.limit:
            return True
        if now >= self.next_probe:
            self.next_probe = now + self.probe_every
            return True
        return False

    def record(self, seconds: float) -> None:
        """An inline spawn took ``seconds`` (from the call to the child's ``exec``)."""
        self.average += self.alpha * (seconds - self.average)
