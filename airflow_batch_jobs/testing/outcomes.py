"""How emulated jobs live and end: per-attempt exit codes, reasons and durations, chosen by rules.

A rule matches jobs by name (glob), job definition name and, for array jobs, child indices; the first matching
rule gives the job's script. Jobs no rule matches succeed with exit code 0 after the default durations.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclass(frozen=True)
class AttemptScript:
    """One attempt's outcome. ``exit_code=None`` ends the attempt without one (e.g. a host that went away).

    ``exit_code`` and ``reason`` are the essential container's. ``containers`` scripts other containers of an
    ECS-properties job by name (``{"sidecar": 1}``); unscripted non-essential ones are stopped with 137 or 143
    when the essential one exits. ``init_exit_code`` / ``init_reason`` script an EKS job's init container: a
    non-zero code fails the attempt before the main container starts.

    ``log``: the lines the (essential) container writes to its CloudWatch log stream over the attempt (None: a few
    plausible ones, see :mod:`.logs`); ``log_stream=False`` (``"log": false`` in a script): it writes none, and
    its stream never exists.
    """

    exit_code: int | None = 0
    reason: str | None = None
    status_reason: str | None = None
    duration_ms: int = 10_000
    containers: Mapping[str, int | None] = field(default_factory=dict)
    init_exit_code: int | None = 0
    init_reason: str | None = None
    log: tuple[str, ...] | None = None
    log_stream: bool = True

    @property
    def init_failed(self) -> bool:
        return self.init_exit_code not in (0, None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AttemptScript:
        unknown = set(data) - ATTEMPT_KEYS
        if unknown:
            raise ValueError(f"attempt has unknown keys {sorted(unknown)}; use {', '.join(sorted(ATTEMPT_KEYS))}")
        return cls(
            exit_code=data.get("exit_code", 0),
            reason=data.get("reason"),
            status_reason=data.get("status_reason"),
            duration_ms=int(float(data.get("duration", 10)) * 1000),
            containers=dict(data.get("containers") or {}),
            init_exit_code=data.get("init_exit_code", 0),
            init_reason=data.get("init_reason"),
            log=_log_lines(data.get("log")),
            log_stream=data.get("log") is not False,
        )


def _log_lines(value: Any) -> tuple[str, ...] | None:
    """A script's ``log``: a list of lines, or null / false (checked here: a typo should not pass as no log)."""
    if value is None or value is False:
        return None
    if isinstance(value, list | tuple) and all(isinstance(line, str) for line in value):
        return tuple(value)
    raise ValueError(f"attempt log={value!r}: give a list of lines (strings), or false for no log stream")


ATTEMPT_KEYS = frozenset(
    {"exit_code", "reason", "status_reason", "duration", "containers", "init_exit_code", "init_reason", "log"}
)


@dataclass(frozen=True)
class JobScript:
    """A job's whole life: time in each waiting status and what each attempt does (the last one repeats)."""

    attempts: tuple[AttemptScript, ...] = (AttemptScript(),)
    submitted_ms: int = 1_000
    pending_ms: int = 1_000
    runnable_ms: int = 2_000
    starting_ms: int = 2_000
    stuck_runnable: bool = False
    runnable_reason: str | None = None

    def attempt(self, index: int) -> AttemptScript:
        return self.attempts[min(index, len(self.attempts) - 1)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobScript:
        unknown = set(data) - {"attempts", "submitted", "pending", "runnable", "starting", "stuck_runnable"}
        if unknown:
            raise ValueError(
                f"outcome has unknown keys {sorted(unknown)}; "
                "use attempts, submitted, pending, runnable, starting, stuck_runnable"
            )
        attempts = tuple(AttemptScript.from_dict(a) for a in data.get("attempts") or [{}])
        stuck = data.get("stuck_runnable")
        return cls(
            attempts=attempts,
            submitted_ms=int(float(data.get("submitted", 1)) * 1000),
            pending_ms=int(float(data.get("pending", 1)) * 1000),
            runnable_ms=int(float(data.get("runnable", 2)) * 1000),
            starting_ms=int(float(data.get("starting", 2)) * 1000),
            stuck_runnable=bool(stuck),
            runnable_reason=stuck if isinstance(stuck, str) else (STUCK_REASON if stuck else None),
        )


STUCK_REASON = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested for instance type "
    "[m5.large]"
)


@dataclass(frozen=True)
class OutcomeRule:
    script: JobScript
    name: str | None = None
    definition: str | None = None
    indices: frozenset[int] | None = None

    def matches(self, job_name: str, definition: str, index: int | None) -> bool:
        if self.name is not None and not fnmatch.fnmatchcase(job_name, self.name):
            return False
        if self.definition is not None and not fnmatch.fnmatchcase(definition, self.definition):
            return False
        return self.indices is None or (index is not None and index in self.indices)


@dataclass
class OutcomeRules:
    """Ordered rules; the first that matches a job decides its script."""

    rules: list[OutcomeRule] = field(default_factory=list)
    default: JobScript = field(default_factory=JobScript)

    def add(
        self,
        script: JobScript | Mapping[str, Any],
        *,
        name: str | None = None,
        definition: str | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(script, JobScript):
            script = JobScript.from_dict(script)
        self.rules.append(OutcomeRule(script, name, definition, frozenset(indices) if indices is not None else None))

    def script_for(self, job_name: str, definition: str, index: int | None = None) -> JobScript:
        for rule in self.rules:
            if rule.matches(job_name, definition, index):
                return rule.script
        return self.default
