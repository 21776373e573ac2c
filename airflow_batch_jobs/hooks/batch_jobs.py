"""BatchJobsHook: ListJobs and DescribeJobs, sync and async, with the AWS connection handling of AwsBaseHook.

The hook does I/O only. What to list and which jobs match is decided by :class:`~airflow_batch_jobs.query.JobQuery`,
so the sync and async paths share every rule and differ only in how they wait for the network. The hook never
sleeps and never loops on errors itself: single calls are retried by botocore's ``standard`` retry mode (unless
the connection configures retries), and a failed listing surfaces to the caller, who decides when to ask again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config

from airflow_batch_jobs import log_redaction
from airflow_batch_jobs.hooks.caller import QuickCaller
from airflow_batch_jobs.hooks.models import SharedModels
from airflow_batch_jobs.query import ALL_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from airflow_batch_jobs.query import JobQuery, ListCall

    # Called with each page's summaries; True ends the listing there (the caller knows the rest already).
    PageStop = Callable[[list[dict[str, Any]]], bool]
    # Finished jobs' summaries by id, from earlier polls.
    Known = Mapping[str, dict[str, Any]]

# The service rejects more ids in one DescribeJobs call.
DESCRIBE_JOBS_MAX_IDS = 100


@dataclass(frozen=True)
class DescribeResult:
    """DescribeJobs answers in the order asked, and the ids the service did not know (yet)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def unique_ids(job_ids: Iterable[str] | str) -> list[str]:
    """Ids in first-seen order, each once; a string is one id (not its characters)."""
    return [job_ids] if isinstance(job_ids, str) else list(dict.fromkeys(job_ids))


def id_chunks(job_ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(job_ids), DESCRIBE_JOBS_MAX_IDS):
        yield list(job_ids[start : start + DESCRIBE_JOBS_MAX_IDS])


def order_described(job_ids: Sequence[str], answers: Iterable[dict[str, Any]]) -> DescribeResult:
    """Put DescribeJobs answers back in request order; ids the service left out are reported as missing."""
    by_id = {job["jobId"]: job for job in answers}
    return DescribeResult(
        jobs=[by_id[i] for i in job_ids if i in by_id], missing=[i for i in job_ids if i not in by_id]
    )


def reuse_known(summaries: list[dict[str, Any]], known: Known | None) -> list[dict[str, Any]]:
    """A page with finished jobs already known replaced by the summaries kept from earlier polls (final, so the
    same). The page's own copies then die with the page instead of piling up in the collector's oldest
    generation: with 10,000 finished jobs that made a full garbage collection every few polls."""
    if not known:
        return summaries
    return [known.get(job["jobId"], job) for job in summaries]


