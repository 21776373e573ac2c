"""The service's awkward behaviours, each a switch, and the named profiles that turn them on together.

``BatchEmulator(profile="realistic")`` (or ``profile: realistic`` in a scenario file) turns every one on;
``behaviours={"visibility_lag_seconds": 0}`` overrides single switches. Everything stays deterministic: the
emulator's seed picks every random choice (e.g. which signal stops a sidecar), keyed by job id, so the same
scenario answers the same way whoever reads what, in whatever order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Behaviours:
    """Switches for behaviours the real service has (documented) or is reported to have (our best reading).

    :param retry_to_runnable: a failed attempt with retries left sends the job back to RUNNABLE, then STARTING
        and RUNNING again (documented: ``RetryStrategy.attempts`` is "the number of times to move a job to the
        RUNNABLE status"). Off: the job stays RUNNING between attempts (only ever moves forward).
    :param visibility_lag_seconds: a just-submitted job is missing from ListJobs and DescribeJobs for this long
        (eventual consistency; DescribeJobs documents that unknown ids are left out, the delay is our guess).
    :param summary_lag_seconds: an array parent's ``statusSummary`` (and the status it drives) shows its
        children as they were this long ago (reported; the service updates it asynchronously).
    :param ecs_sidecar: ECS-properties job definitions made by ``setup`` / scenario files get a second,
        non-essential container, stopped with exit code 137 or 143 when the essential one exits (the service
        stops a task's other containers when an essential container exits).
    :param eks_init_containers: EKS job definitions made by ``setup`` / scenario files get an init container,
        reported in each attempt's ``initContainers``.
    :param grouped_listing: ListJobs with a JOB_NAME filter groups results by job name and job-definition
        revision, with JOB_DEFINITION by definition name (documented as grouping; the order of the groups is our
        guess: ascending name). Off: newest first, as every other listing.
    """

    retry_to_runnable: bool = True
    visibility_lag_seconds: float = 0.0
    summary_lag_seconds: float = 0.0
    ecs_sidecar: bool = False
    eks_init_containers: bool = False
    grouped_listing: bool = False

    @property
    def visibility_lag_ms(self) -> int:
        return int(self.visibility_lag_seconds * 1000)

    @property
    def summary_lag_ms(self) -> int:
        return int(self.summary_lag_seconds * 1000)

    @classmethod
    def build(cls, profile: str = "simple", overrides: Mapping[str, Any] | None = None) -> Behaviours:
        if profile not in PROFILES:
            raise ValueError(f"profile={profile!r}: use one of {', '.join(PROFILES)}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides or {}) - names
        if unknown:
            raise ValueError(f"behaviours has unknown keys {sorted(unknown)}; use {', '.join(sorted(names))}.")
        return dataclasses.replace(PROFILES[profile], **dict(overrides or {}))


PROFILES: dict[str, Behaviours] = {
    # jobs move back to RUNNABLE on a retry (the service always does), nothing else awkward
    "simple": Behaviours(),
    "realistic": Behaviours(
        retry_to_runnable=True,
        visibility_lag_seconds=3.0,
        summary_lag_seconds=5.0,
        ecs_sidecar=True,
        eks_init_containers=True,
        grouped_listing=True,
    ),
}
