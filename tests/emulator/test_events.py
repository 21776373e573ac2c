"""The emulator's job state-change events (#17): the EventBridge envelope on an SQS queue served by moto, one event
per status change in emulated-time order, and the delivery faults (duplicates, reordering, delay, loss, a queue
that is unreachable for a while), deterministic under the seed. The queue is read with plain boto3."""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.events import ENVELOPE_KEYS, event_time
from airflow_batch_jobs.testing.scenario import definition_body
from airflow_batch_jobs.testing.server import batch_service_model

if TYPE_CHECKING:
    from collections.abc import Iterator

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=5)
LIFECYCLE = ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
RETRY_TWICE = {"attempts": 2, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}]}


def drain(emu: BatchEmulator) -> list[dict[str, Any]]:
    """Every message now in the queue (read and deleted), as parsed envelopes, in the order SQS gave them."""
    sqs = emu.sqs_client(config=NO_RETRY)
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=emu.events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        out.extend(json.loads(m["Body"]) for m in messages)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=emu.events_queue_url, Entries=entries)


def statuses(events: list[dict[str, Any]], job_id: str) -> list[str]:
    return [e["detail"]["status"] for e in events if e["detail"]["jobId"] == job_id]


@pytest.fixture
def emu() -> Iterator[BatchEmulator]:
    with BatchEmulator(events=True, seed=3) as emulator:
        emulator.setup()
        yield emulator


