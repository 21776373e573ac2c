"""EventConsumer against a real SQS API (moto's server on 127.0.0.1), with crafted EventBridge envelopes.

One consumer per queue and connection per event loop, long polling; every event delivered once to every subscriber,
then deleted; malformed and foreign messages logged once and deleted; a queue that cannot be read is retried with a
capped backoff until it can; the last subscriber leaving closes the client. No wall-clock assertion: waits on the
consumer's counters are bounded only to fail a hung test, and the backoff's pauses go through a recorded sleep.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.sqs import SqsHook
from moto.server import ThreadedMotoServer

from airflow_batch_jobs.triggers.event_consumer import EventConsumer, region_of

from .conftest import eventbridge_body

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_batch_jobs.job_events import JobEvent

ACCOUNT = "123456789012"  # moto's default account
CONN_ID = "events_test"
MARK = "S3CRET-MARK-7f3a"
HANG_GUARD_S = 60  # only to fail a hung test, never a timing assertion


def envelope(job_id: str, status: str = "RUNNING", event_id: str | None = None) -> str:
    """A "Batch Job State Change" envelope whose detail holds secrets (environment value, parameter, secret)."""
    detail = {
        "jobArn": f"arn:aws:batch:us-east-1:{ACCOUNT}:job/{job_id}",
        "jobName": "etl-daily",
        "jobId": job_id,
        "jobQueue": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-queue/etl",
        "status": status,
        "attempts": [],
        "createdAt": 1_700_000_000_000,
        "jobDefinition": f"arn:aws:batch:us-east-1:{ACCOUNT}:job-definition/etl:1",
        "parameters": {"token": MARK},
        "container": {
            "image": "busybox",
            "environment": [{"name": "DB_PASSWORD", "value": MARK}],
            "secrets": [{"name": "K", "valueFrom": f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/{MARK}"}],
        },
    }
    return eventbridge_body(detail, account=ACCOUNT, region="us-east-1", event_id=event_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connection(endpoint: str) -> str:
    """An aws connection to a local endpoint; one attempt a call (a refused connection fails at once)."""
    extra = {
        "region_name": "us-east-1",
        "endpoint_url": endpoint,
        "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
    }
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


@dataclass
class Sqs:
    endpoint: str
    client: Any

    def new_queue(self) -> str:
        return str(self.client.create_queue(QueueName=f"events-{uuid.uuid4().hex[:12]}")["QueueUrl"])

    def send(self, url: str, *bodies: str) -> None:
        """Send (no DEBUG line from this client: its requests hold the bodies, the consumer's logs are checked)."""
        logging.disable(logging.DEBUG)
        try:
            for body in bodies:
                self.client.send_message(QueueUrl=url, MessageBody=body)
        finally:
            logging.disable(logging.NOTSET)

    def depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages: received and not yet deleted ones are in flight."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return int(got[names[0]]), int(got[names[1]])


def start_server(port: int = 0) -> ThreadedMotoServer:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sqs]:
    server = start_server()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection(endpoint))
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield Sqs(endpoint, client)
    finally:
        server.stop()


class RecordingHook(SqsHook):
    """The amazon provider's SqsHook, counting the clients made and closed and recording ReceiveMessage's params."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made = 0
        self.closed = 0
        self.regions: list[str] = []
        self.receive_calls: list[dict[str, Any]] = []

    def get_client_type(self, region_name: str | None = None, config: Any = None, deferrable: bool = False) -> Any:
        context = super().get_client_type(region_name=region_name, config=config, deferrable=deferrable)
        hook = self

        class Recording:
            async def __aenter__(self) -> Any:
                client = await context.__aenter__()
                hook.made += 1
                hook.regions.append(client.meta.region_name)
                client.meta.events.register(
                    "provide-client-params.sqs.ReceiveMessage",
                    lambda params, **_: hook.receive_calls.append(dict(params)),
                )
                return client

            async def __aexit__(self, *exc: Any) -> Any:
                hook.closed += 1
                return await context.__aexit__(*exc)

        return Recording()


class Factory:
    """A hook factory that keeps the hooks it made."""

    def __init__(self) -> None:
        self.hooks: list[RecordingHook] = []

    def __call__(self) -> RecordingHook:
        self.hooks.append(RecordingHook(aws_conn_id=CONN_ID))
        return self.hooks[-1]


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), HANG_GUARD_S)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff's pauses, recorded instead of slept."""
    recorded: list[float] = []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(EventConsumer, "sleep", staticmethod(sleep))
    return recorded


