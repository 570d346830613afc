"""Timer ids (reference §6.6): builders, the strict canonical parser, and the table helpers. Pure."""

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oj_trio import timers
from oj_trio.timers import (
    CooldownTimer,
    CronTimer,
    ExitDeferredTimer,
    LivenessTimer,
    QueueRetryTimer,
    TimerIdError,
)


def test_builders_follow_the_reference_grammar() -> None:
    assert timers.liveness_id("p1") == "liveness:p1"
    assert timers.exit_deferred_id("p1") == "exit-deferred:p1"
    assert timers.cooldown_id("p1", "idle", 0) == "cooldown:p1:idle:0"
    assert timers.queue_retry_id("ns", "q", "i1") == "queue-retry:ns/q:i1"
    assert timers.queue_retry_id("", "q", "i1") == "queue-retry:q:i1"
    assert timers.cron_id("ns", "nightly") == "cron:ns/nightly"
    assert timers.cron_id("", "nightly") == "cron:nightly"
    assert CooldownTimer("p1", "exit", 2).attempts_key == "exit:2"


@pytest.mark.parametrize(
    ("timer_id", "key"),
    [
        ("liveness:9f1c-uuid", LivenessTimer("9f1c-uuid")),
        ("exit-deferred:p", ExitDeferredTimer("p")),
        ("cooldown:p:idle:0", CooldownTimer("p", "idle", 0)),
        ("cooldown:p:on_prompt:12", CooldownTimer("p", "on_prompt", 12)),
        ("queue-retry:ns/q:i1", QueueRetryTimer("ns", "q", "i1")),
        ("queue-retry:q:i1", QueueRetryTimer("", "q", "i1")),
        ("queue-retry:a:b/q:i1", QueueRetryTimer("a:b", "q", "i1")),  # a namespace may hold ':'
        ("queue-retry:org/proj/q:i1", QueueRetryTimer("org/proj", "q", "i1")),  # ... and '/'
        ("cron:ns/nightly", CronTimer("ns", "nightly")),
        ("cron:nightly", CronTimer("", "nightly")),
    ],
)
def test_parse(timer_id: str, key: timers.TimerKey) -> None:
    assert timers.parse_timer_id(timer_id) == key
    assert key.id == timer_id
    assert timers.kind_of(timer_id) == key.KIND


@pytest.mark.parametrize(
    "timer_id",
    [
        "", "liveness", "liveness:", "liveness:a:b", "nope:x", "LIVENESS:p", "exit-deferred:",
        "cooldown:p:idle", "cooldown:p:idle:x", "cooldown:p:idle:01", "cooldown:p:idle:-1",
        "cooldown:p:idle:+1", "cooldown:p:idle:²", "cooldown::idle:0", "cooldown:p::0",
        "cooldown:p:a:b:0", "queue-retry:q", "queue-retry:ns/q:", "queue-retry::i",
        "queue-retry:/q:i", "queue-retry:ns/:i", "cron:", "cron:/x", "cron:ns/", "cron:a:b",
    ],
)  # fmt: skip
def test_malformed_ids_are_rejected(timer_id: str) -> None:
    with pytest.raises(TimerIdError):
        timers.parse_timer_id(timer_id)


@pytest.mark.parametrize(
    "build",
    [
        lambda: timers.liveness_id(""),
        lambda: timers.liveness_id("a:b"),
        lambda: timers.cooldown_id("p", "a:b", 0),
        lambda: timers.cooldown_id("p", "idle", -1),
        lambda: timers.queue_retry_id("ns", "a/b", "i"),
        lambda: timers.queue_retry_id("ns", "q", "i:j"),
        lambda: timers.queue_retry_id("ns", "", "i"),
        lambda: timers.cron_id("ns", "a/b"),
    ],
)
def test_builders_refuse_components_that_would_not_parse_back(build: Callable[[], str]) -> None:
    with pytest.raises(TimerIdError):
        build()


def test_timer_id_error_is_a_value_error() -> None:
    assert issubclass(TimerIdError, ValueError)


# --- round trips -------------------------------------------------------------------------------------

_chars = st.characters(exclude_categories=("Cs",))
no_colon = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=":"), min_size=1)
no_colon_slash = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=":/"), min_size=1
)
namespace = st.text(_chars, max_size=12)
timer_keys = st.one_of(
    st.builds(LivenessTimer, no_colon),
    st.builds(ExitDeferredTimer, no_colon),
    st.builds(CooldownTimer, no_colon, no_colon, st.integers(0, 10**9)),
    st.builds(QueueRetryTimer, namespace, no_colon_slash, no_colon),
    st.builds(CronTimer, namespace, no_colon_slash),
)


@settings(max_examples=400, deadline=None)
@given(timer_keys)
def test_build_then_parse_round_trips(key: timers.TimerKey) -> None:
    assert timers.parse_timer_id(key.id) == key
    assert timers.kind_of(key.id) == key.KIND in timers.KINDS


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([*sorted(timers.KINDS), "other"]),
    st.text(st.sampled_from("ab:/019-"), max_size=14),
)
def test_parser_is_canonical_or_refuses(kind: str, rest: str) -> None:
    """Whatever the parser accepts, it rebuilds to the same id: one timer, one id."""
    timer_id = f"{kind}:{rest}"
    try:
        key = timers.parse_timer_id(timer_id)
    except TimerIdError:
        return
    assert key.id == timer_id


# --- the table ---------------------------------------------------------------------------------------


def test_earliest_and_due_timers() -> None:
    assert timers.earliest({}) is None
    assert timers.due_timers({}, 10**15) == []
    table = {"liveness:b": 200, "cron:x": 100, "liveness:a": 200, "exit-deferred:p": 300}
    assert timers.earliest(table) == ("cron:x", 100)
    del table["cron:x"]
    assert timers.earliest(table) == ("liveness:a", 200)  # ties: the smaller id
    assert timers.due_timers(table, 199) == []
    assert timers.due_timers(table, 200) == [("liveness:a", 200), ("liveness:b", 200)]
    assert timers.due_timers(table, 10**15)[-1] == ("exit-deferred:p", 300)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=4), st.integers(-(2**40), 2**40)), st.integers(-(2**40), 2**40)
)
def test_table_helpers_match_a_plain_sort(table: dict[str, int], now: int) -> None:
    ordered = sorted(table.items(), key=lambda kv: (kv[1], kv[0]))
    assert timers.earliest(table) == (ordered[0] if ordered else None)
    assert timers.due_timers(table, now) == [kv for kv in ordered if kv[1] <= now]
