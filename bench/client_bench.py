"""`oj` client start-up and daemon request round trips: figures for bench/RESULTS.md, not pass/fail.

SPEC §7 target: an `oj` command round trip with the daemon running (whole process) is at most
1.3x a minimal stdlib socket client doing the same round trip in the same run (~30-50 ms).

Two parts, against one real `ojd` in a throwaway state dir under /tmp:

1. Whole-process wall time, variants interleaved run by run (the machine is noisy; compare within
   one run): a bare ``python -c pass`` (the venv's interpreter), a minimal stdlib client
   (argparse + json + socket + struct, one ``Ping`` round trip; written inline below), and
   ``oj daemon status`` (connect, ``Status``, format). Median and p90 of ``--runs`` each.
2. Request round trips inside one process: ``--requests`` ``Ping`` requests, one connection per
   request as the protocol says, from 1 client and from 32 concurrent client threads. p50/p99
   latency and requests/s. (The client threads share this process's GIL and the machine's two
   cores with the daemon, so the 32-client figure measures the pair, not the daemon alone.)

Usage: ``python bench/client_bench.py [--runs N] [--requests N] [--also LABEL=OJ_BINARY ...]``
(``--also`` adds another ``oj`` executable, e.g. an older checkout's, to the same interleaved
runs: a before/after comparison within one run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report, add_report_argument

RUN_ALL_ORDER = 20
RUN_ALL_ARGS = ["--runs", "20", "--requests", "3000"]
RUN_ALL_SMOKE_ARGS = ["--runs", "2", "--requests", "20"]
RUN_ALL_TIMEOUT = 180

BIN = Path(sys.executable).parent
OJ = str(BIN / "oj")
OJD = str(BIN / "ojd")

#: The minimal stdlib client the SPEC compares `oj` with: parse a command line, one Ping round
#: trip over the Unix socket, print the answer. Same imports a thin client cannot avoid.
MINIMAL_CLIENT = r"""
import argparse, json, os, socket, struct, sys
p = argparse.ArgumentParser(prog="mini")
p.add_argument("cmd", nargs="?", default="ping")
p.parse_args()
path = os.path.join(os.environ["OJ_STATE_DIR"], "daemon.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
body = json.dumps({"type": "Ping"}).encode()
s.sendall(struct.pack(">I", len(body)) + body)
def exact(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit("closed")
        b += c
    return b
(n,) = struct.unpack(">I", exact(4))
print(json.loads(exact(n))["type"])
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return struct.pack(">I", len(body)) + body


PING = frame({"type": "Ping"})


def ping(path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(PING)
        header = sock.recv(4, socket.MSG_WAITALL)
        (length,) = struct.unpack(">I", header)
        body = sock.recv(length, socket.MSG_WAITALL)
    if body != b'{"type":"Pong"}':
        raise RuntimeError(f"unexpected answer {body!r}")


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one run of ``argv``."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


VARIANTS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "minimal stdlib client (Ping)": [sys.executable, "-c", MINIMAL_CLIENT],
    "oj daemon status": [OJ, "daemon", "status"],
}


def add_variants(also: list[str]) -> None:
    """`LABEL=PATH` pairs: more `oj` executables, each running `daemon status` like ours."""
    for pair in also:
        label, _, binary = pair.partition("=")
        VARIANTS[f"{label}: oj daemon status"] = [binary, "daemon", "status"]


def process_times(
    env: dict[str, str], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU times per variant, interleaved run by run."""
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpus: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for argv in VARIANTS.values():  # warm the page cache once
        run_once(argv, env)
    for _ in range(runs):
        for name, argv in VARIANTS.items():
            wall, cpu = run_once(argv, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return walls, cpus


def report_processes(label: str, env: dict[str, str], runs: int) -> dict[str, float]:
    """Print the table; return this checkout's oj / minimal client ("wall", "CPU"; medians)."""
    walls, cpus = process_times(env, runs)
    ratios: dict[str, float] = {}
    print(f"\nwhole process, {label}, {runs} runs each (interleaved), ms:")
    print(
        f"  {'variant':30} {'wall p50':>9} {'wall p90':>9} {'wall min':>9} "
        f"{'CPU p50':>8} {'CPU p90':>8}"
    )
    for name in VARIANTS:
        wall, cpu = walls[name], cpus[name]
        print(
            f"  {name:30} {statistics.median(wall) * 1e3:9.1f} {pct(wall, 0.9) * 1e3:9.1f} "
            f"{min(wall) * 1e3:9.1f} {statistics.median(cpu) * 1e3:8.1f} "
            f"{pct(cpu, 0.9) * 1e3:8.1f}"
        )
    for kind, table in (("wall", walls), ("CPU", cpus)):
        mini = statistics.median(table["minimal stdlib client (Ping)"])
        bare = statistics.median(table["python -c pass"])
        for name in VARIANTS:
            if not name.endswith("oj daemon status"):
                continue
            ojt = statistics.median(table[name])
            if name == "oj daemon status":
                ratios[kind] = ojt / mini
                ratios[f"{kind} oj ms"] = ojt * 1e3
                ratios[f"{kind} minimal ms"] = mini * 1e3
            print(
                f"  {kind:4}: {name.removesuffix('daemon status')}/ minimal client = "
                f"{ojt / mini:.2f}x (target <= 1.3x); oj - bare python = "
                f"{(ojt - bare) * 1e3:.1f} ms; minimal - bare = {(mini - bare) * 1e3:.1f} ms"
            )
    return ratios


def round_trips(path: str, requests: int, clients: int) -> tuple[list[float], float]:
    """Per-request latencies (s) and overall requests/s for ``requests`` Pings."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client(i: int) -> None:
        mine = latencies[i]
        try:
            barrier.wait()
            for _ in range(per_client[i]):
                t0 = time.perf_counter()
                ping(path)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    flat = [x for lat in latencies for x in lat]
    return flat, len(flat) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="process runs per variant")
    parser.add_argument("--requests", type=int, default=10_000, help="Pings per round-trip figure")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=OJ",
        help="another oj executable to time in the same runs (e.g. an older checkout's)",
    )
    add_report_argument(parser)
    args = parser.parse_args()
    report = Report("client", "Daemon and client (issue 4)")
    add_variants(args.also)

    root = Path(tempfile.mkdtemp(prefix="ojb", dir="/tmp"))
    state = root / "s"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OJ_", "NOTIFY_", "WATCHDOG_"))}
    env.update({"OJ_STATE_DIR": str(state), "OJ_DAEMON_BINARY": OJD})
    sock_path = str(state / "daemon.sock")
    try:
        subprocess.run([OJ, "daemon", "start"], env=env, check=True, stdout=subprocess.DEVNULL)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at start"
        )

        # This environment sets PYTHONDONTWRITEBYTECODE, so by default every `oj` run compiles
        # oj_trio from source. An installed package has its bytecode compiled at install time:
        # measure that with a throwaway pycache prefix (filled by the warm-up run), and the
        # source-only case for comparison.
        compiled = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        compiled["PYTHONPYCACHEPREFIX"] = str(root / "pyc")
        source_only = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        source_only.pop("PYTHONPYCACHEPREFIX", None)
        for label, run_env in (
            ("bytecode cached (as installed)", compiled),
            ("no bytecode cache (PYTHONDONTWRITEBYTECODE=1)", source_only),
        ):
            ratios = report_processes(label, run_env, args.runs)
            installed = run_env is compiled
            wall, cpu = ratios["wall"], ratios["CPU"]
            report.figure(
                "cli_round_trip" if installed else "cli_round_trip_no_pyc",
                f"`oj daemon status` / minimal stdlib client, whole process, {label}",
                wall, "×", target="≤ 1.3×" if installed else "", ok=wall <= 1.3 if installed else None,
                ratio=wall / 1.3 if installed else None, spec=installed,
                note=f"oj {ratios['wall oj ms']:.1f} ms vs {ratios['wall minimal ms']:.1f} ms "
                f"(wall p50); CPU ratio {cpu:.2f}×",
            )  # fmt: skip
        print(f"\nPing round trips, {args.requests} requests, one connection each:")
        for clients in (1, 32):
            lat, rate = round_trips(sock_path, args.requests, clients)
            report.figure(
                f"ping_{clients}", f"Ping round trip, {clients} client(s), connection per request",
                rate, "req/s", note=f"p50 {pct(lat, 0.5) * 1e6:.0f} µs, p99 {pct(lat, 0.99) * 1e6:.0f} µs",
            )  # fmt: skip
            print(
                f"  {clients:2d} client(s): p50 {pct(lat, 0.5) * 1e6:7.0f} us  "
                f"p99 {pct(lat, 0.99) * 1e6:7.0f} us  {rate:8.0f} req/s"
            )
        print(f"\nload average {os.getloadavg()[0]:.1f} at end")
        report.write(args.report)
    finally:
        subprocess.run(
            [OJ, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
