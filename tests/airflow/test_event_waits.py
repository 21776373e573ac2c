"""Event-driven waits (#17): ``BatchJobsSensor(deferrable=True, events_queue_url=...)``. Job state-change events wake
a confirming listing; the verdict comes from that listing, judged as polling judges it; polling is the safety net at
10x ``poke_interval`` (stretching to 30x while the events prove right).

On the emulator with events on (moto's SQS server on 127.0.0.1, the emulator publishing each status change as
EventBridge delivers it): the shared poll's sleeps move the emulated clock in small steps, and after each step the
test waits (in real time, asserting nothing about it) until the consumer has taken every published message off the
queue, so that an event is read at the emulated moment it was sent. Every figure asserted is emulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred
from botocore.config import Config

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import InvalidQueryError, JobQuery
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.event_consumer import EventConsumer
from airflow_batch_jobs.triggers.event_wait import EventWait
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from airflow_batch_jobs.verdict_event import resolve_event

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_batch_jobs.testing import BatchEmulator

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/batch-job-events"


# -- the argument ---------------------------------------------------------------------------------------------------
def test_events_queue_url_without_deferrable_names_both_arguments() -> None:
    with pytest.raises(InvalidQueryError, match=r"events_queue_url=.*deferrable is False.*deferrable=True"):
        BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url=URL)
    with pytest.raises(InvalidQueryError, match="deferrable=True"):  # a template too: it can only render to a URL
        BatchJobsSensor(task_id="t", job_queue="queue", deferrable=False, events_queue_url="{{ var.value.q }}")
    with (
        mock.patch("airflow_batch_jobs.sensors.batch_jobs.conf.getboolean", return_value=False),
        pytest.raises(InvalidQueryError, match="deferrable is False"),
    ):  # deferrable=None follows [operators] default_deferrable
        BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url=URL)
    BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url=None)  # no events: nothing to say
    BatchJobsSensor(task_id="t", job_queue="queue", events_queue_url="")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("arn:aws:sqs:us-east-1:123456789012:batch-job-events", f"is the queue's ARN; give its URL, e.g. '{URL}'"),
        ("batch-job-events", "aws sqs get-queue-url --queue-name batch-job-events"),
        ("https://sqs.us-east-1.amazonaws.com/batch-job-events", "not an SQS queue URL"),
        (["https://sqs.us-east-1.amazonaws.com/123456789012/q"], "as a string"),
    ],
)
def test_a_plain_value_that_is_no_queue_url_fails_at_parse_time(value: Any, says: str) -> None:
    with pytest.raises(InvalidQueryError, match="events_queue_url=") as err:
        BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url=value)
    assert says in str(err.value)


def test_a_template_is_checked_once_rendered() -> None:
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url="{{ params.q }}")
    with pytest.raises(InvalidQueryError, match="is the queue's ARN"):
        sensor.render_template_fields({"params": {"q": "arn:aws:sqs:us-east-1:123456789012:batch-job-events"}})
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url="{{ params.q }}")
    sensor.render_template_fields({"params": {"q": f" {URL} "}})
    assert sensor.events_queue_url == URL
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url="{{ params.q }}")
    sensor.render_template_fields({"params": {"q": ""}})  # a Variable left empty: polling only
    assert not sensor.events_queue_url
    assert "events_queue_url" in BatchJobsSensor.template_fields


@pytest.mark.usefixtures("batch_aws_conn")
def test_the_trigger_carries_the_queue_url_in_its_kwargs(batch_emulator: Any) -> None:
    """Serialized with the rest, so that a restarted triggerer rebuilds an event-driven trigger."""
    batch_emulator.script_job(batch_emulator.submit("job"), {"attempts": [{"duration": 600}]})
    batch_emulator.advance(10)
    sensor = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True, events_queue_url=URL)
    with pytest.raises(TaskDeferred) as deferral:
        sensor.execute({})
    _, kwargs = deferral.value.trigger.serialize()
    assert kwargs["events_queue_url"] == URL
    polling = BatchJobsSensor(task_id="t", job_queue="queue", deferrable=True)
    with pytest.raises(TaskDeferred) as deferral:
        polling.execute({})
    assert deferral.value.trigger.serialize()[1]["events_queue_url"] is None


# -- the wait on the emulator's clock, events on ----------------------------------------------------------------------
EMULATOR_PROFILE = "realistic"  # retries back to RUNNABLE, jobs listed a moment late, ... (tests/airflow/conftest.py)
INTERVAL = 30.0  # poke_interval: the safety net polls every 300 s
STEP_S = 0.5  # the emulated clock moves this far between two looks at the queue


@pytest.fixture
def events_emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[BatchEmulator]:
    """An emulator publishing job state-change events (queues ``queue`` and ``other``), ``aws_default`` pointing at
    it (its SQS calls at the events queue)."""
    from airflow_batch_jobs.testing import BatchEmulator

    with BatchEmulator(profile=EMULATOR_PROFILE, events=True) as emulator:
        emulator.setup()
        emulator.setup(queue="other")
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.airflow_connection())
        yield emulator


@pytest.fixture
def polling_emu() -> Iterator[BatchEmulator]:
    """The same service without events, for the polling side of a comparison (:func:`emulated` points
    ``aws_default`` at the emulator it runs on)."""
    from airflow_batch_jobs.testing import BatchEmulator

    with BatchEmulator(profile=EMULATOR_PROFILE) as emulator:
        emulator.setup()
        emulator.setup(queue="other")
        yield emulator


class EventTime:
    """The shared poll's sleeps move the emulator's clock ``STEP_S`` at a time; after each step, the consumer is given
    the (real) time to take off the queue everything the emulator published, so an event is read at the emulated
    moment it was sent. A listing requested meanwhile cuts the sleep short where the clock is."""

    def __init__(self, emu: BatchEmulator) -> None:
        self.emu = emu
        # one try, short timeouts: a queue made unreachable answers 503 or nothing: no drain to wait for then
        quick = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=2)
        self.sqs = emu.sqs_client(config=quick) if emu.events is not None else None

    def clock(self) -> float:
        return self.emu.now_ms() / 1000

    async def sleep(self, seconds: float) -> None:
        end = self.emu.now_ms() + int(seconds * 1000)
        while (left := end - self.emu.now_ms()) > 0:
            self.emu.advance(min(STEP_S * 1000, left) / 1000)
            await self.drained()
        await asyncio.sleep(0)

    async def drained(self) -> None:
        """Until no message is on the queue or in flight (bounded: a queue kept unreachable never drains)."""
        if self.sqs is None:
            return
        for _ in range(500):
            if await asyncio.to_thread(self._empty):
                await asyncio.sleep(0)  # the consumer's deliveries are done before it deletes
                return
            await asyncio.sleep(0.01)

    def _empty(self) -> bool:
        assert self.sqs is not None
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            found = self.sqs.get_queue_attributes(QueueUrl=self.emu.events_queue_url, AttributeNames=names)
        except Exception:  # an unreachable queue: nothing to wait for
            return True
        return all(found["Attributes"].get(name) == "0" for name in names)


class Waits:
    """Every EventWait made while installed (the triggers make theirs inside run())."""

    def __init__(self) -> None:
        self.made: list[EventWait] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[Waits]:
        attach = EventWait.attach

        def recorded(wait: EventWait, poll: Any, watch: Any, cadence: Any) -> None:
            self.made.append(wait)
            attach(wait, poll, watch, cadence)

        with mock.patch.object(EventWait, "attach", recorded):
            yield self


@contextlib.contextmanager
def emulated(emu: BatchEmulator) -> Iterator[EventTime]:
    time = EventTime(emu)
    with (
        mock.patch.object(SharedPoll, "sleep", staticmethod(time.sleep)),
        mock.patch.object(SharedPoll, "clock", staticmethod(time.clock)),
        mock.patch("airflow_batch_jobs.watch.wall_clock_ms", emu.now_ms),
        mock.patch.dict("os.environ", {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}),
        judged_before_sleep(),
    ):
        yield time


@contextlib.contextmanager
def judged_before_sleep() -> Iterator[None]:
    """As :class:`~airflow_batch_jobs.testing.deferral.JudgedBeforeSleep`, per shared poll (several polls run at
    once here): a poll loop publishes a result, then waits until a subscriber asks for the next one (it has judged
    this one) before it sleeps, so that the clock does not move while a trigger is still judging."""
    publish, next_result = SharedPoll._publish, SharedPoll.next_result
    judged: dict[int, asyncio.Event] = {}

    async def held_publish(poll: SharedPoll, result: Any) -> None:
        judged[id(poll)] = asyncio.Event()
        await publish(poll, result)
        await judged[id(poll)].wait()

    async def judged_next_result(poll: SharedPoll, after: int) -> Any:
        if id(poll) in judged:
            judged[id(poll)].set()
        return await next_result(poll, after)

    with (
        mock.patch.object(SharedPoll, "_publish", held_publish),
        mock.patch.object(SharedPoll, "next_result", judged_next_result),
    ):
        yield


async def verdict_of(trigger: BatchJobsTrigger, emu: BatchEmulator) -> tuple[dict[str, Any], int]:
    """The trigger's one event (made whole as the worker makes it) and the emulated moment it came."""
    payload, at = await payload_of(trigger, emu)
    if payload["status"] == "error":
        return payload, at
    return resolve_event(payload, BatchJobsHook(), trigger.xcom_detail), at


