"""The verdict: from the jobs seen and a policy to WAITING, SUCCESS, SKIP or FAILURE, with a message a person can act
on. Pure (no I/O), so the sensor, the trigger and the check operator judge exactly alike."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.failures import count_classes, diagnose_attempts, diagnose_job
from airflow_batch_jobs.query import ALL_STATUSES

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_batch_jobs.jobs import JobView

MAX_JOBS_IN_MESSAGE = 20

# Marks a judged entry that is not a job but stands for one of several: an array child that aged out of ListJobs before
# the wait saw it, counted from its parent's statusSummary, which tells how many of the missing children ended in each
# status but not which (airflow_batch_jobs.watch.aged_out_children). It holds the real ids the entry is one of ([] when
# not known); the entry's jobId is a placeholder that never leaves the provider: records have job_id None, messages
# and links show what it is one of.
ONE_OF_JOB_IDS = "oneOfJobIds"


class InvalidPolicyError(ValueError):
    """A policy argument that cannot work. The message names the argument and the fix."""


class Verdict(enum.StrEnum):
    WAITING = "waiting"
    SUCCESS = "success"
    SKIP = "skip"
    FAILURE = "failure"


def _exit_codes(value: Iterable[Any] | None, argument: str) -> frozenset[int]:
    if value is None:
        return frozenset()
    if isinstance(value, int | str):
        value = [value]
    codes = set()
    for code in value:
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
            raise InvalidPolicyError(f"{argument} contains {code!r}: exit codes are whole numbers from 0 to 255.")
        codes.add(code)
    return frozenset(codes)


@dataclass(frozen=True)
class Policy:
    """How a set of jobs is judged. Build it with :meth:`build`, which checks every argument."""

    match: str = "all"
    min_jobs: int = 1
    success_exit_codes: frozenset[int] = frozenset()
    skip_exit_codes: frozenset[int] = frozenset()
    max_failed_jobs: int = 0
    fail_fast: bool = True
    include_array_children: bool = False
    runnable_timeout: float | None = None

    @classmethod
    def build(
        cls,
        *,
        match: str = "all",
        min_jobs: int = 1,
        success_exit_codes: Iterable[int] | None = None,
        skip_exit_codes: Iterable[int] | None = None,
        max_failed_jobs: int = 0,
        fail_fast: bool = True,
        include_array_children: bool = False,
        runnable_timeout: float | Any | None = None,
    ) -> Policy:
        if match not in ("all", "latest"):
            raise InvalidPolicyError(f"match={match!r}: use 'all' (every matching job) or 'latest' (the newest one).")
        for argument, value in (("min_jobs", min_jobs), ("max_failed_jobs", max_failed_jobs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidPolicyError(f"{argument}={value!r}: use a whole number >= 0.")
        if match == "latest" and min_jobs > 1 and not include_array_children:
            raise InvalidPolicyError(
                f"match='latest' judges only the newest matching job, so min_jobs={min_jobs} can never be reached: "
                f"use min_jobs=1 with match='latest', match='all' to wait for {min_jobs} jobs, or "
                "include_array_children=True to count the children of the newest array job."
            )
        success = _exit_codes(success_exit_codes, "success_exit_codes")
        skip = _exit_codes(skip_exit_codes, "skip_exit_codes")
        if success & skip:
            raise InvalidPolicyError(
                f"exit codes {sorted(success & skip)} are in both success_exit_codes and skip_exit_codes; "
                "give each code one meaning."
            )
        timeout = runnable_timeout.total_seconds() if isinstance(runnable_timeout, timedelta) else runnable_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
            raise InvalidPolicyError(
                f"runnable_timeout={runnable_timeout!r}: use a positive number of seconds or a timedelta."
            )
        return cls(
            match, min_jobs, success, skip, max_failed_jobs, bool(fail_fast), bool(include_array_children), timeout
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "min_jobs": self.min_jobs,
            "success_exit_codes": sorted(self.success_exit_codes),
            "skip_exit_codes": sorted(self.skip_exit_codes),
            "max_failed_jobs": self.max_failed_jobs,
            "fail_fast": self.fail_fast,
            "include_array_children": self.include_array_children,
            "runnable_timeout": self.runnable_timeout,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        return cls.build(**data)

    def outcome(self, job: JobView) -> str:
        """'success', 'skip' or 'failure' for a finished job. A job cancelled or terminated (e.g. while waiting for its
        retry) is a failure: its last attempt's exit code is not how it ended."""
        if job.status == "FAILED" and (job.is_cancelled or job.is_terminated):
            return "failure"
        code = job.final_exit_code
        if code is not None and code in self.skip_exit_codes:
            return "skip"
        if job.status == "SUCCEEDED" or (code is not None and code in self.success_exit_codes):
            return "success"
        return "failure"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    message: str
    jobs: Sequence[JobView] = ()
    failed: Sequence[JobView] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    skipped: Sequence[JobView] = ()  # the jobs behind a SKIP verdict (a skip exit code)


def status_counts(jobs: Iterable[JobView]) -> dict[str, int]:
    counts = Counter(job.status for job in jobs)
    return {status: counts[status] for status in ALL_STATUSES if counts[status]}


def each_once(jobs: Sequence[JobView]) -> Sequence[JobView]:
    """``jobs`` with each job id once (the later sighting wins, in the place of the first): a job can reach the
    verdict twice, e.g. an array child named in ``job_ids`` next to its parent whose children are expanded."""
    by_id: dict[str, JobView] = {}
    for job in jobs:
        by_id[job.job_id] = job
    return jobs if len(by_id) == len(jobs) else list(by_id.values())


