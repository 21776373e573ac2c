"""Plays a generated history on the emulator and polls it the way Airflow would: poke (one sensor for the whole
wait), reschedule (a new sensor every try) or deferrable (the first poke, then the trigger in a triggerer's event
loop, optionally restarted from its serialized kwargs mid-wait), the trigger reading job state-change events too
when the history has them (:class:`EventReads`). The emulated clock moves only between polls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from unittest import mock

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException, TaskDeferred

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.testing.clock import ManualClock
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.event_consumer import EventConsumer
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from tests.fake_task_state_store import FakeTaskStateStore

from .histories import RETRY_137_THEN_EXIT, SAFETY_NET_MAX_FACTOR, SKIP_CODE, SUCCESS_CODE, EventPlan, History, JobPlan

if TYPE_CHECKING:
    from collections.abc import Iterator

START_MS = 1_795_000_000_000
HORIZON_S = 900  # every generated job has long finished by then (the last ends before 400 s)
# With events, the wait's own polls come every SAFETY_NET_FACTOR to SAFETY_NET_MAX_FACTOR intervals: it gets as many
# of the longest after the jobs' end as polling gets polls (lost events, an unreachable queue, failed listings)
EVENTS_EXTRA_SAFETY_NETS = 8
# A consumer's long poll (ReceiveMessage WaitTimeSeconds) against the emulator's queue, real seconds: a poll left
# waiting on the server by a triggerer that went away takes the messages that come meanwhile (SQS hides them for the
# visibility timeout), so a restarted triggerer begins once it is over.
EVENTS_LONG_POLL_S = 1
DRAIN_TIMEOUT_S = 10.0  # real seconds a step waits for the consumer to read what the step sent


def horizon_s(history: History) -> float:
    if history.events is None:
        return HORIZON_S
    return HORIZON_S + EVENTS_EXTRA_SAFETY_NETS * SAFETY_NET_MAX_FACTOR * history.interval


@dataclass
class Outcome:
    verdict: str  # SUCCESS | SKIP | FAILURE | NONE (no verdict by the horizon)
    at_ms: int
    records: list[dict[str, Any]] | None
    message: str = ""
    polls: int = 0
    blind_ms: int | None = None  # deferrable: from the poke's listing to a rebuilt trigger's first (nothing between)
    events: dict[str, int] | None = None  # with events: what was published, and read


@dataclass
class Stops:
    """Cancels and terminates due at emulated times, carried out as the clock passes them."""

    due: list[tuple[int, str, str]] = field(default_factory=list)  # (ms, job name, how)

    def advance(self, emu: BatchEmulator, seconds: float) -> None:
        target = emu.now_ms() + int(seconds * 1000)
        while self.due and self.due[0][0] <= target:
            at, name, how = self.due.pop(0)
            emu.advance(max(0, at - emu.now_ms()) / 1000)  # submits what is due by then
            emu.model.stop_job({"jobId": emu.model.ids_by_name[name], "reason": f"{how} by the history"}, how)
        emu.advance(max(0, target - emu.now_ms()) / 1000)


def _script(codes: tuple[int, ...], plan: JobPlan) -> dict[str, Any]:
    reasons = {137: "OutOfMemoryError: Container killed due to memory usage"}
    return {
        "attempts": [{"exit_code": c, "reason": reasons.get(c), "duration": plan.duration} for c in codes],
        "runnable": plan.runnable,
        "submitted": plan.submitted,
    }


def build(history: History) -> tuple[BatchEmulator, Stops]:
    emu = BatchEmulator(
        clock=ManualClock(START_MS),
        seed=history.seed,
        profile="realistic",
        behaviours=history.behaviours,
        retention_seconds=history.retention_seconds,
        events=history.events is not None,
    )
    faults = history.events
    if faults is not None:
        emu.inject_event_faults(
            duplicate=faults.duplicate,
            reorder=faults.reorder,
            delay_seconds=faults.delay_seconds,
            loss=faults.loss,
            reorder_window_seconds=faults.reorder_window_seconds,
        )
        if faults.unreachable is not None:
            at, seconds, how = faults.unreachable
            assert emu.events is not None
            emu.events.unreachable(seconds, how=how, start_ms=START_MS + int(at * 1000))
    emu.setup()
    stops = Stops()
    for plan in history.jobs:
        if plan.array_size:
            for index, codes in enumerate(plan.child_exit_codes):
                emu.add_outcome(_script(codes, plan), name=plan.name, indices=[index])
        emu.add_outcome(_script(plan.exit_codes, plan), name=plan.name)
    for plan in history.jobs:  # submitted while the sensor waits, as the clock passes their time
        retry: dict[str, Any] = {"attempts": plan.attempts}
        if plan.evaluate_on_exit:
            retry["evaluateOnExit"] = RETRY_137_THEN_EXIT
        request: dict[str, Any] = {
            "jobName": plan.name,
            "jobQueue": "queue",
            "jobDefinition": "jobdef",
            "retryStrategy": retry,
        }
        if plan.array_size:
            request["arrayProperties"] = {"size": plan.array_size}
        due = START_MS + int(plan.submit_at * 1000)
        emu.model.schedule(due, request)
        if plan.stop_after is not None:
            stops.due.append((due + int(plan.stop_after * 1000), plan.name, plan.stop_how))
    stops.due.sort()
    emu.model.run_schedule()
    return emu, stops


@contextlib.contextmanager
def connection(emu: BatchEmulator) -> Iterator[None]:
    """``aws_default`` points at the emulator; every sensor of the history shares one boto3 client (a reschedule
    try would make its own: that costs 0.2 s of client set-up a try and changes nothing the test judges)."""
    clients: dict[str, Any] = {}
    make_client = BatchJobsHook.get_client_type

    def shared_client(hook: BatchJobsHook, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("deferrable"):  # an aiobotocore client belongs to its event loop: the trigger makes its own
            return make_client(hook, *args, **kwargs)
        if "batch" not in clients:
            clients["batch"] = make_client(hook, *args, **kwargs)
        return clients["batch"]

    with (
        mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}),
        mock.patch.object(BatchJobsHook, "get_client_type", shared_client),
    ):
        yield


class Contexts:
    """The task context of each try, as the Task SDK gives it: one task instance (its XCom pushes kept) in the first
    try of its round, ``task_reschedule_count`` counting the reschedules, and a ``task_state_store`` shared by the
    tries when the history's Airflow has one (3.3 and later)."""

    def __init__(self, history: History) -> None:
        self.ti = mock.MagicMock(try_number=1, max_tries=0)
        self.ti.task.retries = 0
        self.ti.get_first_reschedule_date.return_value = None
        self.ti.pushed = {}
        self.ti.xcom_push.side_effect = lambda key, value: self.ti.pushed.__setitem__(key, value)
        self.store = FakeTaskStateStore() if history.state_store else None
        self.tries = 0

    def next_try(self) -> dict[str, Any]:
        ctx: dict[str, Any] = {"ti": self.ti, "task_reschedule_count": self.tries}
        if self.store is not None:
            ctx["task_state_store"] = self.store
        self.tries += 1
        return ctx


