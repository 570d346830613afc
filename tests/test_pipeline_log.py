"""Pipeline log: line format, output prefixes, bounded descriptors, tail and follow reads."""

from __future__ import annotations

import calendar
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oj_trio.adapters.process import run_shell
from oj_trio.pipeline_log import PipelineLog, format_line, read_from, read_tail

T0 = calendar.timegm((2026, 11, 22, 10, 0, 0, 0, 0, 0))


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_line_format(tmp_path: Path) -> None:
    clock = Clock()
    plog = PipelineLog(tmp_path / "logs", clock=clock)
    plog.write("p1", "init", "pipeline created")
    clock.now += 61.9
    plog.write("p1", "build", "shell (cwd: /w): make")
    plog.output("p1", "build", "stdout", "compiling")
    plog.output("p1", "build", "stderr", "warning: x")
    plog.write("p1", "build", "two\nlines")
    plog.close_all()
    assert plog.path("p1") == tmp_path / "logs" / "p1.log"
    assert plog.path("p1").read_text().splitlines() == [
        "2026-11-22T10:00:00Z [init] pipeline created",
        "2026-11-22T10:01:01Z [build] shell (cwd: /w): make",
        "2026-11-22T10:01:01Z [build] | compiling",
        "2026-11-22T10:01:01Z [build] ! warning: x",
        "2026-11-22T10:01:01Z [build] two\\nlines",
    ]
    assert format_line(T0, "s", "m") == "2026-11-22T10:00:00Z [s] m\n"
    assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700


def test_real_clock_is_utc(tmp_path: Path) -> None:
    plog = PipelineLog(tmp_path, max_open=0)
    plog.write("p", "init", "pipeline created")
    (line,) = plog.path("p").read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[init\] pipeline created", line)


@pytest.mark.parametrize("max_open", [0, 1, 4])
def test_descriptors_stay_bounded(tmp_path: Path, max_open: int) -> None:
    plog = PipelineLog(tmp_path, max_open=max_open, clock=Clock())
    for round_ in range(3):
        for i in range(20):
            plog.write(f"p{i}", "s", f"line {round_}")
            assert plog.open_count <= max_open
    for i in range(20):
        assert read_tail(plog.path(f"p{i}"), 10) == [
            f"2026-11-22T10:00:00Z [s] line {r}" for r in range(3)
        ]
    plog.close("p19")
    plog.close("never-opened")
    plog.close_all()
    assert plog.open_count == 0


async def test_step_output_through_callback_and_fd(tmp_path: Path) -> None:
    plog = PipelineLog(tmp_path, clock=Clock())
    plog.write("p", "build", "step started")
    code = await run_shell(
        "echo out; echo err >&2",
        cwd=tmp_path,
        env=dict(os.environ),
        on_output=plog.output_callback("p", "build"),
    )
    assert code == 0
    fd = plog.open_for_child("p")
    try:
        await run_shell(
            "echo raw", cwd=tmp_path, env=dict(os.environ), on_output=None, output_fd=fd
        )
    finally:
        os.close(fd)
    plog.write("p", "build", "shell completed (exit 0)")
    lines = read_tail(plog.path("p"), 10)
    assert lines[0] == "2026-11-22T10:00:00Z [build] step started"
    assert sorted(lines[1:3]) == [
        "2026-11-22T10:00:00Z [build] ! err",
        "2026-11-22T10:00:00Z [build] | out",
    ]
    assert lines[3:] == ["raw", "2026-11-22T10:00:00Z [build] shell completed (exit 0)"]
    plog.close_all()


def test_read_tail_edges(tmp_path: Path) -> None:
    f = tmp_path / "x.log"
    assert read_tail(f, 5) == []
    f.write_bytes(b"")
    assert read_tail(f, 5) == []
    f.write_bytes(b"a\nb\nc\n")
    assert read_tail(f, 0) == []
    assert read_tail(f, 2) == ["b", "c"]
    assert read_tail(f, 10) == ["a", "b", "c"]
    f.write_bytes(b"a\nb\npartial")
    assert read_tail(f, 2) == ["b", "partial"]
    f.write_bytes(b"\xff\n")
    assert read_tail(f, 1) == ["\ufffd"]


@given(
    st.lists(st.text(alphabet="ab\u00e9 ", max_size=30), max_size=60),
    st.integers(0, 70),
    st.integers(1, 16),
    st.booleans(),
)
def test_read_tail_matches_naive(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    n: int,
    block: int,
    trailing_newline: bool,
) -> None:
    f = tmp_path_factory.mktemp("tail") / "t.log"
    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    f.write_text(text, encoding="utf-8")
    expected = text.splitlines()[-n:] if n else []
    # splitlines() and the log agree on '\n'-separated text without other line breaks.
    assert read_tail(f, n, block_size=block) == expected


def test_read_tail_of_a_big_file(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    with open(f, "wb") as out:
        out.write(b"x" * 5_000_000 + b"\n")
        out.write(b"last one\n")
    assert read_tail(f, 1) == ["last one"]


def test_read_from_follows_complete_lines(tmp_path: Path) -> None:
    f = tmp_path / "f.log"
    assert read_from(f, 0) == ([], 0)
    f.write_bytes(b"one\ntw")
    lines, off = read_from(f, 0)
    assert (lines, off) == (["one"], 4)
    assert read_from(f, off) == ([], 4)
    with open(f, "ab") as out:
        out.write(b"o\nthree\n")
    lines, off = read_from(f, off)
    assert lines == ["two", "three"]
    f.write_bytes(b"new\n")  # truncated and rewritten: start over
    assert read_from(f, off) == (["new"], 4)


def test_background_writer_keeps_order_and_flush_is_a_barrier(tmp_path: Path) -> None:
    """The daemon's mode: the caller only queues; a writer thread creates, appends and closes.
    After ``flush`` every queued line is in its file, each log in the order it was written."""
    plog = PipelineLog(tmp_path / "logs", clock=Clock(), max_open=2, background=True)
    for n in range(200):
        plog.write(f"p{n % 5}", "s", f"line {n}")
    plog.close("p0")
    plog.flush()
    for p in range(5):
        lines = plog.path(f"p{p}").read_text().splitlines()
        assert [line.rsplit(" ", 1)[1] for line in lines] == [str(n) for n in range(p, 200, 5)]
    plog.remove("p1")
    assert not plog.path("p1").exists()
    plog.write("p2", "s", "last")
    plog.close_all()
    assert plog.path("p2").read_text().splitlines()[-1].endswith("[s] last")
    assert plog.open_count == 0


def test_background_writer_joins_lines_but_keeps_closes_in_order(tmp_path: Path) -> None:
    """Lines queued together for one log go out in one write; a close queued between them
    comes after the lines before it, and the lines after it reopen the log."""
    plog = PipelineLog(tmp_path / "logs", clock=Clock(), max_open=4, background=True)
    for round_ in range(50):
        plog.write("a", "s", f"r{round_} one")
        plog.write("b", "s", f"r{round_} other")
        plog.write("a", "s", f"r{round_} two")
        plog.close("a")
        plog.write("a", "s", f"r{round_} three")
    plog.close_all()
    lines = [line.split("] ", 1)[1] for line in plog.path("a").read_text().splitlines()]
    assert lines == [f"r{n} {w}" for n in range(50) for w in ("one", "two", "three")]
    assert plog.path("b").read_text().count("other") == 50
    assert plog.open_count == 0