async def payload_of(trigger: BatchJobsTrigger, emu: BatchEmulator) -> tuple[dict[str, Any], int]:
    """The trigger's one event as it yields it, and the emulated moment it came; the trigger closed."""
    run = trigger.run()
    async with contextlib.aclosing(run) as events:  # type: ignore[type-var]
        payload = (await anext(events)).payload
    at = emu.now_ms()
    await trigger.cleanup()
    return payload, at


def last_end_ms(emu: BatchEmulator, job_ids: list[str]) -> int:
    """When the last of the jobs finished, by the service's own record."""
    jobs = emu.client().describe_jobs(jobs=job_ids)["jobs"]
    assert all(job["status"] in ("SUCCEEDED", "FAILED") for job in jobs)
    return max(job["stoppedAt"] for job in jobs)


def wait_on(emu: BatchEmulator, name: str = "etl-*", xcom_detail: str = "summary", **policy: Any) -> BatchJobsTrigger:
    return BatchJobsTrigger(
        query=JobQuery.build(job_queue="queue", job_name=name).to_dict(),
        policy=Policy.build(**policy).to_dict(),
        poll_interval=INTERVAL,
        wait_began_ms=emu.now_ms(),
        xcom_detail=xcom_detail,
        events_queue_url=emu.events_queue_url if emu.events is not None else None,
    )