# -- the envelope --------------------------------------------------------------------------------------------
def test_envelope_has_eventbridges_fields_and_describe_jobs_detail(emu: BatchEmulator) -> None:
    created = emu.now_ms()
    job = emu.submit("shape", parameters={"day": "2026-11-22"}, shareIdentifier="team-a")
    batch = emu.client()
    validator = ParamValidator()
    job_detail = batch_service_model().shape_for("JobDetail")
    seen = []
    for _ in range(20):
        emu.advance(1)
        events = drain(emu)
        for event in events:
            # the fields EventBridge's event structure lists, each in every event, nothing else
            assert tuple(event) == ENVELOPE_KEYS
            assert event["version"] == "0"
            assert uuid.UUID(event["id"]).version == 4
            assert event["detail-type"] == "Batch Job State Change"
            assert event["source"] == "aws.batch"
            assert re.fullmatch(r"\d{12}", event["account"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
            assert event["region"] == "us-east-1"
            detail = event["detail"]
            assert event["resources"] == [detail["jobArn"]]
            assert detail["jobQueue"] == "arn:aws:batch:us-east-1:123456789012:job-queue/queue"
            assert detail["jobDefinition"].startswith("arn:aws:batch:us-east-1:123456789012:job-definition/jobdef:")
            assert detail["createdAt"] == created
            assert detail["shareIdentifier"] == "team-a"
            assert detail["parameters"] == {"day": "2026-11-22"}
            report = validator.validate(detail, job_detail)
            # botocore marks startedAt required; the service leaves it out before the job starts (as DescribeJobs)
            errors = [
                e
                for e in report._errors
                if not (e[0] == "missing required field" and e[2]["required_name"] == "startedAt")
            ]
            assert not errors, errors
            # transitions fall on whole seconds here: the event is what DescribeJobs answers at this moment
            assert event["time"] == event_time(emu.now_ms())
            assert detail == batch.describe_jobs(jobs=[job])["jobs"][0]
        seen += events
    assert statuses(seen, job) == LIFECYCLE


def test_secrets_in_the_environment_are_in_the_detail_as_the_service_sends_them(emu: BatchEmulator) -> None:
    """The emulator is the service: it sends the environment as it is; redacting is the consumer's job."""
    env = [{"name": "DB_PASSWORD", "value": "s3cr3t-value-123"}]
    job = emu.submit("secretive", containerOverrides={"environment": env})
    emu.advance(30)
    events = [e for e in drain(emu) if e["detail"]["jobId"] == job]
    assert events
    for event in events:
        assert {"name": "DB_PASSWORD", "value": "s3cr3t-value-123"} in event["detail"]["container"]["environment"]


# -- which events ----------------------------------------------------------------------------------------------
def test_one_event_per_status_change_and_none_at_submission(emu: BatchEmulator) -> None:
    job = emu.submit("once")
    emu.publish_events()
    assert drain(emu) == []  # SUBMITTED: no event
    assert emu.events_published()["events"] == 0
    emu.advance(100)
    events = drain(emu)
    assert statuses(events, job) == LIFECYCLE
    assert len({e["id"] for e in events}) == len(events)
    # 1 s SUBMITTED, 1 s PENDING, 2 s RUNNABLE, 2 s STARTING, 10 s RUNNING
    start = events[0]["detail"]["createdAt"]
    assert [e["time"] for e in events] == [event_time(start + s * 1000) for s in (1, 2, 4, 6, 16)]
    emu.advance(100)
    assert drain(emu) == []
    assert emu.events_published() == {
        "events": 5, "sent": 5, "lost": 0, "duplicated": 0, "pending": 0, "refused": 0
    }  # fmt: skip


def test_a_retried_job_goes_back_to_runnable_with_one_more_attempt(emu: BatchEmulator) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 137, "reason": "OutOfMemoryError"}, {"exit_code": 0}]}, name="retry*")
    job = emu.submit("retry-me", retryStrategy=RETRY_TWICE)
    emu.advance(200)
    events = drain(emu)
    assert statuses(events, job) == [*LIFECYCLE[:4], "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    assert [len(e["detail"]["attempts"]) for e in events] == [0, 0, 0, 0, 1, 1, 1, 2]
    assert events[4]["detail"]["attempts"][0]["container"]["exitCode"] == 137
    assert events[-1]["detail"]["attempts"][-1]["container"]["exitCode"] == 0


def test_array_children_have_their_events_and_the_parent_ends_after_them(emu: BatchEmulator) -> None:
    emu.add_outcome({"attempts": [{"exit_code": 1}]}, name="fan", indices=[1])
    parent = emu.submit("fan", arrayProperties={"size": 3})
    emu.advance(200)
    events = drain(emu)
    assert statuses(events, parent) == ["PENDING", "FAILED"]
    for index in range(3):
        child = [e for e in events if e["detail"]["jobId"] == f"{parent}:{index}"]
        expected_end = "FAILED" if index == 1 else "SUCCEEDED"
        assert [e["detail"]["status"] for e in child] == [*LIFECYCLE[:4], expected_end]
        assert all(e["detail"]["arrayProperties"] == {"index": index} for e in child)
    last_child_end = max(e["time"] for e in events if ":" in e["detail"]["jobId"])
    parent_end = [e for e in events if e["detail"]["jobId"] == parent][-1]
    assert parent_end["time"] >= last_child_end
    assert parent_end["detail"]["arrayProperties"]["statusSummary"]["FAILED"] == 1


def test_multi_node_nodes_have_their_events(emu: BatchEmulator) -> None:
    emu.model.register_job_definition(definition_body("mnp", "multinode", num_nodes=2))
    parent = emu.submit("mnp-job", definition="mnp")
    emu.advance(200)
    events = drain(emu)
    assert statuses(events, parent) == LIFECYCLE
    for node in (0, 1):
        assert statuses(events, f"{parent}#{node}") == ["STARTING", "RUNNING", "SUCCEEDED"]


def test_a_cancel_is_in_the_queue_when_the_call_returns(emu: BatchEmulator) -> None:
    job = emu.submit("doomed")
    emu.advance(1.5)
    assert statuses(drain(emu), job) == ["PENDING"]
    emu.client().cancel_job(jobId=job, reason="not needed")  # no advance: the clock stays
    (event,) = drain(emu)
    assert event["detail"]["status"] == "FAILED"
    assert event["detail"]["statusReason"] == "not needed"
    assert event["time"] == event_time(emu.now_ms())


def test_events_arrive_in_emulated_time_order_under_a_manual_clock(emu: BatchEmulator) -> None:
    jobs = []
    for i in range(6):
        jobs.append(emu.submit(f"ordered-{i}"))
        emu.model.clock.advance(0.7)  # staggered submissions, published later in one go
    emu.advance(300)
    events = drain(emu)
    assert len(events) == 6 * len(LIFECYCLE)
    times = [e["time"] for e in events]
    assert times == sorted(times)
    for job in jobs:
        assert statuses(events, job) == LIFECYCLE


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.lists(
        st.tuples(
            st.integers(0, 20),  # submitted this many seconds after the start
            st.lists(st.sampled_from([0, 1, 137]), min_size=1, max_size=3),  # exit codes of the attempts
            st.integers(1, 3),  # retryStrategy.attempts
            st.integers(0, 3),  # 0: a single job, else an array of that size + 1
        ),
        min_size=1,
        max_size=5,
    ),
    steps=st.lists(st.floats(0.1, 30), min_size=1, max_size=12),
)
@pytest.mark.slow  # seconds of moto's SQS server
def test_each_jobs_events_are_the_status_changes_describe_jobs_shows(
    jobs: list[tuple[int, list[int], int, int]], steps: list[float]
) -> None:
    """Against an oracle that samples the emulator's statuses every 100 ms: per job, the event statuses are its
    status changes (no SUBMITTED), once each; the queue is in emulated-time order; the clock moves in uneven
    steps."""
    with BatchEmulator(events=True, seed=1) as emu:
        emu.setup()
        start = emu.now_ms()
        for i, (at, codes, tries, size) in enumerate(sorted(jobs)):
            emu.model.schedule(
                start + at * 1000,
                {
                    "jobName": f"j{i}",
                    "jobQueue": "queue",
                    "jobDefinition": "jobdef",
                    "retryStrategy": {"attempts": tries},
                    **({"arrayProperties": {"size": size + 1}} if size else {}),
                },
            )
            emu.add_outcome({"attempts": [{"exit_code": c, "duration": 3} for c in codes]}, name=f"j{i}")
        events: list[dict[str, Any]] = []
        for step in [*steps, 400]:
            emu.advance(step)
            events += drain(emu)
        times = [e["time"] for e in events]
        assert times == sorted(times)
        end = emu.now_ms()
        model = emu.model
        for job in model.jobs.values():
            seen: list[str] = []
            for t in range(start, end, 100):
                if model.lifecycle.created_at(job) is None or model.lifecycle.created_at(job) > t:
                    continue
                status = model.status_at(job, t)
                if not seen or seen[-1] != status:
                    seen.append(status)
            expected = seen[1:] if seen[:1] == ["SUBMITTED"] else seen
            assert statuses(events, job.job_id) == expected, job.job_id


