"""WAL line format, replay and every corruption case, each with its exact outcome (SPEC §3)."""

from pathlib import Path

import orjson
import pytest

from oj_trio import events as ev
from oj_trio import wal
from oj_trio.errors import CorruptStateError, WalError
from oj_trio.state import MaterializedState


def push(i: int) -> ev.QueuePushed:
    return ev.QueuePushed(queue_name="q", item_id=f"item-{i}", pushed_at_epoch_ms=i)


def write_wal(state_dir: Path, seqs: range, *, extra: bytes = b"") -> bytes:
    path = wal.wal_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(wal.encode_line(s, push(s)) for s in seqs) + extra
    path.write_bytes(data)
    return data


def state_of(seqs: range) -> MaterializedState:
    s = MaterializedState()
    for i in seqs:
        s.apply(push(i))
    return s


def items(state: MaterializedState) -> list[str]:
    return list(state.queue("q"))


def test_line_format_and_crc(tmp_path: Path) -> None:
    line = wal.encode_line(7, ev.StepCompleted(pipeline_id="p", step="s", at_ms=1))
    obj = orjson.loads(line)
    assert list(obj) == ["seq", "event", "crc"]
    assert obj["seq"] == 7 and obj["event"]["type"] == "step:completed"
    assert wal.parse_line(line)[:2] == (7, obj["event"])
    flipped = line.replace(b'"s"', b'"t"')
    with pytest.raises(wal._BadLine, match="CRC"):
        wal.parse_line(flipped)
    # reference-format lines (no crc) are accepted
    plain = b'{"seq":1,"event":{"type":"timer:start","id":"t"}}\n'
    assert wal.parse_line(plain) == (1, {"type": "timer:start", "id": "t"}, False)


def test_replay_empty_dir(tmp_path: Path) -> None:
    r = wal.replay(tmp_path)
    assert (r.last_seq, r.snapshot_seq, r.replayed, r.warnings) == (0, 0, 0, [])
    assert r.state == MaterializedState()


def test_replay_all(tmp_path: Path) -> None:
    write_wal(tmp_path, range(1, 11))
    r = wal.replay(tmp_path)
    assert (r.last_seq, r.replayed, r.warnings) == (10, 10, [])
    assert r.state == state_of(range(1, 11))


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b'{"seq":11,"event":{"type":"queue:pus', id="torn-mid-line"),
        pytest.param(wal.encode_line(11, push(11))[:-1], id="missing-newline"),
        pytest.param(wal.encode_line(11, push(11)).replace(b"item-11", b"item-1X"), id="bitflip-last"),
        pytest.param(b"\x00" * 300 + b"\n" + b"\x00" * 50, id="zero-filled-blocks"),
    ],
)  # fmt: skip
def test_torn_tail_is_cut_and_kept_as_bak(tmp_path: Path, tail: bytes) -> None:
    good = write_wal(tmp_path, range(1, 11))
    original = good + tail
    wal.wal_path(tmp_path).write_bytes(original)
    r = wal.replay(tmp_path)
    assert r.last_seq == 10
    assert r.state == state_of(range(1, 11))
    assert len(r.warnings) == 1 and "cut a torn/corrupt tail at line 11" in r.warnings[0]
    assert wal.wal_path(tmp_path).read_bytes() == good
    assert (tmp_path / "wal" / "events.bak").read_bytes() == original
    assert not (tmp_path / "wal" / "events.tmp").exists()
    # a second open is clean
    assert wal.replay(tmp_path).warnings == []


def test_incomplete_multi_event_append_is_cut_whole(tmp_path: Path) -> None:
    good = write_wal(tmp_path, range(1, 4))
    group = wal.encode_line(4, push(4), more=True) + wal.encode_line(5, push(5), more=True)
    wal.wal_path(tmp_path).write_bytes(good + group + wal.encode_line(6, push(6))[:20])
    r = wal.replay(tmp_path)
    assert (r.last_seq, items(r.state)) == (3, ["item-1", "item-2", "item-3"])
    assert "line 4" in r.warnings[0]
    assert wal.wal_path(tmp_path).read_bytes() == good
    # a complete group is applied
    full = group + wal.encode_line(6, push(6))
    wal.wal_path(tmp_path).write_bytes(good + full)
    assert wal.replay(tmp_path).last_seq == 6


def test_bit_flip_in_middle_is_a_hard_error_and_touches_nothing(tmp_path: Path) -> None:
    lines = [wal.encode_line(s, push(s)) for s in range(1, 11)]
    lines[4] = lines[4].replace(b"item-5", b"item-6")
    data = b"".join(lines)
    wal.wal_path(tmp_path).parent.mkdir(parents=True)
    wal.wal_path(tmp_path).write_bytes(data)
    with pytest.raises(CorruptStateError) as info:
        wal.replay(tmp_path)
    msg = str(info.value)
    assert str(wal.wal_path(tmp_path)) in msg
    assert "line 5 is corrupt (CRC mismatch)" in msg and "(line 6, seq 6)" in msg
    assert wal.wal_path(tmp_path).read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "wal").iterdir()) == ["events.wal"]


