"""The machine's raw limits, measured in the same run as the oj figures (SPEC §7 quotes them as
"measured ceilings of the 2-core development machine"): the yardsticks every ratio is read
against. Prints figures; never a pass/fail test.

* fsync rate: ``write`` + ``fdatasync`` of one line to a file under the bench directory (/tmp,
  the file system the benches' state directories live on);
* file creation: ``open(O_CREAT)`` + ``write`` + ``close`` of a fresh file (one per pipeline log
  or tsp output file). On this machine's ext4 *without a journal*, the inode allocator skips every
  inode freed in the last 1–6 minutes and re-reads its table block, so a directory whose group
  saw many recent deletions makes each create cost up to ≈ 0.5 ms of kernel CPU instead of
  ≈ 0.02 ms: that is why the benches delete their run directories only at the very end;
* ``sh -c true`` through ``trio.run_process`` at concurrency 1 and 16 (the SPEC's spawn baseline),
  and the bash script a step really runs;
* bare Python start-up (``python -c pass`` from the venv, whole process);
* Unix-socket round trip to a trio echo server: one persistent connection, and a connection per
  request (as oj's protocol does).

Usage: .venv/bin/python bench/limits_bench.py [--quick] [--report FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report, add_report_argument

RUN_ALL_ORDER = 0
RUN_ALL_ARGS: list[str] = []
RUN_ALL_SMOKE_ARGS = ["--tiny"]
RUN_ALL_TIMEOUT = 120

ECHO_SERVER = r"""
import sys, trio
async def serve_one(stream):
    try:
        while True:
            header = await stream.receive_some(4)
            if not header:
                return
            await stream.send_all(header)
    except trio.BrokenResourceError:
        pass
async def main(path):
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(128)
    listener = trio.SocketListener(sock)
    print("ready", flush=True)
    await trio.serve_listeners(serve_one, [listener])
trio.run(main, sys.argv[1])
"""


def fsync_rate(directory: Path, count: int) -> float:
    path = directory / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        line = b'{"seq":1,"event":{"type":"bench"}}\n'
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, line)
            os.fdatasync(fd)
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)


def create_cost(directory: Path, count: int) -> tuple[float, float]:
    """(wall, CPU) seconds per fresh file created, written and closed."""
    target = directory / "creates"
    target.mkdir()
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(count):
        fd = os.open(target / f"{i}.log", flags, 0o600)
        os.write(fd, b"2026-01-01T00:00:00Z [init] pipeline created\n")
        os.close(fd)
    return (time.perf_counter() - wall0) / count, (time.process_time() - cpu0) / count


async def spawn_rate(argv: list[str], concurrency: int, total: int) -> float:
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < total:
            done += 1
            await trio.run_process(argv)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return total / (time.perf_counter() - start)


def python_startup(runs: int) -> float:
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def socket_round_trips(directory: Path, count: int) -> tuple[float, float]:
    """(persistent, connection-per-request) median round trip in seconds."""
    path = str(directory / "echo.sock")
    server = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, path], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("echo server did not start")
        frame = struct.pack(">I", 0)
        persistent = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            for _ in range(count):
                t0 = time.perf_counter()
                sock.sendall(frame)
                sock.recv(4, socket.MSG_WAITALL)
                persistent.append(time.perf_counter() - t0)
        per_request = []
        for _ in range(count):
            t0 = time.perf_counter()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                sock.sendall(frame)
                sock.recv(4, socket.MSG_WAITALL)
            per_request.append(time.perf_counter() - t0)
        return statistics.median(persistent), statistics.median(per_request)
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    parser.add_argument("--tiny", action="store_true", help="a few iterations (smoke test)")
    add_report_argument(parser)
    args = parser.parse_args()
    scale = 0.02 if args.tiny else 0.3 if args.quick else 1.0

    def n(full: int) -> int:
        return max(3, int(full * scale))

    report = Report("limits", "Machine limits (the yardsticks)")
    base = Path(tempfile.mkdtemp(prefix="ojl", dir="/tmp"))
    try:
        fs = fsync_rate(base, n(2000))
        print(f"write + fdatasync of one line: {fs:,.0f}/s ({1e3 / fs:.3f} ms)")
        report.figure(
            "fsync_rate", "`write` + `fdatasync` of one line (/tmp)", fs, "/s",
            note=f"{1e3 / fs:.3f} ms each; SPEC quotes ≈ 0.12 ms",
        )  # fmt: skip
        wall, cpu = create_cost(base, n(1000))
        print(f"fresh file create+write+close: {wall * 1e3:.3f} ms wall, {cpu * 1e3:.3f} ms CPU")
        report.figure(
            "file_create", "create + write + close a fresh file (/tmp)", wall * 1e3, "ms",
            note=f"{cpu * 1e3:.3f} ms CPU; ≈ 0.02 ms on a quiet ext4 group, up to ≈ 0.6 ms "
            "after many recent deletions (no journal: recently freed inodes are skipped)",
        )  # fmt: skip
        for label, argv in (
            ("`sh -c true`", ["sh", "-c", "true"]),
            ("`bash -c 'set -euo pipefail\\ntrue'` (what a step runs)", ["bash", "-c", "set -euo pipefail\ntrue"]),
        ):  # fmt: skip
            for concurrency in (1, 16):
                rate = trio.run(spawn_rate, argv, concurrency, n(1000))
                print(f"{label} via trio.run_process, concurrency {concurrency}: {rate:,.0f}/s")
                key = ("spawn_sh" if "sh -c" in label else "spawn_bash") + f"_c{concurrency}"
                report.figure(
                    key, f"{label} through `trio.run_process`, concurrency {concurrency}", rate,
                    "/s", note=f"{1e3 / rate * concurrency:.2f} ms per spawn",
                )  # fmt: skip
        start = python_startup(n(30))
        print(f"bare python -c pass: {start * 1e3:.1f} ms")
        report.figure(
            "python_startup", "bare `python -c pass` (venv), whole process, median",
            start * 1e3, "ms", note="SPEC quotes ≈ 12 ms",
        )  # fmt: skip
        persistent, per_request = socket_round_trips(base, n(5000))
        print(
            f"Unix-socket round trip to a trio echo server: persistent {persistent * 1e6:.0f} µs, "
            f"connection per request {per_request * 1e6:.0f} µs"
        )
        report.figure(
            "socket_rt_persistent", "Unix-socket round trip, persistent connection (trio server)",
            persistent * 1e6, "µs", note="SPEC quotes ≈ 80 µs",
        )  # fmt: skip
        report.figure(
            "socket_rt_connect", "Unix-socket round trip, connection per request (trio server)",
            per_request * 1e6, "µs", note="SPEC quotes ≈ 250 µs",
        )  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report.write(args.report)


if __name__ == "__main__":
    main()
