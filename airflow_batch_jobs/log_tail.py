"""The failed jobs' last log lines in the task log: where each job's last attempt logged, and its tail, read within a
bounded time without ever touching the verdict.

**Where it is read.** On the worker, where the task's verdict becomes its outcome (``finish``: the poke that decided,
``execute_complete`` after the trigger, the check operator's ``execute``), with the amazon provider's
:class:`~airflow.providers.amazon.aws.hooks.logs.AwsLogsHook` (as
:class:`~airflow_batch_jobs.hooks.failure_logs.FailureLogsHook`) and its blocking client. Not in the trigger, because:

- one path serves poke, reschedule, deferrable and the check operator: the same lines, the same bound;
- the trigger's event is stored in the metadata database and handed on as it is: job output there would bloat it
  (5 jobs x 20 lines of up to 256 KB each) and keep it outside the task log, where Airflow's secret masker applies;
- the triggerer's event loop serves every deferred task; the worker resumes for ``execute_complete`` anyway, so the
  read costs only that task's slot, at most :data:`LOG_TAIL_TIMEOUT_S`, and only when jobs failed.

**How.** One ``GetLogEvents`` call per job, ``startFromHead=False`` with ``limit=log_lines``: the service returns the
latest events, so a stream of 10,000 lines costs one call, not a read from its head (the hook's own
``get_log_events`` pages forward from the head; its async one sleeps a second per event). Calls run in parallel
daemon threads; whatever has not answered when :data:`LOG_TAIL_TIMEOUT_S` have passed is reported as not read and
left behind (a daemon thread never holds the task's process). Access denied, a missing stream, throttling, a timeout:
one line saying so, and the task ends exactly as it would have.

**Which stream.** The last attempt's, as DescribeJobs names it: the container's ``logStreamName`` (a multi-node
node's own; for ECS task properties the essential container's, the one whose exit code decided). The log group is
the ``awslogs-group`` of that container's ``logConfiguration`` (its ``awslogs-region`` too), else
``/aws/batch/job``. EKS jobs log to their cluster, not to CloudWatch Logs: said so, not read.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.links import DEFAULT_LOG_GROUP
from airflow_batch_jobs.policy import MAX_JOBS_IN_MESSAGE, InvalidPolicyError, Verdict

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_batch_jobs.jobs import Attempt, JobView
    from airflow_batch_jobs.policy import Decision

# The longest the failure's log lines may delay the task's end, all jobs together.
LOG_TAIL_TIMEOUT_S = 10.0
DEFAULT_LOG_LINES = 20
DEFAULT_LOG_JOBS = 5
# GetLogEvents returns at most 10,000 events a call (its ``limit``).
MAX_LOG_LINES = 10_000
# The verdict carries where the jobs its message names logged, and no more.
MAX_LOG_JOBS = MAX_JOBS_IN_MESSAGE
FRAME = "  │ "  # before each of a job's lines in the task log
FRAME_END = "  └ "


def check_log_arguments(log_lines: Any, log_jobs: Any) -> None:
    """``log_lines`` and ``log_jobs`` of the sensor and the check operator (plain values: checked at parse time)."""
    if isinstance(log_lines, bool) or not isinstance(log_lines, int) or not 0 <= log_lines <= MAX_LOG_LINES:
        raise InvalidPolicyError(
            f"log_lines={log_lines!r}: use a whole number from 0 (no log lines) to {MAX_LOG_LINES} (the most one "
            "CloudWatch Logs GetLogEvents call returns)."
        )
    if isinstance(log_jobs, bool) or not isinstance(log_jobs, int) or not 0 <= log_jobs <= MAX_LOG_JOBS:
        raise InvalidPolicyError(
            f"log_jobs={log_jobs!r}: use a whole number from 0 (no log lines) to {MAX_LOG_JOBS} (the failure "
            "message names at most that many jobs)."
        )


@dataclass(frozen=True)
class LogSource:
    """Where one failed job's last attempt logged (JSON-native: it travels in the trigger's event), or why there is
    nothing to read (``missing``)."""

    job_id: str
    job_name: str
    attempt: int | None = None  # 1-based
    stream: str | None = None
    group: str = DEFAULT_LOG_GROUP
    region: str | None = None
    missing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogSource:
        return cls(
            job_id=str(data["job_id"]),
            job_name=str(data.get("job_name", "")),
            attempt=data.get("attempt"),
            stream=data.get("stream"),
            group=data.get("group") or DEFAULT_LOG_GROUP,
            region=data.get("region"),
            missing=data.get("missing"),
        )

    @property
    def title(self) -> str:
        attempt = f", attempt {self.attempt}" if self.attempt else ""
        where = f", log stream {self.stream} in {self.group}" if self.stream else ""
        return f"{self.job_name} ({self.job_id}){attempt}{where}"


def _attempt_number(attempt: Attempt | None) -> int | None:
    return attempt.index + 1 if attempt is not None and attempt.index is not None else None


def source_of(job: JobView) -> LogSource:
    """Where ``job``'s last attempt logged (:meth:`JobView.cloudwatch_log`: an earlier attempt's stream when the last
    one names none, labelled with that attempt), or why there is nothing to read."""
    last = job.attempts[-1] if job.attempts else None
    base = LogSource(job_id=job.job_id, job_name=job.job_name, attempt=_attempt_number(last))
    location = job.cloudwatch_log()
    if location is not None:
        stream = location["awslogs_stream_name"]
        writer = next((a for a in reversed(job.attempts) if a.log_stream == stream), last)
        return replace(
            base,
            attempt=_attempt_number(writer),
            stream=stream,
            group=location["awslogs_group"] or DEFAULT_LOG_GROUP,
            region=location["awslogs_region"],
        )
    if "eksAttempts" in job.raw or "eksProperties" in job.raw:
        why = "an EKS job logs to its cluster (its pod's logs), not to CloudWatch Logs"
    elif last is None and job.array_properties and "size" in job.array_properties:
        why = "an array job: its children's log streams hold the lines (include_array_children=True reads them)"
    elif not job.is_described:
        why = "only a summary of the job is known (not described, or aged out of AWS Batch), which names no log stream"
    elif last is None:
        why = "no attempt ran"
    elif not job.log_stream:
        why = "no log stream is named for it (its container never started)"
    else:
        why = "its logConfiguration sends the lines elsewhere than CloudWatch Logs"
    return replace(base, missing=why)


def log_sources(decision: Decision) -> list[dict[str, Any]]:
    """Where the jobs behind a failure (failed jobs, failed first) or a skip (jobs with a skip exit code) logged, at
    most :data:`MAX_LOG_JOBS`, for the trigger's event."""
    if decision.verdict is Verdict.FAILURE:
        jobs: Sequence[JobView] = decision.failed
    elif decision.verdict is Verdict.SKIP:
        jobs = decision.skipped
    else:
        return []
    return [source_of(job).to_dict() for job in jobs[:MAX_LOG_JOBS]]


