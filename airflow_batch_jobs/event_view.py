"""What a deferred wait knows between two listings when it reads AWS Batch job state-change events
(``events_queue_url``): the last listing, each job moved on to the newest state its events show, and the jobs only
events have shown so far (:class:`EventView`); and the verdict that view predicts.

The prediction only decides *when* to list, never what the verdict is. A job still SUBMITTED has sent no event (none
is sent at submission), events get lost, come late, twice or out of order, and another triggerer reading the same
queue takes some of them: a listing, judged exactly as polling judges it, gives the verdict. The view stays cheap
for a wait on thousands of jobs: an event costs a few dictionary operations, and the policy judges the whole view only
when its counts say a verdict is possible.

Also the check of the ``events_queue_url`` argument (:func:`check_events_queue_url`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_batch_jobs.job_events import JobEvent, is_newer
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import Verdict, judge
from airflow_batch_jobs.query import TERMINAL_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from airflow_batch_jobs.policy import Decision, Policy
    from airflow_batch_jobs.query import JobQuery

# With events, a wait's own polls (the safety net for lost events) come at this many poke_intervals; while the
# listings agree with the events that keep coming, the factor doubles after each, up to SAFETY_NET_MAX_FACTOR.
SAFETY_NET_FACTOR = 10
SAFETY_NET_MAX_FACTOR = 30

# After a confirming listing disagreed with the events (the service lists a job a moment late, a job was still
# SUBMITTED), the next one comes after this pause, doubled each time up to poke_interval, unless a new event comes.
CONFIRM_BACKOFF_S = 1.0

ACTIVE = "active"

# arn:<partition>:sqs:<region>:<account>:<name>
_QUEUE_ARN = re.compile(r"^arn:(?P<partition>[a-z-]+):sqs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<name>[^:/]+)$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_FIFO_NAME = re.compile(r"^[A-Za-z0-9_-]{1,75}\.fifo$")


def check_events_queue_url(value: Any) -> str | None:
    """``events_queue_url`` as the trigger takes it (None or ``""``: no events); raises ValueError naming what to give
    instead. An SQS queue URL is ``<scheme>://<host>/<12-digit account>/<queue name>``: on AWS
    ``https://sqs.<region>.amazonaws.com/<account>/<name>``; any host for a local endpoint (moto, LocalStack)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"events_queue_url={value!r}: give the SQS queue's URL as a string, or None for no events.")
    text = value.strip()
    arn = _QUEUE_ARN.match(text)
    if arn is not None:
        domain = "amazonaws.com.cn" if arn["partition"] == "aws-cn" else "amazonaws.com"
        raise ValueError(
            f"events_queue_url={value!r} is the queue's ARN; give its URL, e.g. "
            f"'https://sqs.{arn['region']}.{domain}/{arn['account']}/{arn['name']}'."
        )
    parts = urlsplit(text)
    segments = parts.path.strip("/").split("/") if parts.path else []
    well_formed = (
        parts.scheme in ("https", "http")
        and bool(parts.hostname)
        and len(segments) == 2
        and re.fullmatch(r"\d{12}", segments[0]) is not None
        and (_QUEUE_NAME.match(segments[1]) is not None or _FIFO_NAME.match(segments[1]) is not None)
        and not parts.query
        and not parts.fragment
    )
    if not well_formed:
        hint = (
            f" ('aws sqs get-queue-url --queue-name {text}' prints it)" if _QUEUE_NAME.match(text) is not None else ""
        )
        raise ValueError(
            f"events_queue_url={value!r} is not an SQS queue URL: give the URL of the queue the EventBridge rule "
            f"sends Batch job state-change events to, e.g. 'https://sqs.us-east-1.amazonaws.com/123456789012/"
            f"batch-job-events'{hint}."
        )
    return text


def _listed_as_event(job: Mapping[str, Any]) -> JobEvent:
    """A listed job, to compare with its events (:func:`~airflow_batch_jobs.job_events.is_newer`). A ListJobs summary
    carries no attempts: counted 0, so an event of a later attempt is taken as newer, and a terminal status is final
    either way."""
    attempts = job.get("attempts")
    return JobEvent(
        event_id="",
        job_id=str(job["jobId"]),
        status=str(job.get("status", "")),
        attempts=len(attempts) if isinstance(attempts, list) else 0,
        time_ms=None,
        job=dict(job),
    )


