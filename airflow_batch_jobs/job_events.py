"""AWS Batch job state-change events, as an EventBridge rule delivers them to an SQS queue: parsing, matching a
wait's query, and ordering the states of one job. Pure: no I/O (the queue is read by
:class:`~airflow_batch_jobs.triggers.event_consumer.EventConsumer`).

AWS Batch sends a "Batch Job State Change" event each time an existing job changes status (none at submission). The
envelope (the SQS message body) is ``{"version", "id", "detail-type", "source": "aws.batch", "account", "time",
"region", "resources": [jobArn], "detail"}``; ``detail`` has DescribeJobs' JobDetail shape (``jobQueue`` an ARN,
``attempts`` with exit codes, ``createdAt``/``startedAt``/``stoppedAt`` in epoch ms, the container's environment).
Delivery is at least once and unordered, and events can be late or lost: a consumer deduplicates by event id
(:class:`RecentIds`) and never lets an older state replace a newer one (:func:`is_newer`). An event only tells a
wait *when* to list; the verdict always comes from a listing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.failures import failure_class
from airflow_batch_jobs.jobs import JobView, redact
from airflow_batch_jobs.query import ALL_STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from collections.abc import Hashable, Mapping

    from airflow_batch_jobs.query import JobQuery

SOURCE = "aws.batch"
DETAIL_TYPE = "Batch Job State Change"

# Event ids remembered for deduplication (a redelivery comes within the queue's visibility timeout, long before this
# many other events have been read).
DEDUP_MEMORY = 10_000

# Lifecycle order of the active statuses; terminal statuses are final (never compared by rank).
_ACTIVE_RANK = {status: rank for rank, status in enumerate(ALL_STATUSES) if status not in TERMINAL_STATUSES}
_TERMINAL = frozenset(TERMINAL_STATUSES)
_STATUSES = frozenset(ALL_STATUSES)

# Detail keys whose value must have this type when present: what JobView, JobQuery.matches and the policy read.
_TIME_KEYS = ("createdAt", "startedAt", "stoppedAt")
_TEXT_KEYS = ("jobName", "jobArn", "jobQueue", "jobDefinition", "statusReason", "shareIdentifier")
_MAPPING_KEYS = ("container", "arrayProperties", "nodeProperties", "nodeDetails", "ecsProperties", "eksProperties")
_LIST_KEYS = ("attempts", "eksAttempts")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# What an error names of a foreign message (its source and detail-type), cut so that a log line stays short.
_SHOWN_CHARS = 64


class MalformedEventError(ValueError):
    """A message that cannot be read as a Batch job state change: not JSON, or a Batch job state change missing or
    mistyping what a wait reads. Messages name the problem, never a value from the body (it may hold secrets).
    ``kind``: a short, stable label (a consumer logs each kind once)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"Malformed AWS Batch job state-change event: {problem}.")
        self.kind = f"malformed: {problem}"


class ForeignEventError(ValueError):
    """Valid JSON, but not a Batch job state change (another source or detail-type: the rule or the queue also gets
    other messages). ``kind``: its source and detail-type."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Not an AWS Batch job state-change event ({what}).")
        self.kind = f"foreign: {what}"


@dataclass(frozen=True)
class JobEvent:
    """One job state change. ``job`` is the event's detail with environment values, parameters and secrets
    redacted: a DescribeJobs-shaped job dict the rest of the provider reads as any other (``JobView(job)``,
    ``JobQuery.matches(job)``, the policy). ``attempts``: how many attempts the detail lists (finished ones: a retried
    job is RUNNABLE again with one more). ``time_ms``: the envelope's ``time`` (epoch ms), None if absent."""

    event_id: str
    job_id: str
    status: str
    attempts: int
    time_ms: int | None
    job: dict[str, Any]


def parse_event(body: str | bytes) -> JobEvent:
    """The event an SQS message body carries. Raises :class:`ForeignEventError` (valid JSON, not a Batch job state
    change) or :class:`MalformedEventError` (anything else wrong), both ValueErrors: a body nested deeper than Python
    recurses is malformed too, never a message the consumer cannot delete."""
    try:
        return _parse_event(body)
    except RecursionError:
        raise MalformedEventError("nested too deeply") from None


