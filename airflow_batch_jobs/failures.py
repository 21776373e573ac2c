"""What kind of failure it was: each failed attempt classed from its status reason, container reason and exit code,
with the sentence that says what to do.

A Spot reclaim, an image that cannot be pulled, an out-of-memory kill, a timeout, a job someone cancelled and a bug
in the job's code all end as ``FAILED``; the service says which in ``statusReason`` (the attempt's and the job's)
and the container's ``reason``. The patterns below are the texts AWS documents (or, where it documents only the
mechanism, the text its answers carry), each with its source. Pure: no I/O, so every path classes alike.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_batch_jobs.jobs import Attempt, JobView


class FailureClass(enum.StrEnum):
    """The kind of a failure, as XCom records carry it (``failure_class``)."""

    INFRASTRUCTURE = "infrastructure"
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    APPLICATION = "application"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        """As the failure message writes it: ``out of memory``."""
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Diagnosis:
    """A failure's class and what to do about it."""

    failure_class: FailureClass
    advice: str


ADVICE = {
    FailureClass.INFRASTRUCTURE: (
        "AWS Batch or its compute environment failed the attempt, not the job's code: running it again usually "
        "works (a retryStrategy with evaluateOnExit RETRY on this reason does it for you); if it keeps happening, "
        "check the compute environment."
    ),
    FailureClass.OUT_OF_MEMORY: (
        "the container used more memory than it was given: raise the job definition's memory "
        "(resourceRequirements MEMORY) or lower the job's peak use; running it again as it is fails the same way."
    ),
    FailureClass.TIMEOUT: (
        "the attempt ran longer than the job's timeout (attemptDurationSeconds) and AWS Batch stopped it: raise "
        "the timeout, or find in its last log lines why it ran long."
    ),
    FailureClass.CANCELLED: (
        "a person or the service stopped the job (CancelJob or TerminateJob, a job queue's time limit, or a job it "
        "depends on failed): the status reason says which; submit it again if that was not meant."
    ),
    FailureClass.APPLICATION: (
        "the job's own code exited with a non-zero exit code: its log lines say why; fix the code, its input or "
        "its permissions (running it again as it is likely fails the same way)."
    ),
    FailureClass.UNKNOWN: (
        "AWS Batch gave no exit code or reason that says why: read the status reason, and the job in the AWS "
        "Batch console."
    ),
}


@dataclass(frozen=True)
class Pattern:
    """A reason text: ``text`` ending in ``*`` matches as a prefix (as ``evaluateOnExit`` globs do), else whole."""

    text: str
    failure_class: FailureClass
    advice: str | None = None  # when the reason tells more than the class does

    def matches(self, value: str | None) -> bool:
        if not value:
            return False
        if self.text.endswith("*"):
            return value.startswith(self.text[:-1])
        return value == self.text

    def diagnosis(self) -> Diagnosis:
        return Diagnosis(self.failure_class, self.advice or ADVICE[self.failure_class])


_PULL = (
    "the container image could not be pulled: check the image name and tag, and that the job's execution role "
    "and network can reach its registry; running it again works only if that was passing."
)
_NOT_STARTED = (
    "the container never started (AWS Batch or ECS could not set it up): check the job definition's image, "
    "volumes, secrets and log configuration, and the execution role; a passing cause goes away on a retry."
)

