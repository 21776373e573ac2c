"""BatchJobsEventTrigger: schedule a DAG when AWS Batch jobs finish, through an ``AssetWatcher`` (Airflow >= 3.0).

How Airflow runs it (read in ``airflow/jobs/triggerer_job_runner.py`` and ``airflow/models/trigger.py``, 3.0.6 to
3.3.2): the DAG processor stores one trigger row per distinct ``(classpath, kwargs)`` of the watchers of an active,
unpaused DAG's assets (``BaseEventTrigger.hash``); a triggerer runs it like any trigger, but keeps iterating
``run()`` after each event. Every yielded :class:`TriggerEvent` becomes an asset event (``extra={"from_trigger":
True, "payload": <the payload>}``) and queues a run of each DAG scheduled on the asset. Several events stored
before the scheduler creates that run are consumed by ONE run (its ``triggering_asset_events``): a DAG must read
them all. A trigger whose ``run()`` ends or raises is started again from its kwargs on the next triggerer loop, with
nothing of what it remembered; so is one whose kwargs change (a new hash) and one that moves to another triggerer.

Hence: ``run()`` never returns (a queue it cannot read yet is retried, see ``SUBSCRIBE_BACKOFF_S``), and the kwargs
are the arguments as given, normalized (created_after/before in epoch ms), so that parsing the DAG again gives the
same hash. Give fixed values: an argument computed at parse time (``datetime.now()``) makes Airflow replace the
trigger at every parse, and it forgets what it fired. Asset watcher triggers are not templated.

What it remembers: the event ids it read and the ``(job id, final status)`` pairs it fired for, the latest
``DEDUP_MEMORY`` of each, in this process. Delivery is at least once (EventBridge and SQS may deliver an event twice,
late, or out of order): a duplicate within that memory is dropped, but one arriving after a triggerer restart, after
the trigger moved, or past the memory schedules the DAG again. The consumer deletes a message once it is handed to
the trigger; an event received in the second before a triggerer dies, before Airflow stores the asset event, is
lost, and so is one EventBridge drops. A DAG that must not run twice for a job checks the job id of each event
(e.g. in a table or a Variable it writes); one that must not miss a job reconciles with a listing
(``BatchListJobsOperator``) now and then.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_batch_jobs.arguments import connection_arguments, is_templated, query_from
from airflow_batch_jobs.failures import failure_class
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.query import InvalidQueryError, JobQuery
from airflow_batch_jobs.triggers.shared_poll import poll_key

try:
    from airflow.triggers.base import BaseEventTrigger

    ASSET_WATCHERS = True
except ImportError:  # Airflow 2.11: no event-driven scheduling; the class imports, and refuses to be made
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]

    ASSET_WATCHERS = False

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_batch_jobs.job_events import JobEvent

# on= -> the final statuses that fire the trigger
ON_STATUSES: dict[str, tuple[str, ...]] = {"success": ("SUCCEEDED",), "any_end": ("SUCCEEDED", "FAILED")}
# How many event ids, and how many (job id, final status) pairs, the trigger remembers to drop duplicates: about
# 100 bytes each, 2 MB at most; a DAG scheduled on more than this many jobs between two duplicates of one event
# can run twice for it.
DEDUP_MEMORY = 10_000
# The longest string a payload carries (job names are at most 128 characters, ids and ARNs well under this); a
# longer status reason is cut, so that a payload stays under PAYLOAD_MAX_BYTES of JSON.
PAYLOAD_MAX_CHARS = 256
PAYLOAD_MAX_BYTES = 4096
# Pauses before subscribing again when the consumer cannot even start (a connection that does not exist yet):
# doubling from the first to the last, then at the last.
SUBSCRIBE_BACKOFF_S = (5.0, 300.0)

NEEDS_AIRFLOW_3 = (
    "BatchJobsEventTrigger schedules DAGs through an AssetWatcher, which needs Airflow >= 3.0 (this is Airflow "
    "{version}). On Airflow 2 wait in a task instead: BatchJobsSensor(deferrable=True, events_queue_url=...)."
)


class InvalidTriggerError(ValueError):
    """An argument of :class:`BatchJobsEventTrigger` that cannot work; the message names it and the fix."""


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > PAYLOAD_MAX_CHARS:
        return value[: PAYLOAD_MAX_CHARS - 1] + "…"
    return value


def event_payload(event: JobEvent) -> dict[str, Any]:
    """The trigger event's payload for one finished job: what a scheduled DAG needs to know which job it runs for
    and how it ended, JSON-native and bounded (Airflow stores it in the asset event's ``extra`` and logs it whole).
    No environment, parameter or secret: only the fields named here are copied from the (already redacted) detail.
    ``failure_class`` (:mod:`airflow_batch_jobs.failures`) is None unless the job FAILED."""
    view = JobView(event.job)
    array = view.array_properties or {}
    index = array.get("index")
    payload = {
        "job_id": event.job_id,
        "job_name": view.job_name,
        "job_arn": view.job_arn,
        "job_queue": view.job_queue,
        "job_definition": view.job_definition,
        "status": event.status,
        "status_reason": view.status_reason,
        "exit_code": view.final_exit_code,
        "attempts": event.attempts,
        "failure_class": failure_class(view),
        "created_at": view.created_at,
        "started_at": view.started_at,
        "stopped_at": view.stopped_at,
        "array_index": index if isinstance(index, int) else None,
        "event_id": event.event_id,
        "event_time": event.time_ms,
    }
    return {key: _cut(value) for key, value in payload.items()}


class BatchJobsEventTrigger(BaseEventTrigger):
    """Fire once for each AWS Batch job matching the query that finishes (``on="success"``: SUCCEEDED;
    ``on="any_end"``: SUCCEEDED or FAILED), from the job state-change events an EventBridge rule sends to an SQS
    queue. For an ``AssetWatcher``: each event is an asset event, which schedules the DAGs on the asset.

    The queue is read by the triggerer's shared consumer
    (:class:`~airflow_batch_jobs.triggers.event_consumer.EventConsumer`: one per queue and connection per event
    loop, shared with the deferrable sensors' waits on it). Each event is matched locally, as the sensor matches a
    listed job. Only events are read: no ListJobs, so a job whose events are all lost does not fire (see the module
    docstring for what is at least once and what can be lost). The payload is :func:`event_payload`'s record.

    Several triggerers reading one queue compete for its messages: an event read by another triggerer, or by a
    consumer in another process, never reaches this trigger. Give the watchers a queue of their own (an EventBridge
    rule may have several targets): the README's "DAGs scheduled on Batch job completion".

    :param job_queue: fire for jobs of this queue (name or ARN).
    :param array_job_id: fire for the children of this array job.
    :param multi_node_job_id: fire for the nodes of this multi-node parallel job.
    :param job_ids: fire for these jobs (ids or job ARNs) and, with ``include_array_children``, their children.
    :param job_name: only jobs with this name; a trailing ``*`` matches a prefix (case-insensitive).
    :param job_definition: only jobs of this definition: a name (every revision), ``name*`` or a full ARN.
    :param created_after: only jobs created at or after this moment (datetime, ISO-8601 or epoch ms); give a fixed
        value, not one computed at parse time.
    :param created_before: only jobs created before this moment (as ``created_after``).
    :param share_identifier: only jobs with this fair-share identifier.
    :param include_array_children: also fire for the children of array jobs the query selects (off: an array job
        fires once, when its parent finishes).
    :param on: ``"success"`` (SUCCEEDED jobs) or ``"any_end"`` (SUCCEEDED and FAILED; the payload's ``status`` says
        which).
    :param events_queue_url: the URL of the SQS queue receiving AWS Batch job state-change events.
    :param aws_conn_id: the Airflow ``aws`` connection the queue is read with; None or empty: boto3's default
        credential chain.
    :param region_name: the AWS region; None: the connection's, else the queue URL's.
    :param verify: whether to verify SSL certificates, or the path of a CA bundle; None: botocore's default.
    :param botocore_config: botocore ``Config`` options as a dict.
    """

    def __init__(
        self,
        *,
        job_queue: str | None = None,
        array_job_id: str | None = None,
        multi_node_job_id: str | None = None,
        job_ids: list[str] | str | None = None,
        job_name: str | None = None,
        job_definition: str | None = None,
        created_after: Any = None,
        created_before: Any = None,
        share_identifier: str | None = None,
        include_array_children: bool = False,
        on: str = "success",
        events_queue_url: str,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        if not ASSET_WATCHERS:
            from airflow import __version__

            raise RuntimeError(NEEDS_AIRFLOW_3.format(version=__version__))
        super().__init__()
        arguments = {
            "job_queue": job_queue,
            "array_job_id": array_job_id,
            "multi_node_job_id": multi_node_job_id,
            "job_ids": job_ids,
            "job_name": job_name,
            "job_definition": job_definition,
            "created_after": created_after,
            "created_before": created_before,
            "share_identifier": share_identifier,
        }
        for name, value in {**arguments, "events_queue_url": events_queue_url}.items():
            if is_templated(value):
                raise InvalidTriggerError(
                    f"{name}={value!r}: an AssetWatcher's trigger is not templated (no task runs it); give the value "
                    "itself."
                )
        self.query: JobQuery = query_from(arguments)
        if on not in ON_STATUSES:
            raise InvalidTriggerError(f"on={on!r}: use 'success' (SUCCEEDED jobs) or 'any_end' (SUCCEEDED and FAILED).")
        if not isinstance(include_array_children, bool):
            raise InvalidTriggerError(f"include_array_children={include_array_children!r}: give True or False.")
        if not isinstance(events_queue_url, str) or not events_queue_url.startswith(("https://", "http://")):
            raise InvalidTriggerError(
                f"events_queue_url={events_queue_url!r}: give the URL of the SQS queue the EventBridge rule sends "
                "AWS Batch job state-change events to (https://sqs.<region>.amazonaws.com/<account>/<queue>)."
            )
        self.include_array_children = include_array_children
        self.on = on
        self.events_queue_url = events_queue_url
        try:
            self.aws_conn_id, self.region_name, self.verify, self.botocore_config = connection_arguments(
                aws_conn_id, region_name, verify, botocore_config
            )
        except InvalidQueryError as err:
            raise InvalidTriggerError(str(err)) from err
        # counts, for logs and tests
        self.read = 0  # events the consumer handed over
        self.fired = 0  # trigger events yielded
        self.duplicates = 0  # matching events dropped as already fired (or already read)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The arguments, normalized (ids deduplicated, created_after/before in epoch ms): the same DAG gives the same
        kwargs, so Airflow keeps the trigger (and what it remembers) from one parse to the next."""
        query = self.query.to_dict()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **query,
                "include_array_children": self.include_array_children,
                "on": self.on,
                "events_queue_url": self.events_queue_url,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def connection_key(self) -> str:
        """As :meth:`BatchJobsTrigger.connection_key`: on one connection, the sensors' waits and these triggers share
        the queue's consumer."""
        return poll_key(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)

    def sqs_hook(self) -> Any:
        """The hook the consumer reads the queue with."""
        from airflow_batch_jobs.hooks.events_queue import EventsQueueHook

        return EventsQueueHook(
            aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify, config=self.botocore_config
        )

    sleep = staticmethod(asyncio.sleep)  # tests swap it

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_batch_jobs.job_events import RecentIds, array_parent_of, event_matches
        from airflow_batch_jobs.triggers.event_consumer import EventConsumer

        wanted = ON_STATUSES[self.on]
        pending: asyncio.Queue[JobEvent] = asyncio.Queue()
        read_ids, fired = RecentIds(DEDUP_MEMORY), RecentIds(DEDUP_MEMORY)

        # An array child's own createdAt is when its parent started, not when the parent was created: with a created
        # window, a child fires only once an event of its parent has shown the parent inside it (the parent sends
        # events from PENDING on, before it has children).
        windowed = self.include_array_children and self.query.job_queue is not None and self.query.has_created_window
        parents_in_window = RecentIds(DEDUP_MEMORY)

        def deliver(event: JobEvent) -> None:
            """Every event the consumer reads: keep the ones that fire this trigger, each once."""
            self.read += 1
            if not event_matches(self.query, event, include_array_children=self.include_array_children):
                return
            parent = array_parent_of(event.job_id)
            if windowed and parent is None:
                parents_in_window.add(event.job_id)
            if event.status not in wanted or (windowed and parent is not None and parent not in parents_in_window):
                return
            if not read_ids.add(event.event_id) or not fired.add((event.job_id, event.status)):
                self.duplicates += 1
                return
            pending.put_nowait(event)

        pause = SUBSCRIBE_BACKOFF_S[0]
        self.log.info(
            "Waiting for AWS Batch jobs (%s) to end with %s, from the events of %s.",
            self.query.describe(),
            " or ".join(wanted),
            self.events_queue_url,
        )
        while True:
            try:
                async with EventConsumer.subscribe(
                    self.events_queue_url, self.connection_key(), self.sqs_hook, deliver
                ):
                    pause = SUBSCRIBE_BACKOFF_S[0]
                    while True:
                        event = await pending.get()
                        try:
                            payload = event_payload(event)
                        except Exception:  # a bug of ours: the others still fire, and the consumer stays
                            self.log.exception("Cannot fire for the event %s (job %s).", event.event_id, event.job_id)
                            continue
                        self.fired += 1
                        self.log.info(
                            "AWS Batch job %s (%s) %s: firing (%d fired, %d duplicate(s) dropped).",
                            payload["job_name"],
                            event.job_id,
                            event.status,
                            self.fired,
                            self.duplicates,
                        )
                        yield TriggerEvent(payload)
            except Exception as err:  # the consumer could not start: a run() that ends is restarted blank at once
                self.log.warning(
                    "Cannot read job events from %s (%s: %s); trying again in %.0f s.",
                    self.events_queue_url,
                    type(err).__name__,
                    err,
                    pause,
                )
                await self.sleep(pause)
                pause = min(2 * pause, SUBSCRIBE_BACKOFF_S[1])