def _parse_event(body: str | bytes) -> JobEvent:
    try:
        envelope = json.loads(body)
    except (TypeError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MalformedEventError("not JSON") from None
    if not isinstance(envelope, dict):
        raise ForeignEventError(f"a JSON {type(envelope).__name__}, not an EventBridge event")
    source, detail_type = envelope.get("source"), envelope.get("detail-type")
    if source != SOURCE or detail_type != DETAIL_TYPE:
        raise ForeignEventError(f"source {_shown(source)}, detail-type {_shown(detail_type)}")
    event_id = envelope.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEventError("no event id")
    detail = envelope.get("detail")
    if not isinstance(detail, dict):
        raise MalformedEventError("no detail object")
    job_id = detail.get("jobId")
    if not isinstance(job_id, str) or not job_id:
        raise MalformedEventError("no jobId in the detail")
    status = detail.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        raise MalformedEventError("no known job status in the detail")
    _check_shape(detail)
    job = redact(detail)
    _check_readable(job)
    attempts = detail.get("attempts") or detail.get("eksAttempts") or []
    return JobEvent(
        event_id=event_id,
        job_id=job_id,
        status=str(status),
        attempts=len(attempts),
        time_ms=_epoch_ms(envelope.get("time")),
        job=job,
    )


def _check_readable(job: Mapping[str, Any]) -> None:
    """Everything a wait and its records read of a job reads here too: a detail DescribeJobs would not return (an
    attempt that is no object, a container list that is no list, ...) fails once, here, not in every wait it
    matches."""
    view = JobView(job)
    try:
        view.to_record()
        failure_class(view)
        for read in (view.final_exit_code, view.final_reason, view.is_cancelled, view.is_terminated):
            del read
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as err:
        raise MalformedEventError(f"a detail DescribeJobs would not return ({type(err).__name__})") from None


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text[:_SHOWN_CHARS] + ("..." if len(text) > _SHOWN_CHARS else ""))


def _check_shape(detail: Mapping[str, Any]) -> None:
    """The detail's fields a wait reads have DescribeJobs' types: a mistyped one would fail whoever reads it later
    (a subscriber), so it fails here, once, for the consumer to drop the message."""
    for key in _TIME_KEYS:
        value = detail.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise MalformedEventError(f"{key} is not epoch milliseconds")
    for key in _TEXT_KEYS:
        if detail.get(key) is not None and not isinstance(detail[key], str):
            raise MalformedEventError(f"{key} is not a string")
    for key in _MAPPING_KEYS:
        if detail.get(key) is not None and not isinstance(detail[key], dict):
            raise MalformedEventError(f"{key} is not an object")
    for key in _LIST_KEYS:
        value = detail.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(a, dict) for a in value)):
            raise MalformedEventError(f"{key} is not a list of objects")


def _epoch_ms(value: Any) -> int | None:
    """EventBridge's ``time`` (ISO 8601, UTC, whole seconds) as epoch ms; None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


# -- matching a wait's query ----------------------------------------------------------------------------------------
def array_parent_of(job_id: str) -> str | None:
    """The parent id of an array child (``<parent>:<index>``), else None."""
    parent, sep, index = job_id.rpartition(":")
    return parent if sep and parent and index.isdigit() else None


def node_parent_of(job_id: str) -> str | None:
    """The parent id of a multi-node job's node (``<parent>#<node>``), else None."""
    parent, sep, node = job_id.partition("#")
    return parent if sep and parent and node.isdigit() else None


def queue_matches(selector: str, job_queue: str | None) -> bool:
    """A query's ``job_queue`` (a name or an ARN, as ListJobs takes) against the ARN a detail carries: ARN to ARN
    exactly, a name to the ARN's ``job-queue/<name>``."""
    if not job_queue:
        return False
    if selector.startswith("arn:") and job_queue.startswith("arn:"):
        return selector == job_queue
    return _queue_name(selector) == _queue_name(job_queue)


def _queue_name(queue: str) -> str:
    return queue.rpartition("job-queue/")[2] if queue.startswith("arn:") else queue


