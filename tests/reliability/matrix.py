"""The fault matrix: one wait on the emulator per fault, judged for the right verdict with nothing missed and nothing
counted twice. ``make faults`` prints the table (``python -m tests.reliability.matrix``); the tests in this folder
assert every row.

The scenario, on the emulator's ``realistic`` profile: ``JOBS`` jobs named ``night-*`` finish progressively over about
ten emulated minutes, each listed a few seconds after its submission. One of them fails with exit code 1 after a retry
(it goes back to RUNNABLE between its two failed attempts); every 25th job fails its first attempt and succeeds on
its retry; every 10th runs on an ECS-properties definition whose non-essential sidecar is stopped with 137 or 143;
one is an array of ``ARRAY_SIZE`` children (``include_array_children``) whose ``statusSummary`` lags them. The right
verdict is FAILURE naming exactly that job, with a record for every job (each array child in place of its parent),
once each, every one finished. ``fail_fast=False`` makes the wait see every job finish, so a poll that judged a
partial listing, a job between two attempts or a sidecar's exit code would show up as a premature verdict, fewer
records or a wrong failure.

"Intervals late" is how long after the last job finished the verdict came, in poll intervals: a fault-free wait
decides at the first poll after the last job (at most 1); every row must stay within 2. The deferrable rows' random
start (the poll loop's stagger) is seeded, so every row is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.triggers.shared_poll import SharedPoll
from airflow_batch_jobs.verdict_event import resolve_event

if TYPE_CHECKING:
    from collections.abc import Callable

JOBS = 250
POKE_INTERVAL = 30.0
LIMIT_S = 4 * 3600.0  # a wait still undecided after this many emulated seconds counts as "timeout"
MAX_INTERVALS_LATE = 2.0  # every row decides within this many poll intervals of the last job finishing
NO_RETRY = {"retries": {"mode": "standard", "total_max_attempts": 1}}
PROFILE = "realistic"  # the emulator's profile for every row (airflow_batch_jobs.testing.behaviours)
ARRAY_SIZE = 10


@dataclass
class Outcome:
    """What one wait did: its verdict, what the XCom held, the calls it cost and when it decided."""

    fault: str
    verdict: str = "timeout"
    message: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    faulted: int = 0
    polls: int = 0
    verdict_at_s: float = 0.0  # emulated seconds from the start of the wait
    last_job_done_at_s: float = 0.0
    expected_jobs: int = 0  # records a right verdict holds (records_for(JOBS) unless the row says otherwise)
    failing: str = ""
    wall_s: float = 0.0
    interval: float = POKE_INTERVAL

    @property
    def intervals_late(self) -> float:
        """How long after the last job finished the verdict came, in poll intervals."""
        return (self.verdict_at_s - self.last_job_done_at_s) / self.interval

    @property
    def ids(self) -> list[str]:
        return [r["job_id"] for r in self.records]

    @property
    def failed_names(self) -> list[str]:
        return sorted(r["job_name"] for r in self.records if r["status"] == "FAILED")

    @property
    def right(self) -> bool:
        """FAILURE naming only the failing job; every job recorded exactly once, finished."""
        return (
            self.verdict == "failure"
            and self.failed_names == [self.failing]
            and len(self.ids) == len(set(self.ids)) == self.expected_jobs
            and all(r["status"] in ("SUCCEEDED", "FAILED") for r in self.records)
        )


def failing_name(jobs: int) -> str:
    """The one job of the scenario that fails: a third of the way in."""
    return f"night-{jobs // 3:04d}"


def array_index(jobs: int) -> int:
    """The scenario job that is an array: two thirds of the way in."""
    return jobs * 2 // 3


def records_for(jobs: int) -> int:
    """The records a right verdict holds for a scenario of ``jobs``: the array's children stand in for it."""
    return jobs - 1 + ARRAY_SIZE


