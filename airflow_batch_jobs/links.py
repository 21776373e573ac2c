"""Console links of a verdict, built on the amazon provider's link classes (which persist their format arguments to
XCom at task end, as Airflow 3 requires).

What the links point at is chosen with the verdict (:func:`link_target`), from the judged jobs themselves, not from
the XCom records: it travels in the trigger's event, and holds with ``xcom_detail="none"`` or a cut record list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links.batch import BatchJobDetailsLink, BatchJobQueueLink
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

from airflow_batch_jobs.policy import one_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
    from airflow_batch_jobs.policy import Decision

# The log group Batch writes to unless the job's logConfiguration names another (awslogs-group).
DEFAULT_LOG_GROUP = "/aws/batch/job"

EXTRA_LINKS = (BatchJobDetailsLink(), BatchJobQueueLink(), CloudWatchEventsLink())


def link_target(decision: Decision) -> dict[str, Any] | None:
    """The job the links show: the first failed one, else the only one (None: several jobs, none failed). JSON-native:
    its id, queue and CloudWatch log location (:meth:`~airflow_batch_jobs.jobs.JobView.cloudwatch_log`). A stand-in
    for one of several aged-out array children (:func:`~airflow_batch_jobs.policy.one_of`) is no job to link to."""
    failed = [job for job in decision.failed if one_of(job) is None]
    if failed:
        focus = failed[0]
    elif len(decision.jobs) == 1:
        focus = decision.jobs[0]
    else:
        return None
    return {"job_id": focus.job_id, "job_queue": focus.job_queue, "log": focus.cloudwatch_log()}


def persist_links(context: Any, operator: Any, hook: BatchJobsHook, target: Mapping[str, Any] | None) -> None:
    """Job details, job queue and CloudWatch log of ``target``. The log link is in the log's own group and region
    (the job's ``awslogs-group`` / ``awslogs-region``, else ``/aws/batch/job`` in the connection's region)."""
    if not target:
        return
    region, partition = hook.conn_region_name, hook.conn_partition
    BatchJobDetailsLink.persist(context, operator, region, partition, job_id=target["job_id"])
    if target.get("job_queue"):
        BatchJobQueueLink.persist(context, operator, region, partition, job_queue_arn=target["job_queue"])
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
