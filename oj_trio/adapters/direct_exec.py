"""Run a step's command without a shell when bash would only exec it anyway.

A shell step runs as ``bash -c "set -euo pipefail\\n<command>"``. When ``<command>`` is one simple
command — words without quotes, expansions, redirections, globs, operators or comments — bash
(≥ 5.1) does nothing but look the program up on ``PATH``, set three environment variables and
``exec`` it: the process that runs, its exit status and the signals it gets are the program's own.
For such a command bash's whole contribution is about a millisecond of start-up, most of a
trivial step's cost. GNU make takes the same shortcut for recipe lines without shell syntax.

:func:`direct_command` decides, conservatively: anything bash could treat differently — a
builtin or keyword (bar ``true``/``false`` without operands, which are standalone POSIX utilities
too and then behave identically), an exported function, ``BASH_ENV``/``SHELLOPTS``/``BASHOPTS`` in
the environment, a relative ``PATH`` entry, a program that is not found or not executable — goes
through bash, so bash's own messages and exit codes (127, 126, …) stay exactly what they were.
A direct spawn that still fails (a script without a ``#!`` line, say) is retried through bash by
the caller. :func:`simple_words` is the pure part (no file system), tested on its own.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import attrs

#: Characters a word may consist of and still mean just itself to bash (no quoting, expansion,
#: globbing, redirection, operator, comment or history character).
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")

#: ``compgen -b`` and ``compgen -k`` of bash 5.2: names bash never looks up on ``PATH``.
_BUILTIN_NAMES = (
    ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue "
    "declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history "
    "jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set "
    "shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait "
    "if then else elif fi case esac for select while until do done in function time { } ! [[ ]] "
    "coproc"
)
_BASH_BUILTINS = frozenset(_BUILTIN_NAMES.split())

#: Builtins that are also standalone utilities doing exactly the same when given no operand.
_SAME_WITHOUT_OPERANDS = frozenset({"true", "false"})

#: Environment variables that make a non-interactive bash run code or change options at start-up.
_BASH_STARTUP_VARS = ("BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS")


@attrs.frozen
class DirectCommand:
    """What to spawn instead of bash: the program's path, its argv as bash would pass it (the
    words as typed) and the environment bash would give it."""

    executable: str
    argv: list[str]
    env: dict[str, str]


def simple_words(command: str) -> list[str] | None:
    """The words of ``command`` if it is one simple command bash would exec as it stands."""
    words = command.strip(" \t").split()
    if not words or any(ch in command for ch in "\n\r\v\f"):
        return None
    if not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    program = words[0]
    if "=" in program:  # an assignment prefix (``X=1 cmd``)
        return None
    builtin = "/" not in program and program in _BASH_BUILTINS
    if builtin and not (program in _SAME_WITHOUT_OPERANDS and len(words) == 1):
        return None
    return words


def direct_command(command: str, env: Mapping[str, str], cwd: Path) -> DirectCommand | None:
    """How to run ``command`` without bash, or ``None`` when it needs bash."""
    words = simple_words(command)
    if words is None or any(name in env for name in _BASH_STARTUP_VARS):
        return None
    program = words[0]
    if f"BASH_FUNC_{program}%%" in env:
        return None
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return None
        executable, underscore = path, program
    else:
        search = env.get("PATH", os.defpath)
        if any(not os.path.isabs(entry) for entry in search.split(os.pathsep)):
            return None  # bash would resolve "." or "bin" against the step's cwd
        found = shutil.which(program, path=search)
        if found is None:
            return None
        executable = underscore = found
    # What bash's exec leaves in the environment: PWD set to the cwd, SHLVL as it came in
    # (bash counts itself, then takes itself back off for the exec), `_` = the program's path.
    spawn_env = dict(env)
    spawn_env["PWD"] = os.fspath(cwd)
    spawn_env["SHLVL"] = env.get("SHLVL", "0")
    spawn_env["_"] = underscore
    return DirectCommand(executable=executable, argv=words, env=spawn_env)