def sensor(history: History, **kwargs: Any) -> BatchJobsSensor:
    policy = dict(history.policy)
    return BatchJobsSensor(
        task_id="wait",
        job_queue="queue",
        job_name="etl-*",
        poke_interval=history.interval,
        timeout=horizon_s(history) * 2,
        max_poll_errors=10_000,  # faults delay the verdict; they are not what this test judges
        log_lines=history.log_lines,
        botocore_config={"retries": {"mode": "standard", "total_max_attempts": 1}},  # no wall-clock retry sleeps
        **policy,
        **kwargs,
    )


def _ended(ctx: dict[str, Any], emu: BatchEmulator, verdict: str, polls: int, message: str = "") -> Outcome:
    return Outcome(verdict, emu.now_ms(), ctx["ti"].pushed.get("return_value"), message, polls)


class EventReads:
    """A history's events, read as a triggerer reads them: the trigger's sleeps move the emulated clock
    ``step_seconds`` at a time, and after each step the test waits (real time; nothing is measured) until the
    consumer has read every message the step put on the queue, so an event is read at the emulated moment it was
    delivered. A listing an event asks for cuts the sleep short once the step's messages are all read (the order in
    which a batch arrives does not decide what is listed when). Once every job has ended and nothing is left to
    deliver, the rest of a sleep is one jump. The consumer's backoff after a failed read lasts emulated seconds."""

    def __init__(self, emu: BatchEmulator, plan: EventPlan) -> None:
        self.emu = emu
        self.step_ms = int(plan.step_seconds * 1000)
        self.consumers: list[EventConsumer] = []  # every one made, triggerer after triggerer
        self.backoffs: list[tuple[int, asyncio.Future[None]]] = []  # consumers waiting for the clock
        self.not_read = 0  # messages a step waited for in vain (taken by a gone triggerer's long poll)
        self.undrained = 0  # steps that waited DRAIN_TIMEOUT_S

    def counts(self) -> dict[str, int]:
        read = {
            "received": sum(c.received for c in self.consumers),
            "delivered": sum(c.delivered for c in self.consumers),
            "duplicates": sum(c.duplicates for c in self.consumers),
            "receive_errors": sum(c.receive_errors for c in self.consumers),
        }
        return {**self.emu.events_published(), **read, "undrained_steps": self.undrained}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with (
            mock.patch.object(SharedPoll, "clock", staticmethod(lambda: self.emu.now_ms() / 1000)),
            mock.patch.object(EventConsumer, "sleep", staticmethod(self.backoff)),
            mock.patch.object(EventConsumer, "wait_time_s", EVENTS_LONG_POLL_S),
        ):
            yield

    async def backoff(self, seconds: float) -> None:
        """The consumer's pause after a failed read: until the emulated clock has moved ``seconds`` on."""
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.backoffs.append((self.emu.now_ms() + int(seconds * 1000), woken))
        await woken

    def _wake(self) -> None:
        now = self.emu.now_ms()
        for entry in list(self.backoffs):
            until, woken = entry
            if woken.done() or until <= now:
                self.backoffs.remove(entry)
                if not woken.done():
                    woken.set_result(None)

    async def sleep(self, seconds: float, stops: Stops) -> None:
        end = self.emu.now_ms() + int(seconds * 1000)
        await self._settle()  # what is due at this clock is read before it moves
        while (now := self.emu.now_ms()) < end:
            step = end - now if self._quiet(stops) else min(self.step_ms, end - now)
            stops.advance(self.emu, step / 1000)
            self._wake()
            await self._settle()

    def _quiet(self, stops: Stops) -> bool:
        """Nothing will ever be published again: every job has ended, nothing is left to submit, stop or deliver."""
        if stops.due or self.emu.model.scheduled or self.emu.events_published()["pending"]:
            return False
        now, life = self.emu.now_ms(), self.emu.model.lifecycle
        return all((end := life.end_of(job)) is not None and end[0] <= now for job in self.emu.model.jobs.values())

    async def _settle(self) -> None:
        drain = asyncio.ensure_future(self._drain())
        try:
            await asyncio.shield(drain)
        except asyncio.CancelledError:  # an event asked for a listing: the step's other messages are read first
            await drain
            raise

    def _read_all(self) -> bool:
        """The consumer has read what was sent (a consumer backing off reads once the clock has passed its pause),
        and it is reading: it has begun (made its client), and it has found a queue that is down (it backs off)."""
        current = list(EventConsumer._loops.get(asyncio.get_running_loop(), {}).values())
        self.consumers.extend(c for c in current if c not in self.consumers)
        if any(c.client is None and not c.failures for c in current):
            return False
        now = self.emu.now_ms()
        backing_off = any(until > now and not woken.done() for until, woken in self.backoffs)
        received = sum(c.received for c in self.consumers)  # each message delivered as soon as it is counted
        if received + self.not_read < self.emu.events_published()["sent"] and not backing_off:
            return False
        assert self.emu.events is not None
        return backing_off or self.emu.events.outage_at(now) is None or not current

    async def _drain(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not self._read_all():
            if time.monotonic() > deadline:
                self.undrained += 1
                sent = self.emu.events_published()["sent"]
                self.not_read = max(self.not_read, sent - sum(c.received for c in self.consumers))
                return
            await asyncio.sleep(0.002)
        await asyncio.sleep(0)


def _poke(make: Any, contexts: Contexts, emu: BatchEmulator, stops: Stops, history: History) -> Outcome:
    polls = 0
    task, ctx = make(), contexts.next_try()
    while emu.now_ms() - START_MS < HORIZON_S * 1000:
        polls += 1
        try:
            result = task.poke(ctx)
        except AirflowSkipException as err:
            return _ended(ctx, emu, "SKIP", polls, str(err))
        except AirflowFailException as err:
            return _ended(ctx, emu, "FAILURE", polls, str(err))
        if result:
            return Outcome("SUCCESS", emu.now_ms(), getattr(result, "xcom_value", None), "", polls)
        stops.advance(emu, history.interval)
        if history.mode == "reschedule":
            task, ctx = make(), contexts.next_try()
    return _ended(ctx, emu, "NONE", polls)


class Triggerer:
    """One triggerer process's life: the trigger's sleeps move the emulated clock; after ``polls_left`` polls the
    process dies (its tasks are cancelled, as when a killed triggerer's event loop goes away)."""

    def __init__(
        self,
        emu: BatchEmulator,
        stops: Stops,
        polls_left: int | None,
        horizon: float = HORIZON_S,
        reads: EventReads | None = None,
    ) -> None:
        self.emu, self.stops, self.polls_left = emu, stops, polls_left
        self.horizon_ms, self.reads = int(horizon * 1000), reads
        self.polls = 0
        self.dead = asyncio.Event()
        self.published_at: dict[int, int] = {}  # poll result version -> emulated time of its listing
        self.judged_at = emu.now_ms()  # the listing time of the result the trigger judged last
        self.judged: asyncio.Event | None = None  # set once the trigger has judged the last result published

    def record(self, publish: Any) -> Any:
        """Publish, then let the trigger judge before the poll sleeps on: in real time judging takes milliseconds
        and the sleep an interval, but here the sleep moves the clock at once, and a trigger judging after it would
        read a clock an interval later than its listing."""

        async def recorded(poll: SharedPoll, result: Any) -> None:
            self.published_at[poll.version + 1] = self.emu.now_ms()
            self.judged = asyncio.Event()
            await publish(poll, result)
            await self.judged.wait()

        return recorded

    def track(self, next_result: Any) -> Any:
        async def tracked(poll: SharedPoll, after: int) -> Any:
            if self.judged is not None:  # asking for the next result: done with the last one
                self.judged.set()
            version, result = await next_result(poll, after)
            self.judged_at = self.published_at.get(version, self.judged_at)
            return version, result

        return tracked

    async def sleep(self, seconds: float) -> None:
        past_horizon = self.emu.now_ms() - START_MS >= self.horizon_ms
        if past_horizon or (self.polls_left is not None and self.polls >= self.polls_left):
            self.dead.set()
            await asyncio.Event().wait()  # never wakes: the process is gone
        self.polls += 1
        if self.reads is None:
            self.stops.advance(self.emu, seconds)
        else:  # cut short when an event asks for a listing
            await self.reads.sleep(seconds, self.stops)
        await asyncio.sleep(0)

    async def _first(self, trigger: BatchJobsTrigger) -> dict[str, Any] | None:
        async with contextlib.aclosing(trigger.run()) as events:  # closed as the triggerer closes it
            async for event in events:
                return dict(event.payload)
        return None

    async def first_event(self, trigger: BatchJobsTrigger) -> dict[str, Any] | None:
        with (
            mock.patch.object(SharedPoll, "sleep", self.sleep),
            mock.patch.object(SharedPoll, "_publish", self.record(SharedPoll._publish)),
            mock.patch.object(SharedPoll, "next_result", self.track(SharedPoll.next_result)),
            self.reads.installed() if self.reads is not None else contextlib.nullcontext(),
        ):
            running = asyncio.ensure_future(self._first(trigger))
            death = asyncio.ensure_future(self.dead.wait())
            await asyncio.wait([running, death], return_when=asyncio.FIRST_COMPLETED)
            death.cancel()
            if running.done():
                return running.result()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return None


def _deferrable(contexts: Contexts, emu: BatchEmulator, stops: Stops, history: History) -> Outcome:
    reads = EventReads(emu, history.events) if history.events is not None else None
    events = {"events_queue_url": emu.events_queue_url} if reads is not None else {}
    task, ctx = sensor(history, deferrable=True, **events), contexts.next_try()
    try:
        records = task.execute(ctx)
        return Outcome("SUCCESS", emu.now_ms(), records, "", 1)
    except AirflowSkipException as err:
        return _ended(ctx, emu, "SKIP", 1, str(err))
    except AirflowFailException as err:
        return _ended(ctx, emu, "FAILURE", 1, str(err))
    except TaskDeferred as deferred:
        trigger = deferred.trigger
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_batch_jobs.triggers.batch_jobs.BatchJobsTrigger"
    polls, restart, poked_at = 1, history.restart_after_polls, emu.now_ms()
    event, blind_ms, lives = None, None, 0
    horizon = horizon_s(history)
    while event is None and emu.now_ms() - START_MS < horizon * 1000:
        if lives and reads is not None:
            time.sleep(EVENTS_LONG_POLL_S + 0.2)  # the gone triggerer's long poll has ended on the server
        life = Triggerer(emu, stops, restart, horizon, reads)
        event = asyncio.run(life.first_event(BatchJobsTrigger(**kwargs)))  # a new process, rebuilt from kwargs
        polls += life.polls
        lives += 1
        if lives > 1 and life.published_at:  # a rebuilt trigger knows the poke's listing, not its predecessor's
            blind_ms = max(blind_ms or 0, min(life.published_at.values()) - poked_at)
        restart = None  # one restart per history
    counts = reads.counts() if reads is not None else None
    if event is None:
        return replace(_ended(ctx, emu, "NONE", polls), events=counts)
    # the poll loop may have slept (moved the clock) while the trigger judged: the verdict is the listing's time
    judged_at = life.judged_at
    pushed = ctx["ti"].pushed
    try:
        records = task.execute_complete(ctx, event)
        return Outcome("SUCCESS", judged_at, records, "", polls, blind_ms, counts)
    except AirflowSkipException as err:
        return Outcome("SKIP", judged_at, pushed.get("return_value"), str(err), polls, blind_ms, counts)
    except AirflowFailException as err:
        return Outcome("FAILURE", judged_at, pushed.get("return_value"), str(err), polls, blind_ms, counts)


@contextlib.contextmanager
def emulated_time(emu: BatchEmulator, history: History) -> Iterator[None]:
    """The provider's clock is the emulator's, and the retention it counts on is the history's (minutes standing in
    for the service's days), so what it infers from time holds in the emulated world as it would in the real one;
    the shared poll's random first delay comes from the history's seed, so a history replays exactly."""
    with (
        mock.patch("airflow_batch_jobs.watch.wall_clock_ms", emu.now_ms),
        mock.patch("airflow_batch_jobs.wait_state.RETENTION_MIN_S", history.retention_seconds),
        mock.patch("airflow_batch_jobs.triggers.shared_poll.random", random.Random(history.seed)),
    ):
        yield


def play(history: History) -> tuple[BatchEmulator, Outcome]:
    """Run the wait; the emulator is returned stopped, its model still readable for the ground truth."""
    emu, stops = build(history)
    for operation, kind, rate in history.faults:
        emu.inject(operation, kind, rate=rate)
    contexts = Contexts(history)
    with emu, connection(emu), emulated_time(emu, history):
        if history.mode == "deferrable":
            outcome = _deferrable(contexts, emu, stops, history)
        else:
            outcome = _poke(lambda: sensor(history, mode=history.mode), contexts, emu, stops, history)
    return emu, outcome


__all__ = ["SKIP_CODE", "SUCCESS_CODE", "Outcome", "play"]
