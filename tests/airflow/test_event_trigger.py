"""BatchJobsEventTrigger, the AssetWatcher trigger: one event per matching job that finishes, from job state-change
events read off an SQS queue (moto's server on loopback, crafted EventBridge envelopes; the emulator's own events),
deduplicated; a bounded payload without secrets; kwargs that rebuild it and hash the same from parse to parse."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import airflow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.triggers import job_events as module
from airflow_batch_jobs.triggers.job_events import (
    DEDUP_MEMORY,
    NEEDS_AIRFLOW_3,
    PAYLOAD_MAX_BYTES,
    BatchJobsEventTrigger,
    InvalidTriggerError,
)

from .conftest import eventbridge_body

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

AIRFLOW_2 = airflow.__version__.startswith("2.")
ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"
SECRET = "hunter2-env-value"
PARAMETER_SECRET = "s3cr3t-parameter-value"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-token-AbCdEf"
T0 = 1_795_000_000_000  # epoch ms

airflow_3 = pytest.mark.skipif(AIRFLOW_2, reason="AssetWatcher is Airflow >= 3.0: on 2.x test_airflow_2_* runs")


def envelope(
    job_id: str,
    status: str,
    *,
    name: str = "etl-a",
    queue: str = "nightly",
    event_id: str | None = None,
    exit_code: int | None = None,
    reason: str | None = None,
    container_reason: str | None = None,
    attempts: int | None = None,
) -> str:
    """An EventBridge "Batch Job State Change" envelope as the SQS message body, its detail a DescribeJobs JobDetail
    with a secret in each place one can be (environment, parameters, secrets)."""
    terminal = status in ("SUCCEEDED", "FAILED")
    code = exit_code if exit_code is not None else (0 if status == "SUCCEEDED" else 1 if status == "FAILED" else None)
    tries = attempts if attempts is not None else (1 if terminal else 0)
    container = {
        "image": "busybox",
        "command": ["run"],
        "environment": [{"name": "DB_PASSWORD", "value": SECRET}],
        "secrets": [{"name": "TOKEN", "valueFrom": SECRET_ARN}],
        **({"exitCode": code} if terminal else {}),
        **({"reason": container_reason} if container_reason else {}),
        "logStreamName": f"etl/default/{job_id}",
    }
    detail = {
        "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
        "jobName": name,
        "jobId": job_id,
        "jobQueue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{queue}",
        "status": status,
        **({"statusReason": reason} if reason else {}),
        "attempts": [
            {
                "container": {
                    "exitCode": code,
                    "logStreamName": f"etl/default/{job_id}",
                    **({"reason": container_reason} if container_reason else {}),
                },
                "startedAt": T0 + 60_000,
                "stoppedAt": T0 + 120_000,
                "statusReason": "Essential container in task exited",
            }
            for _ in range(tries)
        ],
        "createdAt": T0,
        **({"startedAt": T0 + 60_000} if terminal or status == "RUNNING" else {}),
        **({"stoppedAt": T0 + 120_000} if terminal else {}),
        "dependsOn": [],
        "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/etl:3",
        "parameters": {"password": PARAMETER_SECRET},
        "container": container,
        "tags": {},
        "propagateTags": False,
        "platformCapabilities": ["EC2"],
    }
    return eventbridge_body(detail, account=ACCOUNT, region=REGION, event_id=event_id)


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """Everything logged so far: the standard library's records (botocore) and what Airflow 3's structlog printed
    (the trigger's own log)."""
    out, err = capsys.readouterr()
    return "\n".join([*(r.getMessage() for r in caplog.records), out, err])


def trigger(**kwargs: Any) -> BatchJobsEventTrigger:
    arguments = {"job_queue": "nightly", "job_name": "etl-*", "events_queue_url": "http://127.0.0.1:1/q", **kwargs}
    return BatchJobsEventTrigger(**arguments)


async def fired_until(t: BatchJobsEventTrigger, last_job_id: str, guard_s: float = 120) -> list[dict[str, Any]]:
    """Run the trigger until it fires for ``last_job_id``; every payload it yielded, in order. ``guard_s`` only ends a
    test that would hang (real time: the consumer's long poll)."""
    payloads: list[dict[str, Any]] = []
    events = t.run()
    try:
        async with asyncio.timeout(guard_s):
            async for event in events:
                payloads.append(event.payload)
                if event.payload["job_id"] == last_job_id:
                    return payloads
    finally:
        await events.aclose()
    raise AssertionError("run() ended")


# -- the decisions, with the consumer replaced: every event handed over at once ----------------------------------------


def fake_consumer(bodies: list[str], subscriptions: list[tuple[Any, ...]] | None = None) -> Any:
    """A stand-in for EventConsumer.subscribe that hands ``bodies`` (parsed) to the subscriber as it joins."""
    from airflow_batch_jobs.job_events import parse_event

    @asynccontextmanager
    async def subscribe(
        queue_url: str, connection_key: str, hook_factory: Callable[[], Any], deliver: Callable[[Any], None]
    ) -> AsyncIterator[None]:
        if subscriptions is not None:
            subscriptions.append((queue_url, connection_key))
        for body in bodies:
            deliver(parse_event(body))
        yield

    return subscribe


def run_with(bodies: list[str], t: BatchJobsEventTrigger, last_job_id: str) -> list[dict[str, Any]]:
    from airflow_batch_jobs.triggers.event_consumer import EventConsumer

    with mock.patch.object(EventConsumer, "subscribe", fake_consumer(bodies)):
        return asyncio.run(fired_until(t, last_job_id, guard_s=30))


JOBS = [f"job-{i}" for i in range(5)]
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, str, str, str, int]]:
    """Deliveries (job id, status, name, queue, copy): each job ends one way; a state is delivered once or more, as
    the same event (same id) again or as another event (another rule); in any order."""
    finals = {job: draw(st.sampled_from(["SUCCEEDED", "FAILED"])) for job in JOBS}
    names = {job: draw(st.sampled_from(["etl-a", "ETL-b", "report"])) for job in JOBS}
    queues = {job: draw(st.sampled_from(["nightly", "other"])) for job in JOBS}
    deliveries = draw(
        st.lists(
            st.tuples(st.sampled_from(JOBS), st.sampled_from([*ACTIVE[2:], "END"]), st.integers(0, 1)),
            max_size=40,
        )
    )
    return [
        (job, finals[job] if status == "END" else status, names[job], queues[job], copy)
        for job, status, copy in deliveries
    ]


