"""Operators that list, describe and check AWS Batch jobs once, without waiting."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
)
from botocore.exceptions import BotoCoreError, ClientError

from airflow_batch_jobs.arguments import (
    CONNECTION_FIELDS,
    QUERY_FIELDS,
    BatchJobsTaskMixin,
    BatchJobsVerdictMixin,
    ids_from,
    is_templated,
    statuses_from,
)
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.links import EXTRA_LINKS
from airflow_batch_jobs.log_tail import DEFAULT_LOG_JOBS, DEFAULT_LOG_LINES, check_log_arguments
from airflow_batch_jobs.policy import InvalidPolicyError, Policy, Verdict, judge
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.verdict_event import records, verdict_event
from airflow_batch_jobs.watch import (
    IncompleteListingError,
    JobListing,
    JobWatch,
    Listed,
    job_records,
    rejected_request,
    wall_clock_ms,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_batch_jobs.policy import Decision


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS errors as the sensor and the trigger have them (:func:`~airflow_batch_jobs.watch.rejected_request`): a
    request the service rejects (unknown queue, access denied, bad request) or botocore refuses to send (its check of
    the parameters failed) fails the task without Airflow's retries, which would fail alike; throttling, 5xx, dropped
    connections and incomplete listings may pass with time, so Airflow's retries apply. Anything else is ours: as it
    is."""
    try:
        yield
    except (ClientError, BotoCoreError, IncompleteListingError) as err:
        rejected = rejected_request(err)
        if rejected is not None:
            raise AirflowFailException(rejected) from err
        raise AirflowException(f"Could not read the jobs from AWS Batch: {err}") from err


