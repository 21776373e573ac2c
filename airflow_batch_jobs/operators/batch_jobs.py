"""Operators that list, describe and check AWS Batch jobs once, without waiting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
)
from botocore.exceptions import BotoCoreError, ClientError

from airflow_batch_jobs.arguments import (
    QUERY_FIELDS,
    BatchJobsTaskMixin,
    BatchJobsVerdictMixin,
    check_xcom_arguments,
    ids_from,
    is_templated,
)
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.links import EXTRA_LINKS
from airflow_batch_jobs.policy import InvalidPolicyError, Policy, Verdict
from airflow_batch_jobs.query import ALL_STATUSES, InvalidQueryError, JobQuery
from airflow_batch_jobs.watch import IncompleteListingError, JobWatch, job_records, records, verdict_event

if TYPE_CHECKING:
    from collections.abc import Sequence


class BatchListJobsOperator(BatchJobsTaskMixin, BaseOperator):
    """List the AWS Batch jobs matching a queue and filters; return them as XCom records, newest first.

    ``job_status`` keeps only jobs in these statuses; ``latest`` keeps only the newest N. ``xcom_detail='full'``
    describes each job (DescribeJobs, 100 ids a call) and adds its redacted detail.
    """

    template_fields: Sequence[str] = (*QUERY_FIELDS, "job_status")

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
            _statuses(job_status)
        if latest is not None and (isinstance(latest, bool) or not isinstance(latest, int) or latest < 1):
            raise InvalidPolicyError(f"latest={latest!r}: use a whole number >= 1, or None for every job.")
        check_xcom_arguments(xcom_detail, 1)
        self.latest = latest
        self.xcom_detail = xcom_detail
        self._init_connection(aws_conn_id, region_name, verify, botocore_config)

    def execute(self, context: Any) -> list[dict[str, Any]]:
        query = self.build_query()
        statuses = _statuses(self.job_status)
        jobs = [j for j in self.hook.find_jobs(query) if not statuses or j.get("status") in statuses]
        jobs.sort(key=lambda j: (j.get("createdAt") or 0, j["jobId"]), reverse=True)
        if self.latest is not None:
            jobs = jobs[: self.latest]
        if self.xcom_detail == "full" and jobs:
            jobs = self.hook.describe_jobs([j["jobId"] for j in jobs]).jobs
        self.log.info("%s: %d matching job(s).", query.describe(), len(jobs))
        return job_records([JobView(j) for j in jobs], self.xcom_detail)


class BatchDescribeJobsOperator(BatchJobsVerdictMixin, BaseOperator):
    """Describe AWS Batch jobs by id (100 ids a call) and return them as XCom records.

    ``job_ids`` takes a list of ids or job ARNs, or an upstream ``XComArg`` such as a
    :class:`BatchListJobsOperator`'s output (records with ``job_id``). With ``check=True`` the jobs are judged by the
    policy arguments, as the check operator does. Ids the service does not know are logged and left out
    (``fail_on_missing=True`` fails instead).
    """

    template_fields: Sequence[str] = ("job_ids",)

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

    def execute(self, context: Any) -> list[dict[str, Any]]:
        ids = ids_from(self.job_ids)
        if not ids:
            self.log.info("No job ids to describe.")
            return []
        result = self.hook.describe_jobs(ids)
        if result.missing:
            message = f"{len(result.missing)} job id(s) unknown to AWS Batch: {', '.join(result.missing[:20])}"
            if self.fail_on_missing:
                raise AirflowFailException(message)
            self.log.warning(message)
        if not self.check:
            return job_records([JobView(j) for j in result.jobs], self.xcom_detail)
        watch = JobWatch(JobQuery.build(job_ids=ids), self.policy)
        watch.listing.absorb(result.jobs)
        decision = watch.decide(result.jobs)
        if decision.verdict is Verdict.WAITING:
            raise AirflowFailException(f"Not finished: {decision.message}.")
        return self.finish(context, verdict_event(decision, self.xcom_detail, self.xcom_max_jobs)) or []


class BatchCheckJobsOperator(BatchJobsVerdictMixin, BaseOperator):
    """Judge the AWS Batch jobs matching a query once, now, by the same rules as :class:`BatchJobsSensor`.

    Jobs still active (or fewer than ``min_jobs``): ``if_active='fail'`` (default) fails the task, ``'skip'``
    skips it. A skip exit code skips the task (and what depends on it); failed jobs fail it, with the message.
    """

    template_fields: Sequence[str] = QUERY_FIELDS
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
        self._init_connection(aws_conn_id, region_name, verify, botocore_config)

    def execute(self, context: Any) -> list[dict[str, Any]]:
        watch = JobWatch(self.build_query(), self.policy)
        try:
            decision = watch.poll(self.hook)
        except (ClientError, BotoCoreError, IncompleteListingError) as err:  # anything else is ours: as it is
            raise AirflowException(f"Could not read the jobs from AWS Batch: {err}") from err
        self.log.info(watch.progress(decision))
        if decision.verdict is Verdict.WAITING:
            message = f"Not decided yet: {decision.message}."
            if self.do_xcom_push and self.xcom_detail != "none":
                context["ti"].xcom_push(
                    key="return_value", value=records(decision, self.xcom_detail, self.xcom_max_jobs)[0]
                )
            if self.if_active == "skip":
                raise AirflowSkipException(message)
            raise AirflowFailException(message)
        return self.finish(context, verdict_event(decision, self.xcom_detail, self.xcom_max_jobs)) or []


def _statuses(job_status: list[str] | str | None) -> list[str]:
    if job_status is None or job_status == "":
        return []
    statuses = [job_status] if isinstance(job_status, str) else list(job_status)
    unknown = [s for s in statuses if s not in ALL_STATUSES]
    if unknown:
        raise InvalidQueryError(f"job_status contains {unknown}: use any of {', '.join(ALL_STATUSES)}.")
    return statuses
