"""BatchJobsTrigger: the deferrable sensor's wait, polled asynchronously in the triggerer."""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy, Verdict
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.triggers.shared_poll import Cadence, SharedPoll, poll_key
from airflow_batch_jobs.verdict_event import compact_event
from airflow_batch_jobs.wait_state import Continuity, WaitMemory
from airflow_batch_jobs.watch import JobListing, JobWatch, is_transient, rejected_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from airflow_batch_jobs.triggers.event_wait import EventWait


class BatchJobsTrigger(BaseTrigger):
    """Poll ListJobs/DescribeJobs for ``query`` until ``policy`` gives a verdict; yield it as one event.

    Everything it needs is in its kwargs (JSON-native), so the triggerer can rebuild it after a restart.
    A verdict's event is compact (:func:`~airflow_batch_jobs.verdict_event.compact_event`: Airflow stores it in its
    metadata database and logs it whole): the jobs the worker can read back are named by their id, and
    ``execute_complete`` reads them back before anything else. An error's event is ``{"status": "error",
    "message"}``, with ``"internal": True`` when it is no answer from AWS (a bug of ours). ``wait_began_ms``: when the
    wait began (the sensor's first poke), from which ids of ``job_ids`` unknown to AWS Batch are given their time.

    ``memory``: what the poke before deferring saw that the verdict needs (failed jobs, which may age out of ListJobs
    before the trigger polls; RUNNABLE periods), as :class:`~airflow_batch_jobs.wait_state.WaitMemory` JSON. What the
    trigger learns itself is lost with its process; a rebuilt trigger lists it again, as the service keeps finished
    jobs for days (``RETENTION_MIN_S``). One rebuilt later than that after the poke's listing refuses a success it
    cannot prove (:class:`~airflow_batch_jobs.wait_state.Continuity`).

    ``events_queue_url``: the wait also reads AWS Batch job state-change events from this SQS queue (delivered by an
    EventBridge rule); an event that suggests the verdict is in wakes a listing at once, which gives the verdict as
    polling does, and the wait's own polls become the safety net, every ``SAFETY_NET_FACTOR`` (10) ``poll_interval``,
    stretching up to ``SAFETY_NET_MAX_FACTOR`` (30) while the events prove right
    (:mod:`~airflow_batch_jobs.triggers.event_wait`).

    :param query: the jobs to wait on: :meth:`JobQuery.to_dict() <airflow_batch_jobs.query.JobQuery.to_dict>`.
    :param policy: how to judge them: :meth:`Policy.to_dict() <airflow_batch_jobs.policy.Policy.to_dict>`.
    :param poll_interval: seconds between polls (triggers sharing a poll poll at the shortest of theirs).
    :param max_poll_errors: yield an error event after this many failed polls in a row.
    :param xcom_detail: what the records the event names will hold: 'summary', 'full' or 'none'.
    :param xcom_max_jobs: the event names at most this many jobs' records, failed jobs first.
    :param aws_conn_id: the Airflow ``aws`` connection; None or empty: boto3's default credential chain.
    :param region_name: the AWS region; None: the connection's.
    :param verify: whether to verify SSL certificates, or the path of a CA bundle; None: botocore's default.
    :param botocore_config: botocore ``Config`` options as a dict (see
        :class:`~airflow_batch_jobs.hooks.batch_jobs.BatchJobsHook`).
    :param wait_began_ms: when the wait began (epoch ms); None: at the trigger's first poll.
    :param memory: what the sensor's poll before deferring saw, as ``WaitMemory.to_json()``; None: nothing.
    :param events_queue_url: the URL of an SQS queue receiving AWS Batch job state-change events; None: polling only.
    """

    def __init__(
        self,
        *,
        query: dict[str, Any],
        policy: dict[str, Any],
        poll_interval: float = 60.0,
        max_poll_errors: int = 5,
        xcom_detail: str = "summary",
        xcom_max_jobs: int = 1000,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        wait_began_ms: int | None = None,
        memory: dict[str, Any] | None = None,
        events_queue_url: str | None = None,
    ) -> None:
        super().__init__()
        self.query = query
        self.policy = policy
        self.poll_interval = poll_interval
        self.max_poll_errors = max_poll_errors
        self.xcom_detail = xcom_detail
        self.xcom_max_jobs = xcom_max_jobs
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.wait_began_ms = wait_began_ms
        self.memory = memory
        self.events_queue_url = events_queue_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "query": self.query,
                "policy": self.policy,
                "poll_interval": self.poll_interval,
                "max_poll_errors": self.max_poll_errors,
                "xcom_detail": self.xcom_detail,
                "xcom_max_jobs": self.xcom_max_jobs,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
                "wait_began_ms": self.wait_began_ms,
                "memory": self.memory,
                "events_queue_url": self.events_queue_url,
            },
        )

    def hook(self) -> BatchJobsHook:
        return BatchJobsHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.botocore_config
        )

    def connection_key(self) -> str:
        """Triggers on the same connection share one client (see :mod:`.shared_poll`)."""
        return poll_key(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)

    def poll_key(self) -> str:
        """Triggers asking the same question on the same connection share one poll."""
        listing_options = self.policy.get("match", "all"), self.policy.get("include_array_children", False)
        return poll_key(self.connection_key(), self.query, *listing_options)

    def sqs_hook(self) -> Any:
        """The hook the event consumer reads the queue with: the same connection arguments as the Batch client's."""
        from airflow_batch_jobs.hooks.events_queue import EventsQueueHook

        return EventsQueueHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.botocore_config
        )

    async def _read_events(self, stack: AsyncExitStack, events: EventWait) -> bool:
        """Subscribe ``events`` to the queue's consumer for as long as ``stack`` lasts; False (polling alone, at the
        plain interval) when that cannot even begin. A queue that fails later is the consumer's to retry: the
        safety net keeps the wait right meanwhile."""
        from airflow_batch_jobs.triggers.event_consumer import EventConsumer

        assert self.events_queue_url is not None
        try:
            await stack.enter_async_context(
                EventConsumer.subscribe(self.events_queue_url, self.connection_key(), self.sqs_hook, events.deliver)
            )
        except Exception as err:
            self.log.warning(
                "Cannot read job events from %s (%s: %s); polling every %.0f s instead.",
                self.events_queue_url,
                type(err).__name__,
                err,
                self.poll_interval,
            )
            return False
        return True

    def _events_step(self, step: Callable[[], None], poll: SharedPoll, cadence: Cadence) -> bool:
        """Run a step of the event-driven part; False if it failed (a bug of ours, or a job detail it cannot read):
        logged, and the wait goes on polling every ``poll_interval``, its verdicts unchanged (they come from the
        listings either way)."""
        try:
            step()
        except Exception:
            self.log.exception(
                "Reading job events failed in airflow-batch-jobs; polling every %.0f s instead.", self.poll_interval
            )
            poll.retime(cadence, self.poll_interval)
            return False
        return True

    async def run(self) -> AsyncIterator[TriggerEvent]:
        query, policy = JobQuery.from_dict(self.query), Policy.from_dict(self.policy)
        memory = WaitMemory.from_json(self.memory) if self.memory else None
        continuity = Continuity.for_trigger(memory, self.wait_began_ms)
        async with AsyncExitStack() as stack:
            events: EventWait | None = None
            cadence = Cadence(self.poll_interval)
            if self.events_queue_url:  # imported only where events are read
                from airflow_batch_jobs.event_view import SAFETY_NET_FACTOR
                from airflow_batch_jobs.triggers.event_wait import EventWait

                events = EventWait(query, policy, self.poll_interval, self.log)
                if await self._read_events(stack, events):
                    cadence.seconds = self.poll_interval * SAFETY_NET_FACTOR
                else:
                    events = None
            poll = await stack.enter_async_context(
                SharedPoll.subscribe(
                    self.poll_key(),
                    self.connection_key(),
                    self.hook,
                    lambda: JobListing.for_policy(query, policy),
                    cadence,
                )
            )
            watch = JobWatch(query, policy, listing=poll.listing, began_ms=self.wait_began_ms)
            version, errors = poll.version, 0
            if memory is not None:
                memory.restore(watch)  # into the shared listing: facts about the query's jobs, whoever waits on them
                if memory.finished and poll.subscribers > 1:  # a poll of the loop joined may predate the restore
                    version += 1
            if events is not None and not self._events_step(
                partial(events.attach, poll, watch, cadence), poll, cadence
            ):
                events = None
            while True:
                version, result = await poll.next_result(version)
                number = poll.poll_number(version)  # read at once: the loop may publish again while this judges
                try:
                    if isinstance(result, Exception):
                        raise result
                    continuity.listed(watch.clock())  # no earlier than the listing began
                    decision = await watch.ajudge(result, poll.hook, poll.client)
                    decision = continuity.guard(decision, query, policy, watch.clock())
                except Exception as err:
                    rejected = rejected_request(err)
                    if rejected is not None:
                        yield TriggerEvent({"status": "error", "message": rejected})
                        return
                    if not is_transient(err):  # not an answer from AWS: a bug of ours
                        self.log.exception("The wait failed in airflow-batch-jobs itself.")
                        yield TriggerEvent(
                            {
                                "status": "error",
                                "internal": True,
                                "message": "The wait failed in airflow-batch-jobs itself (not an answer from AWS): "
                                f"{type(err).__name__}: {err}",
                            }
                        )
                        return
                    errors += 1
                    if errors >= self.max_poll_errors:
                        yield TriggerEvent(
                            {"status": "error", "message": f"{errors} polls in a row failed; last error: {err}"}
                        )
                        return
                    self.log.warning("Poll failed (%s); no verdict, asking again in %.1f s.", err, poll.next_delay)
                    if events is not None and not self._events_step(partial(events.listed, err, number), poll, cadence):
                        events = None
                    continue
                errors = 0
                progress = watch.progress(decision)
                self.log.info(progress if events is None else f"{progress} [{events.describe()}]")
                if decision.verdict is not Verdict.WAITING:
                    yield TriggerEvent(compact_event(decision, self.xcom_detail, self.xcom_max_jobs))
                    return
                if events is not None and not self._events_step(partial(events.listed, result, number), poll, cadence):
                    events = None
