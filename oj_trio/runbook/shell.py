"""Shell syntax checks for runbook shell fields, using ``bash -n`` (parse, never execute).

Templates (``${...}``) are replaced by a placeholder word first: oj substitutes them before bash
ever sees the text, and bash would reject ``${var.x}`` as a bad substitution. Checks run as
parallel ``bash -n`` processes and results are memoised per text, so re-loading an unchanged
runbook costs nothing.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from .templates import ANY_TEMPLATE

PLACEHOLDER = "__oj_template__"
_PARALLEL = 16
_BASH_PREFIX = re.compile(r"^(?:\S*bash: )?(?:-c: )?")


def blank_templates(text: str) -> str:
    return ANY_TEMPLATE.sub(PLACEHOLDER, text)


@functools.cache
def _bash() -> str | None:
    return shutil.which("bash")


def _diagnostic(stderr: str) -> str:
    """bash's first complaint, without the ``bash: -c:`` prefix and the echoed source line."""
    lines = [_BASH_PREFIX.sub("", line) for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "syntax error"
    first = lines[0]
    return first


_cache: dict[str, str | None] = {}


def check_shell_syntax(texts: Sequence[str]) -> list[str | None]:
    """For each shell text: ``None`` if it parses, else a one-line diagnostic.

    Without bash on the machine the check is skipped (``None``): the runtime needs bash anyway
    and will report the problem then.
    """
    results: dict[str, str | None] = {}
    pending: list[str] = []
    for text in texts:
        if text in _cache:
            results[text] = _cache[text]
        elif not text.strip():
            results[text] = "empty command"
        elif text not in pending:
            pending.append(text)
    bash = _bash()
    for start in range(0, len(pending), _PARALLEL):
        batch = pending[start : start + _PARALLEL]
        if bash is None:
            for text in batch:
                results[text] = None
            continue
        procs = [
            (
                text,
                subprocess.Popen(
                    [bash, "-n", "-c", blank_templates(text)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
            for text in batch
        ]
        for text, proc in procs:
            _, stderr = proc.communicate()
            results[text] = None if proc.returncode == 0 else _diagnostic(stderr)
            _cache[text] = results[text]
    return [results[text] for text in texts]


# --- agent command lines (reference §1.7) ---------------------------------------------------

AGENT_PROGRAMS = ("claude", "claudeless")
VALUE_OPTIONS = frozenset(
    [
        "agent",
        "agents",
        "append-system-prompt",
        "debug",
        "debug-file",
        "fallback-model",
        "file",
        "from-pr",
        "input-format",
        "json-schema",
        "max-budget-usd",
        "mcp-config",
        "model",
        "output-format",
        "permission-mode",
        "plugin-dir",
        "resume",
        "session-id",
        "setting-sources",
        "settings",
        "system-prompt",
        "scenario",
        "tool-mode",
    ]
)
MULTI_VALUE_OPTIONS = frozenset(
    [
        "add-dir",
        "allowed-tools",
        "allowedTools",
        "betas",
        "disallowed-tools",
        "disallowedTools",
        "tools",
    ]
)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = frozenset({";", "&", "|", "&&", "||", "(", ")", ";;", "|&", "\n"})


def first_command_words(command: str) -> list[str] | None:
    """Words of the first simple command (leading assignments dropped); ``None`` if unsure."""
    lexer = shlex.shlex(blank_templates(command), posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    try:
        for token in lexer:
            if token in _OPERATORS:
                if words:
                    break
                continue
            if not words and _ASSIGNMENT.match(token):
                continue
            words.append(token)
    except ValueError:
        return None
    return words


def agent_run_problems(run: str, has_prompt: bool) -> list[str]:
    """What is wrong with an agent's ``run`` line (program, ``--session-id``, positionals)."""
    problems: list[str] = []
    words = first_command_words(run)
    if not words:
        return problems
    program = words[0]
    if PLACEHOLDER not in program and not program.startswith("$"):
        base = program.rsplit("/", 1)[-1]
        if base not in AGENT_PROGRAMS:
            problems.append(f"agent command must be 'claude' or 'claudeless', got '{program}'")
    args = words[1:]
    if any(a == "--session-id" or a.startswith("--session-id=") for a in args):
        problems.append("agent run must not set --session-id (oj assigns the session id)")
    if has_prompt and "${prompt}" not in run:
        positional = _first_positional(args)
        if positional is not None:
            problems.append(
                f"agent run must not contain positional arguments when prompt or prompt_file "
                f"is set (found '{positional}'); use ${{prompt}} to place the prompt inline"
            )
    return problems


def _first_positional(args: list[str]) -> str | None:
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word.startswith("--"):
            name = word[2:]
            if "=" in name:
                continue
            if name in VALUE_OPTIONS:
                i += 1
            elif name in MULTI_VALUE_OPTIONS:
                while i < len(args) and not args[i].startswith("-"):
                    i += 1
            continue
        if word.startswith("-") and word != "-":
            continue
        return word
    return None
