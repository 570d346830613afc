"""Frames and request validation, without sockets."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oj_trio import protocol
from oj_trio.errors import ProtocolError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6), st.text(min_size=1))
def test_frame_round_trip(fields: dict, tag: str) -> None:
    message = {**fields, "type": tag}
    frame = protocol.encode_frame(message)
    length = protocol.decode_length(frame[:4])
    assert length == len(frame) - 4
    assert protocol.decode_body(frame[4:]) == message


def test_oversized_length_is_refused_before_reading_the_body() -> None:
    header = struct.pack(">I", protocol.MAX_FRAME + 1)
    with pytest.raises(ProtocolError, match=r"^Message too large: \d+ bytes \(max \d+\)$"):
        protocol.decode_length(header)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"kind": "Ping"}', "no string 'type'"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.decode_body(body)


def test_unknown_request_type() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown request type: Nope$"):
        protocol.parse_request({"type": "Nope"})


def test_unknown_query_type() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown query type: Nope$"):
        protocol.parse_request(protocol.query("Nope"))


def test_missing_and_mistyped_fields() -> None:
    with pytest.raises(ProtocolError, match="missing field 'version'"):
        protocol.parse_request({"type": "Hello"})
    with pytest.raises(ProtocolError, match="field 'kill' must be bool"):
        protocol.parse_request({"type": "Shutdown", "kill": "yes"})
    with pytest.raises(ProtocolError, match="field 'lines' must be int"):
        protocol.parse_request(protocol.query("GetPipelineLogs", id="x", lines=True))
    with pytest.raises(ProtocolError, match="unknown field"):
        protocol.parse_request({"type": "Ping", "extra": 1})


def test_request_drops_none_fields() -> None:
    assert protocol.request("Shutdown", kill=None) == {"type": "Shutdown"}
    assert protocol.parse_request(protocol.request("Shutdown", kill=True))["kill"] is True


def test_encode_is_compact_json() -> None:
    frame = protocol.encode_frame({"type": "Ping"})
    assert json.loads(frame[4:]) == {"type": "Ping"}
    assert b" " not in frame[4:]
