"""The emulated CloudWatch Logs: each attempt's container log stream, served as ``GetLogEvents`` and
``DescribeLogStreams`` on the emulator's own endpoint (the server tells the services apart by ``X-Amz-Target``).

A stream exists once its attempt's container started, named as DescribeJobs names it (``logStreamName``), in the
log group of that container's ``logConfiguration`` (``awslogs-group``, else ``/aws/batch/job``). Its lines are the
attempt's scripted ``log`` (the essential container's) or a few plausible ones, spread over the attempt's run: only
those written by the emulated clock's now are there. An attempt whose container never started (``CannotPull...``,
``Task failed to start``) or scripted with ``log: false`` has a stream name but no stream, as the service leaves it.

``GetLogEvents`` follows the API reference: ``startFromHead`` false (the default) returns the latest events, at most
``limit`` (1-10,000) or 1 MB, oldest first within the page; ``nextForwardToken`` / ``nextBackwardToken`` page on,
and a token at the end of the stream comes back unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.session

from airflow_batch_jobs.testing.errors import BatchServiceError
from airflow_batch_jobs.testing.rules import ACCOUNT

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from botocore.model import ServiceModel

    from airflow_batch_jobs.testing.lifecycle import Job
    from airflow_batch_jobs.testing.model import BatchModel
    from airflow_batch_jobs.testing.outcomes import AttemptScript

DEFAULT_LOG_GROUP = "/aws/batch/job"
TARGET_PREFIX = "Logs_20140328."
MAX_EVENTS = 10_000  # GetLogEvents.limit: "up to 10,000 log events"
MAX_RESPONSE_BYTES = 1_048_576  # "as many log events as can fit in a response size of 1 MB"
EVENT_OVERHEAD_BYTES = 26  # what each event counts beyond its message (the PutLogEvents batch-size rule)
INGESTION_DELAY_MS = 150
MAX_STREAMS_PER_PAGE = 50  # DescribeLogStreams.limit

# Reasons of containers that never started: the service names a stream for them, but none is ever written.
NEVER_STARTED_REASONS = (
    "CannotPullContainerError",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "ResourceInitializationError",
)
NEVER_STARTED_STATUS = "Task failed to start"


@functools.cache
def logs_service_model() -> ServiceModel:
    """botocore's model of CloudWatch Logs, loaded once per process."""
    return botocore.session.get_session().get_service_model("logs")


def log_group(container: Mapping[str, Any]) -> str:
    """The log group a container's ``logConfiguration`` names, else the one AWS Batch uses."""
    options = (container.get("logConfiguration") or {}).get("options") or {}
    return str(options.get("awslogs-group") or DEFAULT_LOG_GROUP)


def never_started(script: AttemptScript) -> bool:
    reason = script.reason or ""
    return reason.startswith(NEVER_STARTED_REASONS) or (script.status_reason or "").startswith(NEVER_STARTED_STATUS)


def plausible_lines(job: Job, index: int, script: AttemptScript, container: str, essential: bool) -> list[str]:
    """What an unscripted attempt's container writes: a start, some work, and an end that fits how it exits."""
    if not essential:
        return [f"[{container}] started", f"[{container}] forwarding logs", f"[{container}] stopping: task ended"]
    node = f", node {job.node_index}" if job.node_index is not None else ""
    child = f", index {job.array_index}" if job.array_index is not None else ""
    lines = [
        f"starting {job.name} (attempt {index + 1}{node}{child})",
        "reading configuration from the environment",
        "processing input",
    ]
    reason = script.reason or ""
    if script.exit_code == 0:
        lines.append("done: all records written")
    elif reason.startswith("OutOfMemoryError") or script.exit_code == 137:
        lines.append("loading the whole input partition into memory")  # then killed: no last word
    elif script.exit_code is None:
        lines.append("still processing")  # the host went away under it
    else:
        lines.append(f"error: {reason or 'unhandled exception'}")
        lines.append(f"exiting with code {script.exit_code}")
    return lines


