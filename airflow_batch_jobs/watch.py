"""One poll of a wait: list (paginated) -> match -> describe newly finished jobs in chunks of 100 -> verdict.

A :class:`JobWatch` keeps what it learned between polls: the details of finished jobs (each described once),
when each job was first seen RUNNABLE, and which ids it has already seen (for "N new since last poll").
The sync path (sensor, check operator) and the async path (trigger) share every step but the I/O.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from airflow_batch_jobs.hooks.batch_jobs import DESCRIBE_JOBS_MAX_IDS
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import Decision, Policy, Verdict, judge
from airflow_batch_jobs.query import ALL_STATUSES, TERMINAL_STATUSES, JobQuery

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Sequence

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook, Known, PageStop

XCOM_DETAILS = ("summary", "full", "none")

# Error codes that mean "ask again later", not "the answer is no".
TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


# A job can appear in ListJobs a little after it was created. Jobs created this long before the newest one a listing
# returned are taken to be visible already, so a poll may stop paging before them once they are known finished.
LISTING_LAG_MS = 5 * 60 * 1000


class IncompleteListingError(Exception):
    """A listing that cannot be complete (e.g. fewer array children than the parent's size): no verdict."""


def is_transient(error: BaseException) -> bool:
    """Throttling, 5xx, dropped connections and incomplete listings are retried; anything else is final."""
    if isinstance(error, IncompleteListingError):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(error, BotoCoreError)  # connection closed / timed out / endpoint unreachable


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def is_finished(job: dict[str, Any]) -> bool:
    """Whether a JobSummary / JobDetail dict is in a terminal status (final: it never changes again)."""
    return job.get("status") in TERMINAL_STATUSES


@dataclass(frozen=True)
class FindJobs:
    """A poll step: the jobs of a query (``statuses`` for children listings, ``stop`` to end paging early)."""

    query: JobQuery
    statuses: Sequence[str] = ALL_STATUSES
    stop: PageStop | None = None
    known: Known | None = None

    def run(self, hook: BatchJobsHook) -> list[dict[str, Any]]:
        return hook.find_jobs(self.query, statuses=self.statuses, stop=self.stop, known=self.known)

    async def arun(self, hook: BatchJobsHook, client: Any) -> list[dict[str, Any]]:
        return await hook.afind_jobs(client, self.query, statuses=self.statuses, stop=self.stop, known=self.known)


@dataclass(frozen=True)
class DescribeJobs:
    """A poll step: the details of finished jobs."""

    job_ids: list[str]

    def run(self, hook: BatchJobsHook) -> list[dict[str, Any]]:
        return hook.describe_jobs(self.job_ids).jobs

    async def arun(self, hook: BatchJobsHook, client: Any) -> list[dict[str, Any]]:
        return (await hook.adescribe_jobs(client, self.job_ids)).jobs


Call = FindJobs | DescribeJobs


class JobListing:
    """What the service said about one query across polls: the matching jobs (``match='latest'`` and array
    children applied), the details of finished ones (each described once) and the finished jobs each listing
    returned. Waits on the same query can share one (the triggerer does)."""

    def __init__(
        self, query: JobQuery, match: str = "all", include_array_children: bool = False, describe_early: bool = True
    ) -> None:
        self.query = query
        self.match = match
        self.include_array_children = include_array_children
        # describe finished jobs while the wait goes on: pays off only if this listing lives to the verdict
        self.describe_early = describe_early
        self.described: dict[str, JobView] = {}  # finished jobs' details, as views: final, so built once
        # listing ("" = the query's, else an array parent's id) -> finished jobs it returned: final, kept so a
        # job that ages out of ListJobs (retention) while the wait goes on still counts
        self.finished: dict[str, dict[str, dict[str, Any]]] = {}
        # newest-first listings: every matching job created before this is known finished (None: nothing known)
        self.settled_before: int | None = None
        self._describing = asyncio.Lock()  # waits sharing this listing describe each job once between them

    @classmethod
    def for_policy(cls, query: JobQuery, policy: Policy, describe_early: bool = True) -> JobListing:
        return cls(query, policy.match, policy.include_array_children, describe_early)

    def recall(self, listing: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``jobs`` plus the finished jobs this listing returned before and no longer does (retention)."""
        known = self.finished.setdefault(listing, {})
        listed = {j["jobId"] for j in jobs}
        gone = [j for job_id, j in known.items() if job_id not in listed]
        known.update((j["jobId"], j) for j in jobs if is_finished(j))
        return jobs + gone

    def narrow(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply ``match='latest'``: only the newest matching job."""
        if self.match == "latest" and summaries:
            return [max(summaries, key=lambda j: (j.get("createdAt") or 0, j["jobId"]))]
        return summaries

    def array_parents(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The array parents whose children replace them (``include_array_children``)."""
        if not self.include_array_children:
            return []
        return [j for j in summaries if (j.get("arrayProperties") or {}).get("size")]

    def child_statuses(self, parent: dict[str, Any]) -> tuple[str, ...]:
        """The statuses worth listing an array parent's children in this poll, read off its ``statusSummary``
        (which ListJobs returns with the parent): active ones that have children, terminal ones with children not
        yet known. A SUBMITTED parent has no children yet; a parent without a summary gets every status."""
        if parent.get("status") == "SUBMITTED":
            return ()
        summary = parent["arrayProperties"].get("statusSummary")
        if not summary:
            return ALL_STATUSES
        known = Counter(job.get("status") for job in self.finished.get(parent["jobId"], {}).values())
        return tuple(status for status in ALL_STATUSES if summary.get(status, 0) > known[status])

    @staticmethod
    def missing_children(parent: dict[str, Any], children: list[dict[str, Any]]) -> bool:
        """The parent's size is a free completeness check: every child must be seen once it has children."""
        return parent.get("status") != "SUBMITTED" and len(children) < parent["arrayProperties"]["size"]

    @classmethod
    def check_children(cls, parent: dict[str, Any], children: list[dict[str, Any]]) -> None:
        if cls.missing_children(parent, children):
            raise IncompleteListingError(
                f"saw {len(children)} of {parent['arrayProperties']['size']} children of array job "
                f"{parent['jobId']}; asking again"
            )

    @staticmethod
    def expand(summaries: list[dict[str, Any]], children: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for job in summaries:
            kids = children.get(job["jobId"])
            out.extend(kids if kids else [job])
        return out

    def page_stop(self) -> PageStop | None:
        """For a newest-first listing, where paging may stop: below ``created_after`` nothing matches, and below
        :attr:`settled_before` every matching job is known finished (:meth:`recall` brings them back). A page out
        of order, or an unknown matching job below that point, means the premise does not hold: read every page."""
        if not self.query.newest_first:
            return None
        floors = [floor for floor in (self.query.created_after, self.settled_before) if floor is not None]
        if not floors:
            return None
        floor = max(floors)
        known = self.finished.get("", {})
        query = self.query
        last_seen: list[int] = []  # createdAt of the previous page's last job
        read_all = False

        def stop(page: list[dict[str, Any]]) -> bool:
            nonlocal read_all
            if read_all or not page:
                return False
            if any(job.get("createdAt") is None for job in page):
                read_all = True
                return False
            created = last_seen + [job["createdAt"] for job in page]
            out_of_order = any(newer < older for newer, older in itertools.pairwise(created))
            unknown = any(job["createdAt"] < floor and job["jobId"] not in known and query.matches(job) for job in page)
            if out_of_order or unknown:
                read_all = True
                return False
            last_seen[:] = created[-1:]
            oldest: int = created[-1]
            return oldest < floor

        return stop

    def settle(self, jobs: list[dict[str, Any]]) -> None:
        """After a poll's listing: the point before which every matching job is finished, and created long enough
        before the newest one to be visible (:data:`LISTING_LAG_MS`)."""
        if not self.query.newest_first or not jobs or any(job.get("createdAt") is None for job in jobs):
            self.settled_before = None
            return
        newest: int = max(job["createdAt"] for job in jobs)
        active = [job["createdAt"] for job in jobs if not is_finished(job)]
        self.settled_before = min([newest - LISTING_LAG_MS, *active])

    def to_describe(self, jobs: list[dict[str, Any]], *, all_of_them: bool = False) -> list[str]:
        """Finished jobs not yet described: each is described once over the whole wait, in full calls of 100
        while the wait goes on (the summary's status and exit code are enough to judge), and every one left once
        the verdict is in (the records need attempts and log streams)."""
        pending = [j["jobId"] for j in jobs if is_finished(j) and j["jobId"] not in self.described]
        return pending if all_of_them else pending[: len(pending) // DESCRIBE_JOBS_MAX_IDS * DESCRIBE_JOBS_MAX_IDS]

    def absorb(self, details: Sequence[dict[str, Any]]) -> None:
        for detail in details:
            self.described[detail["jobId"]] = JobView(detail)

    def views(self, jobs: list[dict[str, Any]]) -> list[JobView]:
        described = self.described
        return [described.get(j["jobId"]) or JobView(j) for j in jobs]

    async def adescribe_all(self, hook: BatchJobsHook, client: Any, jobs: list[dict[str, Any]]) -> bool:
        """Describe every finished job of ``jobs`` not yet described; True if anything new was learned."""
        async with self._describing:
            rest = self.to_describe(jobs, all_of_them=True)
            if rest:
                self.absorb((await hook.adescribe_jobs(client, rest)).jobs)
            return bool(rest)

    def collect(self, hook: BatchJobsHook) -> list[dict[str, Any]]:
        """One poll's I/O, blocking (sensor, check operator)."""
        steps = self._poll_steps()
        try:
            call = next(steps)
            while True:
                call = steps.send(call.run(hook))
        except StopIteration as done:
            return done.value

    async def acollect(self, hook: BatchJobsHook, client: Any) -> list[dict[str, Any]]:
        """One poll's I/O on the event loop (trigger, shared poll)."""
        steps = self._poll_steps()
        try:
            call = next(steps)
            while True:
                call = steps.send(await call.arun(hook, client))
        except StopIteration as done:
            return done.value

    def _poll_steps(self) -> Generator[Call, list[dict[str, Any]], list[dict[str, Any]]]:
        """One poll, as the calls it needs (each sent back its answer): the query's pages (up to what is already
        known), each array parent's children (the statuses its summary says changed), then DescribeJobs for
        finished jobs in full calls of 100. Written once for the blocking and the async paths."""
        listed = yield FindJobs(self.query, stop=self.page_stop(), known=self.finished.get(""))
        everything = self.recall("", listed)
        self.settle(everything)
        jobs = self.narrow(everything)
        children: dict[str, list[dict[str, Any]]] = {}
        for parent in self.array_parents(jobs):
            children[parent["jobId"]] = yield from self._children_steps(parent)
        jobs = self.expand(jobs, children)
        pending = self.to_describe(jobs) if self.describe_early else []
        if pending:
            self.absorb((yield DescribeJobs(pending)))
        return jobs

    def _children_steps(self, parent: dict[str, Any]) -> Generator[Call, list[dict[str, Any]], list[dict[str, Any]]]:
        query = JobQuery.build(array_job_id=parent["jobId"])
        statuses, known = self.child_statuses(parent), self.finished.get(parent["jobId"])
        kids = self.recall(parent["jobId"], (yield FindJobs(query, statuses, known=known)) if statuses else [])
        if self.missing_children(parent, kids) and statuses != ALL_STATUSES:  # the summary lagged: list them all
            kids = self.recall(parent["jobId"], (yield FindJobs(query, known=known)))
        self.check_children(parent, kids)
        return kids


class JobWatch:
    """The state of one wait across polls: its listing, and what its verdict needs to remember."""

    def __init__(
        self,
        query: JobQuery,
        policy: Policy,
        clock: Callable[[], int] = wall_clock_ms,
        listing: JobListing | None = None,
        describe_early: bool = True,
    ) -> None:
        self.query = query
        self.policy = policy
        self.clock = clock
        self.listing = listing or JobListing.for_policy(query, policy, describe_early)
        self.runnable_since: dict[str, int] = {}
        self.seen: set[str] = set()
        self.new_since_last_poll = 0

    def observe(self, jobs: list[dict[str, Any]]) -> None:
        """Note new jobs and when each was first seen RUNNABLE (once per poll)."""
        now = self.clock()
        ids = {j["jobId"] for j in jobs}
        self.new_since_last_poll = len(ids - self.seen)
        self.seen |= ids
        for job in jobs:
            if job.get("status") == "RUNNABLE":
                self.runnable_since.setdefault(job["jobId"], now)
            else:
                self.runnable_since.pop(job["jobId"], None)

    def decide(self, jobs: list[dict[str, Any]]) -> Decision:
        views = self.listing.views(jobs)
        return judge(views, self.policy, now_ms=self.clock(), runnable_since=self.runnable_since)

    def undescribed_at_verdict(self, decision: Decision, jobs: list[dict[str, Any]]) -> list[str]:
        """Once the verdict is in, the finished jobs still to describe (judged on summaries so far: their details
        may still turn an exit code into a success or a skip, and the records need them)."""
        return self.listing.to_describe(jobs, all_of_them=True) if decision.verdict is not Verdict.WAITING else []

    def progress(self, decision: Decision) -> str:
        """e.g. ``nightly-etl-*: 37 jobs — 20 SUCCEEDED, 2 FAILED, 15 RUNNING (3 new since last poll)``."""
        counts = ", ".join(f"{n} {status}" for status, n in decision.counts.items()) or "none yet"
        return (
            f"{self.query.describe()}: {len(decision.jobs)} jobs — {counts} "
            f"({self.new_since_last_poll} new since last poll)"
        )

    def poll(self, hook: BatchJobsHook) -> Decision:
        jobs = self.listing.collect(hook)
        self.observe(jobs)
        decision = self.decide(jobs)
        rest = self.undescribed_at_verdict(decision, jobs)
        if rest:
            self.listing.absorb(hook.describe_jobs(rest).jobs)
            decision = self.decide(jobs)
        return decision

    async def apoll(self, hook: BatchJobsHook, client: Any) -> Decision:
        return await self.ajudge(await self.listing.acollect(hook, client), hook, client)

    async def ajudge(self, jobs: list[dict[str, Any]], hook: BatchJobsHook, client: Any) -> Decision:
        """The verdict on one poll's jobs (from this wait's listing or a shared one)."""
        self.observe(jobs)
        decision = self.decide(jobs)
        if self.undescribed_at_verdict(decision, jobs) and await self.listing.adescribe_all(hook, client, jobs):
            decision = self.decide(jobs)
        return decision


def records(decision: Decision, xcom_detail: str, xcom_max_jobs: int) -> tuple[list[dict[str, Any]], int]:
    """XCom records for a decision, failed jobs first, at most ``xcom_max_jobs``; and how many were cut."""
    if xcom_detail == "none":
        return [], 0
    failed_ids = {j.job_id for j in decision.failed}
    ordered = sorted(decision.jobs, key=lambda j: j.job_id not in failed_ids)
    kept = ordered[:xcom_max_jobs]
    return job_records(kept, xcom_detail), len(ordered) - len(kept)


def job_records(jobs: Sequence[JobView], xcom_detail: str) -> list[dict[str, Any]]:
    """One JSON-native record per job; ``full`` adds the redacted detail, ``none`` gives nothing."""
    if xcom_detail == "none":
        return []
    out = []
    for job in jobs:
        record = job.to_record()
        if xcom_detail == "full":
            record["detail"] = job.redacted_detail()
        out.append(record)
    return out


def verdict_event(decision: Decision, xcom_detail: str, xcom_max_jobs: int) -> dict[str, Any]:
    """The payload a trigger yields and ``execute_complete`` reads (JSON-native)."""
    recs, cut = records(decision, xcom_detail, xcom_max_jobs)
    return {
        "status": decision.verdict.value,
        "message": decision.message,
        "records": recs,
        "cut": cut,
        "failed": len(decision.failed),
    }