def _size(job: Mapping[str, Any]) -> int | None:
    """How many members a job stands for: an array parent's size, a multi-node job's (or node's) ``numNodes``."""
    for value in ((job.get("arrayProperties") or {}).get("size"), (job.get("nodeProperties") or {}).get("numNodes")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class _Group:
    """A job and the members the verdict counts in its place (array children, multi-node nodes), as the listing
    expands them: the members once any is known, else the job itself. A plain job is a group without members."""

    __slots__ = ("counts", "members", "own", "size")

    def __init__(self) -> None:
        self.own: dict[str, Any] | None = None
        self.members: dict[str, dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()  # the members' classes
        self.size: int | None = None

    @property
    def created(self) -> int:
        if self.own is not None:
            return int(self.own.get("createdAt") or 0)
        return max((int(job.get("createdAt") or 0) for job in self.members.values()), default=0)

    def pending(self) -> int:
        """Members not known yet (neither listed nor seen in an event): active, as far as the view can tell."""
        return max(0, (self.size or 0) - len(self.members)) if self.members else 0

    def contribution(self, classes: Mapping[str, str]) -> Counter[str]:
        if self.members:
            out = Counter(self.counts)
            pending = self.pending()
            out["jobs"] += len(self.members) + pending
            out[ACTIVE] += pending
            return out
        if self.own is not None:
            return Counter({"jobs": 1, classes[str(self.own["jobId"])]: 1})
        return Counter()

    def jobs(self) -> Iterator[dict[str, Any]]:
        if self.members:
            yield from self.members.values()
        elif self.own is not None:
            yield self.own


class EventView:
    """One wait's jobs as the last listing showed them, moved on by the events that came since.

    :meth:`rebase` after each listing, :meth:`add` each event that matches the wait, :meth:`predict` for whether a
    listing now could give a verdict. ``view_of`` turns a job dict into the view the policy judges (the shared
    listing's, which prefers a finished job's DescribeJobs detail). Pure: the JobWatch and its listing are only read.
    """

    def __init__(
        self, query: JobQuery, policy: Policy, view_of: Callable[[Mapping[str, Any]], JobView] = JobView
    ) -> None:
        self.query = query
        self.policy = policy
        self.view_of = view_of
        self.based = False  # a listing has been seen
        self.listed: dict[str, dict[str, Any]] = {}
        self.events: dict[str, JobEvent] = {}  # the newest event of each job
        self.unknown: set[str] = set()  # ids of job_ids neither the listing nor an event has shown
        self.parent_size: int | None = None  # the array_job_id / multi_node_job_id parent's, as the listing knows it
        self._groups: dict[str, _Group] = {}
        self._classes: dict[str, str] = {}  # job id -> ACTIVE or its outcome under the policy
        self._totals: Counter[str] = Counter()  # over the groups the verdict counts
        self._best: str | None = None  # match='latest': the group judged
        self._selector = query.array_job_id or query.multi_node_job_id

    # -- what the view is built from -----------------------------------------------------------------------------
    def rebase(
        self, jobs: Sequence[dict[str, Any]], unknown_ids: Iterable[str] = (), parent_size: int | None = None
    ) -> int:
        """A listing came (as the wait judged it): the view is its jobs, each moved on by a newer event, and the jobs
        only events have shown. Returns how many jobs the listing showed further on than the view knew (0 for the
        first listing): changes whose events were lost, are late, or went to another reader of the queue."""
        untold = self._untold(jobs) if self.based else 0
        self.based = True
        self.listed = {str(job["jobId"]): job for job in jobs}
        self.unknown = {job_id for job_id in unknown_ids if job_id not in self.events}
        self.parent_size = parent_size
        self._groups, self._classes, self._totals, self._best = {}, {}, Counter(), None
        for job_id, job in self.listed.items():
            event = self.events.get(job_id)
            self._put(event.job if event is not None and is_newer(event, _listed_as_event(job)) else job)
        for job_id, event in self.events.items():
            if job_id not in self.listed and self._admits(event.job):
                self._put(event.job)
        return untold

    def _untold(self, jobs: Sequence[dict[str, Any]]) -> int:
        """Listed jobs past SUBMITTED (which sends no event) that neither an event nor the last listing showed at
        their listed state or later. A ListJobs summary carries no attempts, so a lost event of a retried attempt can
        go unnoticed: the count detects events going missing, not each one."""
        untold = 0
        for job in jobs:
            if job.get("status") == "SUBMITTED":
                continue
            job_id = str(job["jobId"])
            listed, known = _listed_as_event(job), self.events.get(job_id)
            before = self.listed.get(job_id)
            if known is None or is_newer(listed, known):
                untold += before is None or is_newer(listed, _listed_as_event(before))
        return untold

    def add(self, event: JobEvent) -> bool:
        """An event for this wait (the caller matched it to the query); True when the view changed (not a duplicate,
        not older than what the view knows of the job)."""
        job_id = event.job_id
        known = self.events.get(job_id)
        if known is not None and not is_newer(event, known):
            return False
        self.events[job_id] = event
        listed = self.listed.get(job_id)
        if listed is not None and not is_newer(event, _listed_as_event(listed)):
            return False
        if listed is None and not self._admits(event.job):
            return False
        self.unknown.discard(job_id)
        newly_placed = self._children_wait_for_parents and job_id not in self._groups
        self._put(event.job)
        if newly_placed:  # its children's events that came first count now (see _admits)
            prefix = f"{job_id}:"
            for child_id, child in list(self.events.items()):
                if child_id.startswith(prefix) and child_id not in self.listed and self.status(child_id) is None:
                    self._put(child.job)
        return True

    @property
    def _children_wait_for_parents(self) -> bool:
        return bool(self.query.job_queue) and self.query.has_created_window and self.policy.include_array_children

    def _admits(self, job: Mapping[str, Any]) -> bool:
        """An event-only job the listing would count: not an array child or node where the listing lists none."""
        job_id = str(job["jobId"])
        child, node = _is_child(job_id), _is_node(job_id)
        if self.query.array_job_id:
            return job_id == self.query.array_job_id or (child and job_id.startswith(f"{self.query.array_job_id}:"))
        if self.query.multi_node_job_id:
            sel = self.query.multi_node_job_id
            return job_id == sel or (node and job_id.startswith(f"{sel}#"))
        if self.query.job_ids and job_id in self.query.job_ids:
            return True
        if node:
            return False
        if child and self._children_wait_for_parents:
            # a child's createdAt is when its parent started: it counts once the parent is in the view (listed, or
            # shown by its own events, which the query's created window was applied to)
            parent = self._groups.get(job_id.rpartition(":")[0])
            if parent is None or parent.own is None:
                return False
        return not child or self.policy.include_array_children

    def _group_of(self, job_id: str) -> str:
        """The group a job counts in: its parent's, where the listing counts members in the parent's place."""
        if self.policy.match == "latest" and self._selector:
            return job_id  # 'latest' with a selector judges the newest child or node alone
        if self.query.multi_node_job_id:
            parent, sep, _ = job_id.partition("#")
            return parent if sep and parent == self.query.multi_node_job_id else job_id
        if self.query.array_job_id or self.policy.include_array_children:
            parent, sep, _ = job_id.rpartition(":")
            if sep and parent and (not self.query.array_job_id or parent == self.query.array_job_id):
                return parent
        return job_id

    def _put(self, job: dict[str, Any]) -> None:
        job_id = str(job["jobId"])
        key = self._group_of(job_id)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        before = group.contribution(self._classes)
        old_class = self._classes.get(job_id)
        new_class = self._class(job)
        self._classes[job_id] = new_class
        size = _size(job)
        if key == job_id:
            group.own = job
        else:
            group.members[job_id] = job
            if old_class is not None:
                group.counts[old_class] -= 1
            group.counts[new_class] += 1
            if not _is_node(job_id):
                size = None  # a child's arrayProperties hold its index, not the array's size
        if key == self._selector and self.parent_size:
            size = max(size or 0, self.parent_size)
        if size:
            group.size = max(group.size or 0, size)
        self._counted(key, group, before)

    def _counted(self, key: str, group: _Group, before: Counter[str]) -> None:
        if self.policy.match != "latest":
            self._totals.update(group.contribution(self._classes))
            self._totals.subtract(before)
            return
        best = self._groups.get(self._best) if self._best is not None else None
        if best is None or (group.created, key) > (best.created, self._best or ""):
            self._best, best = key, group
        self._totals = best.contribution(self._classes)

    def _class(self, job: Mapping[str, Any]) -> str:
        if job.get("status") not in TERMINAL_STATUSES:
            return ACTIVE
        return self.policy.outcome(self.view_of(job))

    # -- what the view says -----------------------------------------------------------------------------------------
    def jobs(self) -> list[dict[str, Any]]:
        """The jobs the verdict would count, as the view knows them."""
        if self.policy.match == "latest":
            return list(self._groups[self._best].jobs()) if self._best is not None else []
        return [job for group in self._groups.values() for job in group.jobs()]

    def status(self, job_id: str) -> str | None:
        """A job's status in the view (None: not in it)."""
        group = self._groups.get(self._group_of(job_id))
        if group is None:
            return None
        job = group.own if group.own is not None and str(group.own["jobId"]) == job_id else group.members.get(job_id)
        return None if job is None else str(job.get("status"))

    @property
    def counts(self) -> Mapping[str, int]:
        """Jobs in the view ('jobs'), active ones (members not known yet counted active) and each outcome."""
        return +self._totals

    def possible(self) -> bool:
        """Whether the counts allow a verdict at all (cheap: checked on every event). Before any listing, the jobs
        that sent no event since (those that had finished before the wait deferred) are not in the view: ``min_jobs``
        cannot be counted, and every job seen having finished is reason enough to list."""
        totals, policy = self._totals, self.policy
        if policy.fail_fast and totals["failure"] > policy.max_failed_jobs:
            return True
        return totals[ACTIVE] <= 0 and totals["jobs"] >= (policy.min_jobs if self.based else 1)

    def predict(
        self,
        *,
        now_ms: int,
        runnable_since: Mapping[str, int] | None = None,
        account_for_unknown: Callable[[Decision, Sequence[str], int], Decision] | None = None,
    ) -> Verdict:
        """The verdict ``policy.judge`` gives on the view (and on the ids of ``job_ids`` still unknown, through
        ``account_for_unknown``: the wait's own rule); WAITING without judging when the counts allow none."""
        if not self.possible():
            return Verdict.WAITING
        policy = self.policy if self.based else replace(self.policy, min_jobs=0)  # see possible()
        decision = judge(
            [self.view_of(job) for job in self.jobs()], policy, now_ms=now_ms, runnable_since=runnable_since
        )
        if self.unknown and account_for_unknown is not None:
            decision = account_for_unknown(decision, sorted(self.unknown), now_ms)
        elif self.unknown and decision.verdict in (Verdict.SUCCESS, Verdict.SKIP):
            return Verdict.WAITING
        if decision.verdict in (Verdict.SUCCESS, Verdict.SKIP) and any(g.pending() for g in self._counted_groups()):
            return Verdict.WAITING
        return decision.verdict

    def _counted_groups(self) -> list[_Group]:
        if self.policy.match == "latest":
            return [self._groups[self._best]] if self._best is not None else []
        return list(self._groups.values())


def _is_child(job_id: str) -> bool:
    """``<parent>:<index>``: an array child (also a stand-in for aged-out children, ``<parent>:aged-out-...``)."""
    parent, sep, tail = job_id.rpartition(":")
    return bool(sep and parent and (tail.isdigit() or tail.startswith("aged-out-")))


def _is_node(job_id: str) -> bool:
    """``<parent>#<node index>``: a node of a multi-node parallel job."""
    parent, sep, tail = job_id.rpartition("#")
    return bool(sep and parent and tail.isdigit())
