"""Events: every catalogue tag exists, the codec round-trips, and bad input is an error with a seq."""

import typing
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oj_trio import events as ev
from oj_trio.errors import WalError

#: Reference §5.2 catalogue plus this implementation's additions (documented in oj_trio.events).
CATALOGUE = {
    "agent:working", "agent:waiting", "agent:failed", "agent:exited", "agent:gone", "agent:input",
    "agent:signal", "agent:idle", "agent:prompt", "command:run", "pipeline:created",
    "pipeline:advanced", "pipeline:updated", "pipeline:resume", "pipeline:cancelling",
    "pipeline:cancel", "pipeline:deleted", "step:started", "step:waiting", "step:completed",
    "step:failed", "shell:exited", "runbook:loaded", "session:created", "session:input",
    "session:deleted", "workspace:created", "workspace:ready", "workspace:failed",
    "workspace:deleted", "workspace:drop", "timer:start", "system:shutdown", "worker:started",
    "worker:wake", "worker:poll_complete", "worker:item_dispatched", "worker:stopped",
    "queue:pushed", "queue:taken", "queue:completed", "queue:failed", "queue:item_retry",
    "queue:item_dead", "queue:dropped",
}  # fmt: skip
ADDITIONS = {
    "shell:spawned", "pipeline:action_attempted", "worker:deleted", "timer:set", "timer:cancelled",
    "worker:resized", "worker:item_settled",
    "cron:started", "cron:stopped", "cron:fired", "cron:skipped",
}  # fmt: skip

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def strategy_for(tp: Any, text_st: st.SearchStrategy[str] = text) -> st.SearchStrategy[Any]:
    """Hypothesis strategy for one event field type (shared with test_state)."""
    if tp is Any:
        return json_values
    if tp is str:
        return text_st
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**63 - 1)
    origin = typing.get_origin(tp)
    if origin is dict:
        return st.dictionaries(text_st, text_st, max_size=3)
    if origin is list:
        return st.lists(json_values, max_size=3)
    args = typing.get_args(tp)
    inner = [a for a in args if a is not type(None)]
    return st.none() | strategy_for(inner[0], text_st)


def event_strategy(
    cls: type, text_st: st.SearchStrategy[str] = text, overrides: dict[str, Any] | None = None
) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in attrs.fields(cls):
        if overrides and f.name in overrides:
            fields[f.name] = overrides[f.name]
        else:
            fields[f.name] = strategy_for(hints[f.name], text_st)
    return st.builds(cls, **fields)


any_event = st.one_of([event_strategy(cls) for cls in ev.EVENT_TYPES])


def test_catalogue_complete() -> None:
    tags = set(ev.EVENT_BY_TAG)
    assert tags >= CATALOGUE
    assert tags - CATALOGUE == ADDITIONS


def test_wire_shape_is_flat_tagged_and_omits_unset_optionals() -> None:
    e = ev.StepStarted(pipeline_id="p1", step="plan", at_ms=5)
    assert orjson.loads(ev.encode_event(e)) == {
        "type": "step:started",
        "pipeline_id": "p1",
        "step": "plan",
        "at_ms": 5,
    }
    e2 = ev.StepStarted(pipeline_id="p1", step="plan", at_ms=5, agent_id="a", agent_name="n")
    assert orjson.loads(ev.encode_event(e2))["agent_id"] == "a"


@pytest.mark.parametrize("cls", ev.EVENT_TYPES, ids=lambda c: c.TAG)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip_every_event_type(cls: type, data: st.DataObject) -> None:
    event = data.draw(event_strategy(cls))
    raw = ev.encode_event(event)
    assert orjson.loads(raw)["type"] == cls.TAG
    assert ev.decode_event(raw) == event
    assert orjson.loads(raw) == ev.converter.unstructure(event, ev.Event)  # fast encoder agrees
    # the fast decoder agrees with the cattrs converter
    assert ev.converter.structure(orjson.loads(raw), ev.Event) == event


