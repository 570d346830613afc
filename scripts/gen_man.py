"""Regenerate man/oj.1 and man/ojd.8 from the argparse parsers.

Run after changing the CLI (a new noun, verb or option) or an `OJ_*` variable:
``.venv/bin/python scripts/gen_man.py``. The pages are checked in (and installed as data files),
and tests/test_manpages.py fails when they go stale or when the code reads an `OJ_*` variable
that `ENVIRONMENT` below does not explain.

argparse-manpage renders every (sub)command from the real parsers (`oj_trio.cli.get_parser`,
`oj_trio.daemon.get_parser`: the lead regenerates after new nouns land); the sections a parser cannot know (DESCRIPTION's second half,
ENVIRONMENT, FILES, EXIT STATUS, EXAMPLES, SEE ALSO) come from the tables here through its
`--include` file. RELEASE_EPOCH pins the date in the page header so regeneration is
reproducible.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: 2026-11-22, the date of the 0.1.0 pages; bump together with the version.
RELEASE_EPOCH = "1795305600"

#: Every `OJ_*` variable the code reads or sets: name → (pages it belongs on, what it does).
#: "oj" variables go on oj.1, "ojd" ones on ojd.8, "step" ones (set by ojd for the processes
#: it runs) on both.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "OJ_AGENT_ID": (
        "step",
        "Set by ojd in an agent's environment: its agent id, for oj emit agent:signal --agent.",
    ),
    "OJ_WATCHER_POLL_MS": (
        "ojd",
        "How often each agent watcher checks its pane and session log (default 1000).",
    ),
    "OJ_IDLE_TIMEOUT_MS": (
        "ojd",
        "How long an agent's output (generic) or waiting state (Claude Code) must stay "
        "unchanged before on_idle fires (default 180000).",
    ),
    "OJ_PROMPT_POLL_MS": (
        "ojd",
        "Interval of the checks for Claude Code's start-up dialogs after a spawn (default 200).",
    ),
    "OJ_STATE_DIR": (
        "oj ojd",
        "The state directory: socket, pid and log files, WAL, snapshot, pipeline logs and "
        "workspaces (see FILES). Default: $XDG_STATE_HOME/oj, else ~/.local/state/oj. oj and "
        "ojd must agree on it; tests isolate a daemon with it.",
    ),
    "OJ_NAMESPACE": (
        "oj step",
        "The project namespace for commands that act on a project (--project wins over it; "
        "it wins over [project] name in .oj/config.toml and the project directory's name). "
        "ojd sets it in the environment of every step it runs.",
    ),
    "OJ_DAEMON_BINARY": (
        "oj",
        "The ojd that oj starts when an action needs a daemon. Default: the ojd beside the oj "
        "executable, else ojd on PATH.",
    ),
    "OJ_TIMEOUT_IPC_MS": ("oj", "How long oj waits for the daemon's answer (default 5000)."),
    "OJ_TIMEOUT_CONNECT_MS": (
        "oj",
        "How long oj waits for a daemon it started to listen (default 5000).",
    ),
    "OJ_TIMEOUT_EXIT_MS": (
        "oj",
        "How long oj daemon stop waits for the daemon to exit after its drain, and oj waits for "
        "a start-up error in daemon.log (default 2000).",
    ),
    "OJ_CONNECT_POLL_MS": ("oj", "Retry interval while waiting for the daemon (default 50)."),
    "OJ_RUN_WAIT_MS": (
        "oj",
        "How long oj run waits for the new pipeline's first step to start (default 10000).",
    ),
    "OJ_WAIT_POLL_MS": (
        "oj",
        "Longest single wait request of oj pipeline wait and oj queue wait; they print "
        "progress at least this often (default 1000).",
    ),
    "OJ_STOP_GRACE_MS": (
        "oj ojd",
        "On shutdown, how long running steps may finish before their process groups are "
        "killed; oj daemon stop waits this plus OJ_TIMEOUT_EXIT_MS before SIGKILL "
        "(default 10000).",
    ),
    "OJ_STEP_KILL_GRACE_MS": (
        "ojd",
        "SIGTERM to SIGKILL for the process group of a cancelled or timed-out step (default 5000).",
    ),
    "OJ_LOG": ("ojd", "Log level of daemon.log: DEBUG, INFO, WARNING or ERROR (default INFO)."),
    "OJ_DEBUG": ("oj", "Set to 1: an internal error prints its Python traceback."),
    "OJ_PIPELINE_ID": (
        "step",
        "Set by ojd for every step: the id of the pipeline the step belongs to.",
    ),
    "OJ_STEP": ("step", "Set by ojd for every step: the name of the step."),
    "OJ_QUEUE_URL": (
        "ojd",
        "A postgresql:// URL: every project's persisted queues live in that database, shared "
        "by every ojd pointing at it (it wins over [queues] url in .oj/config.toml; without "
        "either, queues stay in the daemon's WAL). Needs pip install 'oj-trio[postgres]'.",
    ),
    "OJ_QUEUE_LEASE_MS": (
        "ojd",
        "Lease of an item claimed from a shared queue, renewed every third of it while its "
        "pipeline runs; a dead daemon's items are claimed again after it (default 30000).",
    ),
    "OJ_QUEUE_POLL_MS": (
        "ojd",
        "How often idle workers of a shared queue look at it without a wake-up from the "
        "database (LISTEN/NOTIFY is the usual wake-up; default 5000).",
    ),
}

#: Variables from elsewhere that oj or ojd read: name → (pages, what it does).
OTHER_ENVIRONMENT: dict[str, tuple[str, str]] = {
    "OJ_AGENT_ID": (
        "step",
        "Set by ojd in an agent's environment: its agent id, for oj emit agent:signal --agent.",
    ),
    "OJ_WATCHER_POLL_MS": (
        "ojd",
        "How often each agent watcher checks its pane and session log (default 1000).",
    ),
    "OJ_IDLE_TIMEOUT_MS": (
        "ojd",
        "How long an agent's output (generic) or waiting state (Claude Code) must stay "
        "unchanged before on_idle fires (default 180000).",
    ),
    "OJ_PROMPT_POLL_MS": (
        "ojd",
        "Interval of the checks for Claude Code's start-up dialogs after a spawn (default 200).",
    ),
    "XDG_STATE_HOME": ("oj ojd", "Base of the default state directory ($XDG_STATE_HOME/oj)."),
    "NOTIFY_SOCKET": (
        "ojd",
        "Set by systemd for Type=notify: ojd sends READY=1 after replay and bind, STATUS=... "
        "and STOPPING=1.",
    ),
    "WATCHDOG_USEC": ("ojd", "Set by systemd: ojd sends WATCHDOG=1 at half this interval."),
}

FILES = r"""
.TP
.I $OJ_STATE_DIR/
default \fI$XDG_STATE_HOME/oj\fR, else \fI~/.local/state/oj\fR; mode 0700.
.TP
.I daemon.sock
the Unix socket oj talks to (mode 0600; peers of another uid are refused).
.TP
.IR daemon.pid ", " daemon.version
the running daemon's pid (locked while it runs) and version.
.TP
.I daemon.log
ojd's log; each start writes a "\-\-\- ojd: starting (pid: N)" marker (\fBoj daemon logs\fR).
.TP
.I wal/events.wal
the write\-ahead log: one JSON event per line, fsynced before a change is acknowledged;
a torn or corrupt file is kept as \fIevents.bak\fR (\fI.bak.2\fR, \fI.bak.3\fR).
.TP
.I snapshot.json
the state as of a WAL sequence number; the WAL is compacted behind it (\fIsnapshot.bak\fR\&...).
.TP
.I logs/<pipeline-id>.log
each pipeline's log (\fBoj pipeline logs\fR).
.TP
.I workspaces/
workspaces created for pipelines (\fBoj workspace list\fR).
.TP
.I <project>/.oj/runbooks/
the runbooks (HCL, TOML or JSON) of a project; \fI.oj/config.toml\fR may name its namespace.
"""

OJ_EXTRA = {
    "DESCRIPTION": r"""