# -- faults ----------------------------------------------------------------------------------------------------
def _run(emu: BatchEmulator, jobs: int = 4, seconds: float = 200) -> list[dict[str, Any]]:
    for i in range(jobs):
        emu.submit(f"faulty-{i}")
        emu.model.clock.advance(1.3)
    events: list[dict[str, Any]] = []
    for _ in range(int(seconds)):
        emu.advance(1)
        events += drain(emu)
    return events


@pytest.mark.slow  # seconds of moto's SQS server
def test_duplicates_keep_their_id(emu: BatchEmulator) -> None:
    emu.inject_event_faults(duplicate=1.0, reorder_window_seconds=3)
    events = _run(emu)
    ids = [e["id"] for e in events]
    assert len(ids) == 2 * len(set(ids)) == 2 * 4 * len(LIFECYCLE)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_id.setdefault(event["id"], []).append(event)
    assert all(a == b for a, b in by_id.values())
    assert emu.events_published()["duplicated"] == 4 * len(LIFECYCLE)


@pytest.mark.slow  # seconds of moto's SQS server
def test_reordering_delivers_every_event_once_but_out_of_order(emu: BatchEmulator) -> None:
    emu.inject_event_faults(reorder=0.5, reorder_window_seconds=10)
    events = _run(emu)
    assert len(events) == len({e["id"] for e in events}) == 4 * len(LIFECYCLE)
    times = [e["time"] for e in events]
    assert times != sorted(times)
    # a job's own events overtake one another too: what a consumer must not let go backwards
    assert any(statuses(events, job) != LIFECYCLE for job in {e["detail"]["jobId"] for e in events})