# An attempt's (or the job's) statusReason.
STATUS_REASONS = (
    # AWS Batch User Guide, "Job timeouts" (batch/latest/userguide/job_timeouts.html): after attemptDurationSeconds
    # the attempt is terminated (SIGTERM, then SIGKILL: exit code 137, so this is read before any exit code). The
    # statusReason the service then sets, as DescribeJobs answers and EventBridge job events carry it.
    Pattern("Job attempt duration exceeded timeout*", FailureClass.TIMEOUT),
    # The instance under the attempt went away, a Spot reclaim most often: "Host EC2 (instance i-0123...)
    # terminated." AWS CDK aws-batch, Reason.SPOT_INSTANCE_RECLAIMED = {onStatusReason: "Host EC2*"} ("Will only
    # match if the Spot instance executing the job was reclaimed").
    Pattern(
        "Host EC2*",
        FailureClass.INFRASTRUCTURE,
        "the EC2 instance under the attempt was terminated (a Spot reclaim, most often): run it again, or let "
        "AWS Batch retry it (retryStrategy evaluateOnExit: onStatusReason 'Host EC2*', action RETRY).",
    ),
    # AWS Batch User Guide, "Automated job retries" (batch/latest/userguide/job_retries.html): its evaluateOnExit
    # example retries onStatusReason "Task failed to start".
    Pattern("Task failed to start*", FailureClass.INFRASTRUCTURE, _NOT_STARTED),
    # Amazon ECS Developer Guide, "AWS Fargate capacity providers": a Fargate Spot task reclaimed for capacity stops
    # with "Your Spot Task was interrupted."
    Pattern(
        "Your Spot Task was interrupted*",
        FailureClass.INFRASTRUCTURE,
        "AWS reclaimed the Fargate Spot capacity under the attempt: run it again, or let AWS Batch retry it "
        "(retryStrategy evaluateOnExit on this status reason, action RETRY).",
    ),
    # Not the job's own failure: AWS Batch fails a job whose dependency failed with "Dependent Job failed"
    # (the statusReason of such jobs in DescribeJobs and EventBridge job events).
    Pattern(
        "Dependent Job*",
        FailureClass.CANCELLED,
        "a job it depends on failed, so AWS Batch never ran it: see that job's failure.",
    ),
)

# A container's reason (the attempt's deciding container: the essential one of an ECS task, a failing init
# container of an EKS pod).
CONTAINER_REASONS = (
    # Amazon ECS Developer Guide, "Troubleshooting Amazon ECS OutOfMemoryError errors" (out-of-memory.html):
    # "OutOfMemoryError: Container killed due to memory usage", with exit code 137.
    Pattern("OutOfMemoryError*", FailureClass.OUT_OF_MEMORY),
    # Kubernetes documentation, "Assign Memory Resources to Containers and Pods": a container over its memory limit
    # is killed with reason OOMKilled (EKS jobs).
    Pattern("OOMKilled", FailureClass.OUT_OF_MEMORY),
    # Amazon ECS Developer Guide, "Amazon ECS stopped task error codes" (stopped-task-error-codes.html): errors of
    # the container agent around the container, not of the code in it.
    Pattern("CannotPullContainerError*", FailureClass.INFRASTRUCTURE, _PULL),
    Pattern("CannotStartContainerError*", FailureClass.INFRASTRUCTURE, _NOT_STARTED),
    Pattern("CannotCreateContainerError*", FailureClass.INFRASTRUCTURE, _NOT_STARTED),
    Pattern("CannotCreateVolumeError*", FailureClass.INFRASTRUCTURE, _NOT_STARTED),
    Pattern("ResourceInitializationError*", FailureClass.INFRASTRUCTURE, _NOT_STARTED),
    Pattern("CannotInspectContainerError*", FailureClass.INFRASTRUCTURE),
    Pattern("CannotStopContainerError*", FailureClass.INFRASTRUCTURE),
    Pattern("ContainerRuntimeError*", FailureClass.INFRASTRUCTURE),
    Pattern("ContainerRuntimeTimeoutError*", FailureClass.INFRASTRUCTURE),
    Pattern("DockerTimeoutError*", FailureClass.INFRASTRUCTURE),
    Pattern("InternalError*", FailureClass.INFRASTRUCTURE),
)

# An array parent fails with "Array Child Job failed" when a child does (the statusReason of such parents in
# DescribeJobs and EventBridge job events): its children carry the failures.
ARRAY_CHILD_FAILED = "Array Child Job failed"

_STOPPED = Diagnosis(FailureClass.CANCELLED, ADVICE[FailureClass.CANCELLED])