def night(emu: BatchEmulator, n: int = 20) -> list[str]:
    """``n`` jobs of 60 s to about 20 minutes; every 5th is killed once and retried (back to RUNNABLE)."""
    ids = []
    for i in range(n):
        duration = 60 + 57 * i
        if i % 5 == 2:
            script = {"attempts": [{"exit_code": 137, "duration": duration}, {"exit_code": 0, "duration": 30}]}
            job_id = emu.submit(f"etl-{i}", retryStrategy={"attempts": 2})
        else:
            script = {"attempts": [{"exit_code": 0, "duration": duration}]}
            job_id = emu.submit(f"etl-{i}")
        emu.script_job(job_id, script)
        ids.append(job_id)
    return ids


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_the_verdict_comes_within_2_s_of_the_last_job_and_costs_far_fewer_listings(
    events_emu: BatchEmulator, polling_emu: BatchEmulator
) -> None:
    results = {}
    for mode, emu in (("events", events_emu), ("polling", polling_emu)):
        ids = night(emu)
        emu.reset_counters()
        with emulated(emu):
            event, at = await verdict_of(wait_on(emu, min_jobs=20), emu)
        results[mode] = (event, (at - last_end_ms(emu, ids)) / 1000, emu.calls.get("ListJobs", 0))
    (events_event, events_lag, events_lists), (polling_event, polling_lag, polling_lists) = results.values()
    # the same verdict, records and message as polling gives
    assert events_event["status"] == polling_event["status"] == "success", events_event["message"]
    assert events_event["message"] == polling_event["message"]
    assert [r["job_name"] for r in events_event["records"]] == [r["job_name"] for r in polling_event["records"]]
    assert events_lag <= 2.0, events_lag
    assert events_lists * 3 <= polling_lists, (events_lists, polling_lists)
    print(
        f"\nverdict after the last job: events {events_lag:.1f} s, polling {polling_lag:.1f} s (interval "
        f"{INTERVAL:g} s); ListJobs over the wait: events {events_lists}, polling {polling_lists}"
    )