@airflow_3
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), on=st.sampled_from(["success", "any_end"]))
def test_fires_once_for_each_matching_job_that_ends_as_asked_whatever_the_duplicates_and_order(
    history: list[tuple[str, str, str, str, int]], on: str
) -> None:
    wanted = {"success": {"SUCCEEDED"}, "any_end": {"SUCCEEDED", "FAILED"}}[on]
    bodies = [
        envelope(job, status, name=name, queue=queue, event_id=f"{job}-{status}-{copy}")
        for job, status, name, queue, copy in history
    ]
    bodies.append(envelope("sentinel", "SUCCEEDED"))  # after everything else: its event comes last
    expected = list(
        dict.fromkeys(
            (job, status)
            for job, status, name, queue, _ in history
            if status in wanted and queue == "nightly" and name.lower().startswith("etl-")
        )
    )
    t = trigger(on=on)
    fired = run_with(bodies, t, "sentinel")
    assert [(p["job_id"], p["status"]) for p in fired[:-1]] == expected
    assert t.fired == len(expected) + 1


@airflow_3
def test_the_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    # the trigger remembers DEDUP_MEMORY jobs (RecentIds: tests/unit/test_job_events.py): a duplicate within them is
    # dropped, one this late fires again (documented)
    bodies = [envelope(f"j{i}", "SUCCEEDED", event_id=f"e{i}") for i in range(DEDUP_MEMORY + 1)]
    bodies += [envelope("j1", "SUCCEEDED", event_id="e1"), envelope("j0", "SUCCEEDED", event_id="e0")]
    bodies.append(envelope("sentinel", "SUCCEEDED"))
    fired = [p["job_id"] for p in run_with(bodies, trigger(), "sentinel")]
    assert fired.count("j1") == 1  # within the memory
    assert fired.count("j0") == 2  # forgotten after DEDUP_MEMORY newer ones