# -- reading ----------------------------------------------------------------------------------------------------------


class _Clients:
    """One CloudWatch Logs client per region, made on first use by whichever reader needs it (inside the bound: making
    a client can mean assuming a role)."""

    def __init__(self, task: Any, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def get(self, region: str | None) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self._make(region)
            return self._clients[region]

    def _make(self, region: str | None) -> Any:
        from botocore.config import Config

        from airflow_batch_jobs.hooks.failure_logs import FailureLogsHook

        task = self.task
        hook = FailureLogsHook(
            aws_conn_id=task.aws_conn_id,
            region_name=region or task.region_name,
            verify=task.verify,
            config=task.botocore_config,
        )
        config = hook.config.merge(Config(connect_timeout=min(self.timeout, 5.0), read_timeout=self.timeout))
        if getattr(config, "retries", None) is None:  # the user's or the connection's retry settings stand
            config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": 2}))
        return hook.get_client_type(config=config)


# One job's part of the task log: whether its lines were read, and the text.
Tail = tuple[bool, str]


def _read(clients: _Clients, source: LogSource, lines: int) -> Tail:
    """One job's tail, framed; or the one line saying why it could not be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = clients.get(source.region).get_log_events(
            logGroupName=source.group, logStreamName=source.stream, startFromHead=False, limit=lines
        )
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        message = err.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            why = f"it does not exist ({message}): the container may never have started or written a line"
        elif code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            why = f"access denied ({message}): the connection's role needs logs:GetLogEvents on {source.group}"
        elif code in ("ThrottlingException", "TooManyRequestsException", "Throttling"):
            why = f"CloudWatch Logs throttled the call ({message})"
        else:
            why = f"{code}: {message}"
        return _not_read(source, why)
    except BotoCoreError as err:
        return _not_read(source, str(err))
    events = answer.get("events") or []
    if not events:
        return True, f"Log lines of {source.title}: none written."
    body = "\n".join(FRAME + line for event in events for line in str(event.get("message", "")).splitlines() or [""])
    footer = f"{FRAME_END}end of {source.job_name}'s log lines"
    return True, f"Last {len(events)} log line(s) of {source.title}:\n{body}\n{footer}"


def _not_read(source: LogSource, why: str) -> Tail:
    return False, f"Log lines of {source.title} not read: {why}. The verdict stands."


def read_tails(task: Any, sources: Sequence[LogSource], lines: int, timeout: float) -> list[Tail]:
    """Each source's tail (or why not), in order, within ``timeout`` seconds all together. ``task`` gives the
    connection (``aws_conn_id``, ``region_name``, ``verify``, ``botocore_config``)."""
    clients = _Clients(task, timeout)
    results: dict[int, Tail] = {}

    def reader(index: int, source: LogSource) -> None:
        try:
            results[index] = _read(clients, source, lines)
        except Exception as err:  # making the client included: never more than a line about it
            results[index] = _not_read(source, f"{type(err).__name__}: {err}")

    deadline = time.monotonic() + timeout
    threads = []
    for index, source in enumerate(sources):
        if source.missing is None:
            thread = threading.Thread(target=reader, args=(index, source), name="batch-log-tail", daemon=True)
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    answered = dict(results)  # a reader answering from now on is ignored
    out: list[Tail] = []
    for index, source in enumerate(sources):
        if source.missing is not None:
            out.append((False, f"Log lines of {source.title}: none to read: {source.missing}."))
        else:
            out.append(answered.get(index) or _not_read(source, f"no answer within {timeout:g} s"))
    return out


def show_log_tails(task: Any, event: Mapping[str, Any]) -> None:
    """Log the tails of the jobs behind a failure or skip verdict (``event["logs"]``) in the task log, at most
    ``task.log_jobs`` jobs of ``task.log_lines`` lines each. Never raises: the verdict is the task's outcome."""
    lines, jobs = getattr(task, "log_lines", 0), getattr(task, "log_jobs", 0)
    raw_sources = event.get("logs") or []
    if not lines or not jobs or not raw_sources:
        return
    try:
        sources = [LogSource.from_dict(s) for s in raw_sources[:jobs]]
        for read, text in read_tails(task, sources, lines, LOG_TAIL_TIMEOUT_S):
            (task.log.info if read else task.log.warning)(text)
    except Exception as err:
        task.log.warning(
            "The failed jobs' log lines could not be read (%s: %s); the verdict stands.", type(err).__name__, err
        )
