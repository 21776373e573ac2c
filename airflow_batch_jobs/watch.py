"""One poll of a wait: list (paginated) -> match -> describe newly finished jobs in chunks of 100 -> verdict.

A :class:`JobListing` keeps what the service said about one query across polls, each kind of memory in its own named
object: the details of finished jobs (:class:`DescribedJobs`, each described once), the finished jobs each listing
returned (:class:`FinishedJobs`, so jobs that age out of ListJobs still count), the point below which a newest-first
listing is settled (:class:`SettledPoint`, where :class:`PageCutoff` may stop paging) and, for the array_job_id and
multi_node_job_id selectors, what is known of the parent (:class:`SelectedParent`). A :class:`JobWatch` adds what
one wait's verdict needs: when each RUNNABLE job's current wait began (:class:`RunnablePeriods`) and which ids it
has seen. The sync path (sensor, check operator) and the async path (trigger) share every step but the I/O.

No verdict is given on an incomplete listing. Children and nodes are listed status by status, and a job can move
between two of those calls: forward (seen twice: the later call, the newer sighting, wins) or back to RUNNABLE on a
retry (missed). Every children listing is therefore counted against the parent's size (array) or ``numNodes``
(multi-node) first; children the listing lacks count only when the parent's ``statusSummary``, read before the
listing, proves them finished (they aged out of ListJobs), and a parent without children is judged on its own.

An id named in ``job_ids`` that the service does not return is not dropped: a just-submitted job can be missing from
DescribeJobs for a moment (eventual consistency). Such an id keeps the verdict from being a success or a skip; one
still unknown ``UNKNOWN_JOB_ID_TIMEOUT_S`` after the wait began fails the wait, named in the message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    MissingParametersError,
    ParamValidationError,
    ValidationError,
)

from airflow_batch_jobs.hooks.batch_jobs import DESCRIBE_JOBS_MAX_IDS
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import ONE_OF_JOB_IDS, Decision, Policy, Verdict, judge, one_of, stuck_jobs
from airflow_batch_jobs.query import ALL_STATUSES, TERMINAL_STATUSES, JobQuery

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook, Known, PageStop

XCOM_DETAILS = ("summary", "full", "none")

# How long an id named in job_ids may stay unknown to DescribeJobs before the wait fails, counted from the start of the
# wait (the first poke in poke mode and before deferring; the first try in reschedule mode, as Airflow records it for
# the sensor's own timeout). Ids are assigned by SubmitJob, so every id in job_ids was submitted before the wait began:
# an id still unknown this long after is unknown this long after its submission too, far beyond the service's
# visibility lag (seconds). Until then it is waited for: no success or skip while any id is unknown.
UNKNOWN_JOB_ID_TIMEOUT_S = 300

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

# Marks an array child known only from its parent's statusSummary (it aged out of ListJobs before this wait saw it):
# never described (the service no longer knows it), and named for what is known of it.
AGED_OUT = "agedOutOfListJobs"

# Marks a finished job that an earlier instance of this wait saw (a reschedule try, through task_state_store; the poke
# before deferring, through the trigger's kwargs: see airflow_batch_jobs.wait_state). Judged as it was seen; never
# described while the listing does not return it (it aged out); a listing's own copy replaces it.
REMEMBERED = "rememberedFromAnEarlierPoll"


class IncompleteListingError(Exception):
    """A listing that cannot be complete (e.g. fewer array children than the parent's size): no verdict."""


# botocore's checks of a request before it is sent (types, required members, unknown keys): the same request fails
# the same way on every retry, and AWS never saw it.
REQUEST_VALIDATION_ERRORS = (ParamValidationError, ValidationError, MissingParametersError)


def is_transient(error: BaseException) -> bool:
    """Throttling, 5xx, dropped connections and incomplete listings are retried; anything else (a request AWS Batch
    rejected or botocore refused to send, an error in our own code) is final."""
    if isinstance(error, IncompleteListingError):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    if isinstance(error, REQUEST_VALIDATION_ERRORS):
        return False
    return isinstance(error, BotoCoreError)  # connection closed / timed out / endpoint unreachable


def rejected_request(error: BaseException) -> str | None:
    """Why a request can never succeed as it is (the task fails with this, without retries, which would fail alike):
    AWS Batch rejected it, or botocore refused to send it. None for any other error: transient, or not about AWS."""
    if isinstance(error, ClientError) and not is_transient(error):
        return f"AWS Batch rejected the request: {error}"
    if isinstance(error, REQUEST_VALIDATION_ERRORS):
        return (
            f"botocore refused to send the request to AWS Batch (its check of the request's parameters failed, so "
            f"asking again cannot help; check the arguments it names): {error}"
        )
    return None


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def first_try_began_ms(context: Mapping[str, Any] | None) -> int | None:
    """When a reschedule-mode sensor's first try began, as Airflow keeps it for the sensor's timeout
    (``ti.get_first_reschedule_date``); None in the first try, or when Airflow does not say."""
    ti = (context or {}).get("ti")
    first_reschedule_date = getattr(ti, "get_first_reschedule_date", None)
    if first_reschedule_date is None:
        return None
    began = first_reschedule_date(context)
    return int(began.timestamp() * 1000) if isinstance(began, dt.datetime) else None


def is_finished(job: Mapping[str, Any]) -> bool:
    """Whether a JobSummary / JobDetail dict is in a terminal status (final: it never changes again)."""
    return job.get("status") in TERMINAL_STATUSES


def is_aged_out(job: Mapping[str, Any]) -> bool:
    return bool(job.get(AGED_OUT))


# -- array parents and their children -------------------------------------------------------------------------------


def array_size(parent: Mapping[str, Any]) -> int:
    return int((parent.get("arrayProperties") or {}).get("size") or 0)


def status_summary(parent: Mapping[str, Any]) -> Mapping[str, int]:
    """An array parent's children per status, as its ``statusSummary`` says ({} when it says nothing)."""
    return (parent.get("arrayProperties") or {}).get("statusSummary") or {}


def shows_children(parent: Mapping[str, Any]) -> bool:
    """Whether the parent's statusSummary counts any child (none: it has none yet, or never will)."""
    return any(status_summary(parent).values())


def child_index(parent_id: str, child: Mapping[str, Any]) -> int | None:
    """A child's index in its array: ``arrayProperties.index``, else the ``<parentId>:<index>`` id."""
    index = (child.get("arrayProperties") or {}).get("index")
    if isinstance(index, int):
        return index
    prefix, _, tail = str(child.get("jobId", "")).rpartition(":")
    return int(tail) if prefix == parent_id and tail.isdigit() else None


def aged_out_children(parent: Mapping[str, Any], children: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """Stand-ins for the children of ``parent`` missing from ``children``, when the parent (read *before* the children
    were listed) proves that every one of them had finished: they aged out of ListJobs. None when it does not.

    The proof: a child that a statusSummary counts SUCCEEDED (or FAILED) is in that status at every later moment, so
    it is either in the listing, in that status, or no longer listed. Per terminal status, at least
    ``summary[status] - seen[status]`` children are therefore missing in that status; when those numbers add up to
    the number missing, every missing child is finished and the split is exact. A SUCCEEDED parent needs no summary:
    every child succeeded. Which missing child failed is known only if all of them did (or none): otherwise the
    stand-ins are not jobs: each holds the real ids it is one of (:data:`~airflow_batch_jobs.policy.ONE_OF_JOB_IDS`)
    and a placeholder jobId that records, messages and links never show.
    """
    size = array_size(parent)
    missing = size - len(children)
    if missing <= 0:
        return []
    summary = status_summary(parent)
    if summary:
        seen = Counter(child.get("status") for child in children)
        unseen = {status: max(0, int(summary.get(status, 0)) - seen[status]) for status in TERMINAL_STATUSES}
    elif parent.get("status") == "SUCCEEDED":
        unseen = {"SUCCEEDED": missing}
    else:
        return None
    if sum(unseen.values()) != missing:
        return None
    parent_id = str(parent["jobId"])
    seen_indices = {child_index(parent_id, child) for child in children}
    indices = [i for i in range(size) if i not in seen_indices]
    base = {"jobName": parent.get("jobName", ""), AGED_OUT: True}
    statuses = [status for status, count in unseen.items() if count]
    if len(statuses) == 1 and len(indices) == missing:  # each missing child's status is known
        (status,) = statuses
        reason = f"Aged out of ListJobs before this wait saw it; counted {status} from its parent's statusSummary"
        return [
            {
                **base,
                "jobId": f"{parent_id}:{i}",
                "status": status,
                "statusReason": reason,
                "arrayProperties": {"index": i},
            }
            for i in indices
        ]
    ids = [f"{parent_id}:{i}" for i in indices] if len(indices) == missing else []
    named = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "") if ids else "ids unknown"
    out: list[dict[str, Any]] = []
    for status in statuses:
        reason = (
            f"One of the {missing} children that aged out of ListJobs before this wait saw them ({named}); the "
            f"parent's statusSummary counts {unseen[status]} of them {status}, which ones is no longer known"
        )
        out.extend(  # each a placeholder jobId (never shown) and the real ids it is one of
            {
                **base,
                "jobId": f"{parent_id}:aged-out-{status.lower()}-{n}",
                ONE_OF_JOB_IDS: ids,
                "status": status,
                "statusReason": reason,
            }
            for n in range(1, unseen[status] + 1)
        )
    return out


def account_for_children(parent: Mapping[str, Any], children: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The children an array parent's verdict counts, each once; [] when the parent stands for them (it has none:
    SUBMITTED, waiting for a dependency, or failed because one failed); None when the listing is incomplete.

    ``children`` is one listing (each child once, its latest sighting) plus the finished children remembered from
    earlier polls; ``parent`` was read before that listing (its statusSummary proves which missing ones aged out)."""
    if parent.get("status") == "SUBMITTED":
        return []
    if len(children) >= array_size(parent):
        return children
    aged_out = aged_out_children(parent, children)
    if aged_out is not None:
        return children + aged_out
    if not children and not shows_children(parent):
        return []
    return None


def num_nodes(jobs: Iterable[Mapping[str, Any]]) -> int | None:
    """A multi-node job's node count, as its node summaries (or its own detail) carry it."""
    counts = [(job.get("nodeProperties") or {}).get("numNodes") for job in jobs]
    return max((count for count in counts if isinstance(count, int)), default=None)


# -- the calls a poll makes -----------------------------------------------------------------------------------------


def names_a_job_gone(error: BaseException) -> bool:
    """Whether AWS Batch answered that the job a listing names (an array parent) does not exist: it aged out."""
    if not isinstance(error, ClientError) or error.response.get("Error", {}).get("Code") != "ClientException":
        return False
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return "does not exist" in message or "not found" in message


@dataclass(frozen=True)
class FindJobs:
    """A poll step: the jobs of a query (``statuses`` for children listings, ``stop`` to end paging early).
    ``parent_may_be_gone``: the children of a finished parent, which may have aged out (retention) since it was
    listed; the service's "does not exist" for it is then an empty listing, the children counted from memory and the
    parent's statusSummary, not a rejected request."""

    query: JobQuery
    statuses: Sequence[str] = ALL_STATUSES
    stop: PageStop | None = None
    known: Known | None = None
    parent_may_be_gone: bool = False

    def run(self, hook: BatchJobsHook) -> list[dict[str, Any]]:
        try:
            return hook.find_jobs(self.query, statuses=self.statuses, stop=self.stop, known=self.known)
        except ClientError as err:
            if self.parent_may_be_gone and names_a_job_gone(err):
                return []
            raise

    async def arun(self, hook: BatchJobsHook, client: Any) -> list[dict[str, Any]]:
        try:
            return await hook.afind_jobs(client, self.query, statuses=self.statuses, stop=self.stop, known=self.known)
        except ClientError as err:
            if self.parent_may_be_gone and names_a_job_gone(err):
                return []
            raise


@dataclass(frozen=True)
class DescribeJobs:
    """A poll step: the details of finished jobs (or of the parent a selector names)."""

    job_ids: list[str]

    def run(self, hook: BatchJobsHook) -> list[dict[str, Any]]:
        return hook.describe_jobs(self.job_ids).jobs

    async def arun(self, hook: BatchJobsHook, client: Any) -> list[dict[str, Any]]:
        return (await hook.adescribe_jobs(client, self.job_ids)).jobs


Call = FindJobs | DescribeJobs


class Listed(list[dict[str, Any]]):
    """One poll's jobs, and the ids named in ``job_ids`` that the service did not return (yet): a list like any other,
    so that whoever shares a poll's result (the triggerer's shared poll) hands the unknown ids on with it."""

    def __init__(self, jobs: Iterable[dict[str, Any]] = (), unknown_ids: Sequence[str] = ()) -> None:
        super().__init__(jobs)
        self.unknown_ids: tuple[str, ...] = tuple(unknown_ids)


if TYPE_CHECKING:
    # a poll's steps: each call is sent back its answer; the generator returns the jobs it found
    Steps = Generator[Call, list[dict[str, Any]], list[dict[str, Any]]]


# -- a listing's memory ---------------------------------------------------------------------------------------------


class DescribedJobs:
    """Finished jobs' details (DescribeJobs), as views: final, so each job is described once over a wait and its view
    built once. Waits sharing a listing describe each job once between them (:attr:`lock`)."""

    def __init__(self) -> None:
        self.views: dict[str, JobView] = {}
        self.lock = asyncio.Lock()

    def pending(self, jobs: Iterable[Mapping[str, Any]], *, all_of_them: bool = False) -> list[str]:
        """Finished jobs not yet described, in full calls of 100 (or ``all_of_them``); never stand-ins for aged-out
        children, which the service no longer knows."""
        views = self.views
        ids = [
            j["jobId"]
            for j in jobs
            if is_finished(j) and j["jobId"] not in views and not is_aged_out(j) and not j.get(REMEMBERED)
        ]
        return ids if all_of_them else ids[: len(ids) // DESCRIBE_JOBS_MAX_IDS * DESCRIBE_JOBS_MAX_IDS]

    def absorb(self, details: Iterable[Mapping[str, Any]]) -> None:
        for detail in details:
            self.views[detail["jobId"]] = JobView(detail)

    def view(self, job: Mapping[str, Any]) -> JobView:
        return self.views.get(job["jobId"]) or JobView(job)


class FinishedJobs:
    """The finished jobs each listing returned ("" = the query's own, else a parent's id, for its children or nodes):
    final, so kept, for a job that ages out of ListJobs (retention) to keep counting and for a page's copy to be
    replaced by the kept one. Also, per array parent, how many children are known finished only by count (aged out
    before this wait saw them), so their statuses are not listed again for nothing."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[str, dict[str, Any]]] = {}
        self._aged_out: dict[str, Counter[str]] = {}

    def known(self, listing: str) -> Known | None:
        return self._jobs.get(listing)

    def recall(self, listing: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``jobs`` plus the finished jobs this listing returned before and no longer does (retention)."""
        known = self._jobs.setdefault(listing, {})
        listed = {j["jobId"] for j in jobs}
        gone = [j for job_id, j in known.items() if job_id not in listed]
        known.update((j["jobId"], j) for j in jobs if is_finished(j))
        return jobs + gone

    def note_aged_out(self, listing: str, stand_ins: Iterable[Mapping[str, Any]]) -> None:
        self._aged_out[listing] = Counter(str(job.get("status")) for job in stand_ins)

    def counts(self, listing: str) -> Counter[str]:
        """Finished jobs of a listing per status: remembered, plus known by count only."""
        counts = Counter(str(job.get("status")) for job in self._jobs.get(listing, {}).values())
        counts.update(self._aged_out.get(listing, Counter()))
        return counts

    # -- for a wait's memory that outlives one operator instance (airflow_batch_jobs.wait_state) -------------------
    def remembered(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every finished job kept, with the listing that returned it."""
        for listing, jobs in self._jobs.items():
            for job in jobs.values():
                yield listing, job

    def remember(self, listing: str, jobs: Iterable[dict[str, Any]]) -> None:
        """Finished jobs an earlier instance of this wait saw; a job this listing already keeps keeps its copy."""
        known = self._jobs.setdefault(listing, {})
        for job in jobs:
            known.setdefault(job["jobId"], job)


class SettledPoint:
    """For a newest-first listing: the ``createdAt`` before which every matching job is known finished and created long
    enough before the newest one listed to be visible already (:data:`LISTING_LAG_MS`). None: nothing is settled."""

    def __init__(self, newest_first: bool) -> None:
        self.newest_first = newest_first
        self.before: int | None = None

    def update(self, jobs: Sequence[Mapping[str, Any]]) -> None:
        """After a poll's listing (with the finished jobs it no longer returns)."""
        if not self.newest_first or not jobs or any(job.get("createdAt") is None for job in jobs):
            self.before = None
            return
        newest: int = max(job["createdAt"] for job in jobs)
        active = [job["createdAt"] for job in jobs if not is_finished(job)]
        self.before = min([newest - LISTING_LAG_MS, *active])


class PageCutoff:
    """Whether a newest-first listing may stop after a page: once a page reaches below ``floor`` (``created_after``, or
    the settled point: below it every matching job is known finished and comes back from memory).

    The premise is checked on every page: a page out of order, a job without ``createdAt`` or a matching job below
    the floor that is not known finished means it does not hold, and every page of this listing is read. One per
    listing: it remembers the previous page's last ``createdAt``."""

    def __init__(self, floor: int, known: Mapping[str, Any], matches: Callable[[Mapping[str, Any]], bool]) -> None:
        self.floor = floor
        self.known = known
        self.matches = matches
        self.previous: int | None = None  # createdAt of the previous page's last job
        self.read_all = False

    def __call__(self, page: list[dict[str, Any]]) -> bool:
        if self.read_all or not page:
            return False
        created: list[int] = []
        for job in page:
            if job.get("createdAt") is None:
                self.read_all = True
                return False
            created.append(job["createdAt"])
        ordered = created if self.previous is None else [self.previous, *created]
        out_of_order = any(newer < older for newer, older in itertools.pairwise(ordered))
        floor, known = self.floor, self.known
        unknown = any(job["createdAt"] < floor and job["jobId"] not in known and self.matches(job) for job in page)
        if out_of_order or unknown:
            self.read_all = True
            return False
        self.previous = created[-1]
        return created[-1] < floor


@dataclass
class SelectedParent:
    """For the array_job_id and multi_node_job_id selectors: what is known of the parent they name. Its size (children,
    or nodes) is fixed when it is submitted; ``read_first``: describe it before listing its children, so that its
    statusSummary predates the listing (its first poll, and after a listing that fell short of its size)."""

    size: int | None = None
    read_first: bool = True


# -- one query's listing --------------------------------------------------------------------------------------------


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
        self.details = DescribedJobs()
        self.finished = FinishedJobs()
        self.settled = SettledPoint(query.newest_first)
        self.parent = SelectedParent()

    @classmethod
    def for_policy(cls, query: JobQuery, policy: Policy, describe_early: bool = True) -> JobListing:
        return cls(query, policy.match, policy.include_array_children, describe_early)

    @property
    def settled_before(self) -> int | None:
        return self.settled.before

    def narrow(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply ``match='latest'``: only the newest matching job."""
        if self.match == "latest" and summaries:
            return [max(summaries, key=lambda j: (j.get("createdAt") or 0, j["jobId"]))]
        return summaries

    def array_parents(self, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The array parents whose children replace them (``include_array_children``)."""
        if not self.include_array_children:
            return []
        return [j for j in summaries if array_size(j)]

    def child_statuses(self, parent: dict[str, Any]) -> tuple[str, ...]:
        """The statuses worth listing an array parent's children in this poll, read off its ``statusSummary``
        (which ListJobs returns with the parent): active ones that have children, terminal ones with children not
        yet known. A SUBMITTED parent has no children yet; a parent without a summary gets every status."""
        if parent.get("status") == "SUBMITTED":
            return ()
        summary = status_summary(parent)
        if not summary:
            return ALL_STATUSES
        known = self.finished.counts(parent["jobId"])
        return tuple(status for status in ALL_STATUSES if summary.get(status, 0) > known[status])

    @staticmethod
    def expand(summaries: list[dict[str, Any]], children: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for job in summaries:
            kids = children.get(job["jobId"])
            out.extend(kids if kids else [job])
        return out

    def page_stop(self) -> PageCutoff | None:
        """For a newest-first listing, where paging may stop: below ``created_after`` nothing matches, and below
        the settled point every matching job is known finished (:meth:`FinishedJobs.recall` brings them back)."""
        if not self.query.newest_first:
            return None
        floors = [floor for floor in (self.query.created_after, self.settled.before) if floor is not None]
        if not floors:
            return None
        return PageCutoff(max(floors), self.finished.known("") or {}, self.query.matches)

    def to_describe(self, jobs: list[dict[str, Any]], *, all_of_them: bool = False) -> list[str]:
        """Finished jobs not yet described: each is described once over the whole wait, in full calls of 100
        while the wait goes on (the summary's status and exit code are enough to judge), and every one left once
        the verdict is in (the records need attempts and log streams)."""
        return self.details.pending(jobs, all_of_them=all_of_them)

    def absorb(self, details: Sequence[dict[str, Any]]) -> None:
        self.details.absorb(details)

    def views(self, jobs: list[dict[str, Any]]) -> list[JobView]:
        view = self.details.view
        return [view(j) for j in jobs]

    async def adescribe_all(self, hook: BatchJobsHook, client: Any, jobs: list[dict[str, Any]]) -> bool:
        """Describe every finished job of ``jobs`` not yet described; True if anything new was learned."""
        async with self.details.lock:
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

    # -- the steps of one poll, written once for the blocking and the async paths ---------------------------------
    def _poll_steps(self) -> Steps:
        """One poll, as the calls it needs (each sent back its answer): the query's pages (up to what is already
        known) and each array parent's children (the statuses its summary says changed), or the children / nodes a
        selector names; then DescribeJobs for finished jobs in full calls of 100."""
        if self.query.array_job_id:
            jobs = self.narrow((yield from self._array_job_steps(self.query.array_job_id)))
        elif self.query.multi_node_job_id:
            jobs = self.narrow((yield from self._nodes_steps(self.query.multi_node_job_id)))
        else:
            if self.query.job_ids:
                described = yield DescribeJobs(list(self.query.job_ids))
                listed = [job for job in described if self.query.matches(job)]
                self.absorb([job for job in listed if is_finished(job)])  # already details: not described again
            else:
                described = listed = yield FindJobs(self.query, stop=self.page_stop(), known=self.finished.known(""))
            everything = self.finished.recall("", listed)
            unknown = self.unknown_ids(described, everything)
            self.settled.update(everything)
            jobs = self.narrow(everything)
            children: dict[str, list[dict[str, Any]]] = {}
            for parent in self.array_parents(jobs):
                children[parent["jobId"]] = yield from self._children_steps(parent)
            jobs = Listed(self.expand(jobs, children), unknown)
        pending = self.to_describe(jobs) if self.describe_early else []
        if pending:
            self.absorb((yield DescribeJobs(pending)))
        return jobs

    def unknown_ids(self, *answers: Iterable[Mapping[str, Any]]) -> list[str]:
        """The ids named in ``job_ids`` that none of ``answers`` holds (DescribeJobs' answer, before the other filters,
        and the finished jobs remembered from earlier polls, which may have aged out since)."""
        if not self.query.job_ids:
            return []
        known = {job["jobId"] for answer in answers for job in answer}
        return [job_id for job_id in self.query.job_ids if job_id not in known]

    def _children_steps(self, parent: dict[str, Any]) -> Steps:
        """An array parent's children, complete (stand-ins for aged-out ones included), or [] when the parent stands
        for them; raises IncompleteListingError otherwise. ``parent`` was read before this listing."""
        parent_id = parent["jobId"]
        query = JobQuery.build(array_job_id=parent_id)
        statuses, known = self.child_statuses(parent), self.finished.known(parent_id)
        gone = is_finished(parent)  # it may have aged out since it was listed, its children with it
        listing = (yield FindJobs(query, statuses, known=known, parent_may_be_gone=gone)) if statuses else []
        kids = self.finished.recall(parent_id, listing)
        counted = account_for_children(parent, kids)
        if counted is None and statuses != ALL_STATUSES:  # the summary lagged, or a child moved: list them all
            kids = self.finished.recall(parent_id, (yield FindJobs(query, known=known, parent_may_be_gone=gone)))
            counted = account_for_children(parent, kids)
        if counted is None:
            raise IncompleteListingError(
                f"saw {len(kids)} of {array_size(parent)} children of array job {parent_id}; asking again"
            )
        self.finished.note_aged_out(parent_id, (job for job in counted if is_aged_out(job)))
        return counted

    def _read_parent(self, parent_id: str) -> Steps:
        """The parent a selector names, as DescribeJobs has it ([] if the service does not know it, yet or any
        more). A finished parent's detail is kept: it is final, and may stand for its children at the verdict."""
        parent = [job for job in (yield DescribeJobs([parent_id])) if job["jobId"] == parent_id]
        self.absorb([job for job in parent if is_finished(job)])
        return parent

    def _array_job_steps(self, parent_id: str) -> Steps:
        """array_job_id: the children, counted against the parent's size. The size is read once (one DescribeJobs:
        child summaries carry their index, not the size); later polls list every status and read the parent again
        only when that listing falls short, then list again after its statusSummary (which can prove the missing
        children aged out, or that it has none)."""
        selected = self.parent
        if not selected.read_first:
            query, known = JobQuery.build(array_job_id=parent_id), self.finished.known(parent_id)
            kids = self.finished.recall(parent_id, (yield FindJobs(query, known=known)))
            if selected.size is not None and len(kids) >= selected.size:
                return kids
        found = yield from self._read_parent(parent_id)
        if not found:
            selected.read_first = True
            raise IncompleteListingError(f"array job {parent_id} is not known to DescribeJobs (yet); asking again")
        (parent,) = found
        selected.size = array_size(parent)
        counted = yield from self._children_steps(parent)
        selected.read_first = sum(not is_aged_out(job) for job in counted) < selected.size
        return counted or found

    def _nodes_steps(self, parent_id: str) -> Steps:
        """multi_node_job_id: the nodes, counted against ``numNodes`` (which node summaries carry: a free check). With
        no node listed, the job itself (one DescribeJobs) says whether there is anything to wait for: it has no
        nodes yet, or never will (a failed dependency), and stands for them."""
        query, known = JobQuery.build(multi_node_job_id=parent_id), self.finished.known(parent_id)
        nodes = self.finished.recall(parent_id, (yield FindJobs(query, known=known)))
        if not nodes:
            return (yield from self._read_parent(parent_id))
        expected = num_nodes(nodes) or self.parent.size
        if expected is None:
            expected = num_nodes((yield from self._read_parent(parent_id)))
        self.parent.size = expected
        if expected is not None and len(nodes) < expected:
            raise IncompleteListingError(
                f"saw {len(nodes)} of {expected} nodes of multi-node job {parent_id}; asking again"
            )
        return nodes


# -- one wait -------------------------------------------------------------------------------------------------------


class RunnablePeriods:
    """When each RUNNABLE job's current RUNNABLE period began, as far as the polls can tell: when it was first seen
    RUNNABLE in that period. A job leaves RUNNABLE forward (STARTING) or, after a failed attempt with retries left,
    comes back to it: a period ends when the job is seen in another status, or when its ``startedAt`` has changed
    since the last sighting (it ran in between, unseen). The service may keep a retried job's first ``startedAt``,
    so before a job is failed for its wait, :meth:`correct` reads its attempts: a period cannot have begun before
    its last attempt stopped."""

    def __init__(self) -> None:
        self.since: dict[str, int] = {}
        self._started: dict[str, int | None] = {}  # the startedAt of each job's last RUNNABLE sighting

    def observe(self, jobs: Iterable[Mapping[str, Any]], now: int) -> None:
        since, started = self.since, self._started
        for job in jobs:
            job_id = job["jobId"]
            if job.get("status") != "RUNNABLE":
                if job_id in since:
                    del since[job_id]
                    started.pop(job_id, None)
                continue
            begun = job.get("startedAt")
            if job_id not in since or started.get(job_id) != begun:
                since[job_id] = now
                started[job_id] = begun

    def correct(self, details: Iterable[Mapping[str, Any]]) -> None:
        """From DescribeJobs answers for jobs about to be failed for their wait."""
        for detail in details:
            job = JobView(detail)
            if job.job_id not in self.since:
                continue
            if job.status != "RUNNABLE":  # it has moved on since the listing
                del self.since[job.job_id]
                self._started.pop(job.job_id, None)
                continue
            stops = [attempt.stopped_at for attempt in job.attempts if attempt.stopped_at is not None]
            if stops and max(stops) > self.since[job.job_id]:
                self.since[job.job_id] = max(stops)

    # -- for a wait's memory that outlives one operator instance (airflow_batch_jobs.wait_state) -------------------
    def periods(self) -> dict[str, tuple[int, int | None]]:
        """Each RUNNABLE job's period: when it began, and the ``startedAt`` of its last RUNNABLE sighting."""
        return {job_id: (since, self._started.get(job_id)) for job_id, since in self.since.items()}

    def resume(self, periods: Mapping[str, tuple[int, int | None]]) -> None:
        """Periods an earlier instance of this wait saw begin (before this one's first poll)."""
        for job_id, (since, started) in periods.items():
            if job_id not in self.since:
                self.since[job_id] = since
                self._started[job_id] = started


class StatusChanges:
    """What changed between two polls, for the progress line: jobs seen for the first time, and jobs whose status
    moved (e.g. RUNNING -> FAILED), those that finished counted apart. Each job's last status is kept (one entry a
    job, as the set of seen ids it replaces was)."""

    MAX_MOVES_SHOWN = 6

    def __init__(self) -> None:
        self.last: dict[str, str] = {}
        self.new = 0
        self.moves: Counter[tuple[str, str]] = Counter()

    def observe(self, jobs: Iterable[Mapping[str, Any]]) -> None:
        last, new = self.last, 0
        moves: Counter[tuple[str, str]] = Counter()
        for job in jobs:
            job_id, status = job["jobId"], str(job.get("status", ""))
            before = last.get(job_id)
            if before is None:
                new += 1
            elif before != status:
                moves[before, status] += 1
            last[job_id] = status
        self.new, self.moves = new, moves

    def describe(self) -> str:
        """e.g. ``since last poll: 2 new; 1 finished (1 RUNNING → FAILED); 3 RUNNABLE → RUNNING``."""
        order = {status: i for i, status in enumerate(ALL_STATUSES)}

        def moved(pairs: Iterable[tuple[tuple[str, str], int]]) -> list[str]:
            ranked = sorted(pairs, key=lambda item: (order.get(item[0][1], 99), order.get(item[0][0], 99)))
            return [f"{n} {before} → {after}" for (before, after), n in ranked]

        finished = [(move, n) for move, n in self.moves.items() if move[1] in TERMINAL_STATUSES]
        other = [(move, n) for move, n in self.moves.items() if move[1] not in TERMINAL_STATUSES]
        parts = [f"{self.new} new"] if self.new else []
        if finished:
            parts.append(f"{sum(n for _, n in finished)} finished ({', '.join(moved(finished))})")
        parts.extend(moved(other))
        if not parts:
            return "no change since last poll"
        if len(parts) > self.MAX_MOVES_SHOWN:
            parts = [*parts[: self.MAX_MOVES_SHOWN], f"{len(parts) - self.MAX_MOVES_SHOWN} more kinds of change"]
        return "since last poll: " + "; ".join(parts)


class JobWatch:
    """The state of one wait across polls: its listing, and what its verdict needs to remember."""

    def __init__(
        self,
        query: JobQuery,
        policy: Policy,
        clock: Callable[[], int] | None = None,
        listing: JobListing | None = None,
        describe_early: bool = True,
        began_ms: int | None = None,
    ) -> None:
        self.query = query
        self.policy = policy
        self.clock = clock if clock is not None else wall_clock_ms
        self.listing = listing or JobListing.for_policy(query, policy, describe_early)
        self.runnable = RunnablePeriods()
        self.changes = StatusChanges()  # since the last poll, for the progress line
        # when the wait began (epoch ms): its first poll, unless the caller knows an earlier start (wait_began)
        self.began_ms = began_ms
        self.unknown: Sequence[str] = ()  # the ids of job_ids not found at the last verdict

    def wait_began(self, epoch_ms: int | None) -> None:
        """The wait began at ``epoch_ms`` (a reschedule-mode sensor's first try), not at this watch's first poll."""
        if epoch_ms is not None:
            self.began_ms = epoch_ms if self.began_ms is None else min(self.began_ms, epoch_ms)

    def begin(self) -> None:
        """The wait begins with its first poll (tried, if not answered), unless an earlier start is known."""
        if self.began_ms is None:
            self.began_ms = self.clock()

    def observe(self, jobs: list[dict[str, Any]]) -> None:
        """Note what changed since the last poll and each RUNNABLE job's current wait (once per poll)."""
        self.begin()
        self.changes.observe(jobs)
        self.runnable.observe(jobs, self.clock())

    def runnable_suspects(self, jobs: list[dict[str, Any]]) -> list[str]:
        """Jobs that have waited in RUNNABLE longer than ``runnable_timeout`` by the listings alone: their attempts
        are read (one DescribeJobs) before they fail the wait."""
        if self.policy.runnable_timeout is None:
            return []
        runnable = [JobView(j) for j in jobs if j.get("status") == "RUNNABLE"]
        stuck = stuck_jobs(runnable, self.policy, now_ms=self.clock(), runnable_since=self.runnable.since)
        return [job.job_id for job in stuck]

    def decide(self, jobs: list[dict[str, Any]]) -> Decision:
        """The verdict on one poll's jobs. A plain list (not a poll's :class:`Listed`) is taken as the service's whole
        answer: an id of ``job_ids`` missing from it is unknown."""
        views = self.listing.views(jobs)
        now = self.clock()
        decision = judge(views, self.policy, now_ms=now, runnable_since=self.runnable.since)
        unknown = jobs.unknown_ids if isinstance(jobs, Listed) else self.listing.unknown_ids(jobs)
        self.unknown = unknown
        return self.account_for_unknown(decision, unknown, now) if unknown else decision

    def account_for_unknown(self, decision: Decision, unknown: Sequence[str], now: int) -> Decision:
        """``decision`` with the ids of ``job_ids`` the service did not return: never a success or a skip while one is
        unknown; a failure (with ``fail_fast``, or once the other jobs have finished) when one is still unknown
        ``UNKNOWN_JOB_ID_TIMEOUT_S`` after the wait began. A failure of known jobs stands (more jobs cannot undo it),
        its message naming the unknown ids too."""
        waited_s = (now - (self.began_ms if self.began_ms is not None else now)) / 1000
        names = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        if waited_s >= UNKNOWN_JOB_ID_TIMEOUT_S:
            note = (
                f"{len(unknown)} job id(s) of job_ids not found by AWS Batch {waited_s:.0f} s after the wait began "
                f"(each is waited for up to {UNKNOWN_JOB_ID_TIMEOUT_S} s, as a just-submitted job can be missing for a "
                f"moment): {names}. Check the ids; AWS Batch also forgets jobs that finished days ago (retention)."
            )
            if decision.verdict is Verdict.FAILURE:
                return replace(decision, message=f"{decision.message}\n{note}")
            if self.policy.fail_fast or decision.verdict is not Verdict.WAITING:
                return Decision(Verdict.FAILURE, note, decision.jobs, decision.failed, decision.counts)
            return replace(decision, message=f"{decision.message}; {note} The wait fails once the others finish.")
        note = (
            f"{len(unknown)} job id(s) of job_ids not known to AWS Batch yet ({names}), for {waited_s:.0f} s: waited "
            f"for up to {UNKNOWN_JOB_ID_TIMEOUT_S} s from the start of the wait"
        )
        if decision.verdict is Verdict.FAILURE:
            return replace(decision, message=f"{decision.message}\nAlso {note}.")
        if decision.verdict is Verdict.WAITING:
            return replace(decision, message=f"{decision.message}; {note}")
        return Decision(Verdict.WAITING, note, decision.jobs, decision.failed, decision.counts)

    def undescribed_at_verdict(self, decision: Decision, jobs: list[dict[str, Any]]) -> list[str]:
        """Once the verdict is in, the finished jobs still to describe (judged on summaries so far: their details
        may still turn an exit code into a success or a skip, and the records need them)."""
        return self.listing.to_describe(jobs, all_of_them=True) if decision.verdict is not Verdict.WAITING else []

    def progress(self, decision: Decision) -> str:
        """e.g. ``nightly-etl-*: 37 jobs — 20 SUCCEEDED, 2 FAILED, 15 RUNNING (since last poll: 3 new; 1 finished
        (1 RUNNING → FAILED))``: what changed, not only how many jobs are new."""
        counts = ", ".join(f"{n} {status}" for status, n in decision.counts.items()) or "none yet"
        unknown = f"; not known to AWS Batch yet: {', '.join(self.unknown[:5])}" if self.unknown else ""
        if len(self.unknown) > 5:
            unknown += f" and {len(self.unknown) - 5} more"
        return f"{self.query.describe()}: {len(decision.jobs)} jobs — {counts} ({self.changes.describe()}{unknown})"

    def poll(self, hook: BatchJobsHook) -> Decision:
        self.begin()
        jobs = self.listing.collect(hook)
        self.observe(jobs)
        suspects = self.runnable_suspects(jobs)
        if suspects:
            self.runnable.correct(hook.describe_jobs(suspects).jobs)
        decision = self.decide(jobs)
        rest = self.undescribed_at_verdict(decision, jobs)
        if rest:
            self.listing.absorb(hook.describe_jobs(rest).jobs)
            decision = self.decide(jobs)
        return decision

    async def apoll(self, hook: BatchJobsHook, client: Any) -> Decision:
        self.begin()
        return await self.ajudge(await self.listing.acollect(hook, client), hook, client)

    async def ajudge(self, jobs: list[dict[str, Any]], hook: BatchJobsHook, client: Any) -> Decision:
        """The verdict on one poll's jobs (from this wait's listing or a shared one)."""
        self.observe(jobs)
        suspects = self.runnable_suspects(jobs)
        if suspects:
            self.runnable.correct((await hook.adescribe_jobs(client, suspects)).jobs)
        decision = self.decide(jobs)
        if self.undescribed_at_verdict(decision, jobs) and await self.listing.adescribe_all(hook, client, jobs):
            decision = self.decide(jobs)
        return decision


def job_records(jobs: Sequence[JobView], xcom_detail: str) -> list[dict[str, Any]]:
    """One JSON-native record per job; ``full`` adds the redacted detail, ``none`` gives nothing. A stand-in for one
    of several aged-out array children (which one is no longer known) is no job: its record has ``job_id`` None and
    ``one_of_job_ids``, the real ids it is one of."""
    if xcom_detail == "none":
        return []
    out = []
    for job in jobs:
        record = job.to_record()
        candidates = one_of(job)
        if candidates is not None:
            record.update(job_id=None, job_arn=None, one_of_job_ids=candidates)
        if xcom_detail == "full":
            detail = job.redacted_detail()
            record["detail"] = {k: v for k, v in detail.items() if k != "jobId"} if candidates is not None else detail
        out.append(record)
    return out