@airflow_3
def test_array_children_and_nodes_fire_only_when_asked_for() -> None:
    parent = json.loads(envelope("arr", "SUCCEEDED"))
    parent["detail"]["arrayProperties"] = {"size": 2, "statusSummary": {"SUCCEEDED": 2}}
    children = []
    for index in range(2):
        child = json.loads(envelope(f"arr:{index}", "SUCCEEDED"))
        child["detail"]["arrayProperties"] = {"index": index}
        children.append(json.dumps(child))
    bodies = [*children, json.dumps(parent), envelope("sentinel", "SUCCEEDED")]
    ids = ["arr", "sentinel"]
    assert [p["job_id"] for p in run_with(bodies, trigger(job_queue=None, job_ids=ids), "sentinel")] == ids
    with_children = run_with(bodies, trigger(job_queue=None, job_ids=ids, include_array_children=True), "sentinel")
    assert [(p["job_id"], p["array_index"]) for p in with_children[:-1]] == [("arr:0", 0), ("arr:1", 1), ("arr", None)]
    by_parent = run_with(bodies[:-1], trigger(job_queue=None, array_job_id="arr"), "arr:1")
    assert [p["job_id"] for p in by_parent] == ["arr:0", "arr:1"]


@airflow_3
def test_a_consumer_that_cannot_start_is_tried_again_with_backoff_and_run_goes_on(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Airflow starts a watcher whose run() ended again at once, with nothing remembered: run() must not end."""
    from airflow_batch_jobs.triggers.event_consumer import EventConsumer

    attempts: list[tuple[Any, ...]] = []
    working = fake_consumer([envelope("ok", "SUCCEEDED")], attempts)

    def subscribe(*args: Any) -> Any:
        if len(attempts) < 3:
            attempts.append(args[:2])
            raise ConnectionError("queue unreachable")
        return working(*args)

    pauses: list[float] = []

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    t = trigger()
    with (
        mock.patch.object(EventConsumer, "subscribe", subscribe),
        mock.patch.object(BatchJobsEventTrigger, "sleep", staticmethod(no_sleep)),
    ):
        fired = asyncio.run(fired_until(t, "ok", guard_s=30))
    assert [p["job_id"] for p in fired] == ["ok"]
    assert pauses == [5.0, 10.0, 20.0]
    assert {a[1] for a in attempts} == {t.connection_key()}
    text = logged(caplog, capsys)
    assert "Cannot read job events from http://127.0.0.1:1/q (ConnectionError: queue unreachable)" in text


# -- the payload -------------------------------------------------------------------------------------------------------


@airflow_3
def test_the_payload_says_which_job_ended_how_without_any_secret(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    bodies = [
        envelope("bad", "FAILED", exit_code=137, container_reason="OutOfMemoryError: Container killed", attempts=2),
        envelope("ok", "SUCCEEDED"),
    ]
    bad, ok = run_with(bodies, trigger(on="any_end"), "ok")
    assert bad == {
        "job_id": "bad",
        "job_name": "etl-a",
        "job_arn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/bad",
        "job_queue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/nightly",
        "job_definition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/etl:3",
        "status": "FAILED",
        "status_reason": None,
        "exit_code": 137,
        "attempts": 2,
        "failure_class": "out_of_memory",
        "created_at": T0,
        "started_at": T0 + 60_000,
        "stopped_at": T0 + 120_000,
        "array_index": None,
        "event_id": bad["event_id"],
        "event_time": bad["event_time"],
    }
    assert ok["status"] == "SUCCEEDED" and ok["exit_code"] == 0 and ok["failure_class"] is None
    text = logged(caplog, capsys)
    assert "AWS Batch job etl-a (bad) FAILED: firing" in text  # what is logged is seen here
    for secret in (SECRET, PARAMETER_SECRET, SECRET_ARN, "DB_PASSWORD"):
        assert secret not in json.dumps([bad, ok])
        assert secret not in text


@airflow_3
def test_the_payload_is_bounded_whatever_the_detail_holds() -> None:
    big = json.loads(envelope("x" * 64, "FAILED", reason="R" * 100_000, container_reason="C" * 100_000))
    big["detail"]["jobName"] = "etl-" + "n" * 124
    big["detail"]["container"]["environment"] *= 1000
    big["detail"]["attempts"] *= 50
    big["detail"]["tags"] = {f"k{i}": "v" * 200 for i in range(100)}
    (payload,) = run_with([json.dumps(big)], trigger(on="any_end"), "x" * 64)
    assert len(json.dumps(payload).encode()) <= PAYLOAD_MAX_BYTES
    assert payload["status_reason"].startswith("RRR") and payload["attempts"] == 50


# -- arguments, serialization, the example DAG -------------------------------------------------------------------------


@airflow_3
def test_serialize_rebuilds_the_same_trigger_and_the_same_hash() -> None:
    from airflow.triggers.base import BaseEventTrigger

    original = trigger(
        job_ids=["arn:aws:batch:us-east-1:123456789012:job/abc", "def", "def"],
        job_queue=None,
        job_name="etl-*",
        created_after=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        on="any_end",
        include_array_children=True,
        botocore_config={"retries": {"mode": "standard"}},
    )
    classpath, kwargs = original.serialize()
    assert classpath == "airflow_batch_jobs.triggers.job_events.BatchJobsEventTrigger"
    assert kwargs["job_ids"] == ["abc", "def"] and kwargs["created_after"] == 1_793_491_200_000
    json.dumps(kwargs)  # JSON-native: stored in the metadata DB
    rebuilt = BatchJobsEventTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    same_moment = trigger(
        job_ids=["abc", "def"],
        job_queue=None,
        created_after="2026-11-01T00:00:00Z",
        on="any_end",
        include_array_children=True,
        botocore_config={"retries": {"mode": "standard"}},
    )
    assert BaseEventTrigger.hash(*same_moment.serialize()) == BaseEventTrigger.hash(classpath, kwargs)
    assert BaseEventTrigger.hash(*trigger(on="success").serialize()) != BaseEventTrigger.hash(
        *trigger(on="any_end").serialize()
    )


@airflow_3
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"on": "failure"}, InvalidTriggerError, "on='failure': use 'success'"),
        ({"events_queue_url": "batch-job-events"}, InvalidTriggerError, "events_queue_url='batch-job-events'"),
        ({"job_name": "{{ params.name }}"}, InvalidTriggerError, "not templated"),
        ({"array_job_id": "arr"}, InvalidQueryError, "Give exactly one of"),
        ({"job_name": "etl*x"}, InvalidQueryError, "job_name='etl*x'"),
        ({"created_after": "20261121"}, InvalidQueryError, "looks like a date"),
        ({"include_array_children": "yes"}, InvalidTriggerError, "include_array_children='yes'"),
        ({"verify": 1}, InvalidTriggerError, "verify=1"),
    ],
)
def test_an_argument_that_cannot_work_is_named_at_parse_time(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        trigger(**arguments)


@airflow_3
def test_the_example_dag_watches_its_asset_with_a_trigger_whose_hash_holds_from_parse_to_parse() -> None:
    from airflow.triggers.base import BaseEventTrigger

    from tests.compat.airflow_versions import dag_bag

    try:  # what the DAG processor hashes a watcher's trigger from
        from airflow.serialization.encoders import encode_trigger
    except ImportError:  # Airflow 3.0
        from airflow.serialization.serialized_objects import _encode_trigger as encode_trigger

    hashes = []
    for _ in range(2):  # two parses, as the DAG processor parses the file again and again
        dag = dag_bag(ROOT / "example_dags").dags["example_asset_on_job_completion"]
        (asset,) = dag.timetable.asset_condition.objects  # schedule=[asset]: all of one asset
        (watcher,) = asset.watchers
        encoded = encode_trigger(watcher.trigger)
        hashes.append(BaseEventTrigger.hash(encoded["classpath"], encoded["kwargs"]))
    assert hashes[0] == hashes[1]
    assert isinstance(watcher.trigger, BatchJobsEventTrigger) and watcher.trigger.on == "success"


def test_airflow_2_refuses_with_a_clear_message_and_3_accepts_it_in_an_asset_watcher() -> None:
    if AIRFLOW_2:
        assert not module.ASSET_WATCHERS
        with pytest.raises(RuntimeError, match=r"needs Airflow >= 3\.0 .* BatchJobsSensor\(deferrable=True"):
            trigger()
        return
    from airflow.sdk import Asset, AssetWatcher
    from airflow.triggers.base import BaseEventTrigger

    assert module.ASSET_WATCHERS and "{version}" in NEEDS_AIRFLOW_3
    t = trigger()
    assert isinstance(t, BaseEventTrigger)
    Asset("finished", watchers=[AssetWatcher(name="w", trigger=t)])


# -- on a real queue: moto's SQS server on loopback --------------------------------------------------------------------


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """An SQS queue on moto's server (127.0.0.1, a free port), and ``aws_default`` pointing at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "sqs", region_name=REGION, endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test"
        )
        url = client.create_queue(QueueName=f"batch-job-events-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        connection = {"conn_type": "aws", "login": "test", "password": "test"}
        extra = {"region_name": REGION, "endpoint_url": endpoint}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({**connection, "extra": extra}))
        yield url, client
    finally:
        server.stop()


