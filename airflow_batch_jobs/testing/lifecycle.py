"""Job lifecycles: statuses, attempts and exit codes over time, computed from a job's script and ``retryStrategy``.

A job's whole life is computed once it is submitted (and again after a cancel or a new script), and its state at
any moment is a lookup: this keeps 10,000 jobs cheap, lets a test jump the clock by hours, and makes every answer
independent of who asked what before. Array children exist from the moment their parent leaves SUBMITTED (after
its dependencies), multi-node nodes from the moment the job leaves RUNNABLE, whoever reads what.
"""

from __future__ import annotations

import bisect
import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.testing.outcomes import AttemptScript
from airflow_batch_jobs.testing.rules import ACCOUNT, STATUSES, TERMINAL_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_batch_jobs.testing.behaviours import Behaviours
    from airflow_batch_jobs.testing.outcomes import JobScript
    from airflow_batch_jobs.testing.resources import JobDefinition, Queue

ESSENTIAL_EXITED = "Essential container in task exited"
Transition = tuple[int, str, str | None]


@dataclass(eq=False)
class Job:
    job_id: str
    seq: int  # submission order, the tie-breaker of every listing order
    name: str
    queue: Queue
    definition: JobDefinition
    submitted_at: int | None  # None for array children and MNP nodes: they appear with their parent's release
    request: dict[str, Any]
    script: JobScript
    share_identifier: str | None = None
    depends_on: list[str] = field(default_factory=list)
    parent: Job | None = None
    array_index: int | None = None
    node_index: int | None = None
    children: list[Job] = field(default_factory=list)
    array_size: int | None = None
    num_nodes: int | None = None
    stop: tuple[int, str, str] | None = None  # (time, reason, "cancel" | "terminate")
    timeline: Timeline | None = None

    @property
    def arn(self) -> str:
        region = self.queue.arn.split(":")[3]
        return f"arn:aws:batch:{region}:{ACCOUNT}:job/{self.job_id}"

    @property
    def is_parent(self) -> bool:
        return bool(self.array_size or self.num_nodes)

    @property
    def retry_strategy(self) -> dict[str, Any]:
        return dict(self.request.get("retryStrategy") or self.definition.body.get("retryStrategy") or {})


@dataclass
class Attempt:
    """One attempt: when it ran and its DescribeJobs shape (``attempts[]`` or ``eksAttempts[]`` item)."""

    started_at: int
    stopped_at: int
    shape: dict[str, Any]


@dataclass
class Timeline:
    """A job's computed life. ``release_at``: for a parent, when its children appear (arrays) or its nodes start
    (multi-node); None when they never do (a failed dependency, a cancel while SUBMITTED)."""

    transitions: list[Transition]
    attempts: list[Attempt] = field(default_factory=list)
    release_at: int | None = None

    @property
    def started_at(self) -> int | None:
        return self.attempts[0].started_at if self.attempts else None

    @property
    def end(self) -> Transition | None:
        last = self.transitions[-1] if self.transitions else None
        return last if last is not None and last[1] in TERMINAL_STATUSES else None


