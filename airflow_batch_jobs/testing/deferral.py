"""``run_deferred(sensor, emulator)``: a deferrable task run in a test the way Airflow runs it, on the emulator's clock.

Airflow runs a deferrable task in three steps: ``execute`` until the task defers, its trigger in the triggerer until
the first event, then the task's resume method with that event. :func:`run_deferred` does the three in one call,
without a scheduler or a triggerer:

- every sleep of the trigger's poll loop moves the emulator's clock on instead of waiting, and the provider reads
  the emulator's clock too (``runnable_timeout`` and the deferral's ``timeout`` count emulated seconds);
- the trigger is closed as the triggerer closes it, so its AWS client is closed (an open one is reported as
  "Unclosed client session" when it is garbage-collected);
- a deferral that outlives its ``timeout`` ends as it does in Airflow (a sensor's ``AirflowSensorTimeout``, a skip
  with ``soft_fail``).

Unlike the emulator, this module drives the provider's own classes: it is test tooling, not part of the oracle.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, cast
from unittest import mock

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator, Mapping

    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from airflow_batch_jobs.testing.emulator import BatchEmulator

# The resume method Airflow calls on a deferred task whose trigger failed or timed out (``TRIGGER_FAIL_REPR``).
FAIL_METHOD = "__fail__"


def run_deferred(task: Any, emulator: BatchEmulator, context: Mapping[str, Any] | None = None) -> Any:
    """Execute ``task`` (``deferrable=True``) against ``emulator`` until it ends; returns what the task returns and
    raises what it raises (``AirflowFailException``, ``AirflowSkipException``, ...).

    :param task: a deferrable operator or sensor, e.g. ``BatchJobsSensor(..., deferrable=True)``.
    :param emulator: the emulator the task's connection points at (the ``batch_emulator`` fixture); its clock moves
        while the trigger waits.
    :param context: the task context; XCom pushes go to its ``ti`` when it has one (default: an empty context).
    """
    from airflow.providers.common.compat.sdk import TaskDeferred

    if getattr(task, "deferrable", True) is False:
        raise ValueError(
            f"run_deferred runs deferrable tasks, and {task.task_id} has deferrable=False: pass deferrable=True, "
            "or call its poke() between emulator.advance() calls."
        )
    context = {} if context is None else context
    with mock.patch("airflow_batch_jobs.watch.wall_clock_ms", emulator.now_ms):
        try:
            return task.execute(context)
        except TaskDeferred as deferral:
            deadline_ms = None
            if deferral.timeout is not None:
                deadline_ms = emulator.now_ms() + int(deferral.timeout.total_seconds() * 1000)
            payload = asyncio.run(_first_event(deferral.trigger, emulator, deadline_ms))
            if payload is None:
                return task.resume_execution(FAIL_METHOD, {"error": _trigger_timeout()}, context)
            next_kwargs = {**(deferral.kwargs or {}), "event": payload}
            return task.resume_execution(deferral.method_name, next_kwargs, context)


async def _first_event(trigger: BaseTrigger, emulator: BatchEmulator, deadline_ms: int | None) -> Any:
    """The payload of the trigger's first event, or None when the deadline came first; the trigger closed."""
    from airflow_batch_jobs.triggers.shared_poll import SharedPoll

    timed_out = asyncio.Event()

    async def emulated_sleep(seconds: float) -> None:
        target = emulator.now_ms() + int(seconds * 1000)
        if deadline_ms is not None and target >= deadline_ms:
            emulator.advance(max(deadline_ms - emulator.now_ms(), 0) / 1000)
            timed_out.set()
            await asyncio.Event().wait()  # the triggerer gives up on the trigger here: it never polls again
        emulator.advance(seconds)
        await asyncio.sleep(0)

    async def first() -> Any:
        run = cast("AsyncGenerator[TriggerEvent, None]", trigger.run())  # an async generator, typed as an iterator
        async with contextlib.aclosing(run) as events:  # closed as the triggerer closes it
            async for event in events:
                return event.payload
        return None

    with mock.patch.object(SharedPoll, "sleep", staticmethod(emulated_sleep)), JudgedBeforeSleep().installed():
        running = asyncio.ensure_future(first())
        deadline = asyncio.ensure_future(timed_out.wait())
        try:
            await asyncio.wait([running, deadline], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (running, deadline):
                task.cancel()
            await asyncio.gather(running, deadline, return_exceptions=True)
            await trigger.cleanup()
        return running.result() if not running.cancelled() else None


class JudgedBeforeSleep:
    """Holds the trigger's poll loop after each result it publishes until the trigger has judged it (asks for the
    next one). In real time judging takes milliseconds and the next sleep an interval; an emulated sleep moves the
    clock at once, so without this the loop would sleep on while the trigger's DescribeJobs calls are in flight, and
    the trigger would judge at a clock intervals ahead of its listing: the more so, the more loaded the machine."""

    def __init__(self) -> None:
        self.judged: asyncio.Event | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from airflow_batch_jobs.triggers.shared_poll import SharedPoll

        publish, next_result = SharedPoll._publish, SharedPoll.next_result

        async def held_publish(poll: SharedPoll, result: Any) -> None:
            self.judged = asyncio.Event()
            await publish(poll, result)
            await self.judged.wait()

        async def judged_next_result(poll: SharedPoll, after: int) -> Any:
            if self.judged is not None:  # asking for the next result: done with the last one
                self.judged.set()
            return await next_result(poll, after)

        with (
            mock.patch.object(SharedPoll, "_publish", held_publish),
            mock.patch.object(SharedPoll, "next_result", judged_next_result),
        ):
            yield


def _trigger_timeout() -> str:
    """The error Airflow resumes a deferred task with when its trigger timed out."""
    try:
        from airflow.sdk.bases.operator import TriggerFailureReason
    except ImportError:  # Airflow 2.11: what its scheduler sets (airflow/jobs/scheduler_job_runner.py)
        return "Trigger/execution timeout"
    return TriggerFailureReason.TRIGGER_TIMEOUT