def make_emulator(jobs: int = JOBS, **kwargs: Any) -> BatchEmulator:
    emu = BatchEmulator(profile=PROFILE, **kwargs).start()
    emu.setup()
    emu.setup(definitions=("ecsdef",), kind="ecs")  # the realistic profile gives its tasks a non-essential sidecar
    for i in range(jobs):
        name = f"night-{i:04d}"
        duration = 30 + 570 * i / max(jobs - 1, 1)
        request: dict[str, Any] = {"definition": "ecsdef" if i % 10 == 5 else "jobdef"}
        if name == failing_name(jobs) or i % 25 == 7:  # fails its first attempt: back to RUNNABLE, then again
            last_exit_code = 1 if name == failing_name(jobs) else 0
            attempts = [
                {"exit_code": 1, "duration": duration / 2},
                {"exit_code": last_exit_code, "duration": duration / 2},
            ]
            request["retryStrategy"] = {"attempts": 2}
        else:
            attempts = [{"exit_code": 0, "duration": duration}]
        if i == array_index(jobs):
            request["arrayProperties"] = {"size": ARRAY_SIZE}
        emu.script_job(emu.submit(name, **request), {"attempts": attempts})
    return emu


def emu_jobs(emu: BatchEmulator) -> int:
    """How many scenario jobs (``night-NNNN``, array children not counted) the emulator holds."""
    return sum(
        1
        for job in emu.model.jobs.values()
        if job.parent is None and job.name[6:].isdigit() and job.name.startswith("night-")
    )


def sensor_kwargs(**overrides: Any) -> dict[str, Any]:
    return {
        "task_id": "wait",
        "job_queue": "queue",
        "job_name": "night-*",
        "fail_fast": False,
        "poke_interval": POKE_INTERVAL,
        "xcom_max_jobs": 100_000,
        "include_array_children": True,
        **overrides,
    }


def finish_outcome(out: Outcome, emu: BatchEmulator, start_ms: int, wall: float) -> Outcome:
    out.verdict_at_s = (emu.now_ms() - start_ms) / 1000
    stops = [r["stopped_at"] for r in out.records if r.get("stopped_at")]
    out.last_job_done_at_s = (max(stops) - start_ms) / 1000 if stops else 0.0
    stats = emu.faults.stats()
    out.calls = stats["calls"]
    out.faulted = sum(stats["faulted"].values())
    out.wall_s = time.monotonic() - wall
    return out


def run_sensor(
    fault: str,
    emu: BatchEmulator,
    *,
    before_poll: Callable[[BatchEmulator, int, float], None] | None = None,
    setup: Callable[[BatchJobsSensor, BatchEmulator], None] | None = None,
    expected_jobs: int | None = None,
    **overrides: Any,
) -> Outcome:
    """Poke until a verdict, moving the emulated clock one poke interval between pokes."""
    with mock.patch.dict("os.environ", {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}):
        sensor = BatchJobsSensor(**sensor_kwargs(**overrides))
        if setup is not None:
            setup(sensor, emu)
        ti = mock.MagicMock()
        ti.xcom_push.side_effect = lambda key, value: pushed.setdefault(key, value)
        pushed: dict[str, Any] = {}
        jobs = emu_jobs(emu)
        out = Outcome(fault, expected_jobs=expected_jobs or records_for(jobs), failing=failing_name(jobs))
        out.interval = sensor.poke_interval
        start, wall = emu.now_ms(), time.monotonic()
        while (emu.now_ms() - start) / 1000 < LIMIT_S:
            if before_poll is not None:
                before_poll(emu, out.polls, (emu.now_ms() - start) / 1000)
            out.polls += 1
            try:
                result = sensor.poke({"ti": ti})
            except AirflowFailException as err:
                out.verdict = "error" if "polls in a row" in str(err) or "rejected" in str(err) else "failure"
                out.message, out.records = str(err), pushed.get("return_value", [])
                break
            except AirflowSkipException as err:
                out.verdict, out.message, out.records = "skip", str(err), pushed.get("return_value", [])
                break
            if result:
                out.verdict, out.records = "success", list(result.xcom_value or [])  # type: ignore[union-attr]
                break
            emu.advance(sensor.poke_interval)
        return finish_outcome(out, emu, start, wall)