def test_delay_holds_every_event_back_by_emulated_seconds(emu: BatchEmulator) -> None:
    emu.inject_event_faults(delay_seconds=5)
    job = emu.submit("late")
    emu.advance(1)  # PENDING now
    assert drain(emu) == []
    emu.advance(4.9)
    assert drain(emu) == []
    emu.advance(0.1)
    (event,) = drain(emu)
    assert event["detail"]["status"] == "PENDING"
    assert event["time"] == event_time(emu.now_ms() - 5000)  # the event's own time, not its delivery's
    emu.advance(100)
    assert statuses(drain(emu), job) == LIFECYCLE[1:]


@pytest.mark.slow  # seconds of moto's SQS server
def test_loss_drops_a_share_of_events_and_counts_them(emu: BatchEmulator) -> None:
    emu.inject_event_faults(loss=0.5)
    events = _run(emu, jobs=8)
    counts = emu.events_published()
    assert counts["events"] == 8 * len(LIFECYCLE)
    assert 0 < counts["lost"] < counts["events"]
    assert len(events) == counts["sent"] == counts["events"] - counts["lost"]
    emu.inject_event_faults(loss=1.0)
    emu.submit("never-heard-of")
    emu.advance(100)
    assert drain(emu) == []


@pytest.mark.slow  # seconds of moto's SQS server
def test_faults_are_deterministic_under_the_seed() -> None:
    def run(seed: int) -> list[tuple[str, str, str]]:
        with BatchEmulator(events=True, seed=seed) as emu:
            emu.setup()
            emu.inject_event_faults(duplicate=0.3, reorder=0.3, loss=0.2, delay_seconds=1)
            return [(e["id"], e["detail"]["jobId"], e["detail"]["status"]) for e in _run(emu, seconds=120)]

    first = run(11)
    assert first == run(11)
    assert first != run(12)


@pytest.mark.parametrize(
    ("how", "error"), [("error", ClientError), ("refuse", (ConnectionClosedError, EndpointConnectionError))]
)
def test_an_unreachable_queue_refuses_readers_and_gets_the_events_when_back(
    emu: BatchEmulator, how: str, error: Any
) -> None:
    job = emu.submit("outage")
    emu.queue_unreachable(10, how=how)
    sqs = emu.sqs_client(config=NO_RETRY)
    emu.advance(5)  # PENDING, RUNNABLE happened meanwhile
    with pytest.raises(error) as raised:
        sqs.receive_message(QueueUrl=emu.events_queue_url)
    if how == "error":
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert raised.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert emu.events_published()["pending"] == 3  # held: EventBridge retries
    emu.advance(5)  # back, with RUNNING (at 6 s) held too
    assert statuses(drain(emu), job) == LIFECYCLE[:4]
    assert emu.events_published()["refused"] == 1
    emu.advance(100)
    assert statuses(drain(emu), job) == LIFECYCLE[4:]


def test_event_faults_from_a_scenario() -> None:
    scenario = {
        "queues": ["q"],
        "job_definitions": [{"name": "d"}],
        "submit": [{"at": 0, "name": "s", "queue": "q", "definition": "d"}],
        "events": True,
        "event_faults": {"duplicate": 1.0, "reorder_window_seconds": 0, "unreachable": [{"at": 0, "seconds": 3}]},
    }
    with BatchEmulator(scenario=scenario) as emu:
        assert emu.events is not None
        with pytest.raises(ClientError):
            emu.sqs_client(config=NO_RETRY).receive_message(QueueUrl=emu.events_queue_url)
        emu.advance(100)
        events = drain(emu)
        assert [e["detail"]["status"] for e in events] == [s for s in LIFECYCLE for _ in (1, 2)]
    with pytest.raises(ValueError, match="event_faults has unknown keys"):
        BatchEmulator(scenario={**scenario, "event_faults": {"lose": 1}})