# -- tests ----------------------------------------------------------------------------------------------------------
async def test_delivers_each_event_then_deletes_it(sqs: Sqs, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # botocore logs every response body at DEBUG: the events' secrets stay out
    url = sqs.new_queue()
    got: list[JobEvent] = []
    in_queue_at_delivery: list[tuple[int, int]] = []

    def deliver(event: JobEvent) -> None:
        got.append(event)
        in_queue_at_delivery.append(sqs.depth(url))

    factory = Factory()
    async with EventConsumer.subscribe(url, "conn", factory, deliver) as consumer:
        sqs.send(url, envelope("job-1", "RUNNABLE"), envelope("job-2", "SUCCEEDED"))
        await until(lambda: consumer.deleted == 2)
        assert sqs.depth(url) == (0, 0)
    assert sorted((e.job_id, e.status) for e in got) == [("job-1", "RUNNABLE"), ("job-2", "SUCCEEDED")]
    assert len(in_queue_at_delivery) == 2
    assert all(in_flight >= 1 for _, in_flight in in_queue_at_delivery)  # received, not deleted before delivery
    assert got[0].job["container"]["environment"] == [{"name": "DB_PASSWORD", "value": "***"}]
    (call, *_) = factory.hooks[0].receive_calls
    assert call["WaitTimeSeconds"] == 20 and call["MaxNumberOfMessages"] == 10  # long polling, full batches
    assert factory.hooks[0].regions == ["us-east-1"]  # the connection's: a local endpoint names no region
    assert "Response body" in caplog.text  # the bodies were logged...
    assert MARK not in caplog.text  # ... redacted


async def test_an_event_delivered_twice_is_handed_over_once(sqs: Sqs) -> None:
    url = sqs.new_queue()
    got: list[JobEvent] = []
    async with EventConsumer.subscribe(url, "conn", Factory(), got.append) as consumer:
        same = envelope("job-1", "RUNNING", event_id="evt-1")
        sqs.send(url, same, same, envelope("job-1", "SUCCEEDED", event_id="evt-2"), same)
        await until(lambda: consumer.deleted == 4)
        assert sqs.depth(url) == (0, 0)
    assert sorted(e.event_id for e in got) == ["evt-1", "evt-2"]
    assert consumer.duplicates == 2 and consumer.delivered == 2


async def test_malformed_and_foreign_messages_are_logged_once_and_deleted(
    sqs: Sqs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = sqs.new_queue()
    got: list[JobEvent] = []
    foreign = json.dumps({"version": "0", "id": "x", "source": "aws.s3", "detail-type": "Object Created"})
    truncated = envelope("job-9")[:-40]  # holds the secrets, and is not JSON
    async with EventConsumer.subscribe(url, "conn", Factory(), got.append) as consumer:
        sqs.send(url, "not an event", truncated, foreign, foreign, envelope("job-1"), "{broken")
        await until(lambda: consumer.deleted == 6)
        assert sqs.depth(url) == (0, 0)
        assert consumer.running  # nothing stopped it
    assert [e.job_id for e in got] == ["job-1"]
    assert (consumer.malformed, consumer.foreign) == (3, 2)
    lines = [r.getMessage() for r in caplog.records if "Deleting message" in r.getMessage()]
    assert len(lines) == 2, lines  # one per kind: "not JSON", the S3 source
    assert sum("not JSON" in line for line in lines) == 1 and sum("aws.s3" in line for line in lines) == 1
    assert "withheld" in caplog.text  # the truncated body, in the DEBUG line of the response holding it
    assert MARK not in caplog.text


async def test_two_subscribers_share_one_consumer(sqs: Sqs) -> None:
    url = sqs.new_queue()
    first: list[JobEvent] = []
    second: list[JobEvent] = []
    factory = Factory()
    async with (
        EventConsumer.subscribe(url, "conn", factory, first.append) as a,
        EventConsumer.subscribe(url, "conn", factory, second.append) as b,
    ):
        assert a is b and len(factory.hooks) == 1
        sqs.send(url, *(envelope(f"job-{n}") for n in range(3)))
        await until(lambda: a.deleted == 3)
        async with EventConsumer.subscribe(url, "other-connection", factory, lambda e: None) as other:
            assert other is not a  # another connection reads with its own client
    hook = factory.hooks[0]
    assert hook.made == 1  # one client, one ReceiveMessage loop:
    assert len(hook.receive_calls) <= a.receives + 1  # every call answered but the one in flight when it stopped
    assert sorted(e.job_id for e in first) == sorted(e.job_id for e in second) == ["job-0", "job-1", "job-2"]


WHOSE_LOG: contextvars.ContextVar[str] = contextvars.ContextVar("whose_log", default="the triggerer's")


async def test_the_consumer_runs_in_no_subscriber_s_context(sqs: Sqs) -> None:
    """Airflow routes a trigger's log by its task's context: the consumer, started by whichever wait subscribed
    first, serves every wait on the queue, so what it (and a wait called from it) logs must not land in the first
    wait's task log."""
    url = sqs.new_queue()
    seen: list[str] = []

    async def first_wait() -> None:
        WHOSE_LOG.set("the first wait's")
        async with EventConsumer.subscribe(url, "conn", Factory(), lambda e: seen.append(WHOSE_LOG.get())) as consumer:
            sqs.send(url, envelope("job-1"))
            await until(lambda: consumer.deleted == 1)

    await asyncio.ensure_future(first_wait())  # a task of its own, as each trigger is
    assert seen == ["the triggerer's"]


async def test_a_subscriber_that_raises_loses_nobody_else_events(sqs: Sqs, caplog: pytest.LogCaptureFixture) -> None:
    url = sqs.new_queue()
    got: list[JobEvent] = []

    def broken(event: JobEvent) -> None:
        raise RuntimeError("a bug in one wait")

    async with (
        EventConsumer.subscribe(url, "conn", Factory(), broken),
        EventConsumer.subscribe(url, "conn", Factory(), got.append) as consumer,
    ):
        sqs.send(url, envelope("job-1"))
        await until(lambda: consumer.deleted == 1)
        sqs.send(url, envelope("job-2"))
        await until(lambda: consumer.deleted == 2)
        assert consumer.running
    assert [e.job_id for e in got] == ["job-1", "job-2"]
    assert consumer.deliver_errors == 2
    assert sum("A wait failed on the event" in r.getMessage() for r in caplog.records) == 1  # once per subscriber


async def test_a_missing_queue_is_retried_with_capped_backoff_until_it_exists(
    sqs: Sqs, pauses: list[float], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(EventConsumer, "backoff_s", (1.0, 4.0))
    name = f"late-{uuid.uuid4().hex[:8]}"
    url = f"{sqs.endpoint}/{ACCOUNT}/{name}"
    got: list[JobEvent] = []
    async with EventConsumer.subscribe(url, "conn", Factory(), got.append) as consumer:
        await until(lambda: len(pauses) >= 5)
        assert consumer.running and not got
        assert sqs.client.create_queue(QueueName=name)["QueueUrl"].endswith(f"/{ACCOUNT}/{name}")
        sqs.send(url, envelope("job-1"))
        await until(lambda: consumer.deleted == 1)
        failures = consumer.receive_errors
    assert pauses[:5] == [1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert [e.job_id for e in got] == ["job-1"]
    warned = [r.getMessage() for r in caplog.records if "cannot read" in r.getMessage()]
    assert warned and ("QueueDoesNotExist" in warned[0] or "NonExistentQueue" in warned[0])
    assert len(warned) < failures  # not a line per failure
    assert any("again" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


@pytest.mark.slow  # waits for a server to come up
async def test_an_unreachable_endpoint_is_retried_until_it_answers(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there yet: connections are refused
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection(endpoint))
    got: list[JobEvent] = []
    servers: list[ThreadedMotoServer] = []
    url = f"{endpoint}/{ACCOUNT}/comes-back"
    try:
        async with EventConsumer.subscribe(url, "conn", Factory(), got.append) as consumer:
            await until(lambda: len(pauses) >= 3)
            assert consumer.running and consumer.receives == 0
            servers.append(start_server(port))
            client = boto3.client(
                "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
            )
            client.create_queue(QueueName="comes-back")
            client.send_message(QueueUrl=url, MessageBody=envelope("job-1"))
            await until(lambda: consumer.deleted == 1)
    finally:
        for server in servers:
            server.stop()
    assert [e.job_id for e in got] == ["job-1"]
    assert consumer.receive_errors >= 3


async def test_the_last_subscriber_leaving_stops_the_loop_and_closes_the_client(sqs: Sqs) -> None:
    url = sqs.new_queue()
    factory = Factory()
    async with EventConsumer.subscribe(url, "conn", factory, lambda e: None) as consumer:
        async with EventConsumer.subscribe(url, "conn", factory, lambda e: None):
            await until(lambda: bool(factory.hooks[0].receive_calls))  # a long poll is in flight
        assert consumer.running  # one subscriber left
        assert factory.hooks[0].closed == 0
    assert not consumer.running and consumer.client is None
    assert factory.hooks[0].made == factory.hooks[0].closed == 1
    async with EventConsumer.subscribe(url, "conn", factory, lambda e: None) as again:
        assert again is not consumer  # a new subscriber starts a new loop
    assert factory.hooks[1].closed == factory.hooks[1].made


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (f"https://sqs.eu-west-2.amazonaws.com/{ACCOUNT}/events", "eu-west-2"),
        (f"https://sqs.us-gov-west-1.amazonaws.com/{ACCOUNT}/events", "us-gov-west-1"),
        (f"https://sqs.cn-north-1.amazonaws.com.cn/{ACCOUNT}/events", "cn-north-1"),
        (f"https://ap-south-1.queue.amazonaws.com/{ACCOUNT}/events", "ap-south-1"),
        (f"https://queue.amazonaws.com/{ACCOUNT}/events", "us-east-1"),
        (f"http://sqs.eu-central-1.localhost.localstack.cloud:4566/{ACCOUNT}/events", "eu-central-1"),
        (f"http://127.0.0.1:5000/{ACCOUNT}/events", None),
        (f"http://localhost:4566/{ACCOUNT}/events", None),
    ],
)
def test_region_of(url: str, region: str | None) -> None:
    assert region_of(url) == region


async def test_the_client_is_made_in_the_queues_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue's URL says where it is; the connection's region is the Batch jobs' (no request is sent)."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "aws", "login": "a", "password": "b", "extra": {"region_name": "us-east-1"}}),
    )
    for url, region in (
        (f"https://sqs.eu-west-2.amazonaws.com/{ACCOUNT}/events", "eu-west-2"),
        (f"http://127.0.0.1:1/{ACCOUNT}/events", "us-east-1"),
    ):
        consumer = EventConsumer(url, "conn", SqsHook(aws_conn_id=CONN_ID))
        async with await consumer._client_context() as client:
            assert client.meta.region_name == region