async def drained(client: Any, url: str, guard_s: float = 120) -> None:
    """Wait until every message sent has been received and deleted (the consumer deletes once it delivered)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline = time.monotonic() + guard_s
    while time.monotonic() < deadline:
        attributes = (await asyncio.to_thread(client.get_queue_attributes, QueueUrl=url, AttributeNames=names))[
            "Attributes"
        ]
        if all(attributes[n] == "0" for n in names):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the queue was not drained: {attributes}")


def send(client: Any, url: str, body: str) -> None:
    """Send a message with the test's own client, unlogged: botocore logs the body it sends at DEBUG, and the tests look
    for secrets in what the provider logs."""
    previous = logging.root.manager.disable
    logging.disable(logging.DEBUG)
    try:
        client.send_message(QueueUrl=url, MessageBody=body)
    finally:
        logging.disable(previous)


async def fire_on_queue(client: Any, url: str, t: BatchJobsEventTrigger, bodies: list[str]) -> list[dict[str, Any]]:
    """Send ``bodies``; once the consumer has taken them all, a last matching job: everything fired before it."""
    for body in bodies:
        send(client, url, body)

    async def sentinel_after_drain() -> None:
        await drained(client, url)
        send(client, url, envelope("sentinel", "SUCCEEDED"))

    feeder = asyncio.create_task(sentinel_after_drain())
    try:
        fired = await fired_until(t, "sentinel")
    finally:
        feeder.cancel()
    assert fired[-1]["job_id"] == "sentinel"
    return fired[:-1]


@airflow_3
async def test_on_an_sqs_queue_success_fires_and_failure_foreign_and_duplicate_messages_do_not(
    sqs: tuple[str, Any], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")  # botocore logs every response body at DEBUG
    url, client = sqs
    ok = envelope("ok", "SUCCEEDED", event_id="ev-ok")
    bodies = [
        envelope("ok", "RUNNING"),
        ok,
        ok,  # EventBridge / SQS deliver twice
        envelope("ok", "SUCCEEDED"),  # the same state again as another event (a second rule)
        envelope("bad", "FAILED"),
        envelope("other-queue", "SUCCEEDED", queue="adhoc"),
        envelope("other-name", "SUCCEEDED", name="report"),
        json.dumps({"version": "0", "id": "x", "detail-type": "EC2 Instance State-change Notification"}),
        "not json at all",
        envelope("ok-2", "SUCCEEDED", name="ETL-B"),  # JOB_NAME matching is case-insensitive
    ]
    t = trigger(events_queue_url=url)
    fired = await fire_on_queue(client, url, t, bodies)
    assert sorted(p["job_id"] for p in fired) == ["ok", "ok-2"]
    text = logged(caplog, capsys)
    assert "firing" in text and SECRET not in text and PARAMETER_SECRET not in text


@airflow_3
async def test_on_an_sqs_queue_any_end_fires_for_failed_jobs_too(sqs: tuple[str, Any]) -> None:
    url, client = sqs
    bodies = [envelope("bad", "FAILED", exit_code=2), envelope("ok", "SUCCEEDED"), envelope("run", "RUNNING")]
    fired = await fire_on_queue(client, url, trigger(events_queue_url=url, on="any_end"), bodies)
    assert sorted((p["job_id"], p["status"], p["exit_code"]) for p in fired) == [
        ("bad", "FAILED", 2),
        ("ok", "SUCCEEDED", 0),
    ]


@airflow_3
async def test_two_watchers_on_one_queue_each_see_every_event(sqs: tuple[str, Any]) -> None:
    """The triggerer's one consumer for the queue hands each event to both (a competing consumer would take half)."""
    url, client = sqs
    for body in [envelope("ok", "SUCCEEDED"), envelope("bad", "FAILED"), envelope("last", "SUCCEEDED")]:
        send(client, url, body)
    success, any_end = trigger(events_queue_url=url), trigger(events_queue_url=url, on="any_end")
    both = await asyncio.gather(fired_until(success, "last"), fired_until(any_end, "last"))
    assert [sorted(p["job_id"] for p in fired) for fired in both] == [["last", "ok"], ["bad", "last", "ok"]]


