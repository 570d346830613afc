"""`oj completion bash|zsh`: a shell completion script generated from the real parser by shtab.

The script is static shell code: a tab press on a noun, verb or option does not start Python.
Only the arguments that name something the daemon knows (a queue, a worker, a pipeline, a cron)
run a lookup, `oj __names <kind>`: a hidden command that `oj_trio.cli.main` routes here before
any parser is built, that only queries (never starts a daemon), gives the daemon
`LOOKUP_TIMEOUT` to answer and prints nothing on any failure, so a tab press stays quick and
quiet with the daemon down.

Adding a kind of name (the cron helper's, for one) is two lines: a `NAME_SOURCES` entry (the
query and how to read names from its answer) and a `COMPLETED_ARGS` entry per positional argument
that takes such a name. shtab is imported only by `oj completion` itself (≈ 45 ms).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._args import AddParser, Subparsers

#: How long a tab press waits for the daemon's answer before completing nothing (seconds).
LOOKUP_TIMEOUT = 1.0


def _queues(answer: Mapping[str, Any]) -> Iterable[str]:
    return (q["name"] for q in answer["queues"])


def _workers(answer: Mapping[str, Any]) -> Iterable[str]:
    return (w["name"] for w in answer["workers"])


def _pipelines(answer: Mapping[str, Any]) -> Iterable[str]:
    # Short ids: every pipeline command takes a unique id prefix.
    return (p["id"][:8] for p in answer["pipelines"])


def _crons(answer: Mapping[str, Any]) -> Iterable[str]:
    return (c["name"] for c in answer["crons"])


def _agents(answer: Mapping[str, Any]) -> Iterable[str]:
    return (a["agent_id"] for a in answer["agents"])


def _sessions(answer: Mapping[str, Any]) -> Iterable[str]:
    return (s["id"] for s in answer["sessions"])


#: kind → (query tag, whether it is scoped to the project, names from the answer).
NAME_SOURCES: dict[str, tuple[str, bool, Callable[[Mapping[str, Any]], Iterable[str]]]] = {
    "queue": ("ListQueues", True, _queues),
    "worker": ("ListWorkers", False, _workers),
    "cron": ("ListCrons", False, _crons),
    "pipeline": ("ListPipelines", False, _pipelines),
    "agent": ("ListAgents", False, _agents),
    "session": ("ListSessions", False, _sessions),
}

#: (noun, positional dest) → the kind of name it completes (any depth below the noun).
COMPLETED_ARGS: dict[tuple[str, str], str] = {
    ("queue", "queue"): "queue",
    ("worker", "name"): "worker",
    ("cron", "name"): "cron",
    ("pipeline", "id"): "pipeline",
    ("pipeline", "ids"): "pipeline",
    ("agent", "id"): "agent",
    ("session", "id"): "session",
}

SHELLS = ("bash", "zsh")


def _function(kind: str) -> str:
    return f"_oj_names_{kind}"


def preamble(shell: str) -> str:
    """The shell functions the completers call: one per kind, each one `oj __names` run."""
    lines = []
    for kind in NAME_SOURCES:
        if shell == "bash":
            # shtab's bash calls the function with the word being completed, reads its lines.
            body = f'compgen -W "$(oj __names {kind} 2>/dev/null)" -- "$1"'
        else:
            body = f'local -a names; names=(${{(f)"$(oj __names {kind} 2>/dev/null)"}}); compadd -a names'
        lines.append(f"{_function(kind)}() {{ {body}; }}")
    return "\n".join(lines) + "\n"


def register(sub: Subparsers, add: AddParser) -> None:
    p = add(sub, "completion", "print a shell completion script (bash or zsh)", cmd_completion)
    p.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    p.epilog = (
        "bash: oj completion bash > ~/.local/share/bash-completion/completions/oj; "
        "zsh: oj completion zsh > ~/.zfunc/_oj (with ~/.zfunc on $fpath before compinit)"
    )


def attach_completers(parser: argparse.ArgumentParser) -> None:
    """Mark the positionals of `COMPLETED_ARGS` with shtab's `.complete` (a plain attribute:
    the parser itself never imports shtab)."""
    for noun, noun_parser in _subparsers(parser).items():
        for leaf in _leaves(noun_parser):
            for action in leaf._actions:
                kind = COMPLETED_ARGS.get((noun, action.dest))
                if kind is not None and not action.option_strings:
                    fn = _function(kind)
                    action.complete = {"bash": fn, "zsh": fn}  # type: ignore[attr-defined]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _leaves(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    yield parser
    for child in _subparsers(parser).values():
        yield from _leaves(child)


def script(shell: str) -> str:
    """The completion script for `shell`, from the whole `oj` tree."""
    import shtab

    from ..cli import get_parser

    parser = get_parser()
    attach_completers(parser)
    text: str = shtab.complete(parser, shell, preamble=preamble(shell))
    return text


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0


def print_names(argv: list[str]) -> int:
    """`oj __names <kind>`: the names a tab press offers, one a line; silent on any failure."""
    if len(argv) != 1 or argv[0] not in NAME_SOURCES:
        return 2
    tag, scoped, names = NAME_SOURCES[argv[0]]
    try:
        from .. import project
        from ..client import Client

        client = Client()
        client.ipc_timeout = LOOKUP_TIMEOUT
        fields: dict[str, object] = {}
        if scoped:
            root = project.find_project_root()
            fields = {"project_root": str(root), "namespace": project.resolve_namespace(root, None)}
        answer = client.query(tag, **fields)
        found = sorted(set(names(answer)))
    except Exception:
        return 1
    if found:
        print("\n".join(found))
    return 0
