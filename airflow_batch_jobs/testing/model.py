"""An in-memory model of AWS Batch: compute environments, queues, job definitions and jobs with scripted lives.

Job lifecycles are computed, not stepped: when a job is released (submitted, dependencies met) its whole timeline
(statuses, attempts, exit codes) follows from its scripted outcome and ``retryStrategy``, and its state at any
moment is a lookup. This keeps 10,000 jobs cheap and lets a test jump the clock by hours.
"""

from __future__ import annotations

import base64
import bisect
import fnmatch
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.query import ALL_STATUSES, definition_matches, name_matches
from airflow_batch_jobs.testing.clock import Clock, ManualClock
from airflow_batch_jobs.testing.outcomes import AttemptScript, JobScript, OutcomeRules

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

ACCOUNT = "123456789012"
FILTER_NAMES = ("JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER")
DEFAULT_RETENTION_S = 7 * 24 * 3600


class BatchServiceError(Exception):
    """An error in the service's form: error code, HTTP status, message."""

    def __init__(self, message: str, code: str = "ClientException", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass
class Queue:
    name: str
    arn: str
    priority: int
    state: str = "ENABLED"
    compute_environments: list[dict[str, Any]] = field(default_factory=list)
    scheduling_policy_arn: str | None = None
    # top-level jobs (no array children, no MNP nodes), in creation order
    jobs: list[Job] = field(default_factory=list)


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


@dataclass
class Timeline:
    """A job's computed life: (time, status, statusReason) transitions and attempts with their end times."""

    transitions: list[tuple[int, str, str | None]]
    attempts: list[dict[str, Any]]
    started_at: int | None = None
    stopped_at: int | None = None


@dataclass
class Job:
    job_id: str
    name: str
    queue: Queue
    definition: JobDefinition
    created_at: int
    request: dict[str, Any]
    script: JobScript
    share_identifier: str | None = None
    depends_on: list[str] = field(default_factory=list)
    parent: Job | None = None
    array_index: int | None = None
    node_index: int | None = None
    children: list[Job] = field(default_factory=list)
    array_size: int | None = None
    num_nodes: int | None = None
    cancel: tuple[int, str, str] | None = None  # (time, reason, "cancel" | "terminate")
    timeline: Timeline | None = None

    @property
    def arn(self) -> str:
        region = self.queue.arn.split(":")[3]
        return f"arn:aws:batch:{region}:{ACCOUNT}:job/{self.job_id}"

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.created_at, self.job_id)


def encode_token(position: tuple[int, str], fingerprint: str) -> str:
    raw = json.dumps([position[0], position[1], fingerprint]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str, fingerprint: str) -> tuple[int, str]:
    try:
        created, job_id, seen = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as err:
        raise BatchServiceError("The nextToken is invalid.") from err
    if seen != fingerprint:
        raise BatchServiceError("The nextToken does not belong to this request.")
    return int(created), str(job_id)


