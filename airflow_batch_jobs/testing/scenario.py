"""Scenario files: queues, job definitions, outcome rules and jobs to submit over time, in YAML or JSON.

```yaml
profile: realistic                          # simple (default) | realistic: the service's awkward behaviours on
behaviours: {visibility_lag_seconds: 10}    # single switches on top of the profile (see behaviours.Behaviours)
queues: [nightly]                          # names (a compute environment "ce" is made for them)
job_definitions:
  - name: etl                               # container job definition
    retry_strategy: {attempts: 3, evaluateOnExit: [{onExitCode: "137", action: RETRY}, {onReason: "*", action: EXIT}]}
  - {name: etl-ecs, kind: ecs}              # kind: container (default) | ecs | eks | multinode (num_nodes: 3)
                                            # ecs gets a non-essential sidecar with ecs_sidecar, eks an init
                                            # container with eks_init_containers (both on in realistic)
  - {name: etl-loud, log_group: /etl/jobs}  # its containers' logConfiguration awslogs-group (default /aws/batch/job)
outcomes:                                   # first match wins; unmatched jobs succeed
  - match: {name: "etl-load*"}              # name glob, definition (name glob), indices (array children)
    attempts: [{exit_code: 137, reason: "OutOfMemoryError: Container killed due to memory usage", duration: 8},
               {exit_code: 0, duration: 5}]
    # per attempt also: status_reason, containers: {sidecar: 1} (ECS), init_exit_code / init_reason (EKS),
    # log: ["line", ...] (what the container writes to its CloudWatch log stream; unset: a few plausible lines;
    # false: no stream at all)
  - match: {name: "etl-spot"}               # a Spot reclaim: no exit code, the service's status reason
    attempts: [{exit_code: null, status_reason: "Host EC2 (instance i-0123456789abcdef0) terminated."}]
  - {match: {name: "etl-stuck"}, stuck_runnable: true}
submit:                                     # at: seconds after the emulator starts
  - {at: 0, name: etl-extract, queue: nightly, definition: etl}
  - {at: 5, name: etl-load, queue: nightly, definition: etl, depends_on: [etl-extract]}
  - {at: 0, name: fanout, queue: nightly, definition: etl, array_size: 10}
  - {at: 2, name: etl-part, queue: nightly, definition: etl, count: 3}   # etl-part-0 .. etl-part-2
events: true                                # job state-change events to an SQS queue (testing/events.py)
event_faults:                               # shares of events duplicated / held back / lost, seeded; seconds late
  {duplicate: 0.1, reorder: 0.1, reorder_window_seconds: 10, delay_seconds: 1, loss: 0.05,
   unreachable: [{at: 30, seconds: 20, how: error}]}   # the queue answers 503 (how: refuse: closes connections)
```

Other submit keys: ``parameters``, ``environment`` (a mapping, becomes containerOverrides.environment),
``share_identifier``, ``retry_strategy``.

Built-in scenarios ship with the package (``scenarios/NAME.yaml``) and are loaded by name: ``demo`` is the one
``make demo`` runs, so that ``serve --scenario demo`` works from an installed wheel, with no source checkout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_batch_jobs.testing.behaviours import Behaviours
    from airflow_batch_jobs.testing.model import BatchModel

SCENARIO_KEYS = ("profile", "behaviours", "queues", "job_definitions", "outcomes", "submit", "events", "event_faults")
EVENT_FAULT_KEYS = ("duplicate", "reorder", "delay_seconds", "loss", "reorder_window_seconds", "unreachable")
_CONTAINER = {"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]}
BUILT_IN_SUFFIX = ".yaml"


def built_in_scenarios() -> list[str]:
    """The names of the scenarios shipped with the package."""
    folder = resources.files(__package__) / "scenarios"
    return sorted(p.name.removesuffix(BUILT_IN_SUFFIX) for p in folder.iterdir() if p.name.endswith(BUILT_IN_SUFFIX))


def scenario_text(source: str | Path) -> tuple[str, str]:
    """The text of a scenario file, or of the built-in scenario of that name (a file of that name wins), and its
    format ("json" or "yaml")."""
    path = Path(source)
    if path.is_file():
        return path.read_text(), "json" if path.suffix == ".json" else "yaml"
    name = str(source)
    if name in built_in_scenarios():
        return (resources.files(__package__) / "scenarios" / (name + BUILT_IN_SUFFIX)).read_text(), "yaml"
    raise ValueError(
        f"scenario={name!r} is neither a file nor a built-in scenario; give a YAML or JSON file, "
        f"or one of {', '.join(built_in_scenarios())}."
    )


def compute_environment_request(name: str) -> dict[str, Any]:
    """A managed EC2 compute environment (the service requires ``computeResources`` for MANAGED)."""
    return {
        "computeEnvironmentName": name,
        "type": "MANAGED",
        "state": "ENABLED",
        "computeResources": {
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 256,
            "desiredvCpus": 0,
            "instanceTypes": ["optimal"],
            "instanceRole": "ecsInstanceRole",
            "subnets": ["subnet-0emulator"],
            "securityGroupIds": ["sg-0emulator"],
        },
    }


def definition_body(
    name: str, kind: str = "container", num_nodes: int = 2, behaviours: Behaviours | None = None
) -> dict[str, Any]:
    """A RegisterJobDefinition request for a job definition of the given kind."""
    if kind == "container":
        return {"jobDefinitionName": name, "type": "container", "containerProperties": dict(_CONTAINER)}
    if kind == "multinode":
        return {
            "jobDefinitionName": name,
            "type": "multinode",
            "nodeProperties": {
                "numNodes": num_nodes,
                "mainNode": 0,
                "nodeRangeProperties": [{"targetNodes": "0:", "container": dict(_CONTAINER)}],
            },
        }
    if kind == "ecs":
        containers: list[dict[str, Any]] = [{"name": "main", "image": "busybox", "essential": True}]
        if behaviours is not None and behaviours.ecs_sidecar:
            containers.append({"name": "log-router", "image": "fluent-bit", "essential": False})
        return {
            "jobDefinitionName": name,
            "type": "container",
            "ecsProperties": {"taskProperties": [{"containers": containers}]},
            "platformCapabilities": ["FARGATE"],
        }
    if kind == "eks":
        pod: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
        if behaviours is not None and behaviours.eks_init_containers:
            pod["initContainers"] = [{"name": "fetch-inputs", "image": "busybox"}]
        return {"jobDefinitionName": name, "type": "container", "eksProperties": {"podProperties": pod}}
    raise ValueError(f"job definition {name!r}: kind={kind!r}; use container, ecs, eks or multinode.")


@dataclass
class Scenario:
    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        unknown = set(self.data) - set(SCENARIO_KEYS)
        if unknown:
            raise ValueError(f"scenario has unknown keys {sorted(unknown)}; use {', '.join(SCENARIO_KEYS)}")

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any]) -> Scenario:
        """A mapping, a YAML or JSON file, or the name of a built-in scenario (see :func:`built_in_scenarios`)."""
        if isinstance(source, Mapping):
            return cls(source)
        text, kind = scenario_text(source)
        if kind == "json":
            return cls(json.loads(text))
        import yaml

        return cls(yaml.safe_load(text) or {})

    @property
    def profile(self) -> str:
        return str(self.data.get("profile", "simple"))

    @property
    def behaviours(self) -> dict[str, Any]:
        return dict(self.data.get("behaviours") or {})

    @property
    def events(self) -> bool:
        return bool(self.data.get("events", False))

    @property
    def event_faults(self) -> dict[str, Any]:
        faults = dict(self.data.get("event_faults") or {})
        unknown = set(faults) - set(EVENT_FAULT_KEYS)
        if unknown:
            raise ValueError(f"event_faults has unknown keys {sorted(unknown)}; use {', '.join(EVENT_FAULT_KEYS)}")
        return faults

    def apply(self, model: BatchModel) -> None:
        """Create the scenario's resources and outcome rules in ``model`` and schedule its submissions."""
        model.create_compute_environment(compute_environment_request("ce"))
        for queue in self.data.get("queues", []):
            model.create_job_queue(
                {
                    "jobQueueName": queue,
                    "priority": 1,
                    "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}],
                }
            )
        for item in self.data.get("job_definitions", []):
            body = definition_body(
                item["name"], item.get("kind", "container"), item.get("num_nodes", 2), model.behaviours
            )
            if "retry_strategy" in item:
                body["retryStrategy"] = item["retry_strategy"]
            if "log_group" in item:
                _send_logs_to(body, str(item["log_group"]))
            model.register_job_definition(body)
        for rule in self.data.get("outcomes", []):
            match = rule.get("match", {})
            script = {k: v for k, v in rule.items() if k != "match"}
            model.outcomes.add(
                script, name=match.get("name"), definition=match.get("definition"), indices=match.get("indices")
            )
        start = model.clock.now_ms()
        for item in self.data.get("submit", []):
            count = item.get("count")
            names = [f"{item['name']}-{i}" for i in range(count)] if count else [item["name"]]
            for name in names:
                model.schedule(
                    start + int(float(item.get("at", 0)) * 1000),
                    _submit_request(name, item),
                    item.get("depends_on", []),
                )
        model.run_schedule()


