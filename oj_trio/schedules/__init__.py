"""Schedules of ``cron`` blocks: what a schedule means, and when it fires. Pure (no trio, no clock).

* :mod:`.spec` — parsing and validating a schedule: a five-field cron expression (cronsim, with
  the ``@daily``-style aliases cronsim lacks), an interval, an IANA time zone.
* :mod:`.plan` — the arithmetic the cron service needs: the next fire after a time, and what to
  do when a cron's timer fires (on time, late after a suspend, or due while the daemon was down:
  fire, fire as a catch-up, or skip and count the missed fires).

Times are epoch milliseconds throughout; a calendar expression is evaluated in its zone (an aware
``datetime`` from ``zoneinfo``), so a schedule follows DST changes the way Debian cron does
(ecosystem notes §7: a 02:30 job fires once on a spring-forward day and once on a fall-back day).
"""
