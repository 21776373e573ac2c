"""BatchJobsSensor: wait until the AWS Batch jobs matching a query have finished, and judge them."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_batch_jobs.arguments import CONNECTION_FIELDS, QUERY_FIELDS, BatchJobsVerdictMixin, is_templated
from airflow_batch_jobs.compat import TriggerTimeoutIsSensorTimeout
from airflow_batch_jobs.links import EXTRA_LINKS
from airflow_batch_jobs.log_tail import DEFAULT_LOG_JOBS, DEFAULT_LOG_LINES, check_log_arguments
from airflow_batch_jobs.policy import InvalidPolicyError, Policy, Verdict
from airflow_batch_jobs.query import InvalidQueryError
from airflow_batch_jobs.triggers.batch_jobs import BatchJobsTrigger
from airflow_batch_jobs.verdict_event import verdict_event
from airflow_batch_jobs.wait_state import Continuity, StoredWait, WaitMemory, fingerprint
from airflow_batch_jobs.watch import JobWatch, first_try_began_ms, is_transient, rejected_request

if TYPE_CHECKING:
    from collections.abc import Sequence


class BatchJobsSensor(TriggerTimeoutIsSensorTimeout, BatchJobsVerdictMixin, BaseSensorOperator):
    """Wait for the AWS Batch jobs matching a queue and filters to finish; succeed, skip or fail on their exit codes.

    Give exactly one selector (``job_queue``, ``array_job_id``, ``multi_node_job_id``, ``job_ids``), any filters, and
    the policy that judges the jobs once none is active. Pushes one record per job, failed jobs first.
    ``deferrable=True`` waits in the triggerer (:class:`~airflow_batch_jobs.triggers.batch_jobs.BatchJobsTrigger`).

    Each poll costs about one ListJobs page per 100 matching jobs, plus one DescribeJobs per 100 jobs that
    finished since the last poll. A poll that hits throttling, a 5xx or a dropped connection gives no verdict; after
    ``max_poll_errors`` such polls in a row the task fails with the last error.

    An id of ``job_ids`` that AWS Batch does not return yet (a just-submitted job can be missing for a moment) is
    waited for: no success or skip while one is unknown. One still unknown 5 minutes
    (``airflow_batch_jobs.watch.UNKNOWN_JOB_ID_TIMEOUT_S``) after the wait began fails the task, naming it (with
    ``fail_fast=False``, once the other jobs have finished). The wait begins at the first poke (poke mode, and before
    deferring: the trigger carries that moment), or at the first try in reschedule mode (as Airflow records it for
    ``timeout``).

    Reschedule mode builds a new sensor for every try: what the tries must share (the failed jobs seen, which may age
    out of ListJobs before the verdict; the poll errors in a row; when each RUNNABLE job's wait began) is kept in
    Airflow's ``task_state_store`` (Airflow >= 3.3), and handed to the trigger in its kwargs when deferring. Where a
    try cannot know what earlier ones saw (no ``task_state_store``), it refuses a success it cannot prove: see
    :mod:`airflow_batch_jobs.wait_state`.

    :param job_queue: selector: the jobs of this queue (name or ARN). (templated)
    :param array_job_id: selector: the children of this array job, counted against its size. (templated)
    :param multi_node_job_id: selector: the nodes of this multi-node parallel job, counted against ``numNodes``.
        (templated)
    :param job_ids: selector: these jobs; ids or job ARNs, records with ``job_id`` (an upstream operator's output),
        or a list's rendered text; a job named twice counts once. (templated)
    :param job_name: filter: the job name, case-insensitive; a trailing ``*`` matches a prefix. (templated)
    :param job_definition: filter: the job definition's name (``*`` suffix: a prefix), ``name:revision`` or ARN.
        (templated)
    :param created_after: filter: jobs created at or after this moment: a datetime, an ISO-8601 date or time, or
        epoch milliseconds. (templated)
    :param created_before: filter: jobs created before this moment, as ``created_after``. (templated)
    :param share_identifier: filter: jobs with this fair-share identifier. (templated)
    :param match: 'all' judges every matching job, 'latest' only the newest one.
    :param min_jobs: wait while fewer jobs match (0: none may match).
    :param success_exit_codes: exit codes that make a FAILED job's last attempt count as a success.
    :param skip_exit_codes: exit codes that make the task skip (none may be in ``success_exit_codes``).
    :param max_failed_jobs: how many failed jobs are tolerated.
    :param fail_fast: fail as soon as more than ``max_failed_jobs`` failed, without waiting for the others.
    :param include_array_children: judge an array job's children in its place (each child counted, the parent's size
        checked).
    :param runnable_timeout: fail when a job stays RUNNABLE longer than this (seconds or a timedelta): the compute
        environment cannot place it. None: no limit.
    :param xcom_detail: what each record holds: 'summary', 'full' (adds the redacted DescribeJobs detail) or 'none'
        (nothing pushed).
    :param xcom_max_jobs: at most this many records, failed jobs first (the cut is logged).
    :param max_poll_errors: fail after this many failed polls in a row (throttling, 5xx, dropped connections).
    :param deferrable: wait in the triggerer instead of a worker slot (None: ``[operators] default_deferrable``).
    :param events_queue_url: with ``deferrable=True``: the URL of an SQS queue an EventBridge rule sends AWS Batch job
        state-change events to. The trigger reads it, and an event that suggests the verdict is in wakes a listing at
        once (the verdict comes from that listing, as polling gives it); the trigger's own polls become the safety
        net for lost events, every 10 ``poke_interval``. None or empty: polling only. (templated)
    :param log_lines: when jobs fail (or hit a skip exit code), the task log shows the last this many lines of each
        one's last attempt's CloudWatch log stream (0: none; at most 10,000), read within 10 s all together after
        the verdict, which they never change (:mod:`airflow_batch_jobs.log_tail`).
    :param log_jobs: of at most this many jobs, failed first (0: none; at most 20).
    :param aws_conn_id: the Airflow ``aws`` connection; None or empty: boto3's default credential chain.
        (templated)
    :param region_name: the AWS region; None: the connection's. (templated)
    :param verify: whether to verify SSL certificates, or the path of a CA bundle; None: botocore's default.
        (templated)
    :param botocore_config: botocore ``Config`` options as a dict; without retry settings, botocore's 'standard'
        retry mode is used (:class:`~airflow_batch_jobs.hooks.batch_jobs.BatchJobsHook`). (templated)
    """

    template_fields: Sequence[str] = (*QUERY_FIELDS, *CONNECTION_FIELDS, "events_queue_url")
    operator_extra_links = EXTRA_LINKS
    ui_color = "#f5c28c"

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
        runnable_timeout: float | timedelta | None = None,
        xcom_detail: str = "summary",
        xcom_max_jobs: int = 1000,
        max_poll_errors: int = 5,
        deferrable: bool | None = None,
        events_queue_url: str | None = None,
        log_lines: int = DEFAULT_LOG_LINES,
        log_jobs: int = DEFAULT_LOG_JOBS,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # checked before Airflow < 3.2 rejects a negative one itself, with an error that is no ValueError
        for name in ("poke_interval", "timeout"):
            seconds = kwargs.get(name)
            seconds = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
            if isinstance(seconds, int | float) and seconds <= 0:
                raise InvalidPolicyError(f"{name}={kwargs[name]!r}: use a positive number of seconds.")
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
            runnable_timeout=runnable_timeout,
        )
        self._init_verdict(policy, xcom_detail, xcom_max_jobs)
        if isinstance(max_poll_errors, bool) or not isinstance(max_poll_errors, int) or max_poll_errors < 1:
            raise InvalidPolicyError(f"max_poll_errors={max_poll_errors!r}: use a whole number >= 1.")
        if self.poke_interval <= 0:
            raise InvalidPolicyError(f"poke_interval={self.poke_interval!r}: use a positive number of seconds.")
        if self.timeout <= 0:
            raise InvalidPolicyError(f"timeout={self.timeout!r}: use a positive number of seconds.")
        self.max_poll_errors = max_poll_errors
        check_log_arguments(log_lines, log_jobs)
        self.log_lines, self.log_jobs = log_lines, log_jobs
        # None: [operators] default_deferrable, as the amazon provider's sensors do
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )
        self.events_queue_url = events_queue_url
        self._check_events(rendered=False)
        self._init_connection(aws_conn_id, region_name, verify, botocore_config)
        self._watch: JobWatch | None = None
        self._poll_errors = 0
        # what this instance may not know of earlier ones (a new wait: nothing), and where it keeps what it learns
        self._continuity = Continuity()
        self._stored: StoredWait | None = None
        self._seen_ms: int | None = None  # when this instance's last successful listing began

    def _check_events(self, *, rendered: bool) -> None:
        """``events_queue_url``: only for a deferrable wait (checked as given, a template too), and an SQS queue URL
        (a template once rendered); kept as the trigger takes it."""
        value = self.events_queue_url
        if value is None or value == "":
            return
        if not self.deferrable:
            raise InvalidQueryError(
                f"events_queue_url={value!r} is read by the triggerer, but deferrable is False: pass "
                "deferrable=True to wait on job events, or leave events_queue_url out to poll."
            )
        if not rendered and is_templated(value):
            return
        from airflow_batch_jobs.event_view import check_events_queue_url  # only where events are used

        try:
            checked = check_events_queue_url(value)
        except ValueError as err:
            raise InvalidQueryError(str(err)) from err
        if rendered:
            self.events_queue_url = checked

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self._check_events(rendered=True)

    @property
    def watch(self) -> JobWatch:
        """Built on first use, after rendering; kept across pokes (finished jobs are described once). A watch that
        will not live to the verdict (a reschedule try, the poke before deferring) describes only at a verdict:
        the summaries judge, and details learned early would be lost with it."""
        if self._watch is None:
            lives_on = not self.deferrable and self.mode != "reschedule"
            self._watch = JobWatch(self.build_query(), self.policy, describe_early=lives_on)
        return self._watch

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        started = time.monotonic()
        outcome = self._first_poke(context)  # decide once before deferring: nothing to wait for if it is over
        if outcome:
            return outcome.xcom_value if isinstance(outcome, PokeReturnValue) else None
        self.defer(
            trigger=BatchJobsTrigger(
                query=self.watch.query.to_dict(),
                policy=self.policy.to_dict(),
                poll_interval=float(self.poke_interval),
                max_poll_errors=self.max_poll_errors,
                xcom_detail=self.xcom_detail,
                xcom_max_jobs=self.xcom_max_jobs,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
                wait_began_ms=self.watch.began_ms,
                events_queue_url=self.events_queue_url or None,
                memory=WaitMemory.capture(
                    self.watch,
                    fingerprint=fingerprint(self.watch.query, self.policy),
                    seen_ms=self._seen_ms,
                    continuity=self._continuity,
                ).to_json(),
            ),
            method_name="execute_complete",
            # the sensor's timeout counts from the start of the task, the first poke included
            timeout=timedelta(seconds=max(self.timeout - (time.monotonic() - started), 1.0)),
        )

    def _first_poke(self, context: Any) -> bool | PokeReturnValue:
        """The poke before deferring, with the handling ``BaseSensorOperator.execute`` gives every poke in poke and
        reschedule mode: ``soft_fail`` / ``never_fail`` turn a failure into a skip, ``silent_fail`` logs an error
        and waits on."""
        try:
            return self.poke(context)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as err:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from err
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise
        except AirflowSkipException:
            raise
        except Exception as err:
            if getattr(self, "silent_fail", False):
                self.log.exception("Sensor poke failed; waiting on (silent_fail).")
                return False
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise

    def poke(self, context: Any) -> bool | PokeReturnValue:
        watch = self.watch  # the rendered arguments are checked here, before any AWS call
        if self.mode == "reschedule" and self._stored is None:  # a new sensor each try: resume the earlier tries
            if watch.query.job_ids:  # the wait began at the first try
                watch.wait_began(first_try_began_ms(context))
            self._resume(context)
        listed_at = watch.clock()
        try:
            decision = watch.poll(self.hook)
        except Exception as err:
            if not is_transient(err):
                rejected = rejected_request(err)
                if rejected is not None:
                    raise AirflowFailException(rejected) from err
                raise  # not about AWS (a bug of ours): as it is, with its traceback
            self._poll_errors += 1
            if self._poll_errors >= self.max_poll_errors:
                raise AirflowFailException(f"{self._poll_errors} polls in a row failed; last error: {err}") from err
            self.log.warning("Poll failed (%s); no verdict, asking again at the next poke.", err)
            self._keep(seen_ms=None)
            return False
        self._poll_errors = 0
        self._seen_ms = listed_at
        self._continuity.listed(listed_at)
        decision = self._continuity.guard(decision, watch.query, self.policy, watch.clock())
        self.log.info(watch.progress(decision))
        if decision.verdict is Verdict.WAITING:
            self._keep(seen_ms=listed_at)
            return False
        records = self.finish(context, verdict_event(decision, self.xcom_detail, self.xcom_max_jobs))
        return PokeReturnValue(is_done=True, xcom_value=records if self.xcom_detail != "none" else None)

    def _resume(self, context: Any) -> None:
        """A reschedule try: what the earlier tries kept in task_state_store, or what this try cannot know."""
        self._stored = StoredWait(context, fingerprint(self.watch.query, self.policy), float(self.timeout))
        self._continuity, self._poll_errors, warning = self._stored.resume(self.watch)
        if warning:
            self.log.warning(warning)

    def _keep(self, *, seen_ms: int | None) -> None:
        """A reschedule try ends without a verdict: keep what the next one needs."""
        if self._stored is None:
            return
        warning = self._stored.keep(self.watch, self._continuity, seen_ms=seen_ms, poll_errors=self._poll_errors)
        if warning:
            self.log.warning("%s; the next try judges with what was kept before.", warning)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        if not event:
            raise AirflowFailException("The trigger ended without an event.")
        records = self.finish(context, event)
        return records if self.xcom_detail != "none" else None