def trigger_for(emu: BatchEmulator, **overrides: Any) -> BatchJobsTrigger:
    sensor = BatchJobsSensor(**sensor_kwargs(**overrides))
    return BatchJobsTrigger(
        query=sensor.build_query().to_dict(),
        policy=sensor.policy.to_dict(),
        poll_interval=sensor.poke_interval,
        max_poll_errors=sensor.max_poll_errors,
        xcom_max_jobs=sensor.xcom_max_jobs,
        botocore_config=sensor.botocore_config,
    )


def run_trigger(
    fault: str,
    emu: BatchEmulator,
    *,
    restart_after_polls: int | None = None,
    before_poll: Callable[[BatchEmulator, int, float], None] | None = None,
    stagger_seed: int = 0,
    **overrides: Any,
) -> Outcome:
    """Run the trigger to its event; its sleeps move the emulated clock. Optionally kill it after some polls and
    rebuild it from its serialized kwargs, as a restarted triggerer does. ``before_poll`` runs before each poll, as
    for the sensor; the poll loop's random stagger is seeded with ``stagger_seed``.

    The poll loop's sleep moves the clock only once the trigger has judged the last result and waits for the next:
    judging can take calls of its own (DescribeJobs at the verdict), whose botocore retries wait in real time, and
    the emulated clock must not run ahead of them (it would count seconds of backoff as poll intervals)."""
    jobs = emu_jobs(emu)
    out = Outcome(fault, expected_jobs=records_for(jobs), failing=failing_name(jobs))
    start, wall = emu.now_ms(), time.monotonic()
    events: list[dict[str, Any]] = []

    polled_at: list[int] = []
    waiting: dict[str, Any] = {}  # the poll whose next result the trigger waits for, and the version it has judged
    next_result = SharedPoll.next_result

    async def judged_then_next_result(poll: SharedPoll, after: int) -> tuple[int, Any]:
        waiting.update(poll=poll, after=after)
        try:
            return await next_result(poll, after)
        finally:
            waiting.clear()

    async def trigger_caught_up() -> None:
        deadline = time.monotonic() + 120  # real seconds: never hang the matrix
        while time.monotonic() < deadline and not (waiting and waiting["after"] == waiting["poll"].version):
            await asyncio.sleep(0.001)

    async def emulated_sleep(seconds: float) -> None:  # the poll loop sleeps once after every poll
        out.polls += 1
        polled_at.append(emu.now_ms())
        await trigger_caught_up()
        emu.advance(seconds)
        if before_poll is not None:
            before_poll(emu, out.polls - 1, (emu.now_ms() - start) / 1000)
        await asyncio.sleep(0)

    async def consume(trigger: BatchJobsTrigger) -> None:
        async for event in trigger.run():
            events.append(event.payload)

    async def main() -> None:
        trigger = trigger_for(emu, **overrides)
        out.interval = trigger.poll_interval
        if restart_after_polls is not None:
            task = asyncio.ensure_future(consume(trigger))
            while out.polls < restart_after_polls and not task.done():
                await asyncio.sleep(0.01)
            task.cancel()  # the triggerer went away mid-wait
            await asyncio.gather(task, return_exceptions=True)
            assert not events, "the killed trigger must not have fired"
            _classpath, kwargs = trigger.serialize()
            trigger = BatchJobsTrigger(**json.loads(json.dumps(kwargs)))
        await consume(trigger)

    with (
        mock.patch.dict("os.environ", {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}),
        mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)),
        mock.patch.object(SharedPoll, "next_result", judged_then_next_result),
        mock.patch("airflow_batch_jobs.triggers.shared_poll.random", random.Random(stagger_seed)),
    ):
        asyncio.run(main())
        assert len(events) == 1, f"{len(events)} events"  # one event, so execute_complete pushes XCom once
        emu.clear_faults()  # the worker reads back the jobs the event names later, past the row's faults (counted)
        event = resolve_event(events[0], BatchJobsHook(), "summary")
    out.verdict, out.message, out.records = event["status"], event["message"], event["records"]
    out.polls -= 1  # the first sleep is the stagger before the first poll
    finish_outcome(out, emu, start, wall)
    out.verdict_at_s = (polled_at[-1] - start) / 1000  # the deciding poll, not the sleep the loop began after it
    return out