def _first(patterns: Iterable[Pattern], value: str | None) -> Diagnosis | None:
    return next((p.diagnosis() for p in patterns if p.matches(value)), None)


def _from_status_reason(value: str | None) -> Diagnosis | None:
    """What a statusReason (an attempt's or the job's) names: the service's own reasons, or an ECS container error
    written there (Fargate reports e.g. ``ResourceInitializationError: unable to pull secrets`` as the status
    reason, with no container reason)."""
    return _first(STATUS_REASONS, value) or _first(CONTAINER_REASONS, value)


_NOT_SAID = (FailureClass.APPLICATION, FailureClass.UNKNOWN)  # classes an exit code alone gives


def diagnose_attempt(attempt: Attempt, *, stopped: bool = False) -> Diagnosis | None:
    """The class of one attempt, or None if it did not fail (exit code 0). ``stopped``: the job was cancelled or
    terminated and this is its last attempt (what ended it was the stop, whatever the container then showed).

    A timeout is read before the exit code (its SIGKILL is a 137), an out-of-memory kill before the other container
    reasons, the service's reasons before a non-zero exit code (a Spot reclaim can leave one)."""
    if stopped:
        return _STOPPED
    timeout = _first(STATUS_REASONS[:1], attempt.status_reason)
    if timeout is not None:
        return timeout
    found = _first(CONTAINER_REASONS, attempt.reason) or _from_status_reason(attempt.status_reason)
    if found is not None:
        return found
    if attempt.exit_code == 0:
        return None
    if attempt.exit_code is not None:
        return Diagnosis(FailureClass.APPLICATION, ADVICE[FailureClass.APPLICATION])
    return Diagnosis(FailureClass.UNKNOWN, ADVICE[FailureClass.UNKNOWN])


def diagnose_attempts(job: JobView) -> list[Diagnosis | None]:
    """Each attempt's class (None: it did not fail), in order."""
    attempts = job.attempts
    stopped = job.status == "FAILED" and (job.is_cancelled or job.is_terminated)
    return [diagnose_attempt(a, stopped=stopped and i == len(attempts) - 1) for i, a in enumerate(attempts)]


def diagnose_job(job: JobView) -> Diagnosis | None:
    """The class of a FAILED job (None for any other status): how its last attempt failed, unless only its exit
    code says so and the job's own status reason names the cause (a timeout's 137, a reclaimed host), or, without
    an attempt, what the job's status reason says. A job cancelled or terminated is ``cancelled`` whatever an
    attempt showed."""
    if job.status != "FAILED":
        return None
    if job.is_cancelled or job.is_terminated:
        return _STOPPED
    last = diagnose_attempts(job)[-1] if job.attempts else None
    if last is not None and last.failure_class not in _NOT_SAID:
        return last
    found = _from_status_reason(job.status_reason) or _first(CONTAINER_REASONS, job.final_reason)
    if found is not None:
        return found
    if last is not None:
        return last
    if job.status_reason and job.status_reason.startswith(ARRAY_CHILD_FAILED):
        return Diagnosis(
            FailureClass.UNKNOWN,
            "its array children failed: include_array_children=True judges each child and names how each failed.",
        )
    if job.final_exit_code not in (None, 0):
        return Diagnosis(FailureClass.APPLICATION, ADVICE[FailureClass.APPLICATION])
    return Diagnosis(FailureClass.UNKNOWN, ADVICE[FailureClass.UNKNOWN])


def failure_class(job: JobView) -> str | None:
    """``failure_class`` of a job's XCom record: its class's value, None unless it FAILED."""
    diagnosis = diagnose_job(job)
    return diagnosis.failure_class.value if diagnosis is not None else None


def count_classes(jobs: Iterable[JobView]) -> str:
    """``2 infrastructure, 1 application``: failed jobs per class, the most frequent first."""
    counts = Counter(d.failure_class for d in map(diagnose_job, jobs) if d is not None)
    order = list(FailureClass)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], order.index(item[0])))
    return ", ".join(f"{n} {cls.label}" for cls, n in ranked)