def test_unknown_event_type_with_valid_crc_is_a_hard_error_even_at_the_tail(tmp_path: Path) -> None:
    good = write_wal(tmp_path, range(1, 3))
    line = wal.frame_line(3, b'{"type":"future:thing","x":1}')
    wal.wal_path(tmp_path).write_bytes(good + line)
    with pytest.raises(CorruptStateError, match=r"line 3: event seq 3: unknown event type"):
        wal.replay(tmp_path)
    assert wal.wal_path(tmp_path).read_bytes() == good + line


def test_seq_gap_is_a_hard_error(tmp_path: Path) -> None:
    data = write_wal(tmp_path, range(1, 4)) + wal.encode_line(5, push(5))
    wal.wal_path(tmp_path).write_bytes(data)
    with pytest.raises(CorruptStateError, match="line 4: seq 5 does not follow seq 3"):
        wal.replay(tmp_path)
    write_wal(tmp_path, range(3, 5))  # no snapshot, but history does not start at 1
    with pytest.raises(CorruptStateError, match="history gap: first entry is seq 3"):
        wal.replay(tmp_path)


def test_bak_rotation_keeps_three(tmp_path: Path) -> None:
    good = write_wal(tmp_path, range(1, 3))
    for n in range(5):
        wal.wal_path(tmp_path).write_bytes(good + b"torn-%d" % n)
        wal.replay(tmp_path)
    wal_dir = tmp_path / "wal"
    assert sorted(p.name for p in wal_dir.iterdir()) == [
        "events.bak",
        "events.bak.2",
        "events.bak.3",
        "events.wal",
    ]
    assert (wal_dir / "events.bak").read_bytes().endswith(b"torn-4")
    assert (wal_dir / "events.bak.2").read_bytes().endswith(b"torn-3")
    assert (wal_dir / "events.bak.3").read_bytes().endswith(b"torn-2")


# --- snapshots -------------------------------------------------------------------------------------


def test_snapshot_plus_tail(tmp_path: Path) -> None:
    write_wal(tmp_path, range(1, 21))
    wal.write_snapshot(tmp_path, 12, state_of(range(1, 13)).to_dict())
    r = wal.replay(tmp_path)
    assert (r.snapshot_seq, r.replayed, r.last_seq) == (12, 8, 20)
    assert r.state == state_of(range(1, 21))
    # compacted WAL (only the tail) gives the same
    write_wal(tmp_path, range(13, 21))
    assert wal.replay(tmp_path).state == r.state
    # compacted to empty: the next seq continues after the snapshot
    write_wal(tmp_path, range(0))
    r2 = wal.replay(tmp_path)
    assert (r2.last_seq, r2.state) == (12, state_of(range(1, 13)))


def test_snapshot_not_reached_by_wal_is_a_hard_error(tmp_path: Path) -> None:
    write_wal(tmp_path, range(15, 21))
    wal.write_snapshot(tmp_path, 12, state_of(range(1, 13)).to_dict())
    with pytest.raises(CorruptStateError, match="history gap: first entry is seq 15 but seq 13"):
        wal.replay(tmp_path)


def test_truncated_snapshot_is_moved_aside_and_state_rebuilt(tmp_path: Path) -> None:
    write_wal(tmp_path, range(1, 21))
    wal.write_snapshot(tmp_path, 12, state_of(range(1, 13)).to_dict())
    snap = tmp_path / "snapshot.json"
    truncated = snap.read_bytes()[:-40]
    snap.write_bytes(truncated)
    r = wal.replay(tmp_path)
    assert (r.snapshot_seq, r.replayed, r.last_seq) == (0, 20, 20)
    assert r.state == state_of(range(1, 21))
    assert not snap.exists()
    assert (tmp_path / "snapshot.bak").read_bytes() == truncated
    assert len(r.warnings) == 1 and "snapshot.bak" in r.warnings[0]


def test_bit_flipped_snapshot_is_detected(tmp_path: Path) -> None:
    write_wal(tmp_path, range(1, 4))
    wal.write_snapshot(tmp_path, 3, state_of(range(1, 4)).to_dict())
    snap = tmp_path / "snapshot.json"
    snap.write_bytes(snap.read_bytes().replace(b"item-2", b"item-X"))
    r = wal.replay(tmp_path)
    assert "CRC mismatch" in r.warnings[0]
    assert r.state == state_of(range(1, 4))


def test_corrupt_snapshot_with_compacted_wal_is_a_hard_error(tmp_path: Path) -> None:
    data = write_wal(tmp_path, range(13, 21))
    wal.write_snapshot(tmp_path, 12, state_of(range(1, 13)).to_dict())
    snap = tmp_path / "snapshot.json"
    snap.write_bytes(snap.read_bytes()[:100])
    with pytest.raises(
        CorruptStateError, match=r"snapshot.json is corrupt .* no longer reaches back"
    ):
        wal.replay(tmp_path)
    assert snap.read_bytes()[:100] == snap.read_bytes()  # untouched
    assert not (tmp_path / "snapshot.bak").exists()
    assert wal.wal_path(tmp_path).read_bytes() == data
    # ... and with an empty (fully compacted) WAL
    write_wal(tmp_path, range(0))
    with pytest.raises(CorruptStateError, match="holds no history"):
        wal.replay(tmp_path)


