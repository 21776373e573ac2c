"""Typed, read-only views over the service's JobSummary and JobDetail dicts.

Exit codes, reasons and log streams live in different places depending on the job's kind (container, ECS task
properties, EKS, multi-node); these views find them so that nothing else has to, and turn a job into a small
JSON-native record for XCom with environment values, secrets and parameters redacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow_batch_jobs.failures import diagnose_attempts, failure_class
from airflow_batch_jobs.query import ACTIVE_STATUSES, TERMINAL_STATUSES

REDACTED = "***"


@dataclass(frozen=True)
class Attempt:
    """One try of a job: where it ran, how it ended and where its log is. For a task or pod of several containers,
    ``container`` names the one whose exit code and reason these are (``init_container``: a pod's init container).
    ``index`` None: the last attempt, read off the job-level container of an answer without ``attempts[]`` (a
    ListJobs summary), which says how the job ended but not which try that was, when it began or how many ran."""

    index: int | None
    exit_code: int | None
    reason: str | None
    status_reason: str | None
    started_at: int | None
    stopped_at: int | None
    log_stream: str | None
    container: str | None = None
    init_container: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "status_reason": self.status_reason,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "log_stream": self.log_stream,
            "container": self.container,
            "init_container": self.init_container,
        }

    def describe(self) -> str:
        which = "last attempt" if self.index is None else f"attempt {self.index + 1}"
        head = f"{which}: exit code {self.exit_code if self.exit_code is not None else '-'}"
        if self.container:
            head += f" ({'init container' if self.init_container else 'container'} {self.container!r})"
        parts = [head]
        if self.reason:
            parts.append(f"reason {self.reason!r}")
        if self.status_reason:
            parts.append(f"status reason {self.status_reason!r}")
        if self.log_stream:
            parts.append(f"log {self.log_stream}")
        return ", ".join(parts)


Container = Mapping[str, Any]


def _deciding(*groups: list[Container]) -> Container | None:
    """The container whose exit code is the attempt's, from groups in order of precedence: the first non-zero exit
    code of any group, else the first zero, else the first container with a reason (one that never ran)."""
    for found in (
        lambda c: c.get("exitCode") not in (None, 0),
        lambda c: c.get("exitCode") is not None,
        lambda c: bool(c.get("reason")),
    ):
        for group in groups:
            for container in group:
                if found(container):
                    return container
    return None


def essential_flags(raw: Mapping[str, Any]) -> dict[str, bool]:
    """Container name -> essential, from a JobDetail's ``ecsProperties`` (the job definition's task containers). A
    container without the flag is essential (the ECS default)."""
    tasks = (raw.get("ecsProperties") or {}).get("taskProperties") or []
    return {
        str(c.get("name")): c.get("essential") is not False
        for task in tasks
        for c in task.get("containers") or []
        if c.get("name") is not None
    }


def _first_log_stream(raw: Mapping[str, Any]) -> str | None:
    containers = (c for task in raw.get("taskProperties") or [] for c in task.get("containers") or [])
    return next((c["logStreamName"] for c in containers if c.get("logStreamName")), None)


def _attempt_from(index: int, raw: Mapping[str, Any], essential: Mapping[str, bool]) -> Attempt:
    """An Attempt from an ``attempts[]`` or ``eksAttempts[]`` item, whichever shape it has.

    ECS task properties: the essential containers decide (a non-essential sidecar stopped by the task with 137 /
    143 when the essential one exits is not the job's outcome). EKS: a failing init container decides (the pod's
    containers never started), beside ``containers[]``."""
    init = False
    if "container" in raw:
        decisive: Container | None = raw["container"] or {}
        shown = 1
    elif "taskProperties" in raw:
        containers = [c for task in raw.get("taskProperties") or [] for c in task.get("containers") or []]
        deciding = [c for c in containers if essential.get(str(c.get("name")), True)] or containers
        decisive, shown = _deciding(deciding), len(containers)
    else:  # EKS attempt: containers[] plus initContainers[]
        mains, inits = list(raw.get("containers") or []), list(raw.get("initContainers") or [])
        main_failed = _deciding([c for c in mains if c.get("exitCode") not in (None, 0)])
        init_failed = _deciding([c for c in inits if c.get("exitCode") not in (None, 0)])
        decisive = main_failed or init_failed or _deciding(mains) or _deciding(inits)
        init = any(decisive is c for c in inits)
        shown = len(mains) + len(inits)
    decisive = decisive or {}
    log = decisive.get("logStreamName") or raw.get("podName") or _first_log_stream(raw)
    return Attempt(
        index=index,
        exit_code=decisive.get("exitCode"),
        reason=decisive.get("reason"),
        status_reason=raw.get("statusReason"),
        started_at=raw.get("startedAt"),
        stopped_at=raw.get("stoppedAt"),
        log_stream=log,
        container=decisive.get("name") if shown > 1 else None,
        init_container=init,
    )


class JobView:
    """A read-only view over one JobSummary (ListJobs) or JobDetail (DescribeJobs) dict."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        # read on every poll for every job (matching, counting, judging): plain attributes, not properties
        self.job_id = str(raw["jobId"])
        self.status = str(raw.get("status", ""))

    def __repr__(self) -> str:
        return f"JobView({self.job_name!r}, {self.job_id!r}, {self.status})"

    # -- identity and state -------------------------------------------------------------------------------
    @property
    def job_name(self) -> str:
        return str(self.raw.get("jobName", ""))

    @property
    def job_arn(self) -> str | None:
        return self.raw.get("jobArn")

    @property
    def job_queue(self) -> str | None:
        return self.raw.get("jobQueue")

    @property
    def is_described(self) -> bool:
        """A DescribeJobs JobDetail (``jobQueue`` is required there, ``attempts`` only there), not a ListJobs
        JobSummary (which has neither, nor log streams) or a stand-in for a job that aged out."""
        raw = self.raw
        return "jobQueue" in raw or "attempts" in raw or "eksAttempts" in raw

    @property
    def region(self) -> str | None:
        """The region in the job's ARN (``arn:<partition>:batch:<region>:<account>:job/<id>``)."""
        parts = (self.job_arn or "").split(":")
        return (parts[3] or None) if len(parts) > 5 and parts[0] == "arn" else None

    @property
    def job_definition(self) -> str | None:
        return self.raw.get("jobDefinition")

    @property
    def status_reason(self) -> str | None:
        return self.raw.get("statusReason")

    @property
    def created_at(self) -> int | None:
        return self.raw.get("createdAt")

    @property
    def started_at(self) -> int | None:
        return self.raw.get("startedAt")

    @property
    def stopped_at(self) -> int | None:
        return self.raw.get("stoppedAt")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return bool(self.raw.get("isCancelled"))

    @property
    def is_terminated(self) -> bool:
        return bool(self.raw.get("isTerminated"))

    @property
    def array_properties(self) -> Mapping[str, Any] | None:
        return self.raw.get("arrayProperties")

    @property
    def node_properties(self) -> Mapping[str, Any] | None:
        return self.raw.get("nodeProperties") or self.raw.get("nodeDetails")

    # -- attempts and outcome -----------------------------------------------------------------------------
    @cached_property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every try, from ``attempts[]`` or ``eksAttempts[]``; for a summary or a detail without attempts, the last
        one (``index`` None, no times) from the job-level container when it says how the job ended."""
        raw_attempts = self.raw.get("attempts") or self.raw.get("eksAttempts") or []
        if raw_attempts:
            essential = essential_flags(self.raw)
            return tuple(_attempt_from(i, a, essential) for i, a in enumerate(raw_attempts))
        container = self.raw.get("container") or {}
        if container.get("exitCode") is not None or container.get("reason") or container.get("logStreamName"):
            return (
                Attempt(
                    index=None,
                    exit_code=container.get("exitCode"),
                    reason=container.get("reason"),
                    status_reason=self.status_reason,  # how the job ended: its last attempt's
                    started_at=None,
                    stopped_at=None,
                    log_stream=container.get("logStreamName"),
                ),
            )
        return ()

    @cached_property
    def final_exit_code(self) -> int | None:
        """The exit code of the last attempt (what retries and the verdict judge)."""
        container = self.raw.get("container") or {}
        if self.attempts and self.attempts[-1].exit_code is not None:
            return self.attempts[-1].exit_code
        return container.get("exitCode")

    @property
    def final_reason(self) -> str | None:
        if self.attempts and self.attempts[-1].reason:
            return self.attempts[-1].reason
        return (self.raw.get("container") or {}).get("reason")

    @property
    def log_stream(self) -> str | None:
        """The last attempt's log stream, else the job-level container's."""
        for attempt in reversed(self.attempts):
            if attempt.log_stream:
                return attempt.log_stream
        return (self.raw.get("container") or {}).get("logStreamName")

    def cloudwatch_log(self) -> dict[str, str | None] | None:
        """Where the last attempt's log is in CloudWatch Logs, from the ``logConfiguration`` of the container that
        wrote it, as the amazon provider reads it: ``awslogs_group`` (None: the service's default, ``/aws/batch/job``),
        ``awslogs_region`` (the option, else the job's region; None if neither says) and ``awslogs_stream_name``.
        None when the job logs elsewhere (another ``logDriver``, an EKS pod) or no stream is known (a summary, a job
        that never ran)."""
        stream = self.log_stream
        if not stream or not self.is_described or "eksAttempts" in self.raw or "eksProperties" in self.raw:
            return None
        configuration = self._log_configuration(stream)
        if configuration.get("logDriver", "awslogs") != "awslogs":
            return None
        options = configuration.get("options") or {}
        return {
            "awslogs_group": options.get("awslogs-group"),
            "awslogs_region": options.get("awslogs-region") or self.region,
            "awslogs_stream_name": stream,
        }

    def _log_configuration(self, stream: str) -> Mapping[str, Any]:
        """The ``logConfiguration`` of the container that wrote ``stream`` (the job's, an ECS task container, a
        multi-node range's), matched by stream or by the name of the container that decided the last attempt, else
        the first container that has one."""
        raw = self.raw
        tasks = (raw.get("ecsProperties") or {}).get("taskProperties") or []
        ranges = (raw.get("nodeProperties") or {}).get("nodeRangeProperties") or []
        containers = [
            *([raw["container"]] if raw.get("container") else []),
            *(c for task in tasks for c in task.get("containers") or []),
            *(r["container"] for r in ranges if r.get("container")),
        ]
        deciding = self.attempts[-1].container if self.attempts else None
        configured = [c for c in containers if c.get("logConfiguration")]
        writer = next(
            (c for c in configured if c.get("logStreamName") == stream or (deciding and c.get("name") == deciding)),
            configured[0] if configured else {},
        )
        return writer.get("logConfiguration") or {}

    # -- XCom ---------------------------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """A small JSON-native record (epoch-ms integers, no datetimes, nothing secret).

        ``described`` says where it comes from. A ListJobs summary says how the job ended (status, reason, the final
        exit code) but not its attempts, log stream or queue: those keys are left out of its record rather than
        guessed; a DescribeJobs detail has them all."""
        record: dict[str, Any] = {
            "job_id": self.job_id,
            "job_arn": self.job_arn,
            "job_name": self.job_name,
            "described": self.is_described,
            "job_definition": self.job_definition,
            "status": self.status,
            "status_reason": self.status_reason,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "final_exit_code": self.final_exit_code,
            "failure_class": failure_class(self),  # airflow_batch_jobs.failures: None unless the job FAILED
            "array_properties": _json_copy(self.array_properties),
            "node_properties": _json_copy(self.node_properties),
            "is_cancelled": self.is_cancelled,
            "is_terminated": self.is_terminated,
        }
        if self.is_described:
            record["job_queue"] = self.job_queue
            record["log_stream"] = self.log_stream
            record["attempts"] = [
                {**a.to_record(), "failure_class": d.failure_class.value if d is not None else None}
                for a, d in zip(self.attempts, diagnose_attempts(self), strict=True)
            ]
        return record

    def redacted_detail(self) -> dict[str, Any]:
        """The whole dict with environment values, secrets and parameters replaced by ``***``."""
        return redact(self.raw)


def _json_copy(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return redact(value) if value is not None else None


_ENV_KEYS = frozenset({"environment", "env"})


def redact(value: Any) -> Any:
    """A deep copy with the values of ``environment``/``env`` entries, ``secrets`` and ``parameters`` hidden.

    Names are kept (they help debugging); values are not. Applied to any nesting the service uses (container,
    ECS task properties, EKS pod properties, node overrides).
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _ENV_KEYS and isinstance(item, list):
                out[key] = [_redact_entry(e, "value") for e in item]
            elif key == "secrets" and isinstance(item, list):
                out[key] = [_redact_entry(e, "valueFrom") for e in item]
            elif key == "parameters" and isinstance(item, Mapping):
                out[key] = dict.fromkeys(item, REDACTED)
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _redact_entry(entry: Any, value_key: str) -> Any:
    if isinstance(entry, Mapping):
        return {k: (REDACTED if k == value_key else redact(v)) for k, v in entry.items()}
    return REDACTED
