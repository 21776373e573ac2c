"""What ListJobs and DescribeJobs return for a job: JobSummary, JobDetail and attempt shapes, in full.

Fields follow botocore's output shapes and ``examples-1.json``: a DescribeJobs ``container`` always carries
``environment``, ``mountPoints``, ``ulimits`` and ``volumes``, and ``containerInstanceArn`` once the job was placed
on an EC2 instance; multi-node node jobs carry their node range's container properties; ECS-properties attempts
list every container of the task; EKS attempts list ``initContainers`` beside ``containers``.
"""

from __future__ import annotations

import copy
import hashlib
import random
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.testing.lifecycle import ESSENTIAL_EXITED
from airflow_batch_jobs.testing.logs import LogStreams, StreamRef, log_group
from airflow_batch_jobs.testing.resources import with_container_defaults
from airflow_batch_jobs.testing.rules import ACCOUNT, TERMINAL_STATUSES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_batch_jobs.testing.lifecycle import Job, Lifecycle
    from airflow_batch_jobs.testing.outcomes import AttemptScript

# ECS stops a task's other containers when an essential container exits: SIGTERM (143), SIGKILL after the stop
# timeout (137). Which of the two a sidecar shows is picked by the seed.
SIDECAR_STOP_CODES = (137, 143)


def pick(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: source[k] for k in keys if source.get(k) is not None}