def test_newer_snapshot_version_is_refused(tmp_path: Path) -> None:
    snap = tmp_path / "snapshot.json"
    snap.write_bytes(b'{"version":99,"seq":1,"created_at":"x","state":{}}')
    with pytest.raises(WalError, match="version 99, but this oj only reads up to version 1"):
        wal.replay(tmp_path)
    assert snap.exists()


def test_leftover_tmp_files_are_removed_and_ignored(tmp_path: Path) -> None:
    write_wal(tmp_path, range(1, 6))
    wal.write_snapshot(tmp_path, 5, state_of(range(1, 6)).to_dict())
    (tmp_path / "snapshot.tmp").write_bytes(b'{"version":1,"seq":999,"sta')
    (tmp_path / "wal" / "events.tmp").write_bytes(b"")
    r = wal.replay(tmp_path)
    assert (r.snapshot_seq, r.last_seq) == (5, 5)
    assert r.state == state_of(range(1, 6))
    assert not (tmp_path / "snapshot.tmp").exists()
    assert not (tmp_path / "wal" / "events.tmp").exists()
    assert len(r.warnings) == 2 and all("leftover" in w for w in r.warnings)


def test_snapshot_file_shape(tmp_path: Path) -> None:
    wal.write_snapshot(tmp_path, 4, state_of(range(1, 3)).to_dict())
    obj = orjson.loads((tmp_path / "snapshot.json").read_bytes())
    assert list(obj) == ["version", "seq", "created_at", "crc", "state"]
    assert (obj["version"], obj["seq"]) == (1, 4)
    assert MaterializedState.from_dict(obj["state"]) == state_of(range(1, 3))


# --- files written by an older oj ------------------------------------------------------------------

#: Written by oj at f8bffc0 (before timers and ``at_ms`` on queue:failed / action_attempted): a
#: snapshot at seq 5, then a WAL tail of one three-event append.
OLD_SNAPSHOT = (
    b'{"version":1,"seq":5,"created_at":"2026-11-30T14:19:27+00:00","crc":3636152026,"state":'
    b'{"pipelines":{"p1":{"id":"p1","name":"n","kind":"k","namespace":"","step":"a",'
    b'"runbook_hash":"h","cwd":"/","created_at_ms":5,"step_history":[{"name":"a",'
    b'"started_at_ms":5}],"action_attempts":{"idle:0":1},"updated_at_ms":5}},"queue_items":'
    b'{"ns/q":{"i1":{"id":"i1","queue_name":"q","namespace":"ns","data":{},"pushed_at_ms":7,'
    b'"status":"failed","failure_count":1,"error":"boom"}}}}}'
)
OLD_WAL = (
    b'{"seq":6,"event":{"queue_name":"q","item_id":"i2","pushed_at_epoch_ms":8,"namespace":"ns",'
    b'"type":"queue:pushed"},"more":true,"crc":997780049}\n'
    b'{"seq":7,"event":{"queue_name":"q","item_id":"i2","namespace":"ns","type":"queue:failed"},'
    b'"more":true,"crc":3862205500}\n'
    b'{"seq":8,"event":{"id":"p1","key":"idle:0","type":"pipeline:action_attempted"},'
    b'"crc":779427089}\n'
)


def test_snapshot_and_wal_from_an_older_oj_still_replay(tmp_path: Path) -> None:
    (tmp_path / "snapshot.json").write_bytes(OLD_SNAPSHOT)
    wal.wal_path(tmp_path).parent.mkdir()
    wal.wal_path(tmp_path).write_bytes(OLD_WAL)
    r = wal.replay(tmp_path)
    assert (r.snapshot_seq, r.replayed, r.last_seq, r.warnings) == (5, 3, 8, [])
    assert r.state.timers == {}
    p = r.state.pipelines["p1"]
    assert (p.action_attempts, p.action_attempted_at_ms) == ({"idle:0": 2}, {"idle:0": 0})
    items_ = r.state.queue("q", "ns")
    assert [(i.id, i.status, i.failure_count, i.failed_at_ms) for i in items_.values()] == [
        ("i1", "failed", 1, 0),
        ("i2", "failed", 1, 0),
    ]
    # and what this version writes back reads back the same
    wal.write_snapshot(tmp_path, r.last_seq, r.state.to_dict())
    assert wal.replay(tmp_path).state == r.state


def test_timer_table_is_in_the_snapshot(tmp_path: Path) -> None:
    s = MaterializedState()
    s.apply(ev.TimerSet(id="queue-retry:ns/q:i1", due_at_ms=1_700_000_600_000))
    wal.write_snapshot(tmp_path, 1, s.to_dict())
    assert wal.replay(tmp_path).state.timers == {"queue-retry:ns/q:i1": 1_700_000_600_000}