class Lifecycle:
    """Computes and caches timelines; answers a job's status, times and attempts at any moment."""

    def __init__(
        self,
        jobs: Mapping[str, Job],
        behaviours: Behaviours,
        shape_attempt: Callable[[Job, int, AttemptScript, int, int], dict[str, Any]],
    ) -> None:
        self.jobs = jobs
        self.behaviours = behaviours
        self.shape_attempt = shape_attempt
        self.generation = 0  # counts forget(): who keeps what it read from timelines knows when to read again

    def forget(self) -> None:
        """A cancel or a new script changes timelines (dependents' too): recompute them when next asked."""
        self.generation += 1
        for job in self.jobs.values():
            job.timeline = None

    # -- creation and visibility ---------------------------------------------------------------------------
    def created_at(self, job: Job) -> int | None:
        if job.parent is None:
            return job.submitted_at
        return self.timeline(job.parent).release_at

    def visible(self, job: Job, now: int, retention_ms: int) -> bool:
        """Created, past the visibility lag (submitted jobs), and not aged out after it finished."""
        created = self.created_at(job)
        if created is None or created > now:
            return False
        if job.parent is None and now < created + self.behaviours.visibility_lag_ms:
            return False
        if job.parent is not None and not self.visible(job.parent, now, retention_ms=2**62):
            return False  # children and nodes are not seen before their parent
        stopped = self.stopped_at(job, now)
        return stopped is None or now - stopped <= retention_ms

    # -- state ---------------------------------------------------------------------------------------------
    def timeline(self, job: Job) -> Timeline:
        if job.timeline is None:
            job.timeline = self._compute(job)
        return job.timeline

    def state_at(self, job: Job, now: int) -> tuple[str, str | None]:
        """(status, statusReason) at ``now``."""
        timeline = self.timeline(job)
        if job.is_parent and timeline.release_at is not None and now >= timeline.release_at:
            return self._parent_state(job, now)
        i = bisect.bisect_right(timeline.transitions, now, key=lambda tr: tr[0]) - 1
        _, status, reason = timeline.transitions[max(i, 0)]
        return status, reason

    def status_at(self, job: Job, now: int) -> str:
        return self.state_at(job, now)[0]

    def summary_time(self, job: Job, now: int) -> int:
        """The moment an array parent's statusSummary shows (it lags its children)."""
        release = self.timeline(job).release_at or now
        return max(now - self.behaviours.summary_lag_ms, min(release, now))

    def status_summary(self, job: Job, now: int) -> dict[str, int]:
        at = self.summary_time(job, now)
        counts = dict.fromkeys(STATUSES, 0)
        for child in job.children:
            counts[self.status_at(child, at)] += 1
        return counts

    def _parent_state(self, job: Job, now: int) -> tuple[str, str | None]:
        if job.num_nodes:
            return self.state_at(job.children[0], now)
        counts = self.status_summary(job, now)
        if counts["SUCCEEDED"] + counts["FAILED"] < len(job.children):
            return "PENDING", None
        if job.stop is not None:  # "The array parent job is cancelled when all child jobs are completed."
            return "FAILED", job.stop[1]
        if counts["FAILED"]:
            return "FAILED", f"Array Child Job failed ({counts['FAILED']} of {len(job.children)})"
        return "SUCCEEDED", None

    def end_of(self, job: Job) -> Transition | None:
        """When and how a job ends, if it ever does (arrays: their last child plus the summary lag)."""
        timeline = self.timeline(job)
        if not job.is_parent or timeline.release_at is None:
            return timeline.end
        if job.num_nodes:
            return self.end_of(job.children[0])
        ends = [self.end_of(child) for child in job.children]
        if any(end is None for end in ends):
            return None
        at = max(end[0] for end in ends if end is not None) + self.behaviours.summary_lag_ms
        return (at, *self._parent_state(job, at))

    def started_at(self, job: Job, now: int) -> int | None:
        if job.is_parent and job.children:
            at = self.summary_time(job, now) if job.array_size else now
            starts = [s for s in (self.started_at(child, at) for child in job.children) if s is not None]
            return min(starts) if starts else None
        started = self.timeline(job).started_at
        return started if started is not None and started <= now else None

    def stopped_at(self, job: Job, now: int) -> int | None:
        end = self.end_of(job)
        return end[0] if end is not None and end[0] <= now else None

    def finished_attempts(self, job: Job, now: int) -> list[Attempt]:
        source = job.children[0] if job.num_nodes and job.children else job
        return [a for a in self.timeline(source).attempts if a.stopped_at <= now]

    def current_attempt(self, job: Job, now: int) -> Attempt | None:
        """The attempt running at ``now``, else the last finished one."""
        source = job.children[0] if job.num_nodes and job.children else job
        started = [a for a in self.timeline(source).attempts if a.started_at <= now]
        return started[-1] if started else None

    # -- computing a timeline ------------------------------------------------------------------------------
    def _compute(self, job: Job) -> Timeline:
        created = self.created_at(job)
        if created is None:
            return Timeline(transitions=[])
        if job.node_index is not None:
            return self._apply_stop(job, self._run(job, Timeline(transitions=[]), created, first_status="STARTING"))
        script = job.script
        t = created
        timeline = Timeline(transitions=[])
        if job.parent is None:
            timeline.transitions.append((t, "SUBMITTED", None))
            t += script.submitted_ms
        timeline.transitions.append((t, "PENDING", None))
        ready = t if job.array_size else t + script.pending_ms
        for dep_id in job.depends_on:
            end = self.end_of(self.jobs[dep_id])
            if end is None:
                return self._apply_stop(job, timeline)  # waits for ever (or until stopped)
            if end[1] == "FAILED":
                timeline.transitions.append((max(end[0], ready), "FAILED", f"Dependent Job {dep_id} failed"))
                return self._apply_stop(job, timeline)
            ready = max(ready, end[0])
        if job.array_size:
            timeline.release_at = ready
            return self._apply_stop(job, timeline)
        if job.num_nodes:
            timeline.transitions.append((ready, "RUNNABLE", script.runnable_reason))
            if not script.stuck_runnable:
                timeline.release_at = ready + script.runnable_ms
            return self._apply_stop(job, timeline)
        return self._apply_stop(job, self._run(job, timeline, ready))

    def _run(self, job: Job, timeline: Timeline, t: int, first_status: str = "RUNNABLE") -> Timeline:
        """Attempts from ``t``: RUNNABLE -> STARTING -> RUNNING -> exit, retried per ``retryStrategy``."""
        script = job.script
        trans = timeline.transitions
        max_tries = 1 if job.node_index is not None else int(job.retry_strategy.get("attempts", 1))
        for index in range(max_tries):
            if index == 0 or self.behaviours.retry_to_runnable:
                if first_status == "RUNNABLE":
                    trans.append((t, "RUNNABLE", script.runnable_reason))
                    if script.stuck_runnable:
                        break
                    t += script.runnable_ms
                trans.append((t, "STARTING", None))
                t += script.starting_ms
                trans.append((t, "RUNNING", None))
            attempt = script.attempt(index)
            start = t
            t += attempt.duration_ms
            shape = self.shape_attempt(job, index, attempt, start, t)
            timeline.attempts.append(Attempt(start, t, shape))
            if attempt.exit_code == 0 and not attempt.init_failed:
                trans.append((t, "SUCCEEDED", attempt.status_reason or ESSENTIAL_EXITED))
                break
            if index + 1 >= max_tries or not self._retries(job, attempt):
                trans.append((t, "FAILED", shape.get("statusReason") or ESSENTIAL_EXITED))
                break
        return timeline

    @staticmethod
    def _retries(job: Job, attempt: AttemptScript) -> bool:
        """``evaluateOnExit``: glob patterns, the first matching rule decides; none matching = retry."""
        exit_code = attempt.init_exit_code if attempt.init_failed else attempt.exit_code
        reason = (attempt.init_reason if attempt.init_failed else attempt.reason) or ""
        for rule in job.retry_strategy.get("evaluateOnExit", []):
            checks = [
                (rule.get("onExitCode"), "" if exit_code is None else str(exit_code)),
                (rule.get("onReason"), reason),
                (rule.get("onStatusReason"), attempt.status_reason or ESSENTIAL_EXITED),
            ]
            if all(pattern is None or fnmatch.fnmatchcase(value, pattern) for pattern, value in checks):
                return str(rule["action"]).upper() == "RETRY"
        return True

    @staticmethod
    def _waiting_at(timeline: Timeline, at: int) -> bool:
        i = bisect.bisect_right(timeline.transitions, at, key=lambda tr: tr[0]) - 1
        return timeline.transitions[max(i, 0)][1] in ("SUBMITTED", "PENDING")

    def _apply_stop(self, job: Job, timeline: Timeline) -> Timeline:
        """Cut a timeline at a CancelJob / TerminateJob. A parent whose children exist is stopped through them."""
        if job.stop is None:
            return timeline
        at, reason, how = job.stop
        if job.is_parent and timeline.release_at is not None and timeline.release_at <= at:
            return timeline
        if how == "cancel" and job.depends_on and timeline.transitions and self._waiting_at(timeline, at):
            # CancelJob: "A PENDING job is cancelled after all dependency jobs are completed."
            ends = [self.end_of(self.jobs[dep]) for dep in job.depends_on]
            if any(end is None for end in ends):
                return timeline
            at = max(at, *(end[0] for end in ends if end is not None))
        kept = [tr for tr in timeline.transitions if tr[0] <= at]
        if kept and kept[-1][1] in TERMINAL_STATUSES:
            return timeline
        attempts = [a for a in timeline.attempts if a.stopped_at <= at]
        running = next((a for a in timeline.attempts if a.started_at <= at < a.stopped_at), None)
        if running is not None:
            stopped = AttemptScript(exit_code=None, reason="Terminated", status_reason=reason, duration_ms=0)
            shape = self.shape_attempt(job, len(attempts), stopped, running.started_at, at)
            attempts.append(Attempt(running.started_at, at, shape))
        kept.append((at, "FAILED", reason))
        return Timeline(transitions=kept, attempts=attempts, release_at=None)
