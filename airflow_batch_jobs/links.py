"""Console links of a wait, built on the amazon provider's link classes (which persist their format arguments to
XCom at task end, as Airflow 3 requires)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links.batch import BatchJobDetailsLink, BatchJobQueueLink
from airflow.providers.amazon.aws.links.logs import CloudWatchEventsLink

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook

# The log group Batch writes to unless a job definition's logConfiguration names another.
DEFAULT_LOG_GROUP = "/aws/batch/job"

EXTRA_LINKS = (BatchJobDetailsLink(), BatchJobQueueLink(), CloudWatchEventsLink())


def persist_links(
    context: Any, operator: Any, hook: BatchJobsHook, records: Sequence[dict[str, Any]], failed: int
) -> None:
    """Job details of the first failed job (records come failed first) or the only job, its queue, its log."""
    if not records or not (failed or len(records) == 1):
        return
    focus = records[0]
    region, partition = hook.conn_region_name, hook.conn_partition
    BatchJobDetailsLink.persist(context, operator, region, partition, job_id=focus["job_id"])
    if focus.get("job_queue"):
        BatchJobQueueLink.persist(context, operator, region, partition, job_queue_arn=focus["job_queue"])
    if focus.get("log_stream"):
        CloudWatchEventsLink.persist(
            context,
            operator,
            region,
            partition,
            awslogs_region=region,
            awslogs_group=DEFAULT_LOG_GROUP,
            awslogs_stream_name=focus["log_stream"],
        )
