from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_batch_jobs.query import (
    CREATED_AT_FILTER_UNIT_MS,
    MAX_PAGE_SIZE_WITH_FILTER,
    InvalidQueryError,
    JobQuery,
    created_at_filter_value,
    definition_matches,
    name_matches,
    to_epoch_ms,
)

ARN = "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:3"


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("test1", "Test1", True),  # case-insensitive
        ("test1", "test10", False),
        ("test1*", "Test10", True),  # trailing * = prefix
        ("test1*", "test1", True),
        ("test1*", "tes", False),
        ("TEST1", "test1", True),
    ],
)
def test_job_name_semantics(pattern: str, name: str, expected: bool) -> None:
    assert name_matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("pattern", "definition", "expected"),
    [
        ("jd1", "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:1", True),  # name = every revision
        ("jd1", ARN, True),
        ("jd1", "arn:aws:batch:us-east-1:123456789012:job-definition/jd1A:1", False),
        ("JD1", ARN, False),  # case-sensitive
        ("jd*", "arn:aws:batch:us-east-1:123456789012:job-definition/jd1A:1", True),
        (ARN, ARN, True),  # an ARN matches only its revision
        (ARN, "arn:aws:batch:us-east-1:123456789012:job-definition/jd1:4", False),
        ("sleep60", "sleep60", True),  # a bare definition name as some backends return it
    ],
)
def test_job_definition_semantics(pattern: str, definition: str, expected: bool) -> None:
    assert definition_matches(pattern, definition) is expected


def test_combined_name_definition_and_window() -> None:
    start = to_epoch_ms("2026-11-21T00:00:00Z", "x")
    query = JobQuery.build(
        job_queue="q",
        job_name="etl-*",
        job_definition="jd1",
        created_after=start,
        created_before=start + 3600_000,
    )
    job = {"jobId": "1", "jobName": "ETL-a", "jobDefinition": ARN, "createdAt": start}
    assert query.matches(job)
    assert not query.matches({**job, "jobName": "other"})
    assert not query.matches({**job, "jobDefinition": ARN.replace("jd1:", "jd2:")})
    assert not query.matches({**job, "createdAt": start - 1})
    assert not query.matches({**job, "createdAt": start + 3600_000})  # upper bound is exclusive
    assert query.matches({**job, "createdAt": start + 3600_000 - 1})


def test_share_identifier_is_checked_locally() -> None:
    query = JobQuery.build(job_queue="q", share_identifier="teamA")
    assert query.matches({"jobId": "1", "jobName": "a", "shareIdentifier": "teamA"})
    assert not query.matches({"jobId": "1", "jobName": "a", "shareIdentifier": "teamB"})
    assert query.server_filter()["name"] == "AFTER_CREATED_AT"


def test_plan_pushes_exactly_one_filter_in_priority_order() -> None:
    both = JobQuery.build(job_queue="q", job_name="a*", job_definition="jd", created_before=2 * 10**12)
    (call,) = both.list_calls()
    assert call.params == {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["a*"]}]}
    assert call.page_size == MAX_PAGE_SIZE_WITH_FILTER
    assert "jobStatus" not in call.params
    definition = JobQuery.build(job_queue="q", job_definition="jd", created_after=10**12)
    assert definition.server_filter() == {"name": "JOB_DEFINITION", "values": ["jd"]}


def test_plan_never_relies_on_running_only_default() -> None:
    # No user filter: a created-at filter true in any unit brings back every status.
    (call,) = JobQuery.build(job_queue="q").list_calls()
    assert call.params["filters"] == [{"name": "AFTER_CREATED_AT", "values": ["0"]}]


def test_lower_bound_is_not_pushed_but_upper_bound_is() -> None:
    after_only = JobQuery.build(job_queue="q", created_after=1_700_000_000_000)
    assert after_only.server_filter() == {"name": "AFTER_CREATED_AT", "values": ["0"]}
    window = JobQuery.build(job_queue="q", created_after=1_700_000_000_000, created_before=1_700_000_100_000)
    assert window.server_filter() == {"name": "BEFORE_CREATED_AT", "values": ["1700000100000"]}


def test_created_at_unit_is_milliseconds() -> None:
    # Pinned: the current service model documents epoch milliseconds for the created-at filters.
    assert CREATED_AT_FILTER_UNIT_MS == 1
    assert created_at_filter_value(1_700_000_000_123) == "1700000000123"


