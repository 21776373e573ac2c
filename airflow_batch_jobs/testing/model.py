"""The emulated service: one lock around the resources, the jobs and the rules that answer each operation.

The ideas live in their own modules: ``resources`` (compute environments, queues, job definitions), ``lifecycle``
(how a job lives), ``listing`` (ListJobs orders, filters and tokens), ``shapes`` (what the answers hold),
``rules`` (names, ids and filter matching) and ``behaviours`` (the switches for the service's awkward parts).
Reads never change state: what a job is at any moment follows from what was submitted, scripted and stopped.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.testing.behaviours import Behaviours
from airflow_batch_jobs.testing.clock import Clock, ManualClock
from airflow_batch_jobs.testing.errors import BatchServiceError
from airflow_batch_jobs.testing.lifecycle import Job, Lifecycle, Timeline
from airflow_batch_jobs.testing.listing import (
    ListRequest,
    OrderedJobs,
    PageToken,
    grouped_key,
    matches_filter,
    newest_first_key,
)
from airflow_batch_jobs.testing.outcomes import JobScript, OutcomeRules
from airflow_batch_jobs.testing.resources import Resources
from airflow_batch_jobs.testing.rules import TERMINAL_STATUSES, check_job_name, job_id_from
from airflow_batch_jobs.testing.shapes import Shapes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_batch_jobs.testing.listing import SortKey

__all__ = ["DEFAULT_RETENTION_S", "BatchModel", "BatchServiceError"]

DEFAULT_RETENTION_S = 7 * 24 * 3600
MAX_DESCRIBE_IDS = 100
MAX_DEPENDENCIES = 20  # SubmitJob.dependsOn: "A job can depend upon a maximum of 20 jobs."
MAX_ATTEMPTS = 10  # RetryStrategy.attempts: "You can specify between 1 and 10 attempts."


class BatchModel:
    """The service's state and rules. Thread-safe: every public call holds one lock."""

    def __init__(
        self,
        clock: Clock | None = None,
        outcomes: OutcomeRules | None = None,
        region: str = "us-east-1",
        retention_seconds: float = DEFAULT_RETENTION_S,
        behaviours: Behaviours | None = None,
        seed: int = 0,
    ) -> None:
        self.clock = clock or ManualClock()
        self.outcomes = outcomes or OutcomeRules()
        self.region = region
        self.retention_ms = int(retention_seconds * 1000)
        self.behaviours = behaviours or Behaviours()
        self.resources = Resources(region)
        self.shapes = Shapes(region, seed)
        self.jobs: dict[str, Job] = {}
        self.lifecycle = Lifecycle(self.jobs, self.behaviours, self.shapes.attempt)
        self.lock = threading.RLock()
        self._order = OrderedJobs()
        self._seq = 0
        # (due epoch ms, sequence, SubmitJob request, names of jobs it depends on) from a scenario
        self.scheduled: list[tuple[int, int, dict[str, Any], list[str]]] = []
        self.ids_by_name: dict[str, str] = {}

    # -- resources -----------------------------------------------------------------------------------------
    @property
    def compute_environments(self) -> dict[str, dict[str, Any]]:
        return self.resources.compute_environments

    @property
    def queues(self) -> dict[str, Any]:
        return self.resources.queues

    @property
    def definitions(self) -> dict[str, Any]:
        return self.resources.definitions

    def create_compute_environment(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.resources.create_compute_environment(req)

    def describe_compute_environments(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.resources.describe_compute_environments(req)

    def create_job_queue(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.resources.create_job_queue(req)

    def describe_job_queues(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.resources.describe_job_queues(req)

    def register_job_definition(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.resources.register_job_definition(req)

    def describe_job_definitions(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            return self.resources.describe_job_definitions(req)

    # -- submitting and stopping ---------------------------------------------------------------------------
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
            for target in (job, *job.children):
                target.script = script
            self.lifecycle.forget()

    def _next_id(self) -> tuple[int, str]:
        self._seq += 1
        return self._seq, str(uuid.UUID(int=self._seq + (0xBA7C4 << 96)))

    def submit_job(self, req: Mapping[str, Any], created_at: int | None = None) -> dict[str, Any]:
        with self.lock:
            check_job_name(req["jobName"])
            queue = self.resources.queue(req["jobQueue"])
            definition = self.resources.definition(req["jobDefinition"])
            if len(req.get("dependsOn", [])) > MAX_DEPENDENCIES:
                raise BatchServiceError(f"A job can depend on at most {MAX_DEPENDENCIES} jobs.")
            if any("jobId" not in d for d in req.get("dependsOn", [])):
                # SEQUENTIAL / N_TO_N array dependencies without a job id: valid for the service, not emulated
                raise BatchServiceError("The emulator does not model dependsOn without a jobId (SEQUENTIAL, N_TO_N).")
            attempts = (req.get("retryStrategy") or {}).get("attempts")
            if attempts is not None and not 1 <= attempts <= MAX_ATTEMPTS:
                raise BatchServiceError(f"retryStrategy.attempts must be between 1 and {MAX_ATTEMPTS}.")
            depends_on = [job_id_from(d["jobId"]) for d in req.get("dependsOn", [])]
            for dep in depends_on:
                if dep not in self.jobs:
                    raise BatchServiceError(f"Dependent job {dep} does not exist.")
            size = (req.get("arrayProperties") or {}).get("size")
            if size is not None and not 2 <= size <= 10_000:
                raise BatchServiceError("Array size must be between 2 and 10000.")
            seq, job_id = self._next_id()
            job = Job(
                job_id=job_id,
                seq=seq,
                name=req["jobName"],
                queue=queue,
                definition=definition,
                submitted_at=created_at if created_at is not None else self.clock.now_ms(),
                request=dict(req),
                script=self.outcomes.script_for(req["jobName"], definition.name),
                share_identifier=req.get("shareIdentifier"),
                depends_on=depends_on,
                array_size=size,
            )
            if definition.kind == "multinode":
                job.num_nodes = int(definition.body["nodeProperties"]["numNodes"])
            self.jobs[job.job_id] = job
            queue.jobs.append(job)
            self._add_children(job)
            self.ids_by_name[job.name] = job.job_id
            return {"jobArn": job.arn, "jobName": job.name, "jobId": job.job_id}

    def _add_children(self, parent: Job) -> None:
        """Array children (``<id>:<i>``) and MNP nodes (``<id>#<n>``) exist from the start; they become visible
        when their parent releases them (see ``Lifecycle.created_at``)."""
        count = parent.array_size or parent.num_nodes or 0
        mark = ":" if parent.array_size else "#"
        for index in range(count):
            seq, _ = self._next_id()
            child = Job(
                job_id=f"{parent.job_id}{mark}{index}",
                seq=seq,
                name=parent.name,
                queue=parent.queue,
                definition=parent.definition,
                submitted_at=None,
                request=parent.request,
                script=self.outcomes.script_for(parent.name, parent.definition.name, index),
                share_identifier=parent.share_identifier,
                parent=parent,
                array_index=index if parent.array_size else None,
                node_index=None if parent.array_size else index,
            )
            parent.children.append(child)
            self.jobs[child.job_id] = child
        if parent.num_nodes:
            main = int(parent.definition.body["nodeProperties"].get("mainNode", 0))
            parent.children.sort(key=lambda c: c.node_index != main)  # the main node first

    def stop_job(self, req: Mapping[str, Any], how: str) -> dict[str, Any]:
        """CancelJob (jobs not yet STARTING) and TerminateJob (any active job); a parent's children follow it."""
        with self.lock:
            job = self.jobs.get(job_id_from(req["jobId"]))
            if job is None:
                raise BatchServiceError(f"Job {req['jobId']} does not exist.")
            self._stop(job, self.clock.now_ms(), req["reason"], how)
            self.lifecycle.forget()
            return {}

    def _stop(self, job: Job, now: int, reason: str, how: str) -> None:
        life = self.lifecycle
        status = life.status_at(job, now)
        if status in TERMINAL_STATUSES or job.stop is not None:
            return
        released = job.is_parent and (release := life.timeline(job).release_at) is not None and release <= now
        if how == "cancel" and status in ("STARTING", "RUNNING"):
            return  # "Jobs that progressed to the STARTING or RUNNING state aren't cancelled."
        if how == "terminate" and status not in ("STARTING", "RUNNING") and not (released and job.array_size):
            how = "cancel"  # TerminateJob: "Jobs that have not progressed to the STARTING state are cancelled."
        job.stop = (now, reason, how)
        job.timeline = None
        if released:
            for child in job.children:
                self._stop(child, now, reason, how)

    # -- reading state (tests and benchmarks use these too) ------------------------------------------------
    def timeline(self, job: Job) -> Timeline:
        return self.lifecycle.timeline(job)

    def status_at(self, job: Job, now: int) -> str:
        return self.lifecycle.status_at(job, now)

    def _visible(self, job: Job, now: int) -> bool:
        return self.lifecycle.visible(job, now, self.retention_ms)

    # -- ListJobs ------------------------------------------------------------------------------------------
    def list_jobs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            now = self.clock.now_ms()
            request = ListRequest(req)
            life = self.lifecycle
            if request.selector == "jobQueue":
                candidates: Sequence[Job] = self.resources.queue(request.target).jobs
                order = "newest"
                key: Callable[[Job, int], SortKey] = newest_first_key
                flt = request.filter
                if (
                    flt is not None
                    and flt["name"] in ("JOB_NAME", "JOB_DEFINITION")
                    and self.behaviours.grouped_listing
                ):
                    order, key = flt["name"], grouped_key(flt["name"])
            else:
                parent = self.jobs.get(job_id_from(request.target))
                if parent is None or not self._visible(parent, now):
                    raise BatchServiceError(f"Job {request.target} does not exist.")
                wanted = parent.array_size if request.selector == "arrayJobId" else parent.num_nodes
                candidates = parent.children if wanted else []
                order, key = "children", newest_first_key
            token_key = PageToken.decode(request.token, request.fingerprint) if request.token else None
            out: list[dict[str, Any]] = []
            last_key = None
            more = False
            for sort_key, job in self._order.after(candidates, key, order, life.created_at, token_key):
                if not self._visible(job, now):
                    continue
                status, reason = life.state_at(job, now)
                if request.status is not None and status != request.status:
                    continue
                created = life.created_at(job)
                if request.filter is not None and not matches_filter(request.filter, job, created or 0):
                    continue
                if len(out) == request.max_results:
                    more = True
                    break
                out.append(self.shapes.summary(life, job, now, status, reason))
                last_key = sort_key
            response: dict[str, Any] = {"jobSummaryList": out}
            if more and last_key is not None:
                response["nextToken"] = PageToken.encode(last_key, request.fingerprint)
            return response

    # -- DescribeJobs --------------------------------------------------------------------------------------
    def describe_jobs(self, req: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            refs = req.get("jobs") or []
            if len(refs) > MAX_DESCRIBE_IDS:
                raise BatchServiceError(f"Maximum number of jobs supported is {MAX_DESCRIBE_IDS}")
            now = self.clock.now_ms()
            out = []
            for ref in refs:
                job = self.jobs.get(job_id_from(ref))
                if job is None or not self._visible(job, now):
                    continue  # unknown (or not yet visible) ids are left out, silently
                out.append(self.shapes.detail(self.lifecycle, job, now))
            return {"jobs": out}
