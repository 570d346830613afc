"""`key=value` words: the one parser behind `oj run -a/--arg`, `oj pipeline resume --var` and the
`-a k=v` that runbook arg specs accept.

It lives in a module of its own because two worlds need it: the `oj` CLI, which must stay
stdlib-only to start fast, and the runbook package, which the daemon uses and which pulls in
attrs and hcl2. This module imports nothing, not even from oj_trio, so either side can use it
without dragging the other along.

The split is always at the first `=` (values may contain more). What differs per caller is kept
as a parameter, so each keeps its exact message: the exception type (a usage error on the
command line, an ArgumentError in a runbook spec), the message template (`{text}` is the word),
and whether an empty key (`=value`) is accepted (runbook arg specs accept it; the CLI does not).
"""

from __future__ import annotations

from collections.abc import Callable

#: The message of `oj run -a` and of runbook arg specs (reference §1.4).
NO_EQUALS_MESSAGE = "invalid key=value: no `=` found in `{text}`"


def parse_key_value(
    text: str,
    error: Callable[[str], Exception],
    *,
    message: str = NO_EQUALS_MESSAGE,
    allow_empty_key: bool = False,
) -> tuple[str, str]:
    """`k=v` → `(k, v)`, split at the first `=`.

    Raises `error(message.format(text=text))` when `text` has no `=`, or (unless
    `allow_empty_key`) nothing before it.
    """
    key, sep, value = text.partition("=")
    if not sep or not (key or allow_empty_key):
        raise error(message.format(text=text))
    return key, value