# -- the rows ------------------------------------------------------------------------------------------------
def window(start_s: float, seconds: float, kind: str) -> Callable[[BatchEmulator, int, float], None]:
    """Every call fails with ``kind`` from ``start_s`` for ``seconds`` of emulated time."""

    def before_poll(emu: BatchEmulator, poll: int, now_s: float) -> None:
        emu.clear_faults()
        if start_s <= now_s < start_s + seconds:
            emu.inject("*", kind)

    return before_poll


def mid_listing_page_lost(polls: range) -> Callable[[BatchEmulator, int, float], None]:
    """The second ListJobs page of each poll in ``polls`` fails once."""

    def before_poll(emu: BatchEmulator, poll: int, now_s: float) -> None:
        emu.clear_faults()
        if poll in polls:
            emu.inject("ListJobs", "server", skip=1, count=1)

    return before_poll


def emulator_restart(down_at: int, up_at: int) -> Callable[[BatchEmulator, int, float], None]:
    def before_poll(emu: BatchEmulator, poll: int, now_s: float) -> None:
        if poll == down_at:
            emu.stop()
        elif poll == up_at:
            emu.start()  # same port, same jobs

    return before_poll


def between_pages(action: Callable[[BatchEmulator, int], None]) -> Callable[[BatchJobsSensor, BatchEmulator], None]:
    """Run ``action`` after each ListJobs page that has a next page, i.e. while a listing is being paged."""

    def setup(sensor: BatchJobsSensor, emu: BatchEmulator) -> None:
        pages = [0]

        def after_page(parsed: dict[str, Any], **_: Any) -> None:
            if parsed.get("nextToken"):
                pages[0] += 1
                action(emu, pages[0])

        sensor.hook.conn.meta.events.register("after-call.batch.ListJobs", after_page)

    return setup


def create_jobs_while_paging(emu: BatchEmulator, page: int) -> None:
    if page <= 6:  # two new matching jobs during each of the first polls' listings
        for k in range(2):
            emu.script_job(emu.submit(f"night-late-{page}-{k}"), {"attempts": [{"duration": 60}]})


