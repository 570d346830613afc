"""Queues as a noun: the backend interface the worker loop talks to, and its implementations.

* :mod:`.backend` — :class:`~.backend.QueueBackend`, the one small interface (claim, complete,
  fail with an optional retry time, release a claim, list, push, drop) and its values;
* :mod:`.retry` — the pure retry-or-dead decision (SPEC §4.3);
* :mod:`.persisted` — items in the daemon's WAL (``queue:*`` events);
* :mod:`.external` — items in someone else's system, reached through the runbook's ``list`` and
  ``take`` shell commands;
* :mod:`.items` — pure helpers for pushing: validation against ``vars``, ``defaults``, values;
* :mod:`.postgres` — items in PostgreSQL, shared by several daemons (:mod:`.pg_client`: its
  connections, wake-ups and leases; :mod:`.pg_schema`: its versioned schema).
"""