class Shapes:
    """Builds the service's answers for jobs; deterministic under ``seed``."""

    def __init__(self, region: str, seed: int) -> None:
        self.region = region
        self.seed = seed
        self.log_streams = LogStreams()  # every stream an attempt names, for the emulated CloudWatch Logs

    # -- attempts ------------------------------------------------------------------------------------------
    def attempt(self, job: Job, index: int, script: AttemptScript, start: int, stop: int) -> dict[str, Any]:
        task_id = hashlib.sha1(f"{job.job_id}/{index}".encode()).hexdigest()[:32]
        cluster = f"{job.queue.name}-batch-cluster"
        task_arn = f"arn:aws:ecs:{self.region}:{ACCOUNT}:task/{cluster}/{task_id}"
        shape: dict[str, Any] = {
            "startedAt": start,
            "stoppedAt": stop,
            "statusReason": script.status_reason or ESSENTIAL_EXITED,
        }
        kind = job.definition.kind
        if kind == "eks":
            return {**shape, **self._eks_attempt(job, index, script, task_id)}
        placement = {}
        if job.definition.platform == "EC2":
            instance = hashlib.sha1(f"{job.queue.name}/{task_id[:4]}".encode()).hexdigest()[:32]
            placement["containerInstanceArn"] = (
                f"arn:aws:ecs:{self.region}:{ACCOUNT}:container-instance/{cluster}/{instance}"
            )
        if kind == "ecs":
            containers = self._ecs_containers(job, index, script, task_id)
            return {**shape, "taskProperties": [{**placement, "taskArn": task_arn, "containers": containers}]}
        stream = f"{job.definition.name}/default/{task_id}"
        spec = (
            job.definition.node_container(job.node_index)
            if job.node_index is not None
            else job.definition.body.get("containerProperties") or {}
        )
        self.log_streams.register(log_group(spec), stream, StreamRef(job, index, "default"))
        container: dict[str, Any] = {
            **pick({"exitCode": script.exit_code, "reason": script.reason}, "exitCode", "reason"),
            "logStreamName": stream,
            "taskArn": task_arn,
            "networkInterfaces": [],
            **placement,
        }
        return {**shape, "container": container}

    def _ecs_containers(self, job: Job, index: int, script: AttemptScript, task_id: str) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.seed}/{job.job_id}/{index}")
        out = []
        for i, spec in enumerate(self._task_containers(job)):
            name = spec.get("name") or f"container-{i}"
            if name in script.containers:
                outcome: dict[str, Any] = {"exitCode": script.containers[name]}
            elif spec.get("essential", True):
                outcome = {"exitCode": script.exit_code, "reason": script.reason}
            else:
                outcome = {"exitCode": rng.choice(SIDECAR_STOP_CODES)}
            stream = f"{job.definition.name}/{name}/{task_id}"
            self.log_streams.register(log_group(spec), stream, StreamRef(job, index, name, spec.get("essential", True)))
            out.append(
                {
                    "name": name,
                    **pick(outcome, "exitCode", "reason"),
                    "logStreamName": stream,
                    "networkInterfaces": [],
                }
            )
        return out

    @staticmethod
    def _task_containers(job: Job) -> list[dict[str, Any]]:
        tasks = job.definition.body["ecsProperties"].get("taskProperties") or [{}]
        return list(tasks[0].get("containers") or [{"name": "main"}])

    @staticmethod
    def _pod(job: Job) -> dict[str, Any]:
        return dict(job.definition.body["eksProperties"].get("podProperties") or {})

    def _eks_attempt(self, job: Job, index: int, script: AttemptScript, task_id: str) -> dict[str, Any]:
        pod = self._pod(job)
        inits = []
        failed_init = False
        for i, spec in enumerate(pod.get("initContainers") or []):
            name = spec.get("name") or f"init-{i}"
            if failed_init:
                inits.append({"name": name})  # never ran
                continue
            outcome = {"exitCode": script.init_exit_code, "reason": script.init_reason} if i == 0 else {"exitCode": 0}
            inits.append({"name": name, **pick(outcome, "exitCode", "reason")})
            failed_init = outcome["exitCode"] not in (0, None)
        containers = []
        for i, spec in enumerate(pod.get("containers") or [{"name": "main"}]):
            name = spec.get("name") or f"container-{i}"
            if failed_init:
                containers.append({"name": name})  # never started
            elif name in script.containers:
                containers.append({"name": name, **pick({"exitCode": script.containers[name]}, "exitCode")})
            else:
                outcome = {"exitCode": script.exit_code, "reason": script.reason} if i == 0 else {"exitCode": 0}
                containers.append({"name": name, **pick(outcome, "exitCode", "reason")})
        shape: dict[str, Any] = {
            "containers": containers,
            "podName": f"aws-batch.{task_id}",
            "podNamespace": "batch",
            "nodeName": "ip-10-0-0-1.ec2.internal",
            "eksClusterArn": f"arn:aws:eks:{self.region}:{ACCOUNT}:cluster/batch",
        }
        if inits:
            shape["initContainers"] = inits
        return shape

    # -- summaries -----------------------------------------------------------------------------------------
    def summary(self, life: Lifecycle, job: Job, now: int, status: str, reason: str | None) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "jobArn": job.arn,
            "jobId": job.job_id,
            "jobName": job.name,
            "createdAt": life.created_at(job),
            "status": status,
            "jobDefinition": job.definition.arn,
        }
        if reason:
            summary["statusReason"] = reason
        if job.share_identifier:
            summary["shareIdentifier"] = job.share_identifier
        started = life.started_at(job, now)
        if started is not None:
            summary["startedAt"] = started
        stopped = life.stopped_at(job, now)
        if stopped is not None:
            summary["stoppedAt"] = stopped
        attempts = life.finished_attempts(job, now)
        if attempts and status in TERMINAL_STATUSES:
            # ECS properties: the first essential container; EKS: the main container, else a failed init (our reading)
            summary["container"] = pick(self.deciding_container(job, attempts[-1].shape), "exitCode", "reason")
        array = self.array_properties(life, job, now)
        if array is not None:
            summary["arrayProperties"] = array
        if job.num_nodes:
            summary["nodeProperties"] = {"numNodes": job.num_nodes}
        elif job.node_index is not None and job.parent is not None:
            summary["nodeProperties"] = {
                "nodeIndex": job.node_index,
                "isMainNode": job.node_index == self.main_node(job.parent),
                "numNodes": job.parent.num_nodes,
            }
        if job.stop is not None and status == "FAILED":
            summary["isCancelled" if job.stop[2] == "cancel" else "isTerminated"] = True
        return summary

    def deciding_container(self, job: Job, attempt: Mapping[str, Any]) -> Mapping[str, Any]:
        if "container" in attempt:
            return attempt["container"]
        if "taskProperties" in attempt:
            containers = attempt["taskProperties"][0]["containers"]
            specs = {spec.get("name"): spec for spec in self._task_containers(job)}
            essential = [c for c in containers if specs.get(c["name"], {}).get("essential", True)]
            return (essential or containers or [{}])[0]
        main = (attempt.get("containers") or [{}])[0]
        if "exitCode" not in main:
            return next((c for c in attempt.get("initContainers", []) if c.get("exitCode") not in (0, None)), main)
        return main

    @staticmethod
    def main_node(job: Job) -> int:
        return int(job.definition.body["nodeProperties"].get("mainNode", 0))

    # -- details -------------------------------------------------------------------------------------------
    def detail(self, life: Lifecycle, job: Job, now: int) -> dict[str, Any]:
        status, reason = life.state_at(job, now)
        summary = self.summary(life, job, now, status, reason)
        detail: dict[str, Any] = {
            **{k: v for k, v in summary.items() if k not in ("container", "arrayProperties", "nodeProperties")},
            "jobQueue": job.queue.arn,
            "parameters": {**job.definition.body.get("parameters", {}), **job.request.get("parameters", {})},
            "dependsOn": [{"jobId": d} for d in job.depends_on],
            "tags": dict(job.request.get("tags") or {}),
            "propagateTags": bool(job.request.get("propagateTags", False)),
            "platformCapabilities": job.definition.body.get("platformCapabilities", ["EC2"]),
        }
        if job.retry_strategy:
            detail["retryStrategy"] = job.retry_strategy
        if job.definition.body.get("timeout") or job.request.get("timeout"):
            detail["timeout"] = job.request.get("timeout") or job.definition.body["timeout"]
        attempts = [a.shape for a in life.finished_attempts(job, now)]
        current = life.current_attempt(job, now)
        running = self._so_far(current.shape, ended=current.stopped_at <= now) if current is not None else {}
        kind = job.definition.kind
        if kind == "eks":
            detail["eksAttempts"] = attempts
            detail["eksProperties"] = self._eks_properties(job, running)
        else:
            detail["attempts"] = attempts
        if kind == "ecs":
            detail["ecsProperties"] = self._ecs_properties(job, running)
        if kind == "container" or job.node_index is not None:
            detail["container"] = self._container(job, running)
        if job.num_nodes:
            node_properties = job.definition.body["nodeProperties"]
            detail["nodeProperties"] = {
                "numNodes": job.num_nodes,
                "mainNode": self.main_node(job),
                "nodeRangeProperties": [
                    {**r, "container": with_container_defaults(r.get("container") or {})}
                    for r in node_properties.get("nodeRangeProperties", [])
                ],
            }
        if job.node_index is not None and job.parent is not None:
            detail["nodeDetails"] = {
                "nodeIndex": job.node_index,
                "isMainNode": job.node_index == self.main_node(job.parent),
            }
        array = self.array_properties(life, job, now)
        if array is not None:
            detail["arrayProperties"] = array
        return detail

    @staticmethod
    def array_properties(life: Lifecycle, job: Job, now: int) -> dict[str, Any] | None:
        """A parent's size and (once its children exist) their lagging status summary; a child's index."""
        if job.array_size:
            properties: dict[str, Any] = {"size": job.array_size}
            if job.children and life.timeline(job).release_at is not None:
                properties["statusSummary"] = life.status_summary(job, now)
                properties["statusSummaryLastUpdatedAt"] = life.summary_time(job, now)
            return properties
        return {"index": job.array_index} if job.array_index is not None else None

    @staticmethod
    def _so_far(attempt: Mapping[str, Any], *, ended: bool) -> dict[str, Any]:
        """An attempt as it stands: exit codes and reasons exist only once it ended ("returned upon completion")."""
        if ended:
            return dict(attempt)
        outcome = ("exitCode", "reason")

        def running(container: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in container.items() if k not in outcome}

        shape = dict(attempt)
        if "container" in shape:
            shape["container"] = running(shape["container"])
        if "taskProperties" in shape:
            shape["taskProperties"] = [
                {**task, "containers": [running(c) for c in task["containers"]]} for task in shape["taskProperties"]
            ]
        for key in ("containers", "initContainers"):
            if key in shape:
                shape[key] = [running(c) for c in shape[key]]
        return shape

    def _container(self, job: Job, running: Mapping[str, Any]) -> dict[str, Any]:
        if job.node_index is not None:
            container = job.definition.node_container(job.node_index)
        else:
            container = with_container_defaults(job.definition.body.get("containerProperties") or {})
        overrides = job.request.get("containerOverrides") or {}
        if overrides.get("environment"):
            container["environment"] = [*container["environment"], *copy.deepcopy(overrides["environment"])]
        for key in ("command", "resourceRequirements", "instanceType"):
            if overrides.get(key):
                container[key] = copy.deepcopy(overrides[key])
        runtime = running.get("container") or {}
        return {
            **container,
            **pick(runtime, "exitCode", "reason", "logStreamName", "taskArn", "containerInstanceArn"),
            "networkInterfaces": [],
        }

    def _ecs_properties(self, job: Job, running: Mapping[str, Any]) -> dict[str, Any]:
        properties = copy.deepcopy(job.definition.body["ecsProperties"])
        tasks = properties.get("taskProperties") or [{"containers": [{"name": "main"}]}]
        runtime_task = (running.get("taskProperties") or [{}])[0]
        by_name = {c["name"]: c for c in runtime_task.get("containers", [])}
        for i, spec in enumerate(tasks[0].get("containers") or []):
            runtime = by_name.get(spec.get("name") or f"container-{i}", {})
            for key in ("environment", "mountPoints", "ulimits"):  # TaskContainerDetails has no volumes
                spec.setdefault(key, [])
            spec.update(pick(runtime, "exitCode", "reason", "logStreamName"))
        tasks[0].update(pick(runtime_task, "taskArn", "containerInstanceArn"))
        properties["taskProperties"] = tasks
        return properties

    def _eks_properties(self, job: Job, running: Mapping[str, Any]) -> dict[str, Any]:
        properties = copy.deepcopy(job.definition.body["eksProperties"])
        pod = properties.setdefault("podProperties", {})
        for key in ("containers", "initContainers"):
            by_name = {c["name"]: c for c in running.get(key, [])}
            for spec in pod.get(key) or []:
                spec.update(pick(by_name.get(spec.get("name"), {}), "exitCode", "reason"))
        if running:
            pod.update(pick(running, "podName", "nodeName"))
        return properties