class BatchListJobsOperator(BatchJobsTaskMixin, BaseOperator):
    """List the AWS Batch jobs matching a queue and filters; return them as XCom records, newest first.

    ``job_status`` keeps only jobs in these statuses (a list, or a list param rendered into the field); ``latest``
    keeps only the newest N. A created-at window over a queue is listed newest first and paging stops below
    ``created_after``, as the sensor lists it. Records come from the ListJobs summaries (``described: False``: no
    attempts, log stream or queue, which a summary does not say); ``xcom_detail='full'`` describes each kept job
    (DescribeJobs, 100 ids a call) and adds its redacted detail; ``'none'`` returns nothing. At most
    ``xcom_max_jobs`` records, the newest (the cut is logged).

    :param job_queue: selector: the jobs of this queue (name or ARN). (templated)
    :param array_job_id: selector: the children of this array job. (templated)
    :param multi_node_job_id: selector: the nodes of this multi-node parallel job. (templated)
    :param job_ids: selector: these jobs; ids or job ARNs, records with ``job_id`` (an upstream operator's output),
        or a list's rendered text. (templated)
    :param job_name: filter: the job name, case-insensitive; a trailing ``*`` matches a prefix. (templated)
    :param job_definition: filter: the job definition's name (``*`` suffix: a prefix), ``name:revision`` or ARN.
        (templated)
    :param created_after: filter: jobs created at or after this moment: a datetime, an ISO-8601 date or time, or
        epoch milliseconds. (templated)
    :param created_before: filter: jobs created before this moment, as ``created_after``. (templated)
    :param share_identifier: filter: jobs with this fair-share identifier. (templated)
    :param job_status: keep only jobs in these statuses (a list, one status, or a list param rendered into the
        field); None: every status. (templated)
    :param latest: keep only the newest this many jobs; None: every job.
    :param xcom_detail: what each record holds: 'summary', 'full' (adds the redacted DescribeJobs detail) or 'none'
        (nothing returned).
    :param xcom_max_jobs: at most this many records, the newest (the cut is logged).
    :param aws_conn_id: the Airflow ``aws`` connection; None or empty: boto3's default credential chain.
        (templated)
    :param region_name: the AWS region; None: the connection's. (templated)
    :param verify: whether to verify SSL certificates, or the path of a CA bundle; None: botocore's default.
        (templated)
    :param botocore_config: botocore ``Config`` options as a dict; without retry settings, botocore's 'standard'
        retry mode is used (:class:`~airflow_batch_jobs.hooks.batch_jobs.BatchJobsHook`). (templated)
    """

    template_fields: Sequence[str] = (*QUERY_FIELDS, "job_status", *CONNECTION_FIELDS)

    def __init__(
        self,
        *,
        job_queue: str | None = None,
        array_job_id: str | None = None,
        multi_node_job_id: str | None = None,
        job_ids: list[str] | str | None = None,
        job_name: str | None = None,
        job_definition: str | None = None,
        created_after: Any = None,
        created_before: Any = None,
        share_identifier: str | None = None,
        job_status: list[str] | str | None = None,
        latest: int | None = None,
        xcom_detail: str = "summary",
        xcom_max_jobs: int = 1000,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_query(
            job_queue=job_queue,
            array_job_id=array_job_id,
            multi_node_job_id=multi_node_job_id,
            job_ids=job_ids,
            job_name=job_name,
            job_definition=job_definition,
            created_after=created_after,
            created_before=created_before,
            share_identifier=share_identifier,
        )
        self.job_status = job_status
        if not is_templated(job_status):
            statuses_from(job_status)
        if latest is not None and (isinstance(latest, bool) or not isinstance(latest, int) or latest < 1):
            raise InvalidPolicyError(f"latest={latest!r}: use a whole number >= 1, or None for every job.")
        self._init_xcom(xcom_detail, xcom_max_jobs)
        self.latest = latest
        self._init_connection(aws_conn_id, region_name, verify, botocore_config)

    def execute(self, context: Any) -> list[dict[str, Any]] | None:
        query = self.build_query()
        statuses = statuses_from(self.job_status)
        with aws_errors():
            found = self.hook.find_jobs(query, stop=JobListing(query).page_stop())
        jobs = [j for j in found if not statuses or j.get("status") in statuses]
        jobs.sort(key=lambda j: (j.get("createdAt") or 0, j["jobId"]), reverse=True)
        if self.latest is not None:
            jobs = jobs[: self.latest]
        self.log.info("%s: %d matching job(s).", query.describe(), len(jobs))
        if self.xcom_detail == "none":
            return None
        kept = jobs[: self.xcom_max_jobs]
        self.log_cut(len(kept), len(jobs) - len(kept))
        if self.xcom_detail == "full" and kept:
            with aws_errors():
                kept = self.hook.describe_jobs([j["jobId"] for j in kept]).jobs
        return job_records([JobView(j) for j in kept], self.xcom_detail)


class BatchDescribeJobsOperator(BatchJobsVerdictMixin, BaseOperator):
    """Describe AWS Batch jobs by id (100 ids a call) and return them as XCom records.

    ``job_ids`` takes a list of ids or job ARNs, or an upstream ``XComArg`` such as a
    :class:`BatchListJobsOperator`'s output (records with ``job_id``). With ``check=True`` the jobs are judged by the
    policy arguments, as the check operator does (``match='latest'``: the newest of them; no ids at all: fewer than
    ``min_jobs``). Ids the service does not know are logged and left out (``fail_on_missing=True`` fails instead;
    with ``check=True`` an unknown id leaves the verdict undecided). At most ``xcom_max_jobs`` records, in the order
    asked (with ``check=True``: failed jobs first); ``xcom_detail='none'`` returns nothing.

    :param job_ids: ids or job ARNs, records with ``job_id`` (an upstream operator's output), or a list's rendered
        text. (templated)
    :param check: judge the jobs by the policy arguments below, as :class:`BatchCheckJobsOperator` does; without it
        they are not used.
    :param fail_on_missing: fail when AWS Batch does not know an id, instead of logging it and leaving it out.
    :param match: 'all' judges every job, 'latest' only the newest one.
    :param min_jobs: fewer jobs than this are not decided yet (0: none may match).
    :param success_exit_codes: exit codes that make a FAILED job's last attempt count as a success.
    :param skip_exit_codes: exit codes that make the task skip (none may be in ``success_exit_codes``).
    :param max_failed_jobs: how many failed jobs are tolerated.
    :param fail_fast: decide a failure as soon as more than ``max_failed_jobs`` failed, whatever is still active.
    :param xcom_detail: what each record holds: 'summary', 'full' (adds the redacted DescribeJobs detail) or 'none'
        (nothing returned).
    :param xcom_max_jobs: at most this many records, in the order asked (with ``check``: failed jobs first; the cut
        is logged).
    :param aws_conn_id: the Airflow ``aws`` connection; None or empty: boto3's default credential chain.
        (templated)
    :param region_name: the AWS region; None: the connection's. (templated)
    :param verify: whether to verify SSL certificates, or the path of a CA bundle; None: botocore's default.
        (templated)
    :param botocore_config: botocore ``Config`` options as a dict; without retry settings, botocore's 'standard'
        retry mode is used (:class:`~airflow_batch_jobs.hooks.batch_jobs.BatchJobsHook`). (templated)
    """

    template_fields: Sequence[str] = ("job_ids", *CONNECTION_FIELDS)
    operator_extra_links = EXTRA_LINKS

    def __init__(
        self,
        *,
        job_ids: Any,
        check: bool = False,
        fail_on_missing: bool = False,
        match: str = "all",
        min_jobs: int = 1,
        success_exit_codes: list[int] | None = None,
        skip_exit_codes: list[int] | None = None,
        max_failed_jobs: int = 0,
        fail_fast: bool = True,
        xcom_detail: str = "summary",
        xcom_max_jobs: int = 1000,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_ids = job_ids
        if not is_templated(job_ids):
            ids_from(job_ids)
        policy = Policy.build(
            match=match,
            min_jobs=min_jobs,
            success_exit_codes=success_exit_codes,
            skip_exit_codes=skip_exit_codes,
            max_failed_jobs=max_failed_jobs,
            fail_fast=fail_fast,
        )
        self._init_verdict(policy, xcom_detail, xcom_max_jobs)
        self.check = check
        self.fail_on_missing = fail_on_missing
        self._init_connection(aws_conn_id, region_name, verify, botocore_config)

    def execute(self, context: Any) -> list[dict[str, Any]] | None:
        ids = ids_from(self.job_ids)
        if not ids and not self.check:
            self.log.info("No job ids to describe.")
            return [] if self.xcom_detail != "none" else None
        described, missing = self._describe(ids) if ids else ([], [])
        if missing:
            message = f"{len(missing)} job id(s) unknown to AWS Batch: {', '.join(missing[:20])}"
            if self.fail_on_missing:
                raise AirflowFailException(message)
            self.log.warning(message)
        if self.check:
            return self._judge(context, ids, described, missing)
        if self.xcom_detail == "none":
            return None
        kept = described[: self.xcom_max_jobs]
        self.log_cut(len(kept), len(described) - len(kept))
        return job_records([JobView(j) for j in kept], self.xcom_detail)

    def _describe(self, ids: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        with aws_errors():
            result = self.hook.describe_jobs(ids)
        return result.jobs, result.missing

    def _judge(
        self, context: Any, ids: list[str], described: list[dict[str, Any]], missing: list[str]
    ) -> list[dict[str, Any]] | None:
        """The verdict on the described jobs, by the rules every class applies: ``match='latest'`` judges the newest,
        an unknown id leaves it undecided, no ids at all are fewer than ``min_jobs`` (unless it is 0)."""
        decision: Decision
        if not ids:
            decision = judge([], self.policy, now_ms=wall_clock_ms())
        else:
            watch = JobWatch(JobQuery.build(job_ids=ids), self.policy)
            watch.listing.absorb(described)
            decision = watch.decide(Listed(watch.listing.narrow(described), missing))
        if decision.verdict is Verdict.WAITING:
            raise AirflowFailException(f"Not finished: {decision.message}.")
        recorded = self.finish(context, verdict_event(decision, self.xcom_detail, self.xcom_max_jobs))
        return recorded if self.xcom_detail != "none" else None


class BatchCheckJobsOperator(BatchJobsVerdictMixin, BaseOperator):
    """Judge the AWS Batch jobs matching a query once, now, by the same rules as :class:`BatchJobsSensor`.

    Jobs still active (or fewer than ``min_jobs``): ``if_active='fail'`` (default) fails the task, ``'skip'``
    skips it. A skip exit code skips the task (and what depends on it); failed jobs fail it, with the message.

    :param job_queue: selector: the jobs of this queue (name or ARN). (templated)
    :param array_job_id: selector: the children of this array job. (templated)
    :param multi_node_job_id: selector: the nodes of this multi-node parallel job. (templated)
    :param job_ids: selector: these jobs; ids or job ARNs, records with ``job_id`` (an upstream operator's output),
        or a list's rendered text. (templated)
    :param job_name: filter: the job name, case-insensitive; a trailing ``*`` matches a prefix. (templated)
    :param job_definition: filter: the job definition's name (``*`` suffix: a prefix), ``name:revision`` or ARN.
        (templated)
    :param created_after: filter: jobs created at or after this moment: a datetime, an ISO-8601 date or time, or
        epoch milliseconds. (templated)
    :param created_before: filter: jobs created before this moment, as ``created_after``. (templated)
    :param share_identifier: filter: jobs with this fair-share identifier. (templated)
    :param match: 'all' judges every job, 'latest' only the newest one.
    :param min_jobs: fewer jobs than this are not decided yet (0: none may match).
    :param success_exit_codes: exit codes that make a FAILED job's last attempt count as a success.
    :param skip_exit_codes: exit codes that make the task skip (none may be in ``success_exit_codes``).
    :param max_failed_jobs: how many failed jobs are tolerated.
    :param fail_fast: decide a failure as soon as more than ``max_failed_jobs`` failed, whatever is still active.
    :param include_array_children: judge an array job's children in its place (each child counted, the parent's size
        checked).
    :param if_active: when jobs are still active (or fewer than ``min_jobs``): 'fail' the task or 'skip' it.
    :param xcom_detail: what each record holds: 'summary', 'full' (adds the redacted DescribeJobs detail) or 'none'
        (nothing returned).
    :param xcom_max_jobs: at most this many records, failed jobs first (the cut is logged).
    :param log_lines: when jobs failed (or hit a skip exit code), the task log shows the last this many lines of
        each one's last attempt's CloudWatch log stream (0: none; at most 10,000), read within 10 s all together,
        never changing the outcome (:mod:`airflow_batch_jobs.log_tail`).
    :param log_jobs: of at most this many jobs, failed first (0: none; at most 20).
    :param aws_conn_id: the Airflow ``aws`` connection; None or empty: boto3's default credential chain.
        (templated)
    :param region_name: the AWS region; None: the connection's. (templated)
    :param verify: whether to verify SSL certificates, or the path of a CA bundle; None: botocore's default.
        (templated)
    :param botocore_config: botocore ``Config`` options as a dict; without retry settings, botocore's 'standard'
        retry mode is used (:class:`~airflow_batch_jobs.hooks.batch_jobs.BatchJobsHook`). (templated)
    """

    template_fields: Sequence[str] = (*QUERY_FIELDS, *CONNECTION_FIELDS)
    operator_extra_links = EXTRA_LINKS

    def __init__(
        self,
        *,
        job_queue: str | None = None,
        array_job_id: str | None = None,
        multi_node_job_id: str | None = None,
        job_ids: list[str] | str | None = None,
        job_name: str | None = None,
        job_definition: str | None = None,
        created_after: Any = None,
        created_before: Any = None,
        share_identifier: str | None = None,
        match: str = "all",
        min_jobs: int = 1,
        success_exit_codes: list[int] | None = None,
        skip_exit_codes: list[int] | None = None,
        max_failed_jobs: int = 0,
        fail_fast: bool = True,
        include_array_children: bool = False,
        if_active: str = "fail",
        xcom_detail: str = "summary",
        xcom_max_jobs: int = 1000,
        log_lines: int = DEFAULT_LOG_LINES,
        log_jobs: int = DEFAULT_LOG_JOBS,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_query(
            job_queue=job_queue,
            array_job_id=array_job_id,
            multi_node_job_id=multi_node_job_id,
            job_ids=job_ids,
            job_name=job_name,
            job_definition=job_definition,
            created_after=created_after,
            created_before=created_before,
            share_identifier=share_identifier,
        )
        policy = Policy.build(
            match=match,
            min_jobs=min_jobs,
            success_exit_codes=success_exit_codes,
            skip_exit_codes=skip_exit_codes,
            max_failed_jobs=max_failed_jobs,
            fail_fast=fail_fast,
            include_array_children=include_array_children,
        )
        if if_active not in ("fail", "skip"):
            raise InvalidPolicyError(f"if_active={if_active!r}: use 'fail' or 'skip'.")
        self._init_verdict(policy, xcom_detail, xcom_max_jobs)
        self.if_active = if_active
        check_log_arguments(log_lines, log_jobs)
        self.log_lines, self.log_jobs = log_lines, log_jobs
        self._init_connection(aws_conn_id, region_name, verify, botocore_config)

    def execute(self, context: Any) -> list[dict[str, Any]] | None:
        watch = JobWatch(self.build_query(), self.policy)
        with aws_errors():
            decision = watch.poll(self.hook)
        self.log.info(watch.progress(decision))
        if decision.verdict is Verdict.WAITING:
            message = f"Not decided yet: {decision.message}."
            if self.do_xcom_push and self.xcom_detail != "none":
                kept, cut = records(decision, self.xcom_detail, self.xcom_max_jobs)
                self.log_cut(len(kept), cut)
                context["ti"].xcom_push(key="return_value", value=kept)
            if self.if_active == "skip":
                raise AirflowSkipException(message)
            raise AirflowFailException(message)
        recorded = self.finish(context, verdict_event(decision, self.xcom_detail, self.xcom_max_jobs))
        return recorded if self.xcom_detail != "none" else None
