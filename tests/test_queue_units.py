"""Pure units of queues and workers: retry decisions, item validation, external listings, the
vars an item gives its pipeline, and the worker's runbook checks. No daemon, no trio."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oj_trio.errors import NotFoundError, OjError
from oj_trio.queues import retry
from oj_trio.queues.backend import QueueError
from oj_trio.queues.external import parse_listing
from oj_trio.queues.items import batch_values, item_values
from oj_trio.runbook.model import Pipeline, Queue, Retry, Runbook, RunShell, Step, Worker
from oj_trio.runtime.workers import item_vars, worker_definition

# --- retry.decide --------------------------------------------------------------------------------

T = 1_767_225_600_000


def policy(attempts: int, seconds: int = 300) -> Retry:
    return Retry(attempts=attempts, cooldown=f"{seconds}s", cooldown_seconds=seconds)


@pytest.mark.parametrize(
    ("attempts", "failures", "retried"),
    [
        (0, 1, False),
        (0, 2, False),
        (1, 1, True),
        (1, 2, False),
        (1, 3, False),
        (2, 1, True),
        (2, 2, True),
        (2, 3, False),
        (2, 4, False),
    ],
)
def test_decide_retries_while_failures_do_not_exceed_attempts(
    attempts: int, failures: int, retried: bool
) -> None:
    decision = retry.decide(failures, policy(attempts), T)
    if retried:
        assert decision == retry.RetryAt(T + 300_000)
    else:
        assert decision == retry.Dead()


@pytest.mark.parametrize("failures", [1, 2, 3, 4])
def test_decide_without_a_retry_block_is_always_dead(failures: int) -> None:
    assert retry.decide(failures, None, T) == retry.Dead()


@pytest.mark.parametrize(
    ("seconds", "due"),
    [(0, T), (1, T + 1_000), (300, T + 300_000), (86_400, T + 86_400_000)],
)
def test_decide_counts_the_cooldown_from_the_failure(seconds: int, due: int) -> None:
    assert retry.decide(1, policy(3, seconds), T) == retry.RetryAt(due)


@given(attempts=st.integers(0, 50), cooldown=st.integers(0, 10**6), at=st.integers(0, 2**45))
def test_an_item_runs_at_most_attempts_plus_one_times(
    attempts: int, cooldown: int, at: int
) -> None:
    """SPEC §4.3, by simulation: fail every run until the decision is dead."""
    runs, now = 0, at
    while True:
        runs += 1
        decision = retry.decide(runs, policy(attempts, cooldown), now)
        if isinstance(decision, retry.Dead):
            break
        assert decision.due_at_ms == now + cooldown * 1000
        now = decision.due_at_ms
    assert runs == attempts + 1


# --- item_values / batch_values ------------------------------------------------------------------


QUEUE = Queue(
    name="merges",
    type="persisted",
    vars=("branch", "title", "base"),
    defaults={"base": "main"},
)


def test_item_values_applies_defaults_and_keeps_extra_fields() -> None:
    assert item_values(QUEUE, {"branch": "b", "title": "t", "note": "n"}) == {
        "branch": "b", "title": "t", "note": "n", "base": "main",
    }  # fmt: skip


def test_a_given_value_wins_over_the_default() -> None:
    values = item_values(QUEUE, {"branch": "b", "title": "t", "base": "dev"})
    assert values["base"] == "dev"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (3, "3"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "null"),
        ([1, "a"], '[1, "a"]'),
        ({"k": [1]}, '{"k": [1]}'),
        ("", ""),
        ("ünï ${x} $(rm -rf /)", "ünï ${x} $(rm -rf /)"),
    ],
)
def test_values_that_are_not_strings_are_stored_as_json_text(value: Any, stored: str) -> None:
    values = item_values(QUEUE, {"branch": value, "title": "t"})
    assert values["branch"] == stored
    assert all(isinstance(v, str) for v in values.values())


def test_missing_fields_are_named_in_declaration_order() -> None:
    with pytest.raises(OjError, match=r"^missing required fields: branch, title$"):
        item_values(QUEUE, {})
    with pytest.raises(OjError, match=r"^missing required fields: title$"):
        item_values(QUEUE, {"branch": "b", "other": "x"})


def test_a_default_satisfies_a_declared_var() -> None:
    queue = Queue(name="q", type="persisted", vars=("a",), defaults={"a": "x"})
    assert item_values(queue, {}) == {"a": "x"}


@pytest.mark.parametrize("data", [[], ["branch"], "branch=b", 3, None, True])
def test_data_must_be_an_object(data: Any) -> None:
    with pytest.raises(OjError, match=r"^data must be a JSON object$"):
        item_values(QUEUE, data)


def test_a_batch_is_validated_item_by_item() -> None:
    items = [{"branch": "a", "title": "A"}, {"branch": "b", "title": "B", "base": "dev"}]
    assert batch_values(QUEUE, items, None) == [
        {"branch": "a", "title": "A", "base": "main"},
        {"branch": "b", "title": "B", "base": "dev"},
    ]


def test_an_empty_batch_is_an_error() -> None:
    with pytest.raises(OjError, match=r"^no items to push$"):
        batch_values(QUEUE, [], None)


def test_batch_errors_name_the_line_in_the_file() -> None:
    """``lines``: where each item was in the ``--file`` (blank lines are skipped, so item 2 may
    be line 4)."""
    items = [{"branch": "a", "title": "A"}, {"branch": "b"}]
    with pytest.raises(OjError) as caught:
        batch_values(QUEUE, items, [1, 4])
    assert str(caught.value) == "line 4: missing required fields: title"


def test_without_line_numbers_items_count_from_one() -> None:
    with pytest.raises(OjError, match=r"^line 2: data must be a JSON object$"):
        batch_values(QUEUE, [{"branch": "a", "title": "A"}, [1]], None)
    # line numbers that do not match the items are ignored, not misattributed
    with pytest.raises(OjError, match=r"^line 2: "):
        batch_values(QUEUE, [{"branch": "a", "title": "A"}, [1]], [7])


def test_every_bad_line_is_counted_in_one_line_of_error() -> None:
    items = [{"title": "A"}, {"branch": "b", "title": "B"}, "x", {}, {"branch": "c"}]
    with pytest.raises(OjError) as caught:
        batch_values(QUEUE, items, [2, 3, 5, 6, 9])
    message = str(caught.value)
    assert message == "line 2: missing required fields: branch (and 3 more bad lines)"
    assert "\n" not in message
    with pytest.raises(OjError, match=r"^line 1: .* \(and 1 more bad line\)$"):
        batch_values(QUEUE, [{}, {}], None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
candidate_items = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={"branch": json_values, "title": json_values, "base": json_values},
    ),
    json_values,
)


@given(st.lists(candidate_items, max_size=8))
def test_a_batch_is_pushed_whole_or_not_at_all(items: list[Any]) -> None:
    """``batch_values`` never returns a partial batch: every item, or an error naming a line."""
    good = [isinstance(i, dict) and {"branch", "title"} <= set(i) for i in items]
    try:
        values = batch_values(QUEUE, items, None)
    except OjError as exc:
        assert not items or not all(good)
        message = str(exc)
        assert "\n" not in message
        if items:
            first_bad = good.index(False) + 1
            assert message.startswith(f"line {first_bad}: ")
            more = good.count(False) - 1
            assert message.endswith(f"(and {more} more bad line{'s' if more > 1 else ''})") == (
                more > 0
            )
    else:
        assert all(good) and len(values) == len(items)
        for given_item, value in zip(items, values, strict=True):
            assert value["base"] == (
                given_item["base"] if isinstance(given_item.get("base"), str)
                else json.dumps(given_item["base"]) if "base" in given_item
                else "main"
            )  # fmt: skip


# --- parse_listing -------------------------------------------------------------------------------


def test_a_listing_gives_ids_and_string_data() -> None:
    stdout = json.dumps(
        [
            {"id": "wok-1", "title": "Fix it", "labels": ["bug"], "points": 3},
            {"id": 42, "title": None},
        ]
    )
    assert parse_listing(stdout) == [
        ("wok-1", {"id": "wok-1", "title": "Fix it", "labels": '["bug"]', "points": "3"}),
        ("42", {"id": "42", "title": "null"}),
    ]


def test_an_empty_listing_and_surrounding_whitespace() -> None:
    assert parse_listing("[]") == []
    assert parse_listing('\n  [ {"id": "a"} ]\n') == [("a", {"id": "a"})]


def test_a_listing_keeps_duplicates_for_the_claim_to_skip() -> None:
    assert [i for i, _ in parse_listing('[{"id": "a"}, {"id": "a"}]')] == ["a", "a"]


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "list did not print JSON: Expecting value at char 0"),
        ("not json", "list did not print JSON: Expecting value at char 0"),
        ('[{"id": "a"}', "list did not print JSON: "),
        ('{"id": "a"}', "list must print a JSON array"),
        ('"a"', "list must print a JSON array"),
        ("null", "list must print a JSON array"),
        ('[{"id": "a"}, "b"]', "list item 1 is not a JSON object"),
        ("[[]]", "list item 0 is not a JSON object"),
        ('[{"title": "x"}]', "list item 0 has no string or number 'id'"),
        ('[{"id": true}]', "list item 0 has no string or number 'id'"),
        ('[{"id": false}]', "list item 0 has no string or number 'id'"),
        ('[{"id": null}]', "list item 0 has no string or number 'id'"),
        ('[{"id": 1.5}]', "list item 0 has no string or number 'id'"),
        ('[{"id": ["a"]}]', "list item 0 has no string or number 'id'"),
        ('[{"id": "a"}, {"id": {}}]', "list item 1 has no string or number 'id'"),
    ],
)
def test_a_malformed_listing_is_a_queue_error(stdout: str, message: str) -> None:
    with pytest.raises(QueueError) as caught:
        parse_listing(stdout)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@given(
    st.lists(
        st.dictionaries(st.text(max_size=4), json_values, max_size=3).flatmap(
            lambda d: st.one_of(st.text(max_size=6), st.integers()).map(lambda i: {**d, "id": i})
        ),
        max_size=6,
    )
)
def test_every_well_formed_listing_parses_with_string_values(listed: list[dict[str, Any]]) -> None:
    parsed = parse_listing(json.dumps(listed))
    assert [item_id for item_id, _ in parsed] == [str(e["id"]) for e in listed]
    for (_, data), entry in zip(parsed, listed, strict=True):
        assert set(data) == set(entry)
        assert all(isinstance(v, str) for v in data.values())


# --- item_vars ---------------------------------------------------------------------------------------


def test_item_vars_expose_the_item_as_item_and_as_the_first_declared_var() -> None:
    definition = Pipeline(kind="merge", vars=("mr", "other"))
    assert item_vars(definition, "i-1", {"branch": "b", "title": "t"}) == {
        "item.branch": "b",
        "item.title": "t",
        "item.id": "i-1",
        "mr.branch": "b",
        "mr.title": "t",
        "mr.id": "i-1",
    }


def test_item_vars_without_declared_vars_are_only_item_fields() -> None:
    assert item_vars(Pipeline(kind="p"), "i-1", {"x": "1"}) == {"item.x": "1", "item.id": "i-1"}


def test_an_id_field_of_the_item_wins_over_the_queue_item_id() -> None:
    """External items carry their own ``id`` (the one ``take`` used); it is kept as given."""
    values = item_vars(Pipeline(kind="p", vars=("bug",)), "wok-7", {"id": "wok-7", "t": "x"})
    assert values["item.id"] == values["bug.id"] == "wok-7"
    values = item_vars(Pipeline(kind="p", vars=("bug",)), "uuid", {"id": "own"})
    assert values["item.id"] == values["bug.id"] == "own"


# --- worker_definition -------------------------------------------------------------------------------


def runbook(**overrides: Any) -> Runbook:
    parts: dict[str, Any] = {
        "queues": {"merges": Queue(name="merges", type="persisted", vars=("branch",))},
        "pipelines": {
            "merge": Pipeline(kind="merge", steps=(Step(name="go", run=RunShell("true")),))
        },
        "workers": {"merge": Worker(name="merge", queue="merges", pipeline="merge")},
    }
    parts.update(overrides)
    return Runbook(path="/p/.oj/runbooks/merge.hcl", **parts)


def test_worker_definition_gathers_the_worker_its_queue_and_its_pipeline() -> None:
    book = runbook()
    d = worker_definition(book, "merge")
    assert (d.runbook, d.worker.name, d.queue.name, d.pipeline.kind) == (
        book, "merge", "merges", "merge",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "name", "message"),
    [
        ({}, "fix", "no runbook found containing worker 'fix'"),
        ({"queues": {}}, "merge", "worker 'merge' references unknown queue 'merges'"),
        ({"pipelines": {}}, "merge", "worker 'merge' references unknown pipeline 'merge'"),
    ],
)
def test_worker_definition_errors(overrides: dict[str, Any], name: str, message: str) -> None:
    with pytest.raises(NotFoundError, match=f"^{re.escape(message)}$"):
        worker_definition(runbook(**overrides), name)