@dataclass(frozen=True)
class StreamRef:
    """Which attempt's container writes a stream."""

    job: Job
    index: int
    container: str
    essential: bool = True


@dataclass(frozen=True)
class Event:
    timestamp: int
    message: str

    def shape(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "message": self.message,
            "ingestionTime": self.timestamp + INGESTION_DELAY_MS,
        }


class LogStreams:
    """Every log stream an attempt's shape named, by (group, stream); registered when the attempt is shaped."""

    def __init__(self) -> None:
        self.refs: dict[tuple[str, str], StreamRef] = {}

    def register(self, group: str, stream: str, ref: StreamRef) -> None:
        self.refs[(group, stream)] = ref

    def groups(self) -> set[str]:
        return {DEFAULT_LOG_GROUP, *(group for group, _ in self.refs)}


class LogsService:
    """The CloudWatch Logs operations, over the Batch model's jobs and clock."""

    def __init__(self, model: BatchModel) -> None:
        self.model = model

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {"GetLogEvents": self.get_log_events, "DescribeLogStreams": self.describe_log_streams}

    # -- streams and their events --------------------------------------------------------------------------
    def _events(self, ref: StreamRef, now: int) -> list[Event] | None:
        """The stream's events written by ``now``; None when the stream does not exist (yet, or ever)."""
        model = self.model
        attempts = model.lifecycle.timeline(ref.job).attempts
        if ref.index >= len(attempts):
            return None  # the attempt no longer exists (the job was stopped before it began)
        attempt = attempts[ref.index]
        if attempt.started_at > now:
            return None
        script = ref.job.script.attempt(ref.index)
        if not script.log_stream or never_started(script):
            return None
        if ref.essential and script.log is not None:
            lines = list(script.log)
        else:
            lines = plausible_lines(ref.job, ref.index, script, ref.container, ref.essential)
        span = max(script.duration_ms, 1)
        until = min(now, attempt.stopped_at)
        stamps = (attempt.started_at + span * (i + 1) // (len(lines) + 1) for i in range(len(lines)))
        return [Event(at, line) for at, line in zip(stamps, lines, strict=True) if at <= until]

    def _shape_every_attempt(self) -> None:
        """Streams are registered when attempts are shaped, which happens when a job is first read: shape every job's
        (cached, so cheap) before answering for a stream no Batch call has named yet."""
        life = self.model.lifecycle
        for job in list(self.model.jobs.values()):
            life.timeline(job)

    def _stream(self, req: Mapping[str, Any]) -> list[Event]:
        group = str(req.get("logGroupName") or _group_name(req.get("logGroupIdentifier")))
        if not group:
            raise BatchServiceError(
                "Either logGroupName or logGroupIdentifier must be given.", "InvalidParameterException"
            )
        now = self.model.clock.now_ms()
        streams = self.model.shapes.log_streams
        key = (group, str(req["logStreamName"]))
        if key not in streams.refs:
            self._shape_every_attempt()
        if group not in streams.groups():
            raise BatchServiceError("The specified log group does not exist.", "ResourceNotFoundException")
        ref = streams.refs.get(key)
        events = self._events(ref, now) if ref is not None else None
        if events is None:
            raise BatchServiceError("The specified log stream does not exist.", "ResourceNotFoundException")
        return events

    # -- GetLogEvents --------------------------------------------------------------------------------------
    def get_log_events(self, req: dict[str, Any]) -> dict[str, Any]:
        limit = int(req.get("limit") or MAX_EVENTS)
        if not 1 <= limit <= MAX_EVENTS:
            raise BatchServiceError(f"limit must be between 1 and {MAX_EVENTS}.", "InvalidParameterException")
        with self.model.lock:
            events = self._stream(req)
        start, end = req.get("startTime"), req.get("endTime")
        window = [e for e in events if (start is None or e.timestamp >= start) and (end is None or e.timestamp < end)]
        token = req.get("nextToken")
        if token:
            direction, position = _read_token(token, len(window))
        else:
            direction, position = ("f", 0) if req.get("startFromHead") else ("b", len(window))
        if direction == "f":
            page = _fit(window[position : position + limit], from_head=True)
            first, after = position, position + len(page)
        else:
            page = _fit(window[max(0, position - limit) : position], from_head=False)
            first, after = position - len(page), position
        forward = token if token and direction == "f" and not page else _token("f", after)
        backward = token if token and direction == "b" and not page else _token("b", first)
        return {"events": [e.shape() for e in page], "nextForwardToken": forward, "nextBackwardToken": backward}

    # -- DescribeLogStreams --------------------------------------------------------------------------------
    def describe_log_streams(self, req: dict[str, Any]) -> dict[str, Any]:
        group = str(req.get("logGroupName") or _group_name(req.get("logGroupIdentifier")))
        order = req.get("orderBy", "LogStreamName")
        prefix = req.get("logStreamNamePrefix") or ""
        if prefix and order == "LastEventTime":
            raise BatchServiceError(
                "Cannot order by LastEventTime with a logStreamNamePrefix.", "InvalidParameterException"
            )
        with self.model.lock:
            self._shape_every_attempt()
            streams = self.model.shapes.log_streams
            if group not in streams.groups():
                raise BatchServiceError("The specified log group does not exist.", "ResourceNotFoundException")
            now = self.model.clock.now_ms()
            found = []
            for (ref_group, name), ref in streams.refs.items():
                if ref_group != group or not name.startswith(prefix):
                    continue
                events = self._events(ref, now)
                if events is not None:
                    found.append(self._stream_shape(group, name, ref, events))
        if order == "LastEventTime":
            found.sort(key=lambda s: (s.get("lastEventTimestamp", 0), s["logStreamName"]))
        else:
            found.sort(key=lambda s: s["logStreamName"])
        if req.get("descending"):
            found.reverse()
        limit = int(req.get("limit") or MAX_STREAMS_PER_PAGE)
        offset = int(req.get("nextToken") or 0)
        page = found[offset : offset + limit]
        answer: dict[str, Any] = {"logStreams": page}
        if offset + limit < len(found):
            answer["nextToken"] = str(offset + limit)
        return answer

    def _stream_shape(self, group: str, name: str, ref: StreamRef, events: list[Event]) -> dict[str, Any]:
        created = self.model.lifecycle.timeline(ref.job).attempts[ref.index].started_at
        shape: dict[str, Any] = {
            "logStreamName": name,
            "creationTime": created,
            "arn": f"arn:aws:logs:{self.model.region}:{ACCOUNT}:log-group:{group}:log-stream:{name}",
            "storedBytes": 0,
        }
        if events:
            shape["firstEventTimestamp"] = events[0].timestamp
            shape["lastEventTimestamp"] = events[-1].timestamp
            shape["lastIngestionTime"] = events[-1].timestamp + INGESTION_DELAY_MS
        return shape


def _group_name(identifier: Any) -> str:
    """A ``logGroupIdentifier`` is a name or an ARN (``...:log-group:<name>``)."""
    text = str(identifier or "")
    return text.split(":log-group:", 1)[1].split(":", 1)[0] if ":log-group:" in text else text


def _token(direction: str, position: int) -> str:
    """The service's tokens are ``f/`` or ``b/`` and 56 digits."""
    return f"{direction}/{position:056d}"


def _read_token(token: str, size: int) -> tuple[str, int]:
    direction, _, digits = token.partition("/")
    if direction not in ("f", "b") or not digits.isdigit():
        raise BatchServiceError("The specified nextToken is invalid.", "InvalidParameterException")
    return direction, min(int(digits), size)


def _fit(events: list[Event], *, from_head: bool) -> list[Event]:
    """At most 1 MB of events: the oldest ones from the head, the newest ones from the tail."""
    ordered = events if from_head else list(reversed(events))
    kept, size = [], 0
    for event in ordered:
        size += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
        if size > MAX_RESPONSE_BYTES:
            break
        kept.append(event)
    return kept if from_head else list(reversed(kept))
