"""A verdict as the event ``finish`` turns into the task's outcome; and the compact form the trigger yields.

``finish`` reads the **full event** (:func:`verdict_event`): ``status``, ``message``, ``records`` (the XCom records,
failed jobs first, at most ``xcom_max_jobs``), ``cut``, ``failed``, ``links`` (what the console links show) and
``logs`` (where the jobs behind a failure or a skip logged). The sensor's poke and the operators build it in process.

A trigger's event is stored in Airflow's metadata database and logged whole, on one line, in the task log; at about
0.9 KiB a record (``xcom_detail="full"``: 2.5 KiB) and up to 1,000 records, the full event reached 1-2 MB, and it held
each failed job's description twice (in the message, and again in its record, link and log source). The trigger
yields the **compact event** (:func:`compact_event`) instead, and the worker rebuilds the full one from it
(:func:`resolve_event`) with one DescribeJobs per 100 jobs it names:

- a job whose record comes from a DescribeJobs detail of a finished job (final: the worker reads the same) is named by
  its id, array children in runs (``[parent, first, last]``), in the records' order;
- any other job is carried as the service showed it to the verdict (a ListJobs summary of a job still active, a stand-in
  for an array child that aged out of AWS Batch, a job remembered from an earlier poll), redacted, what they all hold
  alike said once (``shared``, ``arn_prefix``): the worker could not read it back as it was;
- in the message, each failed job's description (its attempts, exit codes, log stream, failure class and advice) is
  ``{"job": id}`` when the worker can rebuild it: the event line shows the verdict's own lines, not the jobs' again;
  likewise the links' and log sources' jobs.

So the event grows by about 40 bytes per record it names (a few bytes per run of array children; a job still active
at a ``fail_fast`` verdict, carried, about 75) instead of the records' own size: at 10,000 jobs and the default 1,000
records, 39 KiB instead of 993 KiB (2.48 MiB with ``"full"``; ``python -m benchmarks.trigger_event``). The records,
the message, the links and the log sources the worker rebuilds are those the trigger's verdict would have handed on
(tested side by side on the same decisions). A read back that fails is tried again as a failed poll is
(``BatchJobsVerdictMixin._read_back``): a fault delays the verdict or fails the wait, never changes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.jobs import JobView, redact
from airflow_batch_jobs.links import link_focus, link_of
from airflow_batch_jobs.log_tail import log_sources, source_of
from airflow_batch_jobs.policy import MAX_JOBS_IN_MESSAGE, describe_job, one_of
from airflow_batch_jobs.watch import job_records

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
    from airflow_batch_jobs.policy import Decision

# Marks a compact event (a full one has no "v"; an event from a trigger of an earlier version is full).
COMPACT = 2

# One entry of the compact event's records: a job id, a run of array children, or a job carried as it was.
Entry = str | list[Any] | dict[str, Any]


class UnresolvedEventError(Exception):
    """The worker could not read back the jobs a compact event names (AWS Batch no longer knows one)."""


def record_jobs(decision: Decision, xcom_max_jobs: int) -> tuple[list[JobView], int]:
    """The jobs the XCom records are of: failed jobs first, at most ``xcom_max_jobs``; and how many were cut."""
    failed_ids = {j.job_id for j in decision.failed}
    ordered = sorted(decision.jobs, key=lambda j: j.job_id not in failed_ids)
    return list(ordered[:xcom_max_jobs]), max(0, len(ordered) - xcom_max_jobs)


def records(decision: Decision, xcom_detail: str, xcom_max_jobs: int) -> tuple[list[dict[str, Any]], int]:
    """XCom records for a decision, failed jobs first, at most ``xcom_max_jobs``; and how many were cut."""
    if xcom_detail == "none":
        return [], 0
    kept, cut = record_jobs(decision, xcom_max_jobs)
    return job_records(kept, xcom_detail), cut


def verdict_event(decision: Decision, xcom_detail: str, xcom_max_jobs: int) -> dict[str, Any]:
    """The full event (JSON-native), as ``finish`` reads it."""
    recs, cut = records(decision, xcom_detail, xcom_max_jobs)
    focus = link_focus(decision)
    return {
        "status": decision.verdict.value,
        "message": decision.message,
        "records": recs,
        "cut": cut,
        "failed": len(decision.failed),
        "links": link_of(focus) if focus is not None else None,  # chosen from the verdict, not the records
        "logs": log_sources(decision),
    }


# -- the compact event (the trigger's) --------------------------------------------------------------------------------


def rebuildable(job: JobView) -> bool:
    """Whether the worker reads back exactly this view: a DescribeJobs detail of a finished job (final)."""
    return job.is_described and job.is_terminal and one_of(job) is None


def compact_event(decision: Decision, xcom_detail: str, xcom_max_jobs: int) -> dict[str, Any]:
    """The event a trigger yields (JSON-native): :func:`verdict_event` with every job the worker can read back named
    by its id (see the module's docstring). :func:`resolve_event` turns it back into the full event."""
    kept, cut = record_jobs(decision, xcom_max_jobs) if xcom_detail != "none" else ([], 0)
    focus = link_focus(decision)
    links: dict[str, Any] | None = None
    if focus is not None:
        links = {"job": focus.job_id} if rebuildable(focus) else link_of(focus)
    entries, shared, arn_prefix = factor_shared(pack_entries(kept))
    event = {
        "v": COMPACT,
        "status": decision.verdict.value,
        "message": message_parts(decision),
        "records": entries,
        "cut": cut,
        "failed": len(decision.failed),
        "links": links,
        "logs": compact_sources(decision),
    }
    if shared:
        event["shared"] = shared
    if arn_prefix:
        event["arn_prefix"] = arn_prefix
    return event


def compact_sources(decision: Decision) -> list[dict[str, Any]]:
    """:func:`~airflow_batch_jobs.log_tail.log_sources`, each job the worker reads back named by its id."""
    jobs = {job.job_id: job for job in (*decision.failed, *decision.skipped)}
    return [{"job": s["job_id"]} if rebuildable(jobs[s["job_id"]]) else s for s in log_sources(decision)]


def message_parts(decision: Decision) -> str | list[str | dict[str, str]]:
    """The message, with each failed job's description that the worker can rebuild (:func:`describe_job` of the view
    it reads back) replaced by ``{"job": id}``; the message itself when there is none. Checked: the parts render back
    to the message exactly, or the message is kept whole."""
    text = decision.message
    parts: list[str | dict[str, str]] = []
    cursor = 0
    by_id: dict[str, JobView] = {}
    for job in decision.failed[:MAX_JOBS_IN_MESSAGE]:
        if not rebuildable(job):
            continue
        block = describe_job(job)
        start = text.find("\n" + block, cursor)
        end = start + 1 + len(block)
        if start < 0 or (end < len(text) and text[end] != "\n"):
            continue
        parts.extend([text[cursor : start + 1], {"job": job.job_id}])
        by_id[job.job_id] = job
        cursor = end
    if not by_id:
        return text
    parts.append(text[cursor:])
    return parts if render_message(parts, by_id) == text else text


def render_message(parts: str | Sequence[str | Mapping[str, str]], views: Mapping[str, JobView]) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(part if isinstance(part, str) else describe_job(views[part["job"]]) for part in parts)


def pack_entries(jobs: Iterable[JobView]) -> list[Entry]:
    """The records' jobs, in order: ids of jobs the worker reads back (a run of children of one array with consecutive
    indices, either way, as ``[parent, first, last]``), other jobs as they were (redacted: no environment values,
    secrets or parameters)."""
    entries: list[Entry] = []
    for job in jobs:
        if not rebuildable(job):
            entries.append(redact(job.raw))
            continue
        parent, index = _child_of(job.job_id)
        last = entries[-1] if entries else None
        if index is not None and isinstance(last, list) and last[0] == parent and last[2] + _step(last) == index:
            last[2] = index
        elif index is not None and isinstance(last, str) and _child_of(last)[0] == parent:
            previous = _child_of(last)[1]
            if previous is not None and abs(previous - index) == 1:
                entries[-1] = [parent, previous, index]
            else:
                entries.append(job.job_id)
        else:
            entries.append(job.job_id)
    return entries


def factor_shared(entries: list[Entry]) -> tuple[list[Entry], dict[str, Any], str | None]:
    """The jobs carried as they were, with what they all hold alike (status, job definition, reason, ...) said once,
    in ``shared``, and their ``jobArn`` left out when each is ``arn_prefix`` + its ``jobId``: :func:`resolve_event`
    puts both back into each."""
    carried = [entry for entry in entries if isinstance(entry, dict)]
    if len(carried) < 2:
        return entries, {}, None
    first, *others = carried
    shared = {key: value for key, value in first.items() if all(key in o and o[key] == value for o in others)}
    arn = str(first.get("jobArn", ""))
    prefix = arn[: len(arn) - len(str(first.get("jobId")))] if arn.endswith(f"/{first.get('jobId')}") else None
    if prefix is None or any(entry.get("jobArn") != f"{prefix}{entry.get('jobId')}" for entry in carried):
        prefix = None
    left_out = {*shared, *(["jobArn"] if prefix is not None else [])}
    return (
        [{k: v for k, v in e.items() if k not in left_out} if isinstance(e, dict) else e for e in entries],
        shared,
        prefix,
    )


def _child_of(job_id: str) -> tuple[str, int | None]:
    """An array child's parent id and index (``<parent>:<index>``); the id and None for any other job."""
    parent, sep, tail = job_id.rpartition(":")
    if sep and parent and tail.isdigit() and str(int(tail)) == tail:
        return parent, int(tail)
    return job_id, None


def _step(run: list[Any]) -> int:
    return 1 if run[2] >= run[1] else -1


def entry_ids(entry: Entry) -> list[str]:
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, list):
        parent, first, last = entry
        step = _step(entry)
        return [f"{parent}:{i}" for i in range(int(first), int(last) + step, step)]
    return []