def test_unknown_tag_is_an_error_with_seq() -> None:
    with pytest.raises(ev.EventDecodeError, match=r"^event seq 7: unknown event type 'nope:x'$"):
        ev.decode_event(b'{"type":"nope:x","id":"1"}', seq=7)
    assert issubclass(ev.EventDecodeError, WalError)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "queue:dropped", "queue_name": "q"}, "missing field(s) item_id"),
        ({"type": "queue:dropped", "queue_name": "q", "item_id": "i", "x": 1}, "unknown field 'x'"),
        ({"type": "queue:dropped", "queue_name": 1, "item_id": "i"}, "field 'queue_name' has"),
        ({"type": "queue:pushed", "queue_name": "q", "item_id": "i", "pushed_at_epoch_ms": "1"}, "'pushed_at_epoch_ms'"),
        ({"type": "queue:pushed", "queue_name": "q", "item_id": "i", "pushed_at_epoch_ms": 1, "data": {"a": 1}}, "'data'"),
        ({"type": "queue:item_retry", "queue_name": "q", "item_id": "i", "manual": 1}, "'manual'"),
        ({"type": "timer:set", "id": "liveness:p"}, "missing field(s) due_at_ms"),
        ({"type": "timer:set", "id": "liveness:p", "due_at_ms": 1.5}, "'due_at_ms'"),
        ({"type": "timer:set", "id": "liveness:p", "due_at_ms": True}, "'due_at_ms'"),
        ({"type": "timer:cancelled", "id": "t", "due_at_ms": 1}, "unknown field 'due_at_ms'"),
        ({"type": "queue:failed", "queue_name": "q", "item_id": "i", "at_ms": "5"}, "'at_ms'"),
        ({"queue_name": "q"}, "unknown event type None"),
        ([1, 2], "not a JSON object"),
    ],
)  # fmt: skip
def test_malformed_events_are_errors(raw: Any, message: str) -> None:
    with pytest.raises(ev.EventDecodeError) as info:
        ev.event_from_dict(raw, seq=3)
    assert str(info.value).startswith("event seq 3: ")
    assert message in str(info.value)


def test_invalid_json_is_an_error() -> None:
    with pytest.raises(ev.EventDecodeError, match="invalid JSON"):
        ev.decode_event(b'{"type": ', seq=1)


def test_at_ms_is_optional_for_old_wals_and_omitted_when_unset() -> None:
    """``queue:failed`` and ``pipeline:action_attempted`` lines written before ``at_ms`` still decode."""
    old_failed = {"type": "queue:failed", "queue_name": "q", "item_id": "i", "error": "x"}
    assert ev.event_from_dict(dict(old_failed)) == ev.QueueFailed(
        queue_name="q", item_id="i", error="x", at_ms=0
    )
    old_attempt = {"type": "pipeline:action_attempted", "id": "p", "key": "idle:0"}
    assert ev.event_from_dict(dict(old_attempt)) == ev.PipelineActionAttempted(id="p", key="idle:0")
    assert orjson.loads(ev.encode_event(ev.PipelineActionAttempted(id="p", key="idle:0"))) == (
        old_attempt
    )
    new = ev.QueueFailed(queue_name="q", item_id="i", at_ms=1_700_000_000_000)
    assert orjson.loads(ev.encode_event(new))["at_ms"] == 1_700_000_000_000


def test_timer_events_wire_shape() -> None:
    set_ = ev.TimerSet(id="queue-retry:ns/q:i1", due_at_ms=1_700_000_060_000)
    assert orjson.loads(ev.encode_event(set_)) == {
        "type": "timer:set",
        "id": "queue-retry:ns/q:i1",
        "due_at_ms": 1_700_000_060_000,
    }
    assert ev.decode_event(b'{"type":"timer:cancelled","id":"liveness:p"}') == ev.TimerCancelled(
        id="liveness:p"
    )