class BatchModel:
    """The service's state and rules. Thread-safe: every public call holds one lock."""

    def __init__(
        self,
        clock: Clock | None = None,
        outcomes: OutcomeRules | None = None,
        region: str = "us-east-1",
        retention_seconds: float = DEFAULT_RETENTION_S,
    ) -> None:
        self.clock = clock or ManualClock()
        self.outcomes = outcomes or OutcomeRules()
        self.region = region
        self.retention_ms = int(retention_seconds * 1000)
        self.compute_environments: dict[str, dict[str, Any]] = {}
        self.queues: dict[str, Queue] = {}
        self.definitions: dict[str, list[JobDefinition]] = {}
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self._ids = 0
        # (due epoch ms, sequence, SubmitJob request, names of jobs it depends on) from a scenario
        self.scheduled: list[tuple[int, int, dict[str, Any], list[str]]] = []
        self.ids_by_name: dict[str, str] = {}

    # -- resources -----------------------------------------------------------------------------------------
    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:batch:{self.region}:{ACCOUNT}:{kind}/{name}"

    def create_compute_environment(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            name = req["computeEnvironmentName"]
            if name in self.compute_environments:
                raise BatchServiceError(f"Object already exists: {name}")
            arn = self._arn("compute-environment", name)
            self.compute_environments[name] = {
                **req,
                "computeEnvironmentArn": arn,
                "status": "VALID",
                "state": req.get("state", "ENABLED"),
            }
            return {"computeEnvironmentName": name, "computeEnvironmentArn": arn}

    def describe_compute_environments(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            wanted = req.get("computeEnvironments") or list(self.compute_environments)
            envs = [
                self.compute_environments[n.split("/")[-1]]
                for n in wanted
                if n.split("/")[-1] in self.compute_environments
            ]
            return {"computeEnvironments": envs}

    def create_job_queue(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            name = req["jobQueueName"]
            if name in self.queues:
                raise BatchServiceError(f"Object already exists: {name}")
            queue = Queue(
                name=name,
                arn=self._arn("job-queue", name),
                priority=req["priority"],
                state=req.get("state", "ENABLED"),
                compute_environments=list(req.get("computeEnvironmentOrder", [])),
                scheduling_policy_arn=req.get("schedulingPolicyArn"),
            )
            self.queues[name] = queue
            return {"jobQueueName": name, "jobQueueArn": queue.arn}

    def _queue(self, name_or_arn: str) -> Queue:
        queue = self.queues.get(name_or_arn.split("job-queue/")[-1])
        if queue is None:
            raise BatchServiceError(f"Job queue {name_or_arn} does not exist.")
        return queue

    def describe_job_queues(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            wanted = req.get("jobQueues") or list(self.queues)
            out = []
            for name in wanted:
                queue = self.queues.get(name.split("job-queue/")[-1])
                if queue is not None:
                    out.append(
                        {
                            "jobQueueName": queue.name,
                            "jobQueueArn": queue.arn,
                            "state": queue.state,
                            "status": "VALID",
                            "priority": queue.priority,
                            "computeEnvironmentOrder": queue.compute_environments,
                        }
                    )
            return {"jobQueues": out}

    def register_job_definition(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            name = req["jobDefinitionName"]
            revisions = self.definitions.setdefault(name, [])
            revision = len(revisions) + 1
            arn = self._arn("job-definition", f"{name}:{revision}")
            revisions.append(JobDefinition(name=name, revision=revision, arn=arn, body=dict(req)))
            return {"jobDefinitionName": name, "jobDefinitionArn": arn, "revision": revision}

    def _definition(self, ref: str) -> JobDefinition:
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
        with self.lock:
            if req.get("jobDefinitions"):
                defs = [self._definition(ref) for ref in req["jobDefinitions"]]
            else:
                name = req.get("jobDefinitionName")
                defs = [d for n, revs in self.definitions.items() if name in (None, n) for d in revs]
            return {
                "jobDefinitions": [
                    {
                        **{k: v for k, v in d.body.items() if k != "jobDefinitionName"},
                        "jobDefinitionName": d.name,
                        "jobDefinitionArn": d.arn,
                        "revision": d.revision,
                        "status": "ACTIVE",
                    }
                    for d in defs
                ]
            }

    # -- jobs ----------------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        self._ids += 1
        return str(uuid.UUID(int=self._ids + (0xBA7C4 << 96)))

    def schedule(self, due_ms: int, req: Mapping[str, Any], depends_on_names: Sequence[str] = ()) -> None:
        """Submit ``req`` once the clock reaches ``due_ms`` (created then, whenever the next request comes)."""
        with self.lock:
            bisect.insort(self.scheduled, (due_ms, len(self.scheduled), dict(req), list(depends_on_names)))

    def run_schedule(self) -> None:
        with self.lock:
            now = self.clock.now_ms()
            while self.scheduled and self.scheduled[0][0] <= now:
                due, _, req, names = self.scheduled.pop(0)
                deps = [{"jobId": self.ids_by_name[n]} for n in names if n in self.ids_by_name]
                self.submit_job({**req, "dependsOn": [*req.get("dependsOn", []), *deps]}, created_at=due)

    def script_job(self, job_id: str, script: JobScript) -> None:
        with self.lock:
            job = self.jobs[job_id]
            job.script = script
            for target in (job, *job.children):
                target.script = script
                target.timeline = None
            self._forget_dependents()

    def submit_job(self, req: Mapping[str, Any], created_at: int | None = None) -> dict[str, Any]:
        with self.lock:
            queue = self._queue(req["jobQueue"])
            definition = self._definition(req["jobDefinition"])
            depends_on = [d["jobId"] for d in req.get("dependsOn", [])]
            for dep in depends_on:
                if dep not in self.jobs:
                    raise BatchServiceError(f"Dependent job {dep} does not exist.")
            size = (req.get("arrayProperties") or {}).get("size")
            if size is not None and not 2 <= size <= 10_000:
                raise BatchServiceError("Array size must be between 2 and 10000.")
            job = Job(
                job_id=self._new_id(),
                name=req["jobName"],
                queue=queue,
                definition=definition,
                created_at=created_at if created_at is not None else self.clock.now_ms(),
                request=dict(req),
                script=self.outcomes.script_for(req["jobName"], definition.name),
                share_identifier=req.get("shareIdentifier"),
                depends_on=depends_on,
                array_size=size,
            )
            if definition.kind == "multinode":
                job.num_nodes = int(definition.body["nodeProperties"]["numNodes"])
            self.jobs[job.job_id] = job
            bisect.insort(queue.jobs, job, key=lambda j: j.sort_key)  # kept oldest first for paging
            self.ids_by_name[job.name] = job.job_id
            return {"jobArn": job.arn, "jobName": job.name, "jobId": job.job_id}

    def _spawn_children(self, parent: Job, at: int) -> None:
        """Array children (``<id>:<i>``) or MNP nodes (``<id>#<n>``), made when the parent leaves SUBMITTED."""
        if parent.children:
            return
        if parent.array_size:
            for index in range(parent.array_size):
                child = self._child(parent, f"{parent.job_id}:{index}", at)
                child.array_index = index
                child.script = self.outcomes.script_for(parent.name, parent.definition.name, index)
        elif parent.num_nodes:
            for node in range(parent.num_nodes):
                child = self._child(parent, f"{parent.job_id}#{node}", at)
                child.node_index = node
        parent.children.sort(key=lambda c: c.sort_key)  # ListJobs pages through them in this order

    def _child(self, parent: Job, job_id: str, at: int) -> Job:
        child = Job(
            job_id=job_id,
            name=parent.name,
            queue=parent.queue,
            definition=parent.definition,
            created_at=at,
            request=parent.request,
            script=parent.script,
            share_identifier=parent.share_identifier,
            parent=parent,
        )
        parent.children.append(child)
        self.jobs[job_id] = child
        return child

    def stop_job(self, req: Mapping[str, Any], how: str) -> dict[str, Any]:
        """CancelJob (jobs not yet STARTING) and TerminateJob (any active job)."""
        with self.lock:
            job = self.jobs.get(req["jobId"])
            if job is None:
                raise BatchServiceError(f"Job {req['jobId']} does not exist.")
            now = self.clock.now_ms()
            status = self.status_at(job, now)
            targets = [job, *job.children]
            if status in ("SUCCEEDED", "FAILED"):
                return {}
            if how == "cancel" and status in ("STARTING", "RUNNING"):
                return {}  # the service ignores a cancel once the job started
            for target in targets:
                if target.cancel is None:
                    target.cancel = (now, req["reason"], how)
                    target.timeline = None
            self._forget_dependents()
            return {}

    def _forget_dependents(self) -> None:
        """A stopped job changes the timelines of jobs that depend on it: let them be recomputed."""
        for job in self.jobs.values():
            if job.depends_on:
                job.timeline = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def timeline(self, job: Job) -> Timeline:
        if job.timeline is None:
            job.timeline = self._compute_timeline(job)
        return job.timeline

    def _compute_timeline(self, job: Job) -> Timeline:
        script = job.script
        t = job.created_at
        trans: list[tuple[int, str, str | None]] = []
        if job.parent is None:
            trans.append((t, "SUBMITTED", None))
            t += script.submitted_ms
        trans.append((t, "PENDING", None))
        attempts: list[dict[str, Any]] = []
        timeline = Timeline(transitions=trans, attempts=attempts)
        release = t + script.pending_ms
        for dep_id in job.depends_on:
            dep = self.timeline(self.jobs[dep_id])
            last_t, last_status, _ = dep.transitions[-1]
            if last_status not in ("SUCCEEDED", "FAILED"):
                return self._apply_stop(job, timeline)  # waits for ever (or until stopped)
            if last_status == "FAILED":
                trans.append((max(last_t, release), "FAILED", f"Dependent Job {dep_id} failed"))
                timeline.stopped_at = trans[-1][0]
                return self._apply_stop(job, timeline)
            release = max(release, last_t)
        if job.array_size or job.num_nodes:
            return timeline  # a parent's later statuses follow its children
        t = release
        max_tries = int(
            (job.request.get("retryStrategy") or job.definition.body.get("retryStrategy") or {}).get("attempts", 1)
        )
        for index in range(max_tries):
            trans.append((t, "RUNNABLE", script.runnable_reason))
            if script.stuck_runnable:
                break
            t += script.runnable_ms
            trans.append((t, "STARTING", None))
            t += script.starting_ms
            attempt = script.attempt(index)
            trans.append((t, "RUNNING", None))
            if timeline.started_at is None:
                timeline.started_at = t
            start = t
            t += attempt.duration_ms
            attempts.append(self._attempt_shape(job, index, attempt, start, t))
            if attempt.exit_code == 0:
                trans.append((t, "SUCCEEDED", "Essential container in task exited"))
                break
            if index + 1 >= max_tries or not self._retries(job, attempt):
                trans.append((t, "FAILED", attempt.status_reason or "Essential container in task exited"))
                break
        if trans[-1][1] in ("SUCCEEDED", "FAILED"):
            timeline.stopped_at = trans[-1][0]
        return self._apply_stop(job, timeline)

    def _retries(self, job: Job, attempt: AttemptScript) -> bool:
        """retryStrategy.evaluateOnExit: glob patterns, the first matching rule decides; none matching = retry."""
        strategy = job.request.get("retryStrategy") or job.definition.body.get("retryStrategy") or {}
        for rule in strategy.get("evaluateOnExit", []):
            checks = [
                (rule.get("onExitCode"), "" if attempt.exit_code is None else str(attempt.exit_code)),
                (rule.get("onReason"), attempt.reason or ""),
                (rule.get("onStatusReason"), attempt.status_reason or "Essential container in task exited"),
            ]
            if all(pattern is None or fnmatch.fnmatchcase(value, pattern) for pattern, value in checks):
                return str(rule["action"]).upper() == "RETRY"
        return True

    def _apply_stop(self, job: Job, timeline: Timeline) -> Timeline:
        """Cut a timeline at a CancelJob / TerminateJob."""
        if job.cancel is None:
            return timeline
        at, reason, _how = job.cancel
        kept = [tr for tr in timeline.transitions if tr[0] <= at]
        if kept and kept[-1][1] in ("SUCCEEDED", "FAILED"):
            return timeline
        running_since = kept[-1][0] if kept and kept[-1][1] == "RUNNING" else None
        attempts = [a for a in timeline.attempts if a["stoppedAt"] <= at]
        if running_since is not None:
            attempts.append(
                self._attempt_shape(job, len(attempts), AttemptScript(None, "Terminated", reason, 0), running_since, at)
            )
        kept.append((at, "FAILED", reason))
        stopped = Timeline(kept, attempts, timeline.started_at if running_since or attempts else None, at)
        return stopped

    def _attempt_shape(self, job: Job, index: int, attempt: AttemptScript, start: int, stop: int) -> dict[str, Any]:
        task = f"{job.job_id.replace(':', '-').replace('#', '-')}-{index}"
        log = f"{job.definition.name}/default/{hashlib.sha1(task.encode()).hexdigest()[:32]}"
        container: dict[str, Any] = {
            "logStreamName": log,
            "taskArn": f"arn:aws:ecs:{self.region}:{ACCOUNT}:task/{task}",
        }
        if attempt.exit_code is not None:
            container["exitCode"] = attempt.exit_code
        if attempt.reason:
            container["reason"] = attempt.reason
        shape: dict[str, Any] = {"startedAt": start, "stoppedAt": stop}
        if attempt.status_reason:
            shape["statusReason"] = attempt.status_reason
        kind = job.definition.kind
        if kind == "ecs":
            shape["taskProperties"] = [
                {
                    "taskArn": container["taskArn"],
                    "containers": [{"name": "main", **_pick(container, "exitCode", "reason", "logStreamName")}],
                }
            ]
        elif kind == "eks":
            shape["containers"] = [{"name": "main", **_pick(container, "exitCode", "reason")}]
            shape["podName"] = f"aws-batch.{task}"
            shape["nodeName"] = "ip-10-0-0-1.ec2.internal"
        else:
            shape["container"] = container
        return shape

    def status_at(self, job: Job, now: int) -> str:
        return self.state_at(job, now)[0]

    def state_at(self, job: Job, now: int) -> tuple[str, str | None]:
        """(status, statusReason) of a job at ``now``."""
        timeline = self.timeline(job)
        i = bisect.bisect_right(timeline.transitions, now, key=lambda tr: tr[0]) - 1
        _, status, reason = timeline.transitions[max(i, 0)]
        if (job.array_size or job.num_nodes) and status == "PENDING":
            self._spawn_children(job, timeline.transitions[-1][0])
            return self._parent_state(job, now)
        return status, reason

    def _parent_state(self, job: Job, now: int) -> tuple[str, str | None]:
        if job.num_nodes:
            main = job.children[0]
            return self.state_at(main, now)
        counts = self._status_summary(job, now)
        if counts["SUCCEEDED"] + counts["FAILED"] < len(job.children):
            return "PENDING", None
        if counts["FAILED"]:
            return "FAILED", f"Array Child Job failed ({counts['FAILED']} of {len(job.children)})"
        return "SUCCEEDED", None

    def _status_summary(self, job: Job, now: int) -> dict[str, int]:
        counts = dict.fromkeys(ALL_STATUSES, 0)
        for child in job.children:
            counts[self.status_at(child, now)] += 1
        return counts

    def _stopped_at(self, job: Job, now: int) -> int | None:
        if job.children and job.array_size:
            stops = [self._stopped_at(c, now) for c in job.children]
            return max(s for s in stops if s is not None) if all(s is not None for s in stops) else None
        if job.children:
            return self._stopped_at(job.children[0], now)
        stopped = self.timeline(job).stopped_at
        return stopped if stopped is not None and stopped <= now else None

    def _visible(self, job: Job, now: int) -> bool:
        """False once a finished job has passed the retention period."""
        if job.created_at > now:
            return False
        stopped = self._stopped_at(job, now)
        return stopped is None or now - stopped <= self.retention_ms

    def _finished_attempts(self, job: Job, now: int) -> list[dict[str, Any]]:
        source = job.children[0] if job.num_nodes and job.children else job
        return [a for a in self.timeline(source).attempts if a["stoppedAt"] <= now]

    # -- ListJobs ------------------------------------------------------------------------------------------
    def list_jobs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self.clock.now_ms()
            selectors = [k for k in ("jobQueue", "arrayJobId", "multiNodeJobId") if req.get(k)]
            if len(selectors) != 1:
                raise BatchServiceError("Exactly one of jobQueue, arrayJobId or multiNodeJobId must be specified.")
            filters = req.get("filters") or []
            if len(filters) > 1:
                raise BatchServiceError("Only one filter key-value pair can be specified.")
            flt = filters[0] if filters else None
            if flt is not None:
                self._check_filter(flt)
            status = req.get("jobStatus")
            if status is not None and status not in ALL_STATUSES:
                raise BatchServiceError(f"Invalid jobStatus {status}.")
            limit = MAX_PAGE_WITH_FILTER if flt else MAX_PAGE_WITH_STATUS
            max_results = req.get("maxResults", limit)
            if not 1 <= max_results <= limit:
                raise BatchServiceError(f"maxResults must be between 1 and {limit}.")

            selector = selectors[0]
            if selector == "jobQueue":
                candidates = self._queue(req["jobQueue"]).jobs
            else:
                parent = self.jobs.get(req[selector])
                if parent is None:
                    raise BatchServiceError(f"Job {req[selector]} does not exist.")
                self.status_at(parent, now)  # spawns children once the parent is PENDING
                wanted = parent.array_size if selector == "arrayJobId" else parent.num_nodes
                candidates = parent.children if wanted else []  # spawned oldest first, in id order
                flt = None  # filters do not apply to array children or MNP nodes

            # jobStatus is ignored with a filter (SHARE_IDENTIFIER excepted); neither means RUNNING only
            if flt is None:
                want_status: str | None = status or "RUNNING"
            elif flt["name"] == "SHARE_IDENTIFIER":
                want_status = status
            else:
                want_status = None
            fingerprint = hashlib.sha1(
                json.dumps(
                    {k: v for k, v in req.items() if k not in ("nextToken", "maxResults")}, sort_keys=True
                ).encode()
            ).hexdigest()[:12]
            out: list[dict[str, Any]] = []
            last: Job | None = None
            more = False
            for job in _newest_first(candidates, req.get("nextToken"), fingerprint):
                if not self._visible(job, now):
                    continue
                job_status, reason = self.state_at(job, now)
                if want_status is not None and job_status != want_status:
                    continue
                if flt is not None and not self._filter_matches(flt, job):
                    continue
                if len(out) == max_results:
                    more = True
                    break
                out.append(self._summary(job, now, job_status, reason))
                last = job
            response: dict[str, Any] = {"jobSummaryList": out}
            if more and last is not None:
                response["nextToken"] = encode_token(last.sort_key, fingerprint)
            return response

    @staticmethod
    def _check_filter(flt: Mapping[str, Any]) -> None:
        name, values = flt.get("name"), flt.get("values") or []
        if name not in FILTER_NAMES:
            raise BatchServiceError(f"Invalid filter name {name}. Valid names: {', '.join(FILTER_NAMES)}.")
        if len(values) != 1:
            raise BatchServiceError("Only one filter key-value pair can be specified.")
        value = values[0]
        if name == "JOB_DEFINITION" and value.startswith("arn:") and "*" in value:
            raise BatchServiceError("Wildcard (*) is not supported with a job definition ARN.")
        if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT") and not value.isdigit():
            raise BatchServiceError(f"Invalid value {value} for {name}: expected a Unix timestamp in milliseconds.")

    @staticmethod
    def _filter_matches(flt: Mapping[str, Any], job: Job) -> bool:
        name, value = flt["name"], flt["values"][0]
        if name == "JOB_NAME":
            return name_matches(value, job.name)
        if name == "JOB_DEFINITION":
            return definition_matches(value, job.definition.arn)
        if name == "BEFORE_CREATED_AT":
            return job.created_at < int(value)
        if name == "AFTER_CREATED_AT":
            return job.created_at > int(value)
        return job.share_identifier == value

    def _summary(self, job: Job, now: int, status: str, reason: str | None) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "jobArn": job.arn,
            "jobId": job.job_id,
            "jobName": job.name,
            "createdAt": job.created_at,
            "status": status,
            "jobDefinition": job.definition.arn,
        }
        if reason:
            summary["statusReason"] = reason
        if job.share_identifier:
            summary["shareIdentifier"] = job.share_identifier
        started = self._started_at(job, now)
        if started is not None:
            summary["startedAt"] = started
        stopped = self._stopped_at(job, now)
        if stopped is not None:
            summary["stoppedAt"] = stopped
        attempts = self._finished_attempts(job, now)
        if attempts and status in ("SUCCEEDED", "FAILED"):
            last = (
                attempts[-1].get("container")
                or next(iter(c for t in attempts[-1].get("taskProperties", []) for c in t["containers"]), None)
                or (attempts[-1].get("containers") or [{}])[0]
            )
            summary["container"] = _pick(last, "exitCode", "reason")
        if job.array_size:
            summary["arrayProperties"] = {"size": job.array_size}
            if job.children:
                summary["arrayProperties"]["statusSummary"] = self._status_summary(job, now)
        elif job.array_index is not None:
            summary["arrayProperties"] = {"index": job.array_index}
        if job.num_nodes:
            summary["nodeProperties"] = {"numNodes": job.num_nodes}
        elif job.node_index is not None:
            summary["nodeProperties"] = {
                "nodeIndex": job.node_index,
                "isMainNode": job.node_index == 0,
                "numNodes": job.parent.num_nodes if job.parent else 1,
            }
        if job.cancel is not None and status == "FAILED":
            summary["isCancelled" if job.cancel[2] == "cancel" else "isTerminated"] = True
        return summary

    def _started_at(self, job: Job, now: int) -> int | None:
        if job.children:
            starts = [s for s in (self._started_at(c, now) for c in job.children) if s is not None]
            return min(starts) if starts else None
        started = self.timeline(job).started_at
        return started if started is not None and started <= now else None

    # -- DescribeJobs --------------------------------------------------------------------------------------
    def describe_jobs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            ids = req.get("jobs") or []
            if len(ids) > 100:
                raise BatchServiceError("Maximum number of jobs supported is 100")
            now = self.clock.now_ms()
            out = []
            for ref in ids:
                job = self.jobs.get(ref.split("job/")[-1])
                if job is None or not self._visible(job, now):
                    continue  # unknown ids are left out, silently
                out.append(self._detail(job, now))
            return {"jobs": out}

    def _detail(self, job: Job, now: int) -> dict[str, Any]:
        status, reason = self.state_at(job, now)
        summary = self._summary(job, now, status, reason)
        detail: dict[str, Any] = {
            **{k: v for k, v in summary.items() if k not in ("container", "arrayProperties", "nodeProperties")},
            "jobQueue": job.queue.arn,
            "parameters": {**job.definition.body.get("parameters", {}), **job.request.get("parameters", {})},
            "dependsOn": [{"jobId": d} for d in job.depends_on],
            "tags": job.request.get("tags", {}),
            "platformCapabilities": job.definition.body.get("platformCapabilities", ["EC2"]),
        }
        retry = job.request.get("retryStrategy") or job.definition.body.get("retryStrategy")
        if retry:
            detail["retryStrategy"] = retry
        attempts = self._finished_attempts(job, now)
        kind = job.definition.kind
        if kind == "eks":
            detail["eksAttempts"] = attempts
            detail["eksProperties"] = job.definition.body["eksProperties"]
        else:
            detail["attempts"] = attempts
        if kind == "ecs":
            detail["ecsProperties"] = job.definition.body["ecsProperties"]
        if kind in ("container", "multinode") and not job.num_nodes:
            container = dict(job.definition.body.get("containerProperties") or {})
            overrides = job.request.get("containerOverrides") or {}
            if overrides.get("environment"):
                container["environment"] = [*container.get("environment", []), *overrides["environment"]]
            if overrides.get("command"):
                container["command"] = overrides["command"]
            last = (attempts[-1].get("container") if attempts else None) or {}
            detail["container"] = {**container, **_pick(last, "exitCode", "reason", "logStreamName", "taskArn")}
        if job.num_nodes:
            detail["nodeProperties"] = {
                "numNodes": job.num_nodes,
                "mainNode": int(job.definition.body["nodeProperties"].get("mainNode", 0)),
                "nodeRangeProperties": job.definition.body["nodeProperties"].get("nodeRangeProperties", []),
            }
        if job.node_index is not None:
            detail["nodeDetails"] = {"nodeIndex": job.node_index, "isMainNode": job.node_index == 0}
        if job.array_size:
            detail["arrayProperties"] = {"size": job.array_size}
            if job.children:
                detail["arrayProperties"]["statusSummary"] = self._status_summary(job, now)
                detail["arrayProperties"]["statusSummaryLastUpdatedAt"] = now
        elif job.array_index is not None:
            detail["arrayProperties"] = {"index": job.array_index}
        return detail


MAX_PAGE_WITH_FILTER = 100
MAX_PAGE_WITH_STATUS = 1000


def _newest_first(jobs: list[Job], token: str | None, fingerprint: str) -> Iterator[Job]:
    """``jobs`` (kept oldest first) newest first, from just after the token's job. A token names a position, not
    an offset, so jobs created while a listing is paged never shift it; a bisect makes a page cost its own size."""
    end = len(jobs)
    if token:
        end = bisect.bisect_left(jobs, decode_token(token, fingerprint), key=lambda j: j.sort_key)
    return (jobs[i] for i in range(end - 1, -1, -1))


def _pick(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: source[k] for k in keys if source.get(k) is not None}