def _send_logs_to(body: dict[str, Any], group: str) -> None:
    """Every container of a job definition logs to CloudWatch Logs group ``group`` (``logConfiguration``)."""
    configuration = {"logDriver": "awslogs", "options": {"awslogs-group": group}}
    containers = [body["containerProperties"]] if "containerProperties" in body else []
    for task in (body.get("ecsProperties") or {}).get("taskProperties") or []:
        containers.extend(task.get("containers") or [])
    for node_range in (body.get("nodeProperties") or {}).get("nodeRangeProperties") or []:
        containers.append(node_range["container"])
    if not containers:
        name = body["jobDefinitionName"]
        raise ValueError(
            f"job definition {name!r}: log_group applies to container, ecs and multinode job definitions "
            "(an EKS job logs to its cluster)."
        )
    for container in containers:
        container["logConfiguration"] = dict(configuration)


def _submit_request(name: str, item: Mapping[str, Any]) -> dict[str, Any]:
    req: dict[str, Any] = {"jobName": name, "jobQueue": item["queue"], "jobDefinition": item["definition"]}
    if item.get("array_size"):
        req["arrayProperties"] = {"size": int(item["array_size"])}
    if item.get("parameters"):
        req["parameters"] = dict(item["parameters"])
    if item.get("environment"):
        req["containerOverrides"] = {
            "environment": [{"name": k, "value": str(v)} for k, v in item["environment"].items()]
        }
    if item.get("share_identifier"):
        req["shareIdentifier"] = item["share_identifier"]
    if item.get("retry_strategy"):
        req["retryStrategy"] = item["retry_strategy"]
    return req
