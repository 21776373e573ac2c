"""Compute environments, job queues and job definitions, answered in full as the service describes them.

Shapes follow botocore's model and the outputs in its ``examples-1.json``: queues list compute environments by
ARN, descriptions carry ``status`` / ``statusReason``, managed compute environments their ``computeResources``
and ECS cluster, and container properties always carry ``environment``, ``mountPoints``, ``ulimits`` and
``volumes`` (empty lists when the request had none).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.testing.errors import BatchServiceError
from airflow_batch_jobs.testing.rules import ACCOUNT, arn

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_batch_jobs.testing.lifecycle import Job

CONTAINER_LIST_DEFAULTS = ("environment", "mountPoints", "ulimits", "volumes")


def with_container_defaults(container: Mapping[str, Any]) -> dict[str, Any]:
    """Container properties as the service returns them: the list fields present even when empty."""
    full = copy.deepcopy(dict(container))
    for key in CONTAINER_LIST_DEFAULTS:
        full.setdefault(key, [])
    return full


@dataclass
class Queue:
    name: str
    arn: str
    priority: int
    state: str = "ENABLED"
    compute_environments: list[dict[str, Any]] = field(default_factory=list)
    scheduling_policy_arn: str | None = None
    # top-level jobs (no array children, no MNP nodes), oldest first
    jobs: list[Job] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "jobQueueName": self.name,
            "jobQueueArn": self.arn,
            "state": self.state,
            "status": "VALID",
            "statusReason": "JobQueue Healthy",
            "priority": self.priority,
            "computeEnvironmentOrder": [dict(entry) for entry in self.compute_environments],
            "tags": {},
        }
        if self.scheduling_policy_arn:
            detail["schedulingPolicyArn"] = self.scheduling_policy_arn
        return detail


@dataclass
class JobDefinition:
    name: str
    revision: int
    arn: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        if self.body.get("ecsProperties"):
            return "ecs"
        if self.body.get("eksProperties"):
            return "eks"
        if self.body.get("nodeProperties"):
            return "multinode"
        return "container"

    @property
    def platform(self) -> str:
        return "FARGATE" if "FARGATE" in self.body.get("platformCapabilities", []) else "EC2"

    def node_container(self, node_index: int) -> dict[str, Any]:
        """The container properties of the node range that holds ``node_index`` (``"0:"``, ``"1:3"``, ``"2"``)."""
        for node_range in self.body["nodeProperties"].get("nodeRangeProperties", []):
            start, sep, end = str(node_range.get("targetNodes", "")).partition(":")
            low = int(start) if start else 0
            high = (int(end) if end else 10_000) if sep else low
            if low <= node_index <= high:
                return with_container_defaults(node_range.get("container") or {})
        return with_container_defaults({})

    def describe(self) -> dict[str, Any]:
        body = copy.deepcopy({k: v for k, v in self.body.items() if k != "jobDefinitionName"})
        if "containerProperties" in body:
            body["containerProperties"] = with_container_defaults(body["containerProperties"])
        for node_range in (body.get("nodeProperties") or {}).get("nodeRangeProperties", []):
            if "container" in node_range:
                node_range["container"] = with_container_defaults(node_range["container"])
        return {
            **body,
            "jobDefinitionName": self.name,
            "jobDefinitionArn": self.arn,
            "revision": self.revision,
            "status": "ACTIVE",
            "parameters": body.get("parameters", {}),
            "tags": body.get("tags", {}),
            "platformCapabilities": body.get("platformCapabilities", ["EC2"]),
            "containerOrchestrationType": "EKS" if self.kind == "eks" else "ECS",
        }


class Resources:
    """The account's compute environments, queues and job definitions in one region."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.compute_environments: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, Queue] = {}
        self.definitions: dict[str, list[JobDefinition]] = {}

    # -- compute environments ------------------------------------------------------------------------------
    def create_compute_environment(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = req["computeEnvironmentName"]
        if name in self.compute_environments:
            raise BatchServiceError(f"Object already exists: {name}")
        if req.get("type") == "MANAGED" and not req.get("computeResources"):
            raise BatchServiceError("computeResources must be specified for a MANAGED compute environment.")
        ce_arn = arn(self.region, "compute-environment", name)
        cluster = f"{name}_Batch_{hashlib.sha1(ce_arn.encode()).hexdigest()[:8]}"
        detail = {
            **copy.deepcopy(dict(req)),
            "computeEnvironmentArn": ce_arn,
            "ecsClusterArn": f"arn:aws:ecs:{self.region}:{ACCOUNT}:cluster/{cluster}",
            "status": "VALID",
            "statusReason": "ComputeEnvironment Healthy",
            "state": req.get("state", "ENABLED"),
            "containerOrchestrationType": "ECS",
            "tags": dict(req.get("tags") or {}),
        }
        if req.get("type") == "MANAGED":
            detail.setdefault(
                "serviceRole",
                f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch",
            )
        self.compute_environments[name] = detail
        return {"computeEnvironmentName": name, "computeEnvironmentArn": ce_arn}

    def describe_compute_environments(self, req: Mapping[str, Any]) -> dict[str, Any]:
        wanted = req.get("computeEnvironments") or list(self.compute_environments)
        found = (self.compute_environments.get(ref.split("compute-environment/")[-1]) for ref in wanted)
        return {"computeEnvironments": [copy.deepcopy(env) for env in found if env is not None]}

    # -- job queues ----------------------------------------------------------------------------------------
    def create_job_queue(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = req["jobQueueName"]
        if name in self.queues:
            raise BatchServiceError(f"Object already exists: {name}")
        order = []
        for entry in req.get("computeEnvironmentOrder", []):
            env = self.compute_environments.get(str(entry["computeEnvironment"]).split("compute-environment/")[-1])
            if env is None:
                raise BatchServiceError(f"Compute environment {entry['computeEnvironment']} does not exist.")
            order.append({"order": entry["order"], "computeEnvironment": env["computeEnvironmentArn"]})
        queue = Queue(
            name=name,
            arn=arn(self.region, "job-queue", name),
            priority=req["priority"],
            state=req.get("state", "ENABLED"),
            compute_environments=order,
            scheduling_policy_arn=req.get("schedulingPolicyArn"),
        )
        self.queues[name] = queue
        return {"jobQueueName": name, "jobQueueArn": queue.arn}

    def queue(self, name_or_arn: str) -> Queue:
        queue = self.queues.get(name_or_arn.split("job-queue/")[-1])
        if queue is None:
            raise BatchServiceError(f"Job queue {name_or_arn} does not exist.")
        return queue

    def describe_job_queues(self, req: Mapping[str, Any]) -> dict[str, Any]:
        wanted = req.get("jobQueues") or list(self.queues)
        found = (self.queues.get(ref.split("job-queue/")[-1]) for ref in wanted)
        return {"jobQueues": [queue.describe() for queue in found if queue is not None]}

    # -- job definitions -----------------------------------------------------------------------------------
    def register_job_definition(self, req: Mapping[str, Any]) -> dict[str, Any]:
        name = req["jobDefinitionName"]
        revisions = self.definitions.setdefault(name, [])
        revision = len(revisions) + 1
        definition_arn = arn(self.region, "job-definition", f"{name}:{revision}")
        revisions.append(JobDefinition(name=name, revision=revision, arn=definition_arn, body=copy.deepcopy(dict(req))))
        return {"jobDefinitionName": name, "jobDefinitionArn": definition_arn, "revision": revision}

    def definition(self, ref: str) -> JobDefinition:
        tail = ref.split("job-definition/")[-1]
        name, _, revision = tail.partition(":")
        revisions = self.definitions.get(name)
        if not revisions:
            raise BatchServiceError(f"Job definition {ref} does not exist.")
        if not revision:
            return revisions[-1]
        if not revision.isdigit() or not 1 <= int(revision) <= len(revisions):
            raise BatchServiceError(f"Job definition {ref} does not exist.")
        return revisions[int(revision) - 1]

    def describe_job_definitions(self, req: Mapping[str, Any]) -> dict[str, Any]:
        if req.get("jobDefinitions"):
            found = [self.definition(ref) for ref in req["jobDefinitions"]]
        else:
            name = req.get("jobDefinitionName")
            found = [d for n, revisions in self.definitions.items() if name in (None, n) for d in revisions]
        return {"jobDefinitions": [d.describe() for d in found]}
