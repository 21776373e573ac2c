"""Console links of a verdict, built on the amazon provider's link classes (which persist their format arguments to
XCom, read back by ``get_link``).

What the links point at is chosen with the verdict (:func:`link_focus`), from the judged jobs themselves, not from
the XCom records: it travels in the trigger's event, and holds with ``xcom_detail="none"`` or a cut record list.

The links are persisted with the verdict only, but Airflow 3 asks every link for its URL each time a try ends
(``finalize`` in the Task SDK's task runner), deferring and rescheduling included: the amazon classes then read an
XCom that is not there yet, and the Task SDK logs an ``XCom not found`` error per link. The task that runs knows
whether it persisted a link (:data:`PERSISTED_LINKS`), so until it has, its links answer "" without asking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links import batch as amazon_batch
from airflow.providers.amazon.aws.links import logs as amazon_logs

from airflow_batch_jobs.policy import one_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
    from airflow_batch_jobs.jobs import JobView
    from airflow_batch_jobs.policy import Decision

# The log group Batch writes to unless the job's logConfiguration names another (awslogs-group).
DEFAULT_LOG_GROUP = "/aws/batch/job"

# The attribute of a running task of this provider that holds the keys of the links it persisted (a frozenset; see
# BatchJobsTaskMixin). An operator without it is not one running here (e.g. Airflow 2's webserver hands links a
# deserialized operator): its links read XCom as the amazon classes do.
PERSISTED_LINKS = "_persisted_links"


class _QuietUntilPersisted:
    """A link of a running task that answers "" without reading XCom until that task has persisted it."""

    key: str

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        persisted = getattr(operator, PERSISTED_LINKS, None)
        if persisted is not None and self.key not in persisted:
            return ""  # no verdict yet (deferred, rescheduled, waiting) or no job to link to: nothing to read
        return super().get_link(operator, ti_key=ti_key)  # type: ignore[misc]


# The amazon classes' names, so their XCom keys (``_link_<class name>``) and button names stay as they were.
class BatchJobDetailsLink(_QuietUntilPersisted, amazon_batch.BatchJobDetailsLink):
    """The job's page in the AWS Batch console."""


class BatchJobQueueLink(_QuietUntilPersisted, amazon_batch.BatchJobQueueLink):
    """The job queue's page in the AWS Batch console."""


class CloudWatchEventsLink(_QuietUntilPersisted, amazon_logs.CloudWatchEventsLink):
    """The job's last attempt's log stream in the CloudWatch console."""


EXTRA_LINKS = (BatchJobDetailsLink(), BatchJobQueueLink(), CloudWatchEventsLink())


def link_focus(decision: Decision) -> JobView | None:
    """The job the links show: the first failed one, else the only one (None: several jobs, none failed). A stand-in
    for one of several aged-out array children (:func:`~airflow_batch_jobs.policy.one_of`) is no job to link to."""
    failed = [job for job in decision.failed if one_of(job) is None]
    if failed:
        return failed[0]
    return decision.jobs[0] if len(decision.jobs) == 1 else None


def link_of(job: JobView) -> dict[str, Any]:
    """What the links of ``job`` point at, JSON-native (it travels in the trigger's event): its id, queue and CloudWatch
    log location (:meth:`~airflow_batch_jobs.jobs.JobView.cloudwatch_log`)."""
    return {"job_id": job.job_id, "job_queue": job.job_queue, "log": job.cloudwatch_log()}


def persist_links(context: Any, operator: Any, hook: BatchJobsHook, target: Mapping[str, Any] | None) -> None:
    """Job details, job queue and CloudWatch log of ``target``. The log link is in the log's own group and region
    (the job's ``awslogs-group`` / ``awslogs-region``, else ``/aws/batch/job`` in the connection's region)."""
    if not target:
        return
    region, partition = hook.conn_region_name, hook.conn_partition
    persisted = {BatchJobDetailsLink.key}
    BatchJobDetailsLink.persist(context, operator, region, partition, job_id=target["job_id"])
    if target.get("job_queue"):
        BatchJobQueueLink.persist(context, operator, region, partition, job_queue_arn=target["job_queue"])
        persisted.add(BatchJobQueueLink.key)
    log = target.get("log")
    if log:
        CloudWatchEventsLink.persist(
            context,
            operator,
            region,
            partition,
            awslogs_region=log.get("awslogs_region") or region,
            awslogs_group=log.get("awslogs_group") or DEFAULT_LOG_GROUP,
            awslogs_stream_name=log["awslogs_stream_name"],
        )
        persisted.add(CloudWatchEventsLink.key)
    if operator.do_xcom_push:  # the amazon classes push nothing otherwise
        setattr(operator, PERSISTED_LINKS, getattr(operator, PERSISTED_LINKS, frozenset()) | persisted)