def rows() -> list[tuple[str, Callable[[], Outcome]]]:
    """(fault, run) for every row of the matrix; each run builds its own emulator."""

    def row(runner: Callable[..., Outcome], fault: str, **kw: Any) -> Callable[[], Outcome]:
        """A row: an emulator with ``jobs`` and the injected faults / latency, waited on by ``runner``."""

        def run() -> Outcome:
            emu = make_emulator(jobs=kw.pop("jobs", JOBS), seed=kw.pop("seed", 0))
            try:
                for op, kind, rate in kw.pop("faults", ()):
                    emu.inject(op, kind, rate=rate)
                for op, kind, seconds in kw.pop("latency", ()):
                    emu.inject(op, kind, seconds=seconds)
                return runner(fault, emu, **kw)
            finally:
                emu.stop()

        return run

    def poke(fault: str, **kw: Any) -> Callable[[], Outcome]:
        return row(run_sensor, fault, **kw)

    def deferred(fault: str, **kw: Any) -> Callable[[], Outcome]:
        return row(run_trigger, fault, **kw)

    def retention() -> Outcome:
        """Jobs age out of ListJobs (10 min retention) while the wait still expects more (min_jobs)."""
        emu = make_emulator(retention_seconds=600)
        try:
            late: list[str] = []

            def before_poll(e: BatchEmulator, poll: int, now_s: float) -> None:
                if now_s >= 1800 and not late:  # long after the first jobs expired, the last two appear
                    late.extend(e.submit(f"night-late-{k}") for k in range(2))

            return run_sensor(
                "retention: early jobs expire from ListJobs", emu, before_poll=before_poll,
                min_jobs=records_for(JOBS) + 2, expected_jobs=records_for(JOBS) + 2,
            )  # fmt: skip
        finally:
            emu.stop()

    return [
        ("none (poke)", poke("none (poke)")),
        ("none (deferrable)", deferred("none (deferrable)")),
        ("throttling on 30% of calls (poke)", poke("throttling 30%", faults=[("*", "throttle", 0.3)])),
        ("throttling on 30% of calls (deferrable)", deferred("throttling 30%", faults=[("*", "throttle", 0.3)])),
        ("100% throttling for 60 s (poke)", poke("throttling 100% 60 s", before_poll=window(120, 60, "throttle"))),
        (
            "100% throttling for 60 s (deferrable)",
            deferred("throttling 100% 60 s", before_poll=window(120, 60, "throttle")),
        ),
        (
            "100% throttling for 30 s after the last job ends (poke)",
            poke("throttling 100% 30 s at the end", before_poll=window(606, 30, "throttle")),
        ),
        (
            "100% throttling for 30 s after the last job ends (deferrable)",
            deferred("throttling 100% 30 s at the end", before_poll=window(606, 30, "throttle")),
        ),
        ("5xx on 10% of calls", poke("5xx 10%", faults=[("*", "server", 0.1)])),
        ("5xx on 10% of calls (deferrable)", deferred("5xx 10%", faults=[("*", "server", 0.1)])),
        ("dropped connections on 10% of calls", poke("dropped 10%", faults=[("*", "drop", 0.1)])),
        ("dropped connections on 10% of calls (deferrable)", deferred("dropped 10%", faults=[("*", "drop", 0.1)])),
        (
            "2 s latency per call (30 jobs)",
            poke("latency 2 s", jobs=30, latency=[("*", "latency", 2.0)], poke_interval=120),
        ),
        ("page 2 of every listing fails once", poke("mid-listing page", before_poll=mid_listing_page_lost(range(99)))),
        (
            "page 2 fails in 3 polls, no botocore retries",
            poke(
                "mid-listing page, no retries", before_poll=mid_listing_page_lost(range(3, 6)), botocore_config=NO_RETRY
            ),
        ),
        ("emulator down for 2 polls, restarted", poke("emulator restart", before_poll=emulator_restart(4, 6))),
        (
            "emulator down for 2 polls, restarted (deferrable)",
            deferred("emulator restart", before_poll=emulator_restart(4, 6)),
        ),
        ("triggerer restarted mid-wait", deferred("triggerer restart", restart_after_polls=8)),
        (
            "jobs created while a listing is paged",
            poke(
                "created while paging",
                expected_jobs=records_for(JOBS) + 12,
                setup=between_pages(create_jobs_while_paging),
            ),
        ),
        (
            "jobs change status between pages",
            poke("status changes between pages", setup=between_pages(lambda e, page: e.advance(5))),
        ),
        ("retention: jobs expire from ListJobs", retention),
    ]


def table(outcomes: list[Outcome]) -> str:
    header = (
        "| fault | ListJobs | DescribeJobs | faulted | polls | verdict | jobs (unique) | right | "
        "verdict at (emulated s) | after last job (s) | intervals late |"
    )
    lines = [header, "|" + "---|" * 11]
    for o in outcomes:
        late = f"{o.intervals_late:.2f}" + ("" if o.intervals_late <= MAX_INTERVALS_LATE else " (over 2)")
        lines.append(
            f"| {o.fault} | {o.calls.get('ListJobs', 0)} | {o.calls.get('DescribeJobs', 0)} | {o.faulted} | "
            f"{o.polls} | {o.verdict} | {len(o.ids)} ({len(set(o.ids))}) | {'yes' if o.right else 'NO'} | "
            f"{o.verdict_at_s:.0f} | {o.verdict_at_s - o.last_job_done_at_s:.0f} | {late} |"
        )
    return "\n".join(lines)


def main() -> int:
    logging.disable(logging.INFO)  # the sensors' progress lines: the table says it all
    outcomes = []
    for name, run in rows():
        out = run()
        out.fault = name
        print(f"{name}: {out.verdict} in {out.wall_s:.1f} s wall", file=sys.stderr, flush=True)
        outcomes.append(out)
    print(table(outcomes))
    return 0 if all(o.right and o.intervals_late <= MAX_INTERVALS_LATE for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