Run runbooks: commands, pipelines, queues and workers, through the \fBojd\fR daemon.
.PP
\fBoj\fR is the client of \fBojd\fR(8): every command is one request over the daemon's Unix
socket. Commands that change something start the daemon when none runs; queries (\fBlist\fR,
\fBshow\fR, \fBstatus\fR) never do. Runbooks (\fI.oj/runbooks/*.hcl\fR in the project around the
working directory) define commands, pipelines (shell and AI agent steps), queues, workers and
crons; the daemon reads them.
Every command accepts \fB\-o json\fR for machine\-readable output and \fB\-\-project\fR to
choose the namespace.
""",
    "EXIT STATUS": r"""
.TP
.B 0
success (for queries: also "daemon not running").
.TP
.B 1
an error: a failed request, an unknown pipeline/queue/worker, a runbook error, a failed or
dead item while waiting (\fBoj pipeline wait\fR, \fBoj queue wait\fR).
.TP
.B 2
a usage error (bad arguments), or a wait that timed out (\fB\-\-timeout\fR).
.TP
.B 3
\fBoj pipeline wait\fR: no such pipeline.
.TP
.B 4
\fBoj pipeline wait\fR: a pipeline was cancelled.
.TP
.B 130
interrupted (Ctrl\-C).
""",
    "EXAMPLES": r"""
.nf
oj run build main            # run the runbook command "build" with one argument
oj pipeline list             # pipelines of every project
oj pipeline wait \-\-all       # until every active pipeline ended, with a live counter
oj queue push bugs '{"id": "42"}'
oj queue push bugs \-\-file items.jsonl
oj queue wait bugs \-\-timeout 10m
oj worker stop bugs          # dispatch nothing new; running pipelines finish
oj cron start \-\-all          # fire the project's cron blocks on their schedules
oj agent list                # agent steps and what they are doing
oj session attach 1a2b3c4d   # watch (or help) the agent of a pipeline in tmux
oj status \-\-watch            # the overview, redrawn until Ctrl\-C
oj completion bash > ~/.local/share/bash\-completion/completions/oj
oj daemon install\-unit       # run ojd under systemd \-\-user
.fi
""",
    "SEE ALSO": r"""
\fBojd\fR(8), \fBtmux\fR(1), \fBsystemctl\fR(1), \fBloginctl\fR(1)
""",
}

OJD_EXTRA = {
    "DESCRIPTION": r"""
\fBojd\fR owns all state of \fBoj\fR(1): it replays the write\-ahead log, listens on a Unix
socket in the state directory, runs pipelines (each in its own cancel scope; a step's whole
process group is killed on cancel), dispatches queue items to workers, and appends every change
to the WAL before acknowledging it, so \fBkill \-9\fR loses nothing that was acknowledged.
One daemon per state directory (a lock on \fIdaemon.pid\fR). It runs in the foreground, as
\fBoj\fR starts it or as a systemd user service (Type=notify; see \fBoj daemon install\-unit\fR).
SIGTERM or SIGINT drain it: running steps get OJ_STOP_GRACE_MS, then a snapshot is written.
""",
    "EXIT STATUS": r"""
.TP
.B 0
stopped cleanly.
.TP
.B 1
could not start: another daemon holds the lock, the socket cannot be bound, the state
directory is unusable, or the WAL is corrupt beyond repair (see \fIdaemon.log\fR).
.TP
.B 2
usage error.
""",
    "EXAMPLES": r"""
.nf
ojd                                   # in the foreground, state in ~/.local/state/oj
OJ_STATE_DIR=/tmp/oj\-test ojd          # an isolated daemon
systemctl \-\-user enable \-\-now ojd      # after oj daemon install\-unit
loginctl enable\-linger $USER          # keep it running after logout
.fi
""",
    "SEE ALSO": r"""
\fBoj\fR(1), \fBsystemd.service\fR(5), \fBsd_notify\fR(3), \fBloginctl\fR(1)
""",
}


def _environment(page: str) -> str:
    lines = []
    for name, (pages, text) in {**ENVIRONMENT, **OTHER_ENVIRONMENT}.items():
        words = pages.split()
        if page in words or "step" in words:
            lines += [".TP", f".B {name}", text.replace("-", "\\-")]
    return "\n".join(lines)


def include_text(page: str, extra: dict[str, str]) -> str:
    """The `--include` file of one page (help2man format: `[SECTION]` then roff)."""
    sections = {
        "DESCRIPTION": extra["DESCRIPTION"],
        "ENVIRONMENT": _environment(page),
        "FILES": FILES,
        "EXIT STATUS": extra["EXIT STATUS"],
        "EXAMPLES": extra["EXAMPLES"],
        "SEE ALSO": extra["SEE ALSO"],
    }
    # ">" appends (to DESCRIPTION: after the parser's own text); a new section is just created.
    return "".join(f"[>{name}]\n{body.strip()}\n" for name, body in sections.items())


def _oj_parser() -> argparse.ArgumentParser:
    from oj_trio.cli import get_parser

    parser = get_parser()
    parser.description = None  # DESCRIPTION below says it, and more
    return parser


def _ojd_parser() -> argparse.ArgumentParser:
    from oj_trio.daemon import get_parser

    parser = get_parser()
    # Its --help epilog lists the environment in brief; the page has ENVIRONMENT for that.
    parser.epilog = parser.description = None
    return parser


#: page file → (name for ENVIRONMENT, its parser, NAME line, extra sections, manual section).
PAGES: dict[str, tuple[str, Callable[[], argparse.ArgumentParser], str, dict[str, str], str]] = {
    "oj.1": (
        "oj",
        _oj_parser,
        "run runbooks (commands, pipelines, queues) through the ojd daemon",
        OJ_EXTRA,
        "1",
    ),
    "ojd.8": ("ojd", _ojd_parser, "the oj job and pipeline daemon", OJD_EXTRA, "8"),
}


def generate(out_dir: Path) -> list[Path]:
    """Write both pages into `out_dir` (argparse-manpage's `Manpage`, the API its own command
    line uses); return their paths."""
    from argparse_manpage.manpage import Manpage

    from oj_trio import __version__

    out_dir.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d", time.gmtime(int(RELEASE_EPOCH)))
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (page, build, summary, extra, section) in PAGES.items():
            include = Path(tmp) / f"{name}.include"
            include.write_text(include_text(page, extra))
            data = {
                "prog": page,
                "date": date,
                "project_name": "oj",
                "version": __version__,
                "description": summary,
                "manual_section": section,
                "manual_title": "oj manual",
                "include": str(include),
            }
            target = out_dir / name
            target.write_text(str(Manpage(build(), _data=data)))
            written.append(target)
    return written


if __name__ == "__main__":
    for path in generate(ROOT / "man"):
        print(f"wrote {path.relative_to(ROOT)}")