def event_matches(query: JobQuery, event: JobEvent, *, include_array_children: bool) -> bool:
    """Whether the job of ``event`` is one the query's listing would show (so a wait on it cares).

    - ``job_queue``: the detail's queue, then the query's filters (name, definition, created window, share id); array
      children (``include_array_children`` only) and multi-node nodes are not listed by a queue listing.
    - ``array_job_id`` / ``multi_node_job_id``: the parent itself and its children / nodes (no filter applies to
      them, as in the service).
    - ``job_ids``: those jobs (then the filters), and their array children with ``include_array_children``.

    An array child is judged on the filters of its parent, which its own detail repeats (name, definition, share id)
    except ``createdAt``: a child is created when its parent starts, so only the lower bound of the created window
    is applied to it (a parent created before it is before its children too). Matching too much costs a
    confirming listing; the listing decides.
    """
    job_id, job = event.job_id, event.job
    if query.array_job_id:
        return job_id == query.array_job_id or array_parent_of(job_id) == query.array_job_id
    if query.multi_node_job_id:
        return job_id == query.multi_node_job_id or node_parent_of(job_id) == query.multi_node_job_id
    parent = array_parent_of(job_id)
    if query.job_ids:
        if job_id in query.job_ids:
            return query.matches(job)
        return include_array_children and parent in query.job_ids and _child_filters(query).matches(job)
    if query.job_queue is None or not queue_matches(query.job_queue, job.get("jobQueue")):
        return False
    if node_parent_of(job_id) is not None:
        return False
    if parent is not None:
        return include_array_children and _child_filters(query).matches(job)
    return query.matches(job)


def _child_filters(query: JobQuery) -> JobQuery:
    """The filters an array child is held to (see :func:`event_matches`): no ids, no upper created bound."""
    return replace(query, job_queue=None, job_ids=(), created_before=None)


# -- ordering one job's states --------------------------------------------------------------------------------------
def is_newer(new: JobEvent, old: JobEvent) -> bool:
    """Whether ``new`` shows a later state of the job than ``old``. A terminal status (SUCCEEDED, FAILED) is final:
    nothing replaces it, and it replaces anything active. Between active states, more attempts is newer (a failed
    attempt that is retried sends the job back to RUNNABLE with one more attempt listed); with as many attempts, the
    later status in SUBMITTED < PENDING < RUNNABLE < STARTING < RUNNING. The same state is not newer."""
    if old.status in _TERMINAL:
        return False
    if new.status in _TERMINAL:
        return True
    if new.attempts != old.attempts:
        return new.attempts > old.attempts
    return _ACTIVE_RANK.get(new.status, -1) > _ACTIVE_RANK.get(old.status, -1)


class RecentIds:
    """The last ``limit`` ids (or other keys) seen, for deduplication in bounded memory (the oldest is forgotten
    first): what a long-running consumer or trigger can afford to remember."""

    def __init__(self, limit: int = DEDUP_MEMORY) -> None:
        if limit < 1:
            raise ValueError(f"limit={limit!r}: remember at least one id.")
        self.limit = limit
        self._ids: dict[Hashable, None] = {}  # insertion-ordered

    def add(self, item: Hashable) -> bool:
        """True if ``item`` is new (and now remembered); False if it was seen among the last ``limit``."""
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self.limit:
            del self._ids[next(iter(self._ids))]
        return True

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class JobEventLedger:
    """The newest state events have shown of each job, whatever order and how often they came."""

    def __init__(self, memory: int = DEDUP_MEMORY) -> None:
        self._seen = RecentIds(memory)
        self._latest: dict[str, JobEvent] = {}

    def add(self, event: JobEvent) -> bool:
        """Take ``event`` into account; True when what is known changed (a new event id showing a newer state)."""
        if not self._seen.add(event.event_id):
            return False
        known = self._latest.get(event.job_id)
        if known is not None and not is_newer(event, known):
            return False
        self._latest[event.job_id] = event
        return True

    def get(self, job_id: str) -> JobEvent | None:
        """The newest event of ``job_id``, if any came."""
        return self._latest.get(job_id)

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Job id -> the (redacted) job dict of its newest event."""
        return {job_id: event.job for job_id, event in self._latest.items()}

    def __len__(self) -> int:
        return len(self._latest)
