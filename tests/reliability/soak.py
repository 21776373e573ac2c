"""Soak: a long emulated wait with faults on. Memory per poll must stay flat and the verdict must never flap.

``JOBS`` jobs finish over the first half of ``HOURS`` emulated hours (one fails; every ``RETRY_EVERY``-th fails its
first attempt and goes back to RUNNABLE before succeeding), on the emulator's ``realistic`` profile; the watch polls
every ``INTERVAL_S`` emulated seconds for the whole span, also after its verdict, and records the verdict and RSS each
poll. "Before the last job finished" is the emulator's ground truth (when its last job ended), not the watch's counts.
Throttling and 5xx on a share of calls are absorbed by botocore retries or by failed polls (no verdict).
Run: ``python -m tests.reliability.soak [jobs] [hours]`` (``make faults`` runs it after the matrix).
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from airflow_batch_jobs.hooks.batch_jobs import BatchJobsHook
from airflow_batch_jobs.policy import Policy, Verdict
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.testing import BatchEmulator
from airflow_batch_jobs.watch import JobWatch, is_transient
from tests.reliability.matrix import PROFILE

INTERVAL_S = 300.0
FAILED_POLL = "failed poll"  # a poll that gave no verdict (its calls failed after botocore's retries)
FAULT_RATE = 0.02
RETRY_EVERY = 50


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Soak:
    jobs: int
    hours: float
    verdicts: list[str] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    failed_polls: int = 0
    last_done_poll: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    faulted: int = 0
    wall_s: float = 0.0

    @property
    def flaps(self) -> int:
        """Verdict changes after the first final one (WAITING -> final is the one allowed change)."""
        finals = [v for v in self.verdicts if v not in (Verdict.WAITING.value, FAILED_POLL)]
        return sum(1 for a, b in itertools.pairwise(finals) if a != b)

    @property
    def early(self) -> bool:
        """A final verdict before the last job finished."""
        finals = (i for i, v in enumerate(self.verdicts) if v not in (Verdict.WAITING.value, FAILED_POLL))
        first = next(finals, len(self.verdicts))
        return first < self.last_done_poll

    def steady_growth_mib(self) -> float:
        """RSS growth over the second half, when every job is finished and described."""
        half = len(self.rss) // 2
        return self.rss[-1] - self.rss[half]


def run(jobs: int = 5000, hours: float = 6.0, seed: int = 0) -> Soak:
    soak = Soak(jobs, hours)
    wall = time.monotonic()
    with BatchEmulator(seed=seed, profile=PROFILE) as emu:
        emu.faults.log = type(emu.faults.log)(maxlen=1000)  # the emulator's own request log is not what we measure
        emu.setup()
        finish_by = hours * 3600 / 2
        for i in range(jobs):
            duration = 60 + finish_by * i / jobs
            attempt = {"exit_code": 1 if i == jobs // 2 else 0, "duration": duration}
            if i % RETRY_EVERY == RETRY_EVERY - 1:
                first = {"exit_code": 1, "duration": duration / 2}
                job_id = emu.submit(f"soak-{i:05d}", retryStrategy={"attempts": 2})
                emu.script_job(job_id, {"attempts": [first, {**attempt, "duration": duration / 2}]})
            else:
                emu.script_job(emu.submit(f"soak-{i:05d}"), {"attempts": [attempt]})
        last_end_ms = max(end[0] for end in map(emu.model.lifecycle.end_of, emu.model.jobs.values()) if end)
        emu.inject("*", "throttle", rate=FAULT_RATE)
        emu.inject("*", "server", rate=FAULT_RATE / 2)
        with mock.patch.dict(os.environ, {"AIRFLOW_CONN_AWS_DEFAULT": emu.airflow_connection()}):
            hook = BatchJobsHook()
            watch = JobWatch(
                JobQuery.build(job_queue="queue", job_name="soak-*"), Policy.build(fail_fast=False), clock=emu.now_ms
            )
            polls = int(hours * 3600 / INTERVAL_S)
            for poll in range(polls):
                if emu.now_ms() < last_end_ms:
                    soak.last_done_poll = poll + 1
                try:
                    decision = watch.poll(hook)
                    soak.verdicts.append(decision.verdict.value)
                except Exception as err:
                    if not is_transient(err):
                        raise
                    soak.failed_polls += 1
                    soak.verdicts.append(FAILED_POLL)
                gc.collect()
                soak.rss.append(rss_mib())
                emu.advance(INTERVAL_S)
        stats: dict[str, Any] = emu.faults.stats()
        soak.calls, soak.faulted = stats["calls"], sum(stats["faulted"].values())
    soak.wall_s = time.monotonic() - wall
    return soak


def report(soak: Soak) -> str:
    waiting = soak.verdicts.count("waiting")
    return "\n".join(
        [
            f"soak: {soak.jobs} jobs, {soak.hours:g} h emulated, a poll every {INTERVAL_S:.0f} s "
            f"({len(soak.rss)} polls), throttling on {FAULT_RATE:.0%} and 5xx on {FAULT_RATE / 2:.0%} of calls",
            f"  calls: {soak.calls} ({soak.faulted} faulted); failed polls (no verdict): {soak.failed_polls}",
            f"  RSS: {soak.rss[0]:.1f} MiB after poll 1, {soak.rss[len(soak.rss) // 2]:.1f} MiB at half-time, "
            f"{soak.rss[-1]:.1f} MiB at the end (growth over the second half: {soak.steady_growth_mib():+.1f} MiB)",
            f"  verdicts: {waiting} waiting, then {len(soak.verdicts) - waiting - soak.failed_polls} x "
            f"{soak.verdicts[-1]}; the last job finished after poll {soak.last_done_poll}; flaps: {soak.flaps}; "
            f"verdict before the last job finished: {soak.early}",
            f"  wall time: {soak.wall_s:.0f} s",
        ]
    )


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:3]]
    result = run(int(args[0]) if args else 5000, args[1] if len(args) > 1 else 6.0)
    print(report(result))
    sys.exit(0 if result.flaps == 0 and not result.early and result.verdicts[-1] == "failure" else 1)
