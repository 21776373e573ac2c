"""Which Batch jobs a task is about, and how to list them with as few ListJobs calls as the service allows.

The service takes one filter per ListJobs call, ignores ``jobStatus`` when a filter is present and returns only
RUNNING jobs when neither is given. :class:`JobQuery` therefore pushes exactly one filter to the service and
re-checks every condition locally (the pushed one too: backends such as moto ignore most filters).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

# The unit of BEFORE_CREATED_AT / AFTER_CREATED_AT filter values. The current service model says epoch
# milliseconds (the 2021 announcement page said seconds). Everything that builds a created-at filter value goes
# through :func:`created_at_filter_value`, so this is the one place to change.
CREATED_AT_FILTER_UNIT_MS = 1

# Statuses in lifecycle order. Listing children one status at a time in this order, the later call is always the
# newer sighting: a job that moves forward between two calls is seen twice (and the later sighting wins), but one
# that a retry sends back to RUNNABLE can be missed. Such listings are counted against the parent's size (array) or
# numNodes (multi-node) before any verdict (see watch.py).
ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED")
ALL_STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES

# Largest legal page sizes: 100 with a filter, 1000 with jobStatus (or nothing).
MAX_PAGE_SIZE_WITH_FILTER = 100
MAX_PAGE_SIZE_WITH_STATUS = 1000

# \Z, not $: $ also matches before a trailing newline, and 'etl-*\n' would pass, then match no job
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}\*?\Z")
_DEFINITION_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}\*?\Z")
_DEFINITION_ARN_RE = re.compile(
    r"^arn:(?P<partition>[a-z-]+):batch:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"job-definition/(?P<name>[A-Za-z0-9_-]{1,128}):(?P<revision>\d+)\Z"
)
_ARN_NAME_RE = re.compile(r"job-definition/(?P<name>[^:/]+)(?::(?P<revision>\d+))?\Z")

SELECTOR_ARGUMENTS = ("job_queue", "array_job_id", "multi_node_job_id", "job_ids")


class InvalidQueryError(ValueError):
    """An argument that cannot describe a set of Batch jobs. The message names the argument and the fix."""


def created_at_filter_value(epoch_ms: int) -> str:
    """The string a BEFORE/AFTER_CREATED_AT filter carries for a moment given in epoch milliseconds."""
    return str(epoch_ms // CREATED_AT_FILTER_UNIT_MS)


def to_epoch_ms(value: object, argument: str) -> int:
    """Accept a datetime (naive means UTC), an ISO-8601 string or epoch milliseconds; return epoch ms.

    A moment between two milliseconds is rounded up: jobs are created on whole milliseconds, so ``createdAt >= t``
    and ``createdAt < t`` hold exactly when they hold against ``ceil(t)``, and both ends of the half-open window
    stay exact. Datetimes are converted with integer arithmetic (float seconds lose a millisecond after 2038).
    """
    if isinstance(value, bool):
        raise InvalidQueryError(f"{argument}={value!r}: expected a datetime, ISO-8601 string or epoch ms.")
    if isinstance(value, int | float):
        if value < 10**11:
            raise InvalidQueryError(
                f"{argument}={value!r} looks like epoch seconds; pass epoch milliseconds "
                f"({int(value * 1000)}) or a datetime."
            )
        return math.ceil(value)
    if isinstance(value, dt.datetime):
        return _ceil_epoch_ms(value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC))
    if isinstance(value, dt.date):
        return to_epoch_ms(dt.datetime(value.year, value.month, value.day), argument)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return to_epoch_ms(int(text), argument)
        try:
            parsed = pendulum.parse(text, tz="UTC")
        except (ValueError, pendulum.parsing.exceptions.ParserError) as err:
            raise InvalidQueryError(
                f"{argument}={value!r} is not a date: use ISO-8601 (e.g. '2026-11-21T02:00:00Z'), "
                "a datetime, or epoch milliseconds."
            ) from err
        if not isinstance(parsed, dt.datetime):
            raise InvalidQueryError(f"{argument}={value!r} is not a point in time; give a date and time.")
        return _ceil_epoch_ms(parsed)
    raise InvalidQueryError(
        f"{argument}={value!r} (a {type(value).__name__}): expected a datetime, ISO-8601 string or epoch ms."
    )


def _ceil_epoch_ms(aware: dt.datetime) -> int:
    """An aware datetime as epoch ms, rounded up, in integers (whole seconds by timegm, then microseconds)."""
    utc = aware.astimezone(dt.UTC)
    epoch_us = calendar.timegm(utc.timetuple()) * 1_000_000 + utc.microsecond
    return -(-epoch_us // 1000)


def name_matches(pattern: str, job_name: str) -> bool:
    """JOB_NAME semantics: case-insensitive; a trailing ``*`` makes it a prefix match."""
    if pattern.endswith("*"):
        return job_name.lower().startswith(pattern[:-1].lower())
    return job_name.lower() == pattern.lower()


def definition_matches(pattern: str, job_definition: str) -> bool:
    """JOB_DEFINITION semantics: case-sensitive; a name matches every revision, ``name*`` prefixes names, and
    a full ARN with revision matches that revision only. ``job_definition`` is what a job carries (an ARN)."""
    if pattern.startswith("arn:"):
        return job_definition == pattern
    found = _ARN_NAME_RE.search(job_definition)
    name = found.group("name") if found else job_definition.split(":")[0]
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


@dataclass(frozen=True)
class ListCall:
    """The arguments of one paginated ListJobs listing (botocore names) and its page size."""

    params: dict[str, Any]
    page_size: int


@dataclass(frozen=True)
class JobQuery:
    """A selector (queue, array parent, MNP parent or explicit ids) plus filters, validated and normalized.

    Build it with :meth:`build`, which checks every argument and says what to change. Created-at bounds are
    epoch milliseconds, half-open: ``created_after <= createdAt < created_before``.
    """

    job_queue: str | None = None
    array_job_id: str | None = None
    multi_node_job_id: str | None = None
    job_ids: tuple[str, ...] = ()
    job_name: str | None = None
    job_definition: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    share_identifier: str | None = None

    @classmethod
    def build(
        cls,
        *,
        job_queue: str | None = None,
        array_job_id: str | None = None,
        multi_node_job_id: str | None = None,
        job_ids: Iterable[str] | str | None = None,
        job_name: str | None = None,
        job_definition: str | None = None,
        created_after: object = None,
        created_before: object = None,
        share_identifier: str | None = None,
    ) -> JobQuery:
        ids = _normalize_ids(job_ids)
        given = [
            name
            for name, value in (
                ("job_queue", job_queue),
                ("array_job_id", array_job_id),
                ("multi_node_job_id", multi_node_job_id),
                ("job_ids", ids),
            )
            if value
        ]
        if len(given) != 1:
            what = "none was given" if not given else f"got {', '.join(given)}"
            raise InvalidQueryError(
                f"Give exactly one of job_queue, array_job_id, multi_node_job_id or job_ids ({what})."
            )
        for argument, value in (
            ("job_queue", job_queue),
            ("array_job_id", array_job_id),
            ("multi_node_job_id", multi_node_job_id),
            ("share_identifier", share_identifier),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidQueryError(f"{argument}={value!r}: expected a non-empty string.")
        if job_name is not None:
            _check_name(job_name)
        if job_definition is not None:
            _check_definition(job_definition)
        after = to_epoch_ms(created_after, "created_after") if created_after not in (None, "") else None
        before = to_epoch_ms(created_before, "created_before") if created_before not in (None, "") else None
        if after is not None and before is not None and after >= before:
            raise InvalidQueryError(
                f"created_after ({_iso(after)}) must be earlier than created_before ({_iso(before)})."
            )
        return cls(
            job_queue=job_queue,
            array_job_id=array_job_id,
            multi_node_job_id=multi_node_job_id,
            job_ids=ids,
            job_name=job_name,
            job_definition=job_definition,
            created_after=after,
            created_before=before,
            share_identifier=share_identifier,
        )

    # -- serialization (trigger kwargs) -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["job_ids"] = list(self.job_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobQuery:
        return cls.build(**data)

    # -- planning -----------------------------------------------------------------------------------------
    @property
    def selector(self) -> tuple[str, str]:
        """The selector argument as ListJobs names it."""
        if self.job_queue:
            return "jobQueue", self.job_queue
        if self.array_job_id:
            return "arrayJobId", self.array_job_id
        if self.multi_node_job_id:
            return "multiNodeJobId", self.multi_node_job_id
        raise InvalidQueryError("job_ids queries are answered by DescribeJobs, not ListJobs.")

    @property
    def has_created_window(self) -> bool:
        """``created_after`` or ``created_before`` is set (an array child's own createdAt cannot be held to it)."""
        return self.created_after is not None or self.created_before is not None

    @property
    def lists_children(self) -> bool:
        """Array children and MNP nodes: filters do not apply, so the listing goes status by status."""
        return bool(self.array_job_id or self.multi_node_job_id)

    def server_filter(self) -> dict[str, Any]:
        """The one filter pushed to the service for a queue listing.

        Order of choice: JOB_NAME (usually the most selective, and the one filter moto honours), then
        JOB_DEFINITION, then BEFORE_CREATED_AT. A lower bound (AFTER_CREATED_AT) is never pushed with the
        user's value: sent in the wrong unit it would be 1000x too large and silently hide every job, whereas
        an upper bound in the wrong unit only lets more jobs through for the local check. With no other
        filter, AFTER_CREATED_AT=0 is pushed: it is true in any unit and makes the service return every status
        in one consistent listing instead of its RUNNING-only default. SHARE_IDENTIFIER is checked locally,
        since pushing it would bring back the RUNNING-only default.
        """
        if self.job_name:
            return {"name": "JOB_NAME", "values": [self.job_name]}
        if self.job_definition:
            return {"name": "JOB_DEFINITION", "values": [self.job_definition]}
        if self.created_before is not None:
            return {"name": "BEFORE_CREATED_AT", "values": [created_at_filter_value(self.created_before)]}
        return {"name": "AFTER_CREATED_AT", "values": [created_at_filter_value(0)]}

    @property
    def newest_first(self) -> bool:
        """Whether the service returns this listing newest ``createdAt`` first, so paging can stop at a point in
        time: true with a created-at filter (JOB_NAME results are grouped by name instead, and the service says
        nothing of JOB_DEFINITION's order)."""
        if self.job_ids or self.lists_children:
            return False
        return self.server_filter()["name"] in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT")

    def list_calls(self, statuses: Sequence[str] = ALL_STATUSES) -> list[ListCall]:
        """The paginated ListJobs listings that together return every candidate job in every status (children
        and nodes: in ``statuses`` only, listed in lifecycle order)."""
        key, value = self.selector
        if self.lists_children:
            return [
                ListCall({key: value, "jobStatus": status}, MAX_PAGE_SIZE_WITH_STATUS)
                for status in ALL_STATUSES
                if status in statuses
            ]
        return [ListCall({key: value, "filters": [self.server_filter()]}, MAX_PAGE_SIZE_WITH_FILTER)]

    # -- matching -----------------------------------------------------------------------------------------
    def matches(self, job: Mapping[str, Any]) -> bool:
        """Whether a JobSummary or JobDetail dict satisfies every filter (re-checked even when pushed)."""
        if self.job_ids and job.get("jobId") not in self.job_ids:
            return False
        if self.lists_children:
            # Filters do not apply to array children or MNP nodes (as in the service).
            return True
        if self.job_name and not name_matches(self.job_name, job.get("jobName", "")):
            return False
        if self.job_definition and not definition_matches(self.job_definition, job.get("jobDefinition", "")):
            return False
        created = job.get("createdAt")
        if self.created_after is not None and (created is None or created < self.created_after):
            return False
        if self.created_before is not None and (created is None or created >= self.created_before):
            return False
        return not (self.share_identifier and job.get("shareIdentifier") != self.share_identifier)

    def describe(self) -> str:
        """A short human label for logs: the filters, else the selector."""
        parts = [p for p in (self.job_name, self.job_definition) if p]
        if self.job_ids:
            parts.append(f"{len(self.job_ids)} job id(s)")
        elif not parts:
            parts.append("=".join(self.selector))
        return " ".join(parts)


def _normalize_ids(job_ids: Iterable[str] | str | None) -> tuple[str, ...]:
    if job_ids is None or job_ids == "":
        return ()
    if isinstance(job_ids, str):
        job_ids = [job_ids]
    ids: list[str] = []
    for job_id in job_ids:
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidQueryError(f"job_ids contains {job_id!r}: every id must be a non-empty string.")
        if job_id not in ids:
            ids.append(job_id)
    return tuple(ids)


def _check_name(job_name: object) -> None:
    if not isinstance(job_name, str) or not _NAME_RE.match(job_name):
        raise InvalidQueryError(
            f"job_name={job_name!r}: use a job name of letters, digits, '-' and '_' (up to 128), optionally "
            "ending in '*' for a prefix match; '*' is allowed only at the end."
        )


def _check_definition(job_definition: object) -> None:
    if not isinstance(job_definition, str) or not job_definition:
        raise InvalidQueryError(f"job_definition={job_definition!r}: expected a name, 'name*' or a full ARN.")
    if job_definition.startswith("arn:"):
        if "*" in job_definition:
            raise InvalidQueryError(
                f"job_definition={job_definition!r}: '*' is not allowed with an ARN; use the bare name with "
                "'*' for a prefix match, or the full ARN with a revision."
            )
        if not _DEFINITION_ARN_RE.match(job_definition):
            raise InvalidQueryError(
                f"job_definition={job_definition!r}: an ARN must be "
                "'arn:<partition>:batch:<region>:<account>:job-definition/<name>:<revision>'."
            )
        return
    if not _DEFINITION_NAME_RE.match(job_definition):
        raise InvalidQueryError(
            f"job_definition={job_definition!r}: use a definition name (every revision), 'name*' (prefix) or "
            "a full ARN with revision (that revision only); '*' is allowed only at the end of a name."
        )


def _iso(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat()