# -- the server ------------------------------------------------------------------------------------------------
def test_the_queue_is_served_on_loopback_and_stopped_on_exit() -> None:
    with BatchEmulator(events=True) as emu:
        url = emu.events_endpoint_url
        assert url.startswith("http://127.0.0.1:")
        assert emu.events_queue_url.startswith(url + "/123456789012/")
        port = int(url.rsplit(":", 1)[1])
        sqs = emu.sqs_client(config=NO_RETRY)
        name = emu.events_queue_url.rsplit("/", 1)[1]
        assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == emu.events_queue_url
        connection = json.loads(emu.airflow_connection())
        assert connection["extra"]["service_config"] == {"sqs": {"endpoint_url": url}}
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", port))
    # moto keeps queues for the whole process: the emulator deleted its own
    with BatchEmulator(events=True) as other:
        names = other.sqs_client().list_queues().get("QueueUrls", [])
        assert not [u for u in names if u.endswith("/" + name)]


def test_off_by_default() -> None:
    with BatchEmulator() as emu:
        assert emu.events is None
        with pytest.raises(RuntimeError, match="events=True"):
            emu.events_queue_url  # noqa: B018
        assert "service_config" not in json.loads(emu.airflow_connection())["extra"]


def test_a_scaled_clock_publishes_without_advance() -> None:
    with BatchEmulator(events=True, speed=50) as emu:
        emu.setup()
        job = emu.submit("by-itself")
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60  # a bound against hanging only: 16 emulated s are 0.3 s here
        while statuses(events, job) != LIFECYCLE and time.monotonic() < deadline:
            events += drain(emu)
            time.sleep(0.05)
        assert statuses(events, job) == LIFECYCLE


@pytest.mark.batch_emulator(seed=5)
def test_the_fixture_turns_events_on(batch_emulator_events: BatchEmulator, batch_client: Any) -> None:
    assert batch_emulator_events.events is not None
    assert batch_emulator_events.events.seed == 5
    job = batch_client.submit_job(jobName="via-fixture", jobQueue="queue", jobDefinition="jobdef")["jobId"]
    batch_emulator_events.advance(30)
    assert statuses(drain(batch_emulator_events), job) == LIFECYCLE


def test_the_amazon_sqs_hook_reads_the_queue_through_the_emulators_connection(
    batch_emulator_events: BatchEmulator, batch_aws_conn: str
) -> None:
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    job = batch_emulator_events.submit("hooked")
    batch_emulator_events.advance(2)
    client = SqsHook(aws_conn_id=batch_aws_conn).get_conn()
    messages = client.receive_message(QueueUrl=batch_emulator_events.events_queue_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in messages["Messages"]]
    assert [(b["detail"]["jobId"], b["detail"]["status"]) for b in bodies] == [(job, "PENDING"), (job, "RUNNABLE")]


@pytest.mark.slow  # seconds of moto's SQS server
def test_serve_events_prints_the_queue_url_to_export() -> None:
    serve = [sys.executable, "-m", "airflow_batch_jobs.testing", "serve", "--events", "--scenario", "demo"]
    proc = subprocess.Popen([*serve, "--speed", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        (assignment,) = shlex.split(lines[2].strip().removeprefix("export "))
        extra = json.loads(assignment.split("=", 1)[1])["extra"]
        export = lines[4].strip()
        assert export.startswith("export BATCH_EVENTS_QUEUE_URL=http://127.0.0.1:"), lines
        (queue,) = shlex.split(export.removeprefix("export "))
        queue_url = queue.split("=", 1)[1]
        endpoint = extra["service_config"]["sqs"]["endpoint_url"]
        assert queue_url.startswith(endpoint + "/")
        sqs = boto3.client(
            "sqs", endpoint_url=endpoint, region_name=extra["region_name"], aws_access_key_id="k",
            aws_secret_access_key="s", config=NO_RETRY,
        )  # fmt: skip
        # the demo's first jobs change status within seconds of emulated time (a fraction of a second at x20)
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=10)
        assert answer["Messages"]
        assert json.loads(answer["Messages"][0]["Body"])["detail-type"] == "Batch Job State Change"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