def merge_listings(listings: Iterable[Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Join several listings of the same jobs (one per status) into one, each job once.

    The listings are taken in lifecycle order and the later call is the newer sighting, so it wins whichever way
    the job moved: forward (seen twice: its later status) or back to RUNNABLE on a retry (seen RUNNING, then
    missed by the RUNNABLE listing already read: still active, never counted finished). Only a terminal listing
    makes a job finished, and those come last. A job missed altogether is the caller's to detect (the watch counts
    children against their parent's size). First-seen order is kept.
    """
    merged: dict[str, dict[str, Any]] = {}
    for listing in listings:
        for job in listing:
            merged[job["jobId"]] = job
    return list(merged.values())


def select(query: JobQuery, listings: Iterable[Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The jobs of ``query`` among its listings' results."""
    return [job for job in merge_listings(listings) if query.matches(job)]


class BatchJobsHook(QuickCaller, SharedModels, AwsBaseHook):
    """Interact with AWS Batch ListJobs / DescribeJobs through an Airflow ``aws`` connection. Its clients' models are
    parsed once per process, an async client's in a thread (:class:`~airflow_batch_jobs.hooks.models.SharedModels`).

    :param aws_conn_id: the Airflow connection (``endpoint_url`` in its extra reaches a local emulator).
    :param region_name: overrides the connection's region.
    :param verify: whether to verify SSL certificates, or a CA bundle path.
    :param config: a botocore ``Config`` or its dict; without retry settings, botocore's ``standard`` retry
        mode is used (throttling and 5xx retried with jittered backoff). This per-call backoff is the only one: a poll
        that failed anyway is asked again at the poll interval, by the sensor or the trigger, never at a stretched one.
        ``adaptive`` (client-side rate limiting) is not the default: botocore calls it experimental, and where the
        throttling does not depend on this client's rate it slows every call (the triggerer shares one client per
        connection, so every wait on it); set it in ``config`` or the connection where it fits.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "batch"
        super().__init__(*args, **kwargs)
        log_redaction.install()

    @property
    def config(self) -> Config:
        config = super().config
        if getattr(config, "retries", None) is None:
            config = config.merge(Config(retries={"mode": "standard"}))
        return config

    @property
    def client(self) -> Any:
        """The cached boto3 Batch client (untyped: its answers are handled as plain dicts)."""
        return self.conn

    # -- sync ---------------------------------------------------------------------------------------------
    def list_jobs(
        self, call: ListCall, stop: PageStop | None = None, known: Known | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every JobSummary of one listing, through botocore's paginator, up to the page ``stop`` accepts."""
        paginator = self.client.get_paginator("list_jobs")
        for page in paginator.paginate(**call.params, PaginationConfig={"PageSize": call.page_size}):
            summaries = reuse_known(page.get("jobSummaryList", []), known)
            yield from summaries
            if stop is not None and stop(summaries):
                return

    def describe_jobs(self, job_ids: Iterable[str] | str) -> DescribeResult:
        """JobDetails for ``job_ids`` (one id, or many), at most 100 per call, duplicates dropped, in request order."""
        ids = unique_ids(job_ids)
        answers: list[dict[str, Any]] = []
        for chunk in id_chunks(ids):
            answers.extend(self.client.describe_jobs(jobs=chunk)["jobs"])
        return order_described(ids, answers)

    def find_jobs(
        self,
        query: JobQuery,
        *,
        statuses: Sequence[str] = ALL_STATUSES,
        stop: PageStop | None = None,
        known: Known | None = None,
    ) -> list[dict[str, Any]]:
        """The jobs matching ``query``: summaries from ListJobs, or details for an explicit ``job_ids`` query.

        ``statuses`` narrows a status-by-status listing (array children, MNP nodes); ``stop`` ends a listing early;
        ``known`` holds finished jobs' summaries from earlier polls, returned in place of each page's copy.
        """
        if query.job_ids:
            return [job for job in self.describe_jobs(query.job_ids).jobs if query.matches(job)]
        return select(query, (list(self.list_jobs(call, stop, known)) for call in query.list_calls(statuses)))

    # -- async (the trigger) ------------------------------------------------------------------------------
    async def alist_jobs(
        self, client: Any, call: ListCall, stop: PageStop | None = None, known: Known | None = None
    ) -> list[dict[str, Any]]:
        paginator = client.get_paginator("list_jobs")
        jobs: list[dict[str, Any]] = []
        async for page in paginator.paginate(**call.params, PaginationConfig={"PageSize": call.page_size}):
            summaries = reuse_known(page.get("jobSummaryList", []), known)
            jobs.extend(summaries)
            if stop is not None and stop(summaries):
                break
        return jobs

    async def adescribe_jobs(self, client: Any, job_ids: Iterable[str] | str) -> DescribeResult:
        ids = unique_ids(job_ids)
        answers: list[dict[str, Any]] = []
        for chunk in id_chunks(ids):
            answers.extend((await client.describe_jobs(jobs=chunk))["jobs"])
        return order_described(ids, answers)

    async def afind_jobs(
        self,
        client: Any,
        query: JobQuery,
        *,
        statuses: Sequence[str] = ALL_STATUSES,
        stop: PageStop | None = None,
        known: Known | None = None,
    ) -> list[dict[str, Any]]:
        if query.job_ids:
            return [job for job in (await self.adescribe_jobs(client, query.job_ids)).jobs if query.matches(job)]
        calls = query.list_calls(statuses)
        return select(query, [await self.alist_jobs(client, call, stop, known) for call in calls])