# -- back to the full event (the worker's) ----------------------------------------------------------------------------


def is_compact(event: Mapping[str, Any]) -> bool:
    return event.get("v") == COMPACT


def named_ids(event: Mapping[str, Any]) -> list[str]:
    """Every job id a compact event names, each once, in the order named."""
    ids: list[str] = []
    for entry in event.get("records") or []:
        ids.extend(entry_ids(entry))
    message = event.get("message")
    if isinstance(message, list):
        ids.extend(part["job"] for part in message if isinstance(part, dict))
    links = event.get("links") or {}
    if "job" in links:
        ids.append(links["job"])
    ids.extend(source["job"] for source in event.get("logs") or [] if "job" in source)
    return list(dict.fromkeys(ids))


def resolve_event(event: Mapping[str, Any], hook: BatchJobsHook, xcom_detail: str) -> dict[str, Any]:
    """The full event a compact one stands for, the jobs it names read back (DescribeJobs, 100 ids a call); any other
    event as it is. Raises what the hook raises, and :class:`UnresolvedEventError` when AWS Batch no longer knows a
    job it names."""
    if not is_compact(event):
        return dict(event)
    ids = named_ids(event)
    answer = hook.describe_jobs(ids) if ids else None
    if answer is not None and answer.missing:
        raise UnresolvedEventError(
            f"AWS Batch no longer knows {len(answer.missing)} job(s) the verdict named: {', '.join(answer.missing[:5])}"
        )
    views = {job["jobId"]: JobView(job) for job in answer.jobs} if answer is not None else {}
    shared, arn_prefix = event.get("shared") or {}, event.get("arn_prefix")
    ordered: list[JobView] = []
    for entry in event.get("records") or []:
        if isinstance(entry, dict):
            raw = {**shared, **entry}
            ordered.append(JobView({"jobArn": f"{arn_prefix}{raw['jobId']}", **raw} if arn_prefix else raw))
        else:
            ordered.extend(views[job_id] for job_id in entry_ids(entry))
    links = event.get("links")
    if links and "job" in links:
        links = link_of(views[links["job"]])
    return {
        "status": event["status"],
        "message": render_message(event["message"], views),
        "records": job_records(ordered, xcom_detail),
        "cut": event.get("cut", 0),
        "failed": event.get("failed", 0),
        "links": links,
        "logs": [source_of(views[s["job"]]).to_dict() if "job" in s else dict(s) for s in event.get("logs") or []],
    }
