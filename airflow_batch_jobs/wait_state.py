"""What a wait remembers beyond one operator instance, and the success it refuses when it cannot.

A wait outlives its operator instance: reschedule mode builds a new sensor for every try, and a restarted triggerer
rebuilds the trigger from its kwargs. What the next instance needs of what the earlier ones saw is small:

- the finished jobs whose outcome is not a plain success (failed, ended with a skip exit code, or FAILED with a
  success exit code). A finished job ages out of ListJobs and DescribeJobs; forgetting one of these can turn a failure
  or a skip into a success. Forgetting a plain success cannot: it only lowers a count (WAITING on ``min_jobs``, maybe
  until the timeout) and leaves the job out of the records, so plain successes are kept too, with what the bound
  leaves after everything else;
- the poll errors in a row (``max_poll_errors``) and when each RUNNABLE job's current period began
  (``runnable_timeout``);
- ``seen_ms``: when the last listing it absorbed began. The memory holds every such job visible at any listing up to
  then; any job it lacks finished later, so it is still listed until ``seen_ms + RETENTION_MIN_S`` at least.

:class:`WaitMemory` holds that, JSON-native and bounded (:data:`MAX_MEMORY_BYTES`; array children as index ranges).
The sensor keeps it in Airflow's ``task_state_store`` between reschedule tries (:class:`StoredWait`) and hands it to
the trigger in its kwargs when it defers; the trigger cannot write the store, and needs nothing more: what it learns
after the deferral finished after it, and is still listed when a rebuilt trigger polls, unless the rebuild comes more
than ``RETENTION_MIN_S`` after the memory's last listing.

:class:`Continuity` is what one instance may not know of what earlier ones saw: a stretch longer than the retention
with no listing it knows of (a job may have finished and aged out unseen), or outcomes earlier instances saw and could
not hand on (no ``task_state_store``: Airflow < 3.3; a memory cut at its bound). Where that could change the verdict,
a success or skip is refused: the wait fails saying it cannot be proven, never succeeds on what it forgot.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.policy import Decision, Verdict
from airflow_batch_jobs.watch import REMEMBERED, first_try_began_ms

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_batch_jobs.jobs import JobView
    from airflow_batch_jobs.policy import Policy
    from airflow_batch_jobs.query import JobQuery
    from airflow_batch_jobs.watch import JobWatch

# How long AWS Batch keeps a finished job, at least, counted from when it finished: it is listed by ListJobs and
# answered by DescribeJobs until then. The AWS Batch User Guide, "Job states"
# (https://docs.aws.amazon.com/batch/latest/userguide/job_states.html): "The job state for SUCCEEDED jobs is persisted
# in AWS Batch for at least 7 days", and the same for FAILED jobs. Every "cannot have aged out" below rests on it.
RETENTION_MIN_S = 7 * 24 * 3600

# The memory's bound, in bytes of JSON: below Airflow's [state_store] max_value_storage_bytes default (65,535), above
# which the Task SDK warns on every write. Array children are kept as index ranges, so a 10,000-child array whose failed
# children are contiguous costs a few hundred bytes; past the bound, RUNNABLE periods go first (the youngest), then
# failed jobs (the memory is then marked incomplete, and what it lacks is treated as forgotten).
MAX_MEMORY_BYTES = 60_000

# The task_state_store key (the store is scoped to the task instance: dag, run, task, map index).
STATE_KEY = "airflow_batch_jobs.wait"

NOT_PROVEN = "No verdict can be proven"
_REASON_CHARS = 200
_INDEX = r"(?:0|[1-9]\d*)"
_CHILD = re.compile(rf"^(?P<parent>.+):(?P<spec>{_INDEX}(?:-{_INDEX})?(?:,{_INDEX}(?:-{_INDEX})?)*)$")


# -- array children as index ranges ---------------------------------------------------------------------------------
def pack_ids(ids: Iterable[str]) -> list[str]:
    """Job ids, with array children (``<parent>:<index>``) of one parent as ranges: ``p:0-499,731``."""
    plain: list[str] = []
    children: dict[str, list[int]] = defaultdict(list)
    for job_id in ids:
        parent, sep, tail = job_id.rpartition(":")
        if sep and parent and tail.isdigit() and str(int(tail)) == tail:
            children[parent].append(int(tail))
        else:
            plain.append(job_id)
    for parent, indices in children.items():
        spans: list[str] = []
        indices.sort()
        start = prev = indices[0]
        for index in [*indices[1:], None]:
            if index is not None and index == prev + 1:
                prev = index
                continue
            spans.append(str(start) if start == prev else f"{start}-{prev}")
            if index is not None:
                start = prev = index
        plain.append(f"{parent}:{','.join(spans)}")
    return plain


def unpack_ids(packed: Iterable[str]) -> list[str]:
    out: list[str] = []
    for entry in packed:
        match = _CHILD.match(entry)
        if match is None:
            out.append(entry)
            continue
        parent = match["parent"]
        for span in match["spec"].split(","):
            first, _, last = span.partition("-")
            out.extend(f"{parent}:{i}" for i in range(int(first), int(last or first) + 1))
    return out


# -- the memory -----------------------------------------------------------------------------------------------------
def fingerprint(query: JobQuery, policy: Policy) -> str:
    """Names the question a memory answers: a memory of other arguments is not this wait's."""
    text = json.dumps([query.to_dict(), policy.to_dict()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def matters(view: JobView, policy: Policy) -> bool:
    """Whether forgetting this finished job could change a verdict (anything but a plain success)."""
    return not (view.status == "SUCCEEDED" and policy.outcome(view) == "success")


def _kept(job: Mapping[str, Any], view: JobView) -> dict[str, Any]:
    """What a verdict and its message need of a finished job, as a summary: name, status and reason, the final exit
    code and reason (from its details when it was described), cancelled / terminated, an array parent's size and
    summary. No environment, parameters or secrets."""
    out: dict[str, Any] = {"jobName": view.job_name, "status": view.status}
    if view.status_reason:
        out["statusReason"] = view.status_reason[:_REASON_CHARS]
    container: dict[str, Any] = {}
    if view.final_exit_code is not None:
        container["exitCode"] = view.final_exit_code
    if view.final_reason:
        container["reason"] = view.final_reason[:_REASON_CHARS]
    if container:
        out["container"] = container
    for flag in ("isCancelled", "isTerminated"):
        if job.get(flag):
            out[flag] = True
    array = job.get("arrayProperties") or {}
    if array.get("size"):
        out["arrayProperties"] = {"size": array["size"], "statusSummary": dict(array.get("statusSummary") or {})}
    return out


@dataclass
class WaitMemory:
    """What one instance of a wait hands the next (see the module's docstring). ``finished``: listing ("" for the
    query's own, else a parent id) -> job id -> a kept summary, for the jobs whose outcome is not a plain success;
    ``succeeded``: the same for plain successes, kept only as far as the bound allows after everything else: forgetting
    one cannot flip a verdict, but lowers the count (``min_jobs``) and leaves it out of the records; ``runnable``: job
    id -> (since, startedAt).
    ``unknown``: why outcomes earlier instances saw may be missing from it (None: none are); ``unseen``: a stretch
    longer than the retention with no listing, which an earlier instance had to own up to. Both are handed on for as
    long as the wait lasts: what was missed then stays missed."""

    fingerprint: str
    wait: str | None = None
    seen_ms: int | None = None
    poll_errors: int = 0
    unknown: str | None = None
    unseen: str | None = None
    finished: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    runnable: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    succeeded: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def capture(
        cls,
        watch: JobWatch,
        *,
        fingerprint: str,
        wait: str | None = None,
        seen_ms: int | None = None,
        poll_errors: int = 0,
        continuity: Continuity | None = None,
    ) -> WaitMemory:
        """What ``watch`` knows now (what it restored from an earlier memory included: it is in its listing), and
        what ``continuity`` says this instance may not know."""
        listing, policy = watch.listing, watch.policy
        finished: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        succeeded: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for name, job in listing.finished.remembered():
            view = listing.details.view(job)
            kept = _kept(job, view)
            if not name and job.get("createdAt") is not None:  # the query's own: 'latest', the settled point
                kept["createdAt"] = job["createdAt"]
            (finished if matters(view, policy) else succeeded)[name][job["jobId"]] = kept
        return cls(
            fingerprint,
            wait,
            seen_ms,
            poll_errors,
            unknown=continuity.outcomes_unknown if continuity is not None else None,
            unseen=continuity.unseen_note() if continuity is not None else None,
            finished=dict(finished),
            runnable=watch.runnable.periods(),
            succeeded=dict(succeeded),
        )

    def restore(self, watch: JobWatch) -> None:
        """Into ``watch``: the finished jobs into its listing (a job the listing returns keeps its own copy, one it
        no longer returns is judged as remembered), the RUNNABLE periods into its wait."""
        for kept in (self.finished, self.succeeded):
            for name, jobs in kept.items():
                watch.listing.finished.remember(
                    name, ({**job, "jobId": job_id, REMEMBERED: True} for job_id, job in jobs.items())
                )
        watch.runnable.resume(self.runnable)

    # JSON: finished jobs grouped by listing and kept summary (array children share theirs), ids packed
    def to_json(self) -> dict[str, Any]:
        """JSON-native, at most :data:`MAX_MEMORY_BYTES` (past it: plain successes dropped first, then RUNNABLE
        periods, youngest first, then the other finished jobs, noted in ``unknown``)."""
        head: dict[str, Any] = {
            "v": 1,
            "fingerprint": self.fingerprint,
            "wait": self.wait,
            "seen_ms": self.seen_ms,
            "poll_errors": self.poll_errors,
        }
        budget = MAX_MEMORY_BYTES - len(json.dumps([head, self.unknown, self.unseen, _CUT])) - 80
        unknown = self.unknown
        finished: list[dict[str, Any]] = []
        for group in self._finished_groups(self.finished):
            cost = len(json.dumps(group)) + 2
            if cost > budget:
                unknown = unknown or _CUT
                continue
            budget -= cost
            finished.append(group)
        runnable: list[list[Any]] = []
        periods: dict[tuple[int, int | None], list[str]] = defaultdict(list)
        for job_id, period in self.runnable.items():
            periods[period].append(job_id)
        for (since, started), ids in sorted(periods.items(), key=lambda item: item[0][0]):
            entry = [since, started, pack_ids(ids)]
            cost = len(json.dumps(entry)) + 2
            if cost > budget:
                break
            budget -= cost
            runnable.append(entry)
        succeeded: list[dict[str, Any]] = []
        for group in self._finished_groups(self.succeeded):
            cost = len(json.dumps(group)) + 2
            if cost <= budget:
                budget -= cost
                succeeded.append(group)
        return {
            **head,
            "unknown": unknown,
            "unseen": self.unseen,
            "finished": finished,
            "runnable": runnable,
            "succeeded": succeeded,
        }

    @staticmethod
    def _finished_groups(by_listing: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """Jobs of one listing with the same kept summary (array children share theirs), ids packed, in groups of at
        most 100 entries: past the bound, whole groups are left out."""
        groups: dict[tuple[str, str], list[tuple[str, int | None]]] = defaultdict(list)
        for listing, jobs in by_listing.items():
            for job_id, kept in jobs.items():
                same = {k: v for k, v in kept.items() if k != "createdAt"}
                groups[listing, json.dumps(same, sort_keys=True)].append((job_id, kept.get("createdAt")))
        out = []
        for (listing, shape), members in groups.items():
            created = dict(members)
            packed = pack_ids(created)
            for start in range(0, len(packed), 100):
                chunk = packed[start : start + 100]
                group: dict[str, Any] = {"in": listing, "job": json.loads(shape), "ids": chunk}
                if any(c is not None for c in created.values()):
                    group["created"] = [created.get(job_id) for job_id in unpack_ids(chunk)]
                out.append(group)
        return out

    @staticmethod
    def _from_groups(groups: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for group in groups:
            ids = unpack_ids(group["ids"])
            created = group.get("created") or [None] * len(ids)
            for job_id, created_at in zip(ids, created, strict=True):
                kept = dict(group["job"])
                if created_at is not None:
                    kept["createdAt"] = created_at
                out[group["in"]][job_id] = kept
        return dict(out)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WaitMemory:
        runnable = {
            job_id: (int(since), started)
            for since, started, packed in data.get("runnable") or []
            for job_id in unpack_ids(packed)
        }
        return cls(
            str(data["fingerprint"]),
            data.get("wait"),
            data.get("seen_ms"),
            int(data.get("poll_errors") or 0),
            data.get("unknown"),
            data.get("unseen"),
            cls._from_groups(data.get("finished") or []),
            runnable,
            cls._from_groups(data.get("succeeded") or []),
        )


# -- what one instance may not know -----------------------------------------------------------------------------------
def forgetting_can_flip(policy: Policy) -> bool:
    """Whether a finished job an earlier instance saw, while its verdict stayed WAITING, could change the verdict if
    forgotten. With ``fail_fast`` and no tolerance it cannot: seeing a failure would have failed the wait. A tolerated
    failure, ``fail_fast=False``, a skip exit code, a success exit code read off a summary (its details may say
    otherwise), or ``match='latest'`` (an older job takes the newest one's place) can."""
    return bool(
        policy.max_failed_jobs
        or not policy.fail_fast
        or policy.skip_exit_codes
        or policy.success_exit_codes
        or policy.match == "latest"
    )


def accounts_for_aged_out(query: JobQuery, policy: Policy) -> bool:
    """Selectors whose listing notices a job that aged out: an id of ``job_ids`` the service no longer returns is
    unknown (never a success); an array's children are counted against its size (its statusSummary proves the missing
    ones finished, and how), a multi-node job's nodes against ``numNodes``."""
    if query.job_ids:
        return True
    return bool(query.array_job_id or query.multi_node_job_id) and policy.match == "all" and policy.min_jobs >= 1


@dataclass
class Continuity:
    """What one instance of a wait (a reschedule try, a trigger's life) may not know of what earlier instances saw.

    ``earlier``: there were earlier instances (False: a new wait, nothing to doubt). ``outcomes_unknown``: why
    finished jobs they saw may be missing from the memory. ``since_ms``: the memory holds what was visible up to this
    listing; ``bound_ms``: the unseen stretch is at most this long (a sensor's ``timeout``: Airflow ends the wait past
    it); ``resumed_ms``: this instance's first listing (:meth:`listed`); ``unseen_before``: an unseen stretch an
    earlier instance owned up to."""

    earlier: bool = False
    outcomes_unknown: str | None = None
    since_ms: int | None = None
    bound_ms: int | None = None
    resumed_ms: int | None = None
    unseen_before: str | None = None
    instance: str = "this try"

    def listed(self, at_ms: int) -> None:
        """This instance's listing began at ``at_ms`` (the first one counts)."""
        if self.resumed_ms is None:
            self.resumed_ms = at_ms

    def unseen_ms(self) -> int | None:
        """How long, at most, no listing this instance knows of looked at the jobs; None: not bounded."""
        gaps = [self.bound_ms] if self.bound_ms is not None else []
        if self.since_ms is not None and self.resumed_ms is not None:
            gaps.append(self.resumed_ms - self.since_ms)
        return min(gaps) if gaps else None

    def unseen_note(self) -> str | None:
        """Why a job may have finished and aged out unseen (policy aside), if it may: no listing for longer than the
        service keeps a finished job, before this instance's first, or before an earlier instance's."""
        if not self.earlier:
            return None
        if self.unseen_before:
            return self.unseen_before
        if self.resumed_ms is None:  # no listing yet: nothing judged, nothing to say
            return None
        unseen = self.unseen_ms()
        if unseen is not None and unseen <= RETENTION_MIN_S * 1000:
            return None
        stretch = f"{unseen / 1000:.0f} s" if unseen is not None else "a stretch of unknown length"
        return (
            f"no listing {self.instance} knows of looked at the jobs for {stretch} before its first one, longer than "
            "AWS Batch keeps a finished job: one may have finished and aged out unseen"
        )

    def doubt(self, query: JobQuery, policy: Policy, now_ms: int) -> str | None:
        """Why a success or a skip on what the service lists now cannot be proven; None when it can."""
        if not self.earlier or accounts_for_aged_out(query, policy):
            return None
        if query.created_after is not None and query.created_after > now_ms - RETENTION_MIN_S * 1000:
            return None  # every matching job finished after created_after: none can have aged out yet
        doubts = []
        if self.outcomes_unknown and forgetting_can_flip(policy):
            doubts.append(self.outcomes_unknown)
        unseen = self.unseen_note()
        if unseen:
            doubts.append(unseen)
        return "; and ".join(doubts) or None

    def guard(self, decision: Decision, query: JobQuery, policy: Policy, now_ms: int) -> Decision:
        """``decision``, or a failure in place of a success or skip that cannot be proven."""
        if decision.verdict not in (Verdict.SUCCESS, Verdict.SKIP):
            return decision
        doubt = self.doubt(query, policy, now_ms)
        if doubt is None:
            return decision
        days = RETENTION_MIN_S / 86400
        message = (
            f"{NOT_PROVEN}: the jobs AWS Batch lists now give {decision.verdict.value} ({decision.message}), but "
            f"{doubt}. AWS Batch keeps a finished job for at least {days:g} days "
            "(airflow_batch_jobs.wait_state.RETENTION_MIN_S), so a job that failed meanwhile may no longer be listed, "
            f"and this wait cannot count it. A created_after less than {days:g} days before the verdict rules this "
            "out (no matching job can have aged out); Airflow >= 3.3 keeps what earlier reschedule tries saw "
            "(task_state_store); poke and deferrable mode keep it in memory."
        )
        return Decision(Verdict.FAILURE, message, decision.jobs, decision.failed, decision.counts)

    @classmethod
    def for_trigger(cls, memory: WaitMemory | None, wait_began_ms: int | None) -> Continuity:
        """A trigger, first built or rebuilt from its kwargs: it knows what the poke before deferring saw (``memory``)
        and learns the rest itself, unless it starts more than the retention after that poke's listing."""
        if memory is not None:
            return cls(
                earlier=True,
                outcomes_unknown=memory.unknown,
                since_ms=memory.seen_ms if memory.seen_ms is not None else wait_began_ms,
                unseen_before=memory.unseen,
                instance="this trigger",
            )
        if wait_began_ms is not None:  # deferred by a version that handed no memory on
            return cls(
                earlier=True,
                outcomes_unknown="the sensor deferred without handing on the failed jobs its poke saw (an earlier "
                "version of airflow-batch-jobs)",
                since_ms=wait_began_ms,
                instance="this trigger",
            )
        return cls()


_CUT = f"earlier instances saw more failed jobs than the memory keeps ({MAX_MEMORY_BYTES} bytes)"


# -- a reschedule-mode sensor's memory in task_state_store ----------------------------------------------------------
def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def wait_round(context: Mapping[str, Any]) -> int | None:
    """The first try number of the task instance's current round of tries, as Airflow counts a reschedule-mode
    sensor's ``timeout`` from it (``max_tries - retries + 1``): a retry stays in the round, a clear starts another."""
    ti = context.get("ti")
    max_tries, retries = _int(getattr(ti, "max_tries", None)), _int(getattr(getattr(ti, "task", None), "retries", None))
    return max_tries - retries + 1 if max_tries is not None and retries is not None else None


def earlier_tries(context: Mapping[str, Any]) -> bool | None:
    """Whether earlier tries of this wait ran: a reschedule, or a retry in the same round. None when the context does
    not say (not a Task SDK context): a reschedule is then known only by the memory it left."""
    reschedules = _int(context.get("task_reschedule_count"))
    if reschedules is not None and reschedules > 0:
        return True
    try_number, first = _int(getattr(context.get("ti"), "try_number", None)), wait_round(context)
    if reschedules is None or try_number is None or first is None:
        return None
    return try_number > first


class StoredWait:
    """A reschedule-mode sensor's :class:`WaitMemory` in Airflow's ``task_state_store`` (Airflow >= 3.3), one key per
    task instance, naming the round of tries and the question it belongs to. Without a store, or when it cannot be
    read, later tries know nothing of earlier ones (:meth:`resume` says so in its :class:`Continuity`)."""

    def __init__(self, context: Mapping[str, Any], fingerprint: str, timeout_s: float) -> None:
        store = context.get("task_state_store")
        self.store = store if callable(getattr(store, "get", None)) and callable(getattr(store, "set", None)) else None
        self.fingerprint = fingerprint
        round_ = wait_round(context)
        self.wait = f"round-{round_}" if round_ is not None else None
        self.earlier = earlier_tries(context)
        self.first_try_ms = first_try_began_ms(context)
        self.bound_ms = int(timeout_s * 1000)
        self.seen_ms: int | None = None

    def resume(self, watch: JobWatch) -> tuple[Continuity, int, str | None]:
        """Restore the earlier tries' memory into ``watch``: (what this try may not know, the poll errors in a row
        so far, a warning to log). A context that does not say whether earlier tries ran counts as a later try
        without a store, and as the first one with a store that holds no memory of this wait (every try stores
        one)."""
        if self.earlier is False:
            return Continuity(), 0, None
        continuity = Continuity(earlier=True, since_ms=self.first_try_ms, bound_ms=self.bound_ms)
        if self.store is None:
            continuity.outcomes_unknown = (
                "it cannot know which failed jobs (or skip exit codes) earlier reschedule tries saw: the task context "
                "has no task_state_store (Airflow < 3.3) to keep them in"
            )
            return continuity, 0, None
        try:
            data = self.store.get(STATE_KEY)
            memory = WaitMemory.from_json(data) if isinstance(data, dict) else None
        except Exception as err:  # a store we cannot read: as if there were none
            continuity.outcomes_unknown = f"task_state_store could not be read ({type(err).__name__}: {err})"
            return continuity, 0, f"task_state_store could not be read; judging without the earlier tries: {err}"
        if memory is not None and memory.wait == self.wait and memory.fingerprint != self.fingerprint:
            return Continuity(), 0, None  # the earlier tries asked another question (a changed DAG): this one begins
        if memory is None or memory.wait != self.wait:
            if self.earlier is None:
                return Continuity(), 0, None
            continuity.outcomes_unknown = "task_state_store holds no memory of the earlier tries of this wait"
            return continuity, 0, None
        memory.restore(watch)
        self.seen_ms = memory.seen_ms
        continuity.outcomes_unknown = memory.unknown
        continuity.unseen_before = memory.unseen
        if memory.seen_ms is not None:
            continuity.since_ms = memory.seen_ms
        return continuity, memory.poll_errors, None

    def keep(self, watch: JobWatch, continuity: Continuity, *, seen_ms: int | None, poll_errors: int) -> str | None:
        """Store what ``watch`` knows for the next try; a warning to log if the store refused it (the next try then
        judges with the memory kept before: what it lacks finished after that memory's last listing)."""
        if self.store is None:
            return None
        if seen_ms is not None:
            self.seen_ms = seen_ms
        memory = WaitMemory.capture(
            watch,
            fingerprint=self.fingerprint,
            wait=self.wait,
            seen_ms=self.seen_ms,
            poll_errors=poll_errors,
            continuity=continuity,
        )
        try:
            self.store.set(STATE_KEY, memory.to_json())
        except Exception as err:
            return f"task_state_store refused the wait's memory ({type(err).__name__}: {err})"
        return None
