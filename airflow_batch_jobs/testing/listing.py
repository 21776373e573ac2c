"""ListJobs: one selector, at most one filter, the RUNNING-only default, orders and opaque page tokens.

Orders: newest ``createdAt`` first; with ``grouped_listing`` a JOB_NAME listing is grouped by job name and
job-definition revision and a JOB_DEFINITION listing by definition name (groups in ascending name order, newest
first within a group: the grouping is documented, the order of groups is our reading). A token names the last
job's position in the order, not an offset, so jobs created while a listing is paged never shift it.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.testing.errors import BatchServiceError
from airflow_batch_jobs.testing.rules import STATUSES, check_filter, job_definition_matches, job_name_matches

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from airflow_batch_jobs.testing.lifecycle import Job

MAX_PAGE_WITH_FILTER = 100
MAX_PAGE_WITH_STATUS = 1000
SELECTORS = ("jobQueue", "arrayJobId", "multiNodeJobId")

SortKey = tuple[Any, ...]


def newest_first_key(job: Job, created_at: int) -> SortKey:
    return (-created_at, -job.seq)


def grouped_key(flt_name: str) -> Callable[[Job, int], SortKey]:
    if flt_name == "JOB_NAME":
        return lambda job, created: (job.name, job.definition.name, -job.definition.revision, -created, -job.seq)
    return lambda job, created: (job.definition.name, -created, -job.seq)


def matches_filter(flt: Mapping[str, Any], job: Job, created_at: int) -> bool:
    name, value = flt["name"], flt["values"][0]
    if name == "JOB_NAME":
        return job_name_matches(value, job.name)
    if name == "JOB_DEFINITION":
        definition = job.definition
        return job_definition_matches(value, definition.name, definition.revision, definition.arn)
    if name == "BEFORE_CREATED_AT":
        return created_at < int(value)
    if name == "AFTER_CREATED_AT":
        return created_at > int(value)
    return job.share_identifier == value


class PageToken:
    """An opaque ``nextToken``: the last job's sort key, bound to the request it came from."""

    @staticmethod
    def fingerprint(req: Mapping[str, Any]) -> str:
        kept = {k: v for k, v in req.items() if k not in ("nextToken", "maxResults")}
        return hashlib.sha1(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]

    @staticmethod
    def encode(key: SortKey, fingerprint: str) -> str:
        return base64.urlsafe_b64encode(json.dumps([list(key), fingerprint]).encode()).decode()

    @staticmethod
    def decode(token: str, fingerprint: str) -> SortKey:
        try:
            key, seen = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, TypeError) as err:
            raise BatchServiceError("The nextToken is invalid.") from err
        if seen != fingerprint:
            raise BatchServiceError("The nextToken does not belong to this request.")
        return tuple(key)


class ListRequest:
    """A checked ListJobs request: which selector, which filter, which status, how many."""

    def __init__(self, req: Mapping[str, Any]) -> None:
        selectors = [k for k in SELECTORS if req.get(k)]
        if len(selectors) != 1:
            raise BatchServiceError("Exactly one of jobQueue, arrayJobId or multiNodeJobId must be specified.")
        self.selector = selectors[0]
        self.target = str(req[self.selector])
        filters = req.get("filters") or []
        if len(filters) > 1:
            raise BatchServiceError("Only one filter key-value pair can be specified.")
        self.filter: Mapping[str, Any] | None = filters[0] if filters else None
        if self.filter is not None:
            check_filter(self.filter.get("name"), list(self.filter.get("values") or []))
        status = req.get("jobStatus")
        if status is not None and status not in STATUSES:
            raise BatchServiceError(f"Invalid jobStatus {status}.")
        limit = MAX_PAGE_WITH_FILTER if self.filter else MAX_PAGE_WITH_STATUS
        self.max_results = int(req.get("maxResults", limit))
        if not 1 <= self.max_results <= limit:
            raise BatchServiceError(f"maxResults must be between 1 and {limit}.")
        if self.selector != "jobQueue":
            self.filter = None  # filters do not apply to array children or MNP nodes
        # jobStatus is ignored with a filter (SHARE_IDENTIFIER excepted); neither means RUNNING only
        if self.filter is None:
            self.status: str | None = status or "RUNNING"
        elif self.filter["name"] == "SHARE_IDENTIFIER":
            self.status = status
        else:
            self.status = None
        self.token = req.get("nextToken")
        self.fingerprint = PageToken.fingerprint(req)


class OrderedJobs:
    """Jobs in a listing order, from just after a token's position; sorted orders are cached per job count."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], tuple[int, list[SortKey], list[Job]]] = {}

    def after(
        self,
        jobs: Sequence[Job],
        key: Callable[[Job, int], SortKey],
        order: str,
        created_at: Callable[[Job], int | None],
        token_key: SortKey | None,
    ) -> Iterator[tuple[SortKey, Job]]:
        cache_id = (id(jobs), order)
        cached = self._cache.get(cache_id)
        if cached is None or cached[0] != len(jobs) or order == "children":
            pairs = sorted(
                ((key(job, created), job) for job in jobs if (created := created_at(job)) is not None),
                key=lambda pair: pair[0],
            )
            cached = (len(jobs), [p[0] for p in pairs], [p[1] for p in pairs])
            self._cache[cache_id] = cached
        _, keys, ordered = cached
        start = 0 if token_key is None else bisect.bisect_right(keys, token_key)
        return ((keys[i], ordered[i]) for i in range(start, len(ordered)))