def script(emu: BatchEmulator, name: str, *attempts: tuple[int, float], queue: str = "queue", **request: Any) -> str:
    """Submit ``name`` whose attempts exit with these codes after these durations (retried as many times)."""
    if len(attempts) > 1:
        request.setdefault("retryStrategy", {"attempts": len(attempts)})
    job_id = emu.submit(name, queue=queue, **request)
    emu.script_job(job_id, {"attempts": [{"exit_code": code, "duration": seconds} for code, seconds in attempts]})
    return job_id


@pytest.mark.parametrize(
    "faults",
    [
        {"duplicate": 0.5, "reorder": 0.5, "reorder_window_seconds": 30},  # an old RUNNING after SUCCEEDED, ...
        {"duplicate": 0.3, "delay_seconds": 5},
    ],
    ids=["duplicated-reordered", "late"],
)
@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_duplicated_reordered_or_late_events_give_no_false_verdict(
    events_emu: BatchEmulator, faults: dict[str, float]
) -> None:
    emu = events_emu
    emu.inject_event_faults(**faults)
    retried = script(emu, "etl-retried", (137, 60), (0, 90))  # killed, back to RUNNABLE, then succeeds
    ok = script(emu, "etl-ok", (0, 30))
    with emulated(emu):
        event, at = await verdict_of(wait_on(emu, min_jobs=2), emu)
    # no failure while etl-retried was being retried; the success once it was over
    assert event["status"] == "success", event["message"]
    attempts = {r["job_name"]: [a["exit_code"] for a in r["attempts"]] for r in event["records"]}
    assert attempts == {"etl-retried": [137, 0], "etl-ok": [0]}
    assert (at - last_end_ms(emu, [retried, ok])) / 1000 <= faults.get("delay_seconds", 0) + 2.0
    published = emu.events_published()
    assert published["duplicated"] or faults.get("delay_seconds")  # the faults did happen


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_a_failure_comes_from_the_listing_as_soon_as_its_event_does(events_emu: BatchEmulator) -> None:
    emu = events_emu
    emu.inject_event_faults(duplicate=0.5, reorder=0.5, reorder_window_seconds=30)
    bad = script(emu, "etl-bad", (1, 40), (2, 40))  # fails its retry too
    script(emu, "etl-long", (0, 3600))
    with emulated(emu):
        event, at = await verdict_of(wait_on(emu, min_jobs=2), emu)
    assert event["status"] == "failure" and "etl-bad" in event["message"] and "etl-long" not in event["message"]
    assert (at - last_end_ms(emu, [bad])) / 1000 <= 2.0  # fail_fast: not waiting for etl-long


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_with_every_event_lost_the_safety_net_gives_the_verdict_within_one_of_its_intervals(
    events_emu: BatchEmulator,
) -> None:
    emu = events_emu
    emu.inject_event_faults(loss=1.0)
    ids = night(emu, 5)
    emu.reset_counters()
    began = emu.now_ms()
    with Waits().installed() as waits, emulated(emu):
        event, at = await verdict_of(wait_on(emu, min_jobs=5), emu)
    assert event["status"] == "success", event["message"]
    assert (at - last_end_ms(emu, ids)) / 1000 <= 10 * INTERVAL + STEP_S
    assert waits.made[0].delivered == 0 and emu.events_published()["lost"] > 0
    # the safety net's polls only: one every 300 s (and the first one at a random part of it)
    assert emu.calls["ListJobs"] <= (at - began) // 300_000 + 1


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_an_unreachable_queue_delays_the_events_never_the_verdict_past_the_safety_net(
    events_emu: BatchEmulator,
) -> None:
    emu = events_emu
    ids = [script(emu, f"etl-{i}", (0, 60 + 30 * i)) for i in range(3)]
    emu.queue_unreachable(400)  # the whole wait long
    with mock.patch.object(EventConsumer, "sleep", staticmethod(lambda _: asyncio.sleep(0.01))), emulated(emu):
        event, at = await verdict_of(wait_on(emu, min_jobs=3), emu)
    assert event["status"] == "success" and len(event["records"]) == 3
    assert (at - last_end_ms(emu, ids)) / 1000 <= 10 * INTERVAL + STEP_S


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_events_of_other_queues_and_names_ask_for_no_listing(events_emu: BatchEmulator) -> None:
    emu = events_emu
    own = script(emu, "etl-own", (0, 200))
    for i in range(5):
        script(emu, f"other-{i}", (0, 20 + i))  # same queue, another name
        script(emu, f"etl-{i}", (0, 20 + i), queue="other")  # the name, another queue
    with Waits().installed() as waits, emulated(emu):
        event, at = await verdict_of(wait_on(emu, min_jobs=1), emu)
    wait = waits.made[0]
    assert event["status"] == "success" and [r["job_name"] for r in event["records"]] == ["etl-own"]
    assert (at - last_end_ms(emu, [own])) / 1000 <= 2.0
    own_events = 5  # PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED
    assert wait.matched == own_events and wait.delivered >= own_events + 10 * 4
    assert wait.confirmations == 1  # the one its last event asked for; the other jobs' events asked for none


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_a_job_only_submitted_keeps_the_wait_from_succeeding(events_emu: BatchEmulator) -> None:
    """etl-b is submitted after the wait's first listing and stays SUBMITTED (no event is sent at submission) past
    etl-a's end: the events alone would say the wait is over; the confirming listing shows etl-b, and the wait
    goes on until etl-b has ended, without listing again and again."""
    emu = events_emu
    emu.add_outcome({"submitted": 600, "attempts": [{"exit_code": 0, "duration": 10}]}, name="etl-b")
    a = script(emu, "etl-a", (0, 120))
    began = emu.now_ms()
    submitted: list[str] = []

    async def submit_b_later() -> None:
        while emu.now_ms() < began + 60_000:
            await asyncio.sleep(0.001)
        submitted.append(emu.submit("etl-b"))

    emu.reset_counters()
    with emulated(emu):
        later = asyncio.ensure_future(submit_b_later())
        event, at = await verdict_of(wait_on(emu, min_jobs=1), emu)
        await later
    assert event["status"] == "success" and len(event["records"]) == 2, event["message"]
    assert at >= last_end_ms(emu, [a, *submitted])  # not at etl-a's end
    assert (at - last_end_ms(emu, [a, *submitted])) / 1000 <= 2.0
    # ~700 s: a first listing, one at etl-a's end, the safety net's two or three, the one at etl-b's end
    assert emu.calls["ListJobs"] <= 7


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_two_waits_on_one_queue_share_one_consumer(events_emu: BatchEmulator) -> None:
    emu = events_emu
    a_ids = [script(emu, f"a-{i}", (0, 60 + 10 * i)) for i in range(3)]
    b_ids = [script(emu, f"b-{i}", (0, 90 + 10 * i)) for i in range(3)]
    seen: list[tuple[int, int]] = []

    async def watch_consumers() -> None:
        while True:
            consumers = EventConsumer._loops.get(asyncio.get_running_loop(), {})
            seen.append((len(consumers), sum(len(c.subscribers) for c in consumers.values())))
            await asyncio.sleep(0.005)

    with Waits().installed() as waits, emulated(emu):
        watcher = asyncio.ensure_future(watch_consumers())
        (a, a_at), (b, b_at) = await asyncio.gather(
            verdict_of(wait_on(emu, "a-*", min_jobs=3), emu), verdict_of(wait_on(emu, "b-*", min_jobs=3), emu)
        )
        watcher.cancel()
    assert a["status"] == b["status"] == "success"
    # Each wait's verdict came from a listing its own events asked for, long before its safety net. Not held to 2 s
    # here: the two poll loops each move the one emulated clock, so one moves it on while the other lists (real time
    # under load); the single-wait tests hold the 2 s.
    assert all(wait.confirmations >= 1 and wait.matched > 0 for wait in waits.made) and len(waits.made) == 2
    for at, ids in ((a_at, a_ids), (b_at, b_ids)):
        assert (at - last_end_ms(emu, ids)) / 1000 < 5 * INTERVAL
    assert (1, 2) in seen and max(n for n, _ in seen) == 1  # one consumer, both waits subscribed to it
    assert EventConsumer._loops.get(asyncio.get_running_loop()) == {}  # stopped with its last subscriber


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_a_wait_joining_a_running_consumer_lists_within_one_interval(events_emu: BatchEmulator) -> None:
    """The events sent before a wait subscribed went to the waits already on the queue's consumer, which deleted
    them: the jobs finished while the sensor deferred. A listing within one poke_interval of subscribing gives the
    verdict (found in a real triggerer, where an AssetWatcher's trigger held the consumer: the wait sat until its
    safety net)."""
    emu = events_emu
    script(emu, "other-0", (0, 3600))  # keeps the first wait (and the consumer) going
    ids = [script(emu, f"etl-{i}", (0, 60 + 10 * i)) for i in range(3)]
    began = emu.now_ms()
    with Waits().installed() as waits, emulated(emu):
        first = asyncio.ensure_future(verdict_of(wait_on(emu, "other-*", min_jobs=1), emu))
        while emu.now_ms() < began + 200_000:  # the etl jobs end; their events are read, and deleted
            await asyncio.sleep(0.005)
        assert waits.made[0].delivered >= waits.made[0].matched + 3 * 4  # the etl jobs' events: read, not for it
        joined = emu.now_ms()
        event, at = await verdict_of(wait_on(emu, min_jobs=3), emu)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    assert event["status"] == "success" and len(event["records"]) == 3, event["message"]
    assert joined > last_end_ms(emu, ids)
    assert (at - joined) / 1000 <= INTERVAL + STEP_S  # not the safety net's 300 s


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_a_rebuilt_trigger_still_ends_right_and_in_time(events_emu: BatchEmulator) -> None:
    emu = events_emu
    ids = night(emu, 6)
    first = wait_on(emu, min_jobs=6)
    began = emu.now_ms()
    with emulated(emu):
        running = asyncio.ensure_future(verdict_of(first, emu))
        while emu.now_ms() < began + 200_000:  # some jobs have finished, others run
            await asyncio.sleep(0.005)
        running.cancel()  # the triggerer goes away
        await asyncio.gather(running, return_exceptions=True)
        emu.advance(60)  # and comes back a minute later: what was sent meanwhile waits on the queue
        rebuilt = BatchJobsTrigger(**json.loads(json.dumps(first.serialize()[1])))
        assert rebuilt.events_queue_url == emu.events_queue_url
        event, at = await verdict_of(rebuilt, emu)
    assert event["status"] == "success" and len(event["records"]) == 6, event["message"]
    assert (at - last_end_ms(emu, ids)) / 1000 <= 2.0


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_secrets_in_the_events_never_reach_the_logs_or_the_trigger_event(
    events_emu: BatchEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = events_emu
    secret = "hunter2-in-an-event-environment"
    overrides = {"environment": [{"name": "DB_PASSWORD", "value": secret}]}
    script(emu, "etl-secret", (1, 30), containerOverrides=overrides)
    script(emu, "etl-ok", (0, 20), containerOverrides=overrides)
    caplog.set_level(logging.DEBUG)
    with emulated(emu):
        payload, _ = await payload_of(wait_on(emu, min_jobs=2, xcom_detail="full"), emu)
        event = resolve_event(payload, BatchJobsHook(), "full")
    assert payload["status"] == "failure" and "etl-secret" in event["message"]
    # what the emulator logs as the service sending the events (its own SendMessageBatch) aside: the provider never
    # sends; it receives (ReceiveMessage bodies at DEBUG), parses, matches, lists, describes and logs progress
    leaks = [r.getMessage()[:200] for r in caplog.records if secret in r.getMessage()]
    assert all("OperationModel(name=SendMessageBatch)" in leak for leak in leaks), leaks
    assert any("ReceiveMessage" in r.getMessage() for r in caplog.records)  # the consumer's calls were logged
    assert secret not in json.dumps(payload) and secret not in json.dumps(event, default=str)


@pytest.mark.slow  # an emulated wait reading moto\'s SQS: seconds each
async def test_the_sensor_defers_with_events_and_ends_on_the_listing_s_verdict(
    events_emu: BatchEmulator, context: dict[str, Any]
) -> None:
    emu = events_emu
    bad = script(emu, "etl-bad", (3, 100))
    script(emu, "etl-ok", (0, 50))
    sensor = BatchJobsSensor(
        task_id="wait",
        job_queue="queue",
        job_name="etl-*",
        min_jobs=2,
        fail_fast=False,
        deferrable=True,
        poke_interval=INTERVAL,
        events_queue_url="{{ params.events }}",
    )
    sensor.render_template_fields({"params": {"events": emu.events_queue_url}})
    with emulated(emu), mock.patch.dict("os.environ", {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}):
        with pytest.raises(TaskDeferred) as deferral:
            sensor.execute(context)
        payload, at = await payload_of(deferral.value.trigger, emu)
    assert (at - last_end_ms(emu, [bad])) / 1000 <= 2.0
    with pytest.raises(AirflowFailException, match="etl-bad") as failed:
        await asyncio.to_thread(sensor.execute_complete, context, payload)
    assert "exit code 3" in str(failed.value)
    assert {r["job_name"] for r in context["ti"].pushed["return_value"]} == {"etl-bad", "etl-ok"}


@pytest.mark.slow  # an emulated wait reading moto's SQS: seconds each
async def test_runnable_timeout_fails_as_soon_as_polling_would(events_emu: BatchEmulator) -> None:
    """Found by review: a RUNNABLE event armed no deadline (runnable_timeout counts from the listings that see the
    job RUNNABLE), so the failure waited for the safety net: 250 s after the timeout fell due, polling 58 s. The
    event now asks for a listing within poke_interval, and that listing arms the deadline."""
    emu = events_emu
    emu.add_outcome({"submitted": 60, "runnable": 3000, "attempts": [{"exit_code": 0}]}, name="etl-stuck")
    job = emu.submit("etl-stuck")  # SUBMITTED past the first listing, then RUNNABLE for an hour
    with emulated(emu):
        event, at = await verdict_of(wait_on(emu, runnable_timeout=120), emu)
    assert event["status"] == "failure" and "etl-stuck" in event["message"], event["message"]
    created = emu.client().describe_jobs(jobs=[job])["jobs"][0]["createdAt"]
    after_due_s = (at - created) / 1000 - 60 - 120
    assert after_due_s <= 2 * INTERVAL + 2, after_due_s  # polling's bound; the safety net is 10 intervals
