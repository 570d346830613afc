"""A throwaway PostgreSQL cluster: ``initdb`` into a temp dir, listening only on a Unix socket in
that dir, run as an unprivileged user when the tests run as root (PostgreSQL refuses root).

Used by the shared-queue tests (one cluster per session, a fresh database per test) and by
``bench/pg_bench.py``. :func:`find_bin_dir` looks on PATH, then in Debian's
``/usr/lib/postgresql/<version>/bin``; without PostgreSQL the tests skip with a reason that says
how to enable them.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Why the tests skip when PostgreSQL is missing, and how to enable them.
MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: "
    "apt-get install postgresql (or put its bin dir on PATH) to run the shared-queue tests"
)


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


class PgCluster:
    """One cluster in ``root`` (data in ``root/data``, the socket in ``root``)."""

    def __init__(self, bin_dir: Path, *, fast: bool = True) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ojpg-", dir="/tmp"))
        self.data = self.root / "data"
        self.fast = fast
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "nobody"
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._dbs = itertools.count(1)

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.root, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = [
            f"unix_socket_directories='{self.root}'",
            "listen_addresses=''",
            "max_connections=200",
        ]
        if self.fast:
            # Throwaway data: no fsync (a restart in the tests is a clean stop, which loses
            # nothing either way); the benchmark keeps PostgreSQL's durable defaults.
            options += ["fsync=off", "full_page_writes=off"]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(options) + "\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql:///{dbname}?host={self.root}&user=postgres"

    def createdb(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._dbs)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