# -- the emulator's own events -----------------------------------------------------------------------------------------


@airflow_3
async def test_the_emulator_s_job_events_fire_for_the_jobs_that_succeed(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_batch_jobs.testing import BatchEmulator

    with BatchEmulator(events=True) as emu:
        emu.setup(queue="nightly")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emu.airflow_connection())
        url, client = emu.events_queue_url, emu.sqs_client()
        emu.inject_event_faults(duplicate=1.0)  # every event delivered twice
        emu.add_outcome({"attempts": [{"exit_code": 1, "reason": "boom"}]}, name="etl-bad")
        emu.add_outcome({"attempts": [{"exit_code": 137, "reason": "OOM"}, {"exit_code": 0}]}, name="etl-retried")
        ids = {
            name: emu.submit(name, queue="nightly", retryStrategy={"attempts": 2})
            for name in ("etl-ok", "etl-bad", "etl-retried", "report")
        }
        t = trigger(events_queue_url=url)
        events = t.run()
        fired: list[dict[str, Any]] = []

        async def collect() -> None:
            async for event in events:
                fired.append(event.payload)

        collector = asyncio.create_task(collect())
        try:
            emu.advance(3600)  # every job runs to its end, its events published as the clock passes them
            await drained(client, url)  # each delivered to the trigger (twice)
            sentinel = emu.submit("etl-sentinel", queue="nightly")
            emu.advance(3600)
            async with asyncio.timeout(120):
                while not any(p["job_id"] == sentinel for p in fired):
                    await asyncio.sleep(0.1)
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
            await events.aclose()
        published = emu.events_published()
    assert sorted(p["job_id"] for p in fired) == sorted([ids["etl-ok"], ids["etl-retried"], sentinel])
    retried = next(p for p in fired if p["job_id"] == ids["etl-retried"])
    assert retried["attempts"] == 2 and retried["exit_code"] == 0
    assert published["duplicated"] == published["events"] > 0  # every event was sent twice, each job fired once