def test_children_are_listed_status_by_status_in_lifecycle_order() -> None:
    calls = JobQuery.build(array_job_id="p", job_name="ignored").list_calls()
    assert [c.params["jobStatus"] for c in calls] == [
        "SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED",
    ]  # fmt: skip
    assert all(c.params["arrayJobId"] == "p" and "filters" not in c.params for c in calls)
    assert all(c.page_size == 1000 for c in calls)
    mnp = JobQuery.build(multi_node_job_id="m").list_calls()
    assert mnp[0].params["multiNodeJobId"] == "m"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC), 1795226400000),
        (dt.datetime(2026, 11, 21, 2, 0), 1795226400000),  # naive = UTC
        (pendulum.datetime(2026, 11, 21, 3, 0, tz="Europe/Paris"), 1795226400000),
        ("2026-11-21T02:00:00Z", 1795226400000),
        ("2026-11-21T03:00:00+01:00", 1795226400000),
        (1795226400000, 1795226400000),
        ("1795226400000", 1795226400000),
    ],
)
def test_dates_are_normalized_to_epoch_ms(value: object, expected: int) -> None:
    assert to_epoch_ms(value, "created_after") == expected


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "exactly one of job_queue"),
        ({"job_queue": "q", "array_job_id": "a"}, "got job_queue, array_job_id"),
        ({"job_queue": "q", "job_name": "a*b"}, "job_name='a*b'"),
        ({"job_queue": "q", "job_name": ""}, "job_name=''"),
        ({"job_queue": "q", "job_name": "*"}, "job_name='*'"),
        ({"job_queue": "q", "job_definition": ARN + "*"}, "'*' is not allowed with an ARN"),
        ({"job_queue": "q", "job_definition": "arn:aws:batch:x"}, "job_definition="),
        ({"job_queue": "q", "job_definition": "j*d"}, "job_definition='j*d'"),
        ({"job_queue": "q", "created_after": "yesterday-ish"}, "created_after='yesterday-ish' is not a date"),
        ({"job_queue": "q", "created_before": 1_700_000_000}, "looks like epoch seconds"),
        (
            {
                "job_queue": "q",
                "created_after": "2026-11-22T00:00:00Z",
                "created_before": "2026-11-21T00:00:00Z",
            },
            "created_after (2026-11-22",
        ),
        ({"job_queue": "  "}, "job_queue='  '"),
        ({"job_ids": ["a", ""]}, "job_ids contains ''"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidQueryError) as err:
        JobQuery.build(**kwargs)  # type: ignore[arg-type]
    assert needle in str(err.value)


def test_round_trip_and_dedup_of_ids() -> None:
    query = JobQuery.build(job_ids=["b", "a", "b"], created_after="2026-11-21T00:00:00Z")
    assert query.job_ids == ("b", "a")
    assert JobQuery.from_dict(query.to_dict()) == query


BASE_MS = 1795226400000  # 2026-11-21T02:00:00Z


@pytest.mark.parametrize(
    "half_ms_later",
    [
        dt.datetime(2026, 11, 21, 2, 0, 0, 500, tzinfo=dt.UTC),
        "2026-11-21 02:00:00.000500+00:00",  # how {{ dag_run.run_after }} renders
        pendulum.datetime(2026, 11, 21, 3, 0, 0, 500, tz="Europe/Paris"),
    ],
)
def test_created_at_window_stays_half_open_below_the_millisecond(half_ms_later: object) -> None:
    """Bounds carry microseconds; jobs are created on whole milliseconds. A job 0.5 ms before created_before is in
    the window, one 0.5 ms before created_after is not (truncating the bound to the millisecond did the reverse)."""
    job = {"jobId": "j", "jobName": "n", "createdAt": BASE_MS}
    assert JobQuery.build(job_queue="q", created_before=half_ms_later).matches(job)
    assert not JobQuery.build(job_queue="q", created_after=half_ms_later).matches(job)
    assert JobQuery.build(job_queue="q", created_after=half_ms_later).matches({**job, "createdAt": BASE_MS + 1})
    assert not JobQuery.build(job_queue="q", created_before=half_ms_later).matches({**job, "createdAt": BASE_MS + 1})


@pytest.mark.parametrize("millis", [2, 3, 9, 123, 999])
def test_dates_after_2038_keep_every_millisecond(millis: int) -> None:
    """Float seconds lose a millisecond for some instants after 2038 (2039-01-01T00:00:00.002 gave ...001)."""
    moment = dt.datetime(2039, 1, 1, 0, 0, 0, millis * 1000, tzinfo=dt.UTC)
    expected = 2177452800000 + millis
    assert to_epoch_ms(moment, "created_after") == expected
    assert to_epoch_ms(moment.isoformat(), "created_after") == expected
    assert to_epoch_ms(float(expected), "created_after") == expected


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"job_name": "etl-*\n"}, "job_name='etl-*\\n'"),
        ({"job_name": "etl\n"}, "job_name='etl\\n'"),
        ({"job_definition": "jd1\n"}, "job_definition='jd1\\n'"),
        ({"job_definition": ARN + "\n"}, "an ARN must be"),
    ],
)
def test_a_trailing_newline_is_rejected_not_matched_against_nothing(kwargs: dict[str, str], needle: str) -> None:
    """``$`` accepts a trailing newline; such a name passed validation and then matched no job."""
    with pytest.raises(InvalidQueryError) as err:
        JobQuery.build(job_queue="q", **kwargs)  # type: ignore[arg-type]
    assert needle in str(err.value)