def judge(
    jobs: Sequence[JobView], policy: Policy, *, now_ms: int, runnable_since: Mapping[str, int] | None = None
) -> Decision:
    """The verdict on ``jobs`` (already matched, array children expanded, 'latest' applied by the caller). Each job
    counts once, however often it is in ``jobs``.

    ``runnable_since`` maps job ids to when their current RUNNABLE period began (for ``runnable_timeout``).
    """
    jobs = each_once(jobs)
    counts = status_counts(jobs)
    failed: list[JobView] = []
    skipped: list[JobView] = []
    active: list[JobView] = []
    for job in jobs:  # one pass: this runs for every job on every poll
        if not job.is_terminal:
            active.append(job)
        elif (outcome := policy.outcome(job)) == "failure":
            failed.append(job)
        elif outcome == "skip":
            skipped.append(job)
    too_many_failed = len(failed) > policy.max_failed_jobs

    stuck = stuck_jobs(active, policy, now_ms=now_ms, runnable_since=runnable_since)
    if stuck:
        return Decision(Verdict.FAILURE, _stuck_message(stuck, policy.runnable_timeout or 0), jobs, stuck, counts)
    if too_many_failed and policy.fail_fast:
        return Decision(Verdict.FAILURE, failure_message(failed, len(jobs), policy), jobs, failed, counts)
    if len(jobs) < policy.min_jobs:
        return Decision(
            Verdict.WAITING, f"{len(jobs)} of at least {policy.min_jobs} job(s) found", jobs, failed, counts
        )
    if active:
        return Decision(Verdict.WAITING, f"{len(active)} of {len(jobs)} job(s) still active", jobs, failed, counts)
    if too_many_failed:
        return Decision(Verdict.FAILURE, failure_message(failed, len(jobs), policy), jobs, failed, counts)
    if skipped:
        names = ", ".join(
            f"{j.job_name} ({j.job_id}) exit code {j.final_exit_code}" for j in skipped[:MAX_JOBS_IN_MESSAGE]
        )
        return Decision(
            Verdict.SKIP, f"{len(skipped)} job(s) ended with a skip exit code: {names}", jobs, failed, counts, skipped
        )
    tolerated = f", {len(failed)} failure(s) tolerated" if failed else ""
    return Decision(Verdict.SUCCESS, f"all {len(jobs)} job(s) finished{tolerated}", jobs, failed, counts)


def stuck_jobs(
    jobs: Iterable[JobView], policy: Policy, *, now_ms: int, runnable_since: Mapping[str, int] | None
) -> list[JobView]:
    """The RUNNABLE jobs whose current RUNNABLE period, begun at ``runnable_since[job_id]`` (as far as the caller can
    tell), is longer than ``runnable_timeout``. A job missing from ``runnable_since`` has only just been seen."""
    if policy.runnable_timeout is None or not runnable_since:
        return []
    limit_ms = policy.runnable_timeout * 1000
    return [j for j in jobs if j.status == "RUNNABLE" and now_ms - runnable_since.get(j.job_id, now_ms) > limit_ms]


def one_of(job: JobView) -> list[str] | None:
    """The real job ids a stand-in is one of (see :data:`ONE_OF_JOB_IDS`); None for a job."""
    ids = job.raw.get(ONE_OF_JOB_IDS)
    return None if ids is None else [str(job_id) for job_id in ids]


def shown_id(job: JobView) -> str:
    """A job's id as a message shows it; for a stand-in, the ids it is one of."""
    ids = one_of(job)
    if ids is None:
        return job.job_id
    if not ids:
        return "one of its array's children that aged out, ids no longer known"
    return "one of " + ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def describe_job(job: JobView) -> str:
    """One failed job as a person needs it: name, id, status and reason, each attempt with its failure class, the log
    stream, and what to do about the job's failure (:mod:`airflow_batch_jobs.failures`)."""
    lines = [f"- {job.job_name} ({shown_id(job)}): {job.status}"]
    if job.status_reason:
        lines[0] += f", status reason {job.status_reason!r}"
    if job.is_cancelled or job.is_terminated:
        lines[0] += " (cancelled)" if job.is_cancelled else " (terminated)"
    if job.attempts:
        for attempt, diagnosis in zip(job.attempts, diagnose_attempts(job), strict=True):
            kind = f" [{diagnosis.failure_class.label}]" if diagnosis is not None else ""
            lines.append(f"    {attempt.describe()}{kind}")
    else:
        lines.append("    no attempt ran")
    diagnosis = diagnose_job(job)
    if diagnosis is not None:
        lines.append(f"    => {diagnosis.failure_class.label}: {diagnosis.advice}")
    return "\n".join(lines)


def failure_message(failed: Sequence[JobView], total: int, policy: Policy) -> str:
    classes = count_classes(failed)
    header = f"{len(failed)} of {total} AWS Batch job(s) failed (tolerated: {policy.max_failed_jobs})"
    header += f": {classes}." if classes else "."
    body = [describe_job(job) for job in failed[:MAX_JOBS_IN_MESSAGE]]
    if len(failed) > MAX_JOBS_IN_MESSAGE:
        body.append(f"... and {len(failed) - MAX_JOBS_IN_MESSAGE} more failed job(s).")
    return "\n".join([header, *body])


def _stuck_message(stuck: Sequence[JobView], timeout: float) -> str:
    lines = [
        f"{len(stuck)} job(s) stayed RUNNABLE for more than {timeout:g} s. The compute environment cannot place "
        "them: check its capacity (max vCPUs, instance types, Spot availability) and that the job's vCPU/memory/GPU "
        "requirements fit it."
    ]
    lines.extend(
        f"- {j.job_name} ({j.job_id}): status reason {j.status_reason or 'none given'!r}"
        for j in stuck[:MAX_JOBS_IN_MESSAGE]
    )
    return "\n".join(lines)