def created(body: str, created_at: int) -> str:
    data = json.loads(body)
    data["detail"]["createdAt"] = created_at
    return json.dumps(data)


@airflow_3
def test_children_of_an_array_outside_the_created_window_do_not_fire() -> None:
    """Found by review: a child's createdAt is when its parent started, so a parent created outside the window had
    children inside it. A child fires once an event of its parent has shown the parent inside the window."""
    late = [created(envelope(job, "SUCCEEDED"), T0 + 3_600_000) for job in ("late", "late:0")]
    sentinel = envelope("job-ok", "SUCCEEDED")  # created at T0
    fired = [
        p["job_id"]
        for p in run_with([*late, sentinel], trigger(created_before=T0 + 1_000, include_array_children=True), "job-ok")
    ]
    assert fired == ["job-ok"]
    early = [
        created(envelope("early", "SUCCEEDED"), T0 - 3_600_000),
        created(envelope("early:0", "SUCCEEDED"), T0 + 5_000),
    ]
    sentinel = created(envelope("job-ok", "SUCCEEDED"), T0 + 10_000)
    fired = [
        p["job_id"]
        for p in run_with([*early, sentinel], trigger(created_after=T0, include_array_children=True), "job-ok")
    ]
    assert fired == ["job-ok"]
    inside = [created(envelope("arr", "RUNNING"), T0 + 1_000), created(envelope("arr:0", "SUCCEEDED"), T0 + 5_000)]
    fired = [
        p["job_id"]
        for p in run_with([*inside, sentinel], trigger(created_after=T0, include_array_children=True), "job-ok")
    ]
    assert fired == ["arr:0", "job-ok"]  # a parent inside the window: its children fire
