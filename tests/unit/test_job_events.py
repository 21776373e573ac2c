"""job_events: parsing Batch job state-change events, matching them to a wait's query, and ordering one job's states.

Events come at least once, unordered, late or never: whatever subset of a job's history arrives, in any order and
with duplicates, the ledger ends at the newest state delivered (a terminal one is final; a retry's RUNNABLE, with one
more attempt, beats the RUNNING before it). The event's job dict is what the rest of the provider reads (JobView,
JobQuery.matches, the policy) and holds no environment value, parameter or secret.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_batch_jobs.job_events import (
    ForeignEventError,
    JobEvent,
    JobEventLedger,
    MalformedEventError,
    RecentIds,
    event_matches,
    is_newer,
    parse_event,
)
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import Policy, Verdict, judge
from airflow_batch_jobs.query import ALL_STATUSES, JobQuery

ACCOUNT = "123456789012"
QUEUE_ARN = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/etl-queue"
JOBDEF_ARN = f"arn:aws:batch:us-east-1:{ACCOUNT}:job-definition/etl-def:3"
LIFECYCLE = ("PENDING", "RUNNABLE", "STARTING", "RUNNING")


def detail(job_id: str = "job-1", status: str = "RUNNING", attempts: int = 0, **extra: Any) -> dict[str, Any]:
    """A JobDetail as DescribeJobs (and the event's ``detail``) has it; ``attempts`` finished attempts, the last
    with exit code ``extra['exit_code']`` (default 0 when SUCCEEDED, else 1)."""
    exit_code = extra.pop("exit_code", 0 if status == "SUCCEEDED" else 1)
    tries = [
        {
            "container": {"exitCode": 1 if i < attempts - 1 else exit_code, "logStreamName": f"etl/default/{i}"},
            "startedAt": 1_700_000_010_000 + i,
            "stoppedAt": 1_700_000_020_000 + i,
            "statusReason": "Essential container in task exited",
        }
        for i in range(attempts)
    ]
    out: dict[str, Any] = {
        "jobArn": f"arn:aws:batch:us-east-1:{ACCOUNT}:job/{job_id}",
        "jobName": "etl-daily",
        "jobId": job_id,
        "jobQueue": QUEUE_ARN,
        "status": status,
        "attempts": tries,
        "createdAt": 1_700_000_000_000,
        "jobDefinition": JOBDEF_ARN,
        "container": {
            "image": "busybox",
            "command": ["sh", "-c", "exit 0"],
            "environment": [{"name": "STAGE", "value": "prod"}],
        },
        "parameters": {},
        "tags": {},
        "platformCapabilities": ["EC2"],
    }
    if status in ("SUCCEEDED", "FAILED"):
        out["stoppedAt"] = 1_700_000_030_000
        out["container"]["exitCode"] = exit_code
    out.update(extra)
    return out


def envelope(job: dict[str, Any], event_id: str = "e-1", time: str = "2026-11-22T07:00:00Z", **extra: Any) -> str:
    body = {
        "version": "0",
        "id": event_id,
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [job.get("jobArn", "")],
        "detail": job,
    }
    body.update(extra)
    return json.dumps(body)


# -- parsing --------------------------------------------------------------------------------------------------------
def test_parse_reads_the_envelope() -> None:
    event = parse_event(envelope(detail("job-1", "RUNNABLE", attempts=1), event_id="abc"))
    assert event.event_id == "abc"
    assert event.job_id == "job-1"
    assert event.status == "RUNNABLE"
    assert event.attempts == 1
    assert event.time_ms == int(dt.datetime(2026, 11, 22, 7, tzinfo=dt.UTC).timestamp()) * 1000
    assert event.job["jobQueue"] == QUEUE_ARN
    assert parse_event(envelope(detail(), time="yesterday")).time_ms is None
    assert parse_event(envelope(detail()).encode()).job_id == "job-1"  # SQS bodies may come as bytes


def test_event_job_is_a_job_dict_for_the_provider() -> None:
    """JobView reads status, exit codes and attempts from it; JobQuery.matches and the policy judge it as a
    DescribeJobs detail."""
    event = parse_event(envelope(detail("job-9", "FAILED", attempts=2, exit_code=3)))
    view = JobView(event.job)
    assert (view.job_id, view.status, view.is_terminal, view.is_described) == ("job-9", "FAILED", True, True)
    assert view.final_exit_code == 3
    assert [a.exit_code for a in view.attempts] == [1, 3]
    assert view.created_at == 1_700_000_000_000 and view.stopped_at == 1_700_000_030_000
    assert view.job_queue == QUEUE_ARN and view.job_definition == JOBDEF_ARN
    assert view.to_record()["final_exit_code"] == 3
    assert JobQuery.build(job_queue="etl-queue", job_name="etl-*", job_definition="etl-def").matches(event.job)
    decision = judge([view], Policy.build(), now_ms=1_700_000_040_000)
    assert decision.verdict is Verdict.FAILURE
    assert judge([view], Policy.build(success_exit_codes=[3]), now_ms=0).verdict is Verdict.SUCCESS


MARK = "S3CRET-MARK"


def secret_detail(marker: str) -> dict[str, Any]:
    """Every place a DescribeJobs detail carries environment values, parameters or secrets, holding ``marker``."""
    env = [{"name": "DB_PASSWORD", "value": marker}]
    secrets = [{"name": "API_KEY", "valueFrom": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{marker}"}]
    container = {"image": "busybox", "environment": env, "secrets": secrets}
    return detail(
        "job-s",
        "RUNNING",
        container=container,
        parameters={"token": marker},
        ecsProperties={"taskProperties": [{"containers": [{"name": "app", "environment": env, "secrets": secrets}]}]},
        eksProperties={"podProperties": {"containers": [{"name": "app", "env": env}]}},
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
        },
    )


@settings(max_examples=50, deadline=None)  # timings on a loaded box vary
@given(marker=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=30))
def test_secrets_are_redacted(marker: str) -> None:
    marker = f"{MARK}-{marker}"
    event = parse_event(envelope(secret_detail(marker)))
    shown = json.dumps(event.job) + repr(event)
    assert marker not in shown
    assert event.job["container"]["environment"] == [{"name": "DB_PASSWORD", "value": "***"}]  # names stay
    assert event.job["parameters"] == {"token": "***"}
    assert event.job["container"]["secrets"][0]["name"] == "API_KEY"


def test_errors_never_quote_the_body() -> None:
    """A detail with secrets that is wrong elsewhere: the error says what is wrong, not what the body held."""
    bad = secret_detail(MARK)
    bad["createdAt"] = f"when {MARK}"
    with pytest.raises(MalformedEventError) as caught:
        parse_event(envelope(bad))
    assert MARK not in str(caught.value) and "createdAt" in str(caught.value)
    with pytest.raises(MalformedEventError) as caught:
        parse_event(envelope(secret_detail(MARK))[:-5])  # truncated: not JSON
    assert MARK not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json at all", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        (envelope(detail(), event_id=""), "no event id"),
        (envelope(detail(), id=None), "no event id"),
        (envelope(detail(), detail="RUNNING"), "no detail object"),
        (envelope({**detail(), "jobId": ""}), "no jobId"),
        (envelope({k: v for k, v in detail().items() if k != "jobId"}), "no jobId"),
        (envelope(detail(status="DONE")), "no known job status"),
        (envelope(detail(status=["RUNNING"])), "no known job status"),  # type: ignore[arg-type]
        (envelope(detail(createdAt="1700000000000")), "createdAt"),
        (envelope(detail(stoppedAt=True)), "stoppedAt"),
        (envelope({**detail(), "attempts": {"0": {}}}), "attempts"),
        (envelope({**detail(), "attempts": [1]}), "attempts"),
        (envelope(detail(container=[])), "container"),
        (envelope(detail(jobQueue=7)), "jobQueue"),
    ],
)
def test_malformed(body: str | bytes, problem: str) -> None:
    with pytest.raises(MalformedEventError) as caught:
        parse_event(body)
    assert isinstance(caught.value, ValueError)
    assert problem in caught.value.kind and caught.value.kind.startswith("malformed")


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
        envelope(detail(), **{"detail-type": "Batch Job Queue Blocked"}),
        envelope(detail(), **{"detail-type": "Batch Service Job State Change"}),
        envelope(detail(), source="custom.batch"),
        json.dumps({"Type": "Notification", "Message": "{}"}),
        json.dumps({"Event": "s3:TestEvent"}),
        json.dumps([1, 2]),
        json.dumps("aws.batch"),
        "null",
    ],
)
def test_foreign(body: str) -> None:
    with pytest.raises(ForeignEventError) as caught:
        parse_event(body)
    assert isinstance(caught.value, ValueError) and caught.value.kind.startswith("foreign")


def test_foreign_kind_names_source_and_type_briefly() -> None:
    with pytest.raises(ForeignEventError) as caught:
        parse_event(json.dumps({"source": "aws.s3", "detail-type": "x" * 1000}))
    assert "aws.s3" in caught.value.kind and len(caught.value.kind) < 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)  # timings on a loaded box vary
@given(
    value=json_values,
    detail_patch=st.dictionaries(
        st.sampled_from(["jobId", "status", "attempts", "createdAt", "container", "jobQueue", "arrayProperties"]),
        json_values,
        max_size=3,
    ),
)
def test_any_body_parses_or_raises_one_of_the_two_errors(value: Any, detail_patch: dict[str, Any]) -> None:
    """Whatever arrives (any JSON; a Batch envelope with any field replaced), parse_event returns an event whose job
    JobView and JobQuery.matches read without error, or raises one of its two errors: nothing a subscriber trips on."""
    for body in (json.dumps(value), envelope({**detail(), **detail_patch})):
        try:
            event = parse_event(body)
        except (MalformedEventError, ForeignEventError):
            continue
        view = JobView(event.job)
        assert view.status in ALL_STATUSES
        view.to_record()
        JobQuery.build(job_queue="etl-queue", created_after=1_600_000_000_000, share_identifier="x").matches(event.job)


# -- matching -------------------------------------------------------------------------------------------------------
def ev(job_id: str = "job-1", **extra: Any) -> JobEvent:
    return parse_event(envelope(detail(job_id, **extra), event_id=f"id-{job_id}"))


@pytest.mark.parametrize(
    ("query", "matching"),
    [
        ({"job_queue": "etl-queue"}, True),
        ({"job_queue": QUEUE_ARN}, True),
        ({"job_queue": "other-queue"}, False),
        ({"job_queue": QUEUE_ARN.replace("etl-queue", "etl-queue2")}, False),
        ({"job_queue": QUEUE_ARN.replace(ACCOUNT, "210987654321")}, False),
        ({"job_queue": "etl-queue", "job_name": "etl-*"}, True),
        ({"job_queue": "etl-queue", "job_name": "ETL-DAILY"}, True),  # JOB_NAME is case-insensitive
        ({"job_queue": "etl-queue", "job_name": "etl"}, False),
        ({"job_queue": "etl-queue", "job_definition": "etl-def"}, True),
        ({"job_queue": "etl-queue", "job_definition": "etl-*"}, True),
        ({"job_queue": "etl-queue", "job_definition": JOBDEF_ARN}, True),
        ({"job_queue": "etl-queue", "job_definition": JOBDEF_ARN.replace(":3", ":2")}, False),
        ({"job_queue": "etl-queue", "job_definition": "other"}, False),
        ({"job_queue": "etl-queue", "created_after": 1_700_000_000_000}, True),
        ({"job_queue": "etl-queue", "created_after": 1_700_000_000_001}, False),
        ({"job_queue": "etl-queue", "created_before": 1_700_000_000_001}, True),
        ({"job_queue": "etl-queue", "created_before": 1_700_000_000_000}, False),
        ({"job_queue": "etl-queue", "share_identifier": "blue"}, False),
        ({"job_ids": ["job-1", "job-2"]}, True),
        ({"job_ids": ["job-2"]}, False),
        ({"job_ids": ["job-1"], "job_name": "other"}, False),
        ({"array_job_id": "job-1"}, True),  # the parent itself (the selector's listing reads it first)
        ({"array_job_id": "job-2"}, False),
        ({"multi_node_job_id": "job-1"}, True),
        ({"multi_node_job_id": "job-2"}, False),
    ],
)
def test_matching_a_plain_job(query: dict[str, Any], matching: bool) -> None:
    for children in (False, True):
        assert event_matches(JobQuery.build(**query), ev("job-1"), include_array_children=children) is matching


def test_matching_share_identifier() -> None:
    query = JobQuery.build(job_queue="etl-queue", share_identifier="blue")
    assert event_matches(query, ev(shareIdentifier="blue"), include_array_children=False)
    assert not event_matches(query, ev(shareIdentifier="green"), include_array_children=False)


def test_a_detail_without_queue_matches_no_queue_query() -> None:
    event = parse_event(envelope({k: v for k, v in detail().items() if k != "jobQueue"}))
    assert not event_matches(JobQuery.build(job_queue="etl-queue"), event, include_array_children=False)
    assert event_matches(JobQuery.build(job_ids=["job-1"]), event, include_array_children=False)


def test_a_queue_given_by_name_matches_a_detail_naming_it() -> None:
    """Not what AWS sends (an ARN), but what a local backend may: names compare to names."""
    event = ev(jobQueue="etl-queue")
    assert event_matches(JobQuery.build(job_queue="etl-queue"), event, include_array_children=False)
    assert event_matches(JobQuery.build(job_queue=QUEUE_ARN), event, include_array_children=False)
    assert not event_matches(JobQuery.build(job_queue="etl"), event, include_array_children=False)


def child(index: int = 4, parent: str = "arr", **extra: Any) -> JobEvent:
    """An array child: created when its parent started (after it), same name, definition and queue."""
    return ev(f"{parent}:{index}", arrayProperties={"index": index}, createdAt=1_700_000_005_000, **extra)


def node(n: int = 1, parent: str = "mnp") -> JobEvent:
    return ev(f"{parent}#{n}", nodeDetails={"nodeIndex": n, "isMainNode": n == 0})


def test_array_children() -> None:
    assert event_matches(JobQuery.build(array_job_id="arr"), child(), include_array_children=False)
    assert not event_matches(JobQuery.build(array_job_id="arr2"), child(), include_array_children=False)
    assert not event_matches(JobQuery.build(array_job_id="ar"), child(), include_array_children=False)
    # no filter applies to children listed by array_job_id, as in the service
    assert event_matches(JobQuery.build(array_job_id="arr", job_name="zzz"), child(), include_array_children=False)
    for query in (JobQuery.build(job_queue="etl-queue"), JobQuery.build(job_ids=["arr"])):
        assert not event_matches(query, child(), include_array_children=False)  # the listing shows the parent only
        assert event_matches(query, child(), include_array_children=True)
    assert not event_matches(JobQuery.build(job_ids=["arr2"]), child(), include_array_children=True)
    assert not event_matches(JobQuery.build(job_queue="other"), child(), include_array_children=True)


def test_array_children_are_held_to_their_parents_filters() -> None:
    """A child repeats its parent's name, definition and share id; its createdAt is later than the parent's, so the
    window's upper bound (on the parent's createdAt) is not applied to it, the lower one is."""
    for query, matching in (
        (JobQuery.build(job_queue="etl-queue", job_name="etl-*"), True),
        (JobQuery.build(job_queue="etl-queue", job_name="other"), False),
        (JobQuery.build(job_queue="etl-queue", job_definition="other"), False),
        (JobQuery.build(job_queue="etl-queue", created_before=1_700_000_001_000), True),  # parent may be inside
        (JobQuery.build(job_queue="etl-queue", created_after=1_700_000_010_000), False),  # parent is before too
        (JobQuery.build(job_ids=["arr"], job_name="other"), False),
    ):
        assert event_matches(query, child(), include_array_children=True) is matching, query


def test_multi_node_nodes() -> None:
    assert event_matches(JobQuery.build(multi_node_job_id="mnp"), node(), include_array_children=False)
    assert event_matches(JobQuery.build(multi_node_job_id="mnp"), node(0), include_array_children=True)
    assert not event_matches(JobQuery.build(multi_node_job_id="mnp2"), node(), include_array_children=False)
    assert not event_matches(JobQuery.build(array_job_id="mnp"), node(), include_array_children=False)
    for children in (False, True):  # a queue or id listing shows the multi-node parent, not its nodes
        assert not event_matches(JobQuery.build(job_queue="etl-queue"), node(), include_array_children=children)
        assert not event_matches(JobQuery.build(job_ids=["mnp"]), node(), include_array_children=children)
    assert not event_matches(JobQuery.build(multi_node_job_id="mnp"), child(parent="mnp"), include_array_children=True)


# -- ordering -------------------------------------------------------------------------------------------------------
def state(status: str, attempts: int, event_id: str = "", job_id: str = "job-1") -> JobEvent:
    return JobEvent(
        event_id=event_id or f"{job_id}/{status}/{attempts}",
        job_id=job_id,
        status=status,
        attempts=attempts,
        time_ms=None,
        job={"jobId": job_id, "status": status, "attempts": [{}] * attempts},
    )


def test_a_retrys_runnable_beats_the_running_before_it() -> None:
    assert is_newer(state("RUNNABLE", 1), state("RUNNING", 0))
    assert not is_newer(state("RUNNING", 0), state("RUNNABLE", 1))
    assert is_newer(state("RUNNING", 1), state("RUNNABLE", 1))
    assert not is_newer(state("RUNNING", 1), state("RUNNING", 1))  # the same state is not newer


def test_terminal_is_final() -> None:
    for final in ("SUCCEEDED", "FAILED"):
        for status in ALL_STATUSES:
            for attempts in range(4):
                assert not is_newer(state(status, attempts), state(final, 1))
                if status not in ("SUCCEEDED", "FAILED"):
                    assert is_newer(state(final, 0), state(status, attempts))


@st.composite
def job_history(draw: st.DrawFn, job_id: str) -> list[JobEvent]:
    """A job's events in the order the service sent them (none at submission): attempts that fail and are retried
    go back to RUNNABLE with one more attempt; the job may still be active at the end."""
    retries = draw(st.integers(0, 3))
    events: list[JobEvent] = []
    for attempt in range(retries + 1):
        for status in LIFECYCLE if attempt == 0 else LIFECYCLE[1:]:
            events.append(state(status, attempt, event_id=f"{job_id}/{len(events)}", job_id=job_id))
    events.append(state(draw(st.sampled_from(("SUCCEEDED", "FAILED"))), retries + 1, f"{job_id}/end", job_id))
    return events[: draw(st.integers(1, len(events)))]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[list[JobEvent]], list[JobEvent]]:
    """Histories of a few jobs, and what arrives: a subset of each, interleaved in any order, some twice (the same
    event id redelivered, or the same state under another id)."""
    histories = [draw(job_history(f"job-{n}")) for n in range(draw(st.integers(1, 3)))]
    sent = [e for history in histories for e in history]
    arrived = draw(st.lists(st.sampled_from(sent), min_size=1, max_size=3 * len(sent)))
    copies = draw(st.lists(st.sampled_from(sent), max_size=len(sent)))
    arrived += [JobEvent(**{**e.__dict__, "event_id": e.event_id + "/again"}) for e in copies]
    return histories, draw(st.permutations(arrived))


@settings(max_examples=300, deadline=None)  # timings on a loaded box vary
@given(deliveries())
def test_ledger_ends_at_the_newest_state_delivered(case: tuple[list[list[JobEvent]], list[JobEvent]]) -> None:
    histories, arrived = case
    ledger = JobEventLedger()
    changes = sum(ledger.add(e) for e in arrived)
    for history in histories:
        order = {e.event_id: i for i, e in enumerate(history)}
        got = [e for e in arrived if e.job_id == history[0].job_id]
        if not got:
            assert ledger.get(history[0].job_id) is None
            continue
        newest = history[max(order[e.event_id.removesuffix("/again")] for e in got)]
        known = ledger.get(newest.job_id)
        assert known is not None and (known.status, known.attempts) == (newest.status, newest.attempts)
        assert ledger.jobs()[newest.job_id] is known.job
    # each change moved a job to a strictly newer state: never more changes than states delivered
    assert changes <= len({(e.job_id, e.status, e.attempts) for e in arrived})
    assert len(ledger) == len({e.job_id for e in arrived})


@settings(max_examples=200, deadline=None)  # timings on a loaded box vary
@given(
    a=st.tuples(st.sampled_from(ALL_STATUSES), st.integers(0, 3)),
    b=st.tuples(st.sampled_from(ALL_STATUSES), st.integers(0, 3)),
    c=st.tuples(st.sampled_from(ALL_STATUSES), st.integers(0, 3)),
)
def test_is_newer_is_a_strict_order(a: tuple[str, int], b: tuple[str, int], c: tuple[str, int]) -> None:
    x, y, z = state(*a), state(*b), state(*c)
    assert not is_newer(x, x)
    assert not (is_newer(x, y) and is_newer(y, x))
    if is_newer(x, y) and is_newer(y, z) and y.status not in ("SUCCEEDED", "FAILED"):
        assert is_newer(x, z)


def test_ledger_drops_redelivered_ids_and_older_states() -> None:
    ledger = JobEventLedger()
    assert ledger.add(state("RUNNING", 0, "a"))
    assert not ledger.add(state("RUNNING", 0, "a"))
    assert not ledger.add(state("RUNNABLE", 0, "b"))  # older
    assert ledger.add(state("FAILED", 1, "c"))
    assert not ledger.add(state("RUNNABLE", 1, "d"))  # after the end
    assert ledger.jobs() == {"job-1": state("FAILED", 1).job}


def test_recent_ids_are_bounded() -> None:
    ids = RecentIds(3)
    assert [ids.add(x) for x in "abca"] == [True, True, True, False]
    assert ids.add("d") and len(ids) == 3
    assert "a" not in ids and ids.add("a")  # the oldest was forgotten
    assert not ids.add("d")
    with pytest.raises(ValueError):
        RecentIds(0)


@pytest.mark.parametrize(
    "odd",
    [
        {"attempts": [{"container": 7}]},  # found by review: passed the shape check, then failed every wait it matched
        {"attempts": [{"container": {"exitCode": 1}, "taskProperties": 3}]},
        {"ecsProperties": {"taskProperties": 3}},
        {"ecsProperties": {"taskProperties": [{"containers": [7]}]}},
    ],
)
def test_a_detail_describe_jobs_would_not_return_is_malformed_once_at_parsing(odd: dict[str, Any]) -> None:
    with pytest.raises(MalformedEventError, match="DescribeJobs would not return"):
        parse_event(envelope({**detail(status="SUCCEEDED", attempts=1), **odd}))


def test_a_body_nested_deeper_than_python_recurses_is_malformed() -> None:
    """Found by review: RecursionError escaped the consumer, which then never deleted the message."""
    deep_json = '{"a":' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(MalformedEventError, match="nested too deeply"):
        parse_event(deep_json)
    deep_parameters = '{"x":' * 2_000 + "{}" + "}" * 2_000  # parsed or not, redacting it must not escape either
    body = envelope({**detail(status="RUNNING"), "parameters": "DEEP"}).replace('"DEEP"', deep_parameters)
    with pytest.raises(MalformedEventError, match="nested too deeply"):
        parse_event(body)
