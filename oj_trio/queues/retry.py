"""What happens to a queue item after its pipeline failed: retry later, or dead. Pure.

SPEC §4.3: ``retry.attempts`` is the number of *automatic* retries, so an item runs at most
``attempts + 1`` times; the failure count survives automatic retries (a manual ``oj queue retry``
resets it). Without a ``retry`` block a failure is final.
"""

from __future__ import annotations

import attrs

from ..runbook.model import Retry


@attrs.frozen
class RetryAt:
    """Retry once ``due_at_ms`` has passed (the end of the cooldown)."""

    due_at_ms: int


@attrs.frozen
class Dead:
    """No retries left: the item is ``dead`` until someone retries it by hand."""


RetryDecision = RetryAt | Dead


def decide(failures: int, retry: Retry | None, failed_at_ms: int) -> RetryDecision:
    """``failures``: how often the item has failed, this failure included."""
    if retry is None or failures > retry.attempts:
        return Dead()
    return RetryAt(failed_at_ms + retry.cooldown_seconds * 1000)
