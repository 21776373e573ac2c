"""Generated job histories within the service's documented behaviour, and how a wait is polled over them.

A history is everything the emulator needs to play one night: jobs (single or arrays) with per-attempt exit codes,
``retryStrategy`` with ``evaluateOnExit``, submit times, cancels and terminates, the awkward behaviours of the
``realistic`` profile with generated lags, retention, faults on calls, and the sensor's mode, interval and policy.
``histories(events=True)``: deferrable waits reading job state-change events (``events_queue_url``) whose delivery
goes wrong as EventBridge's and SQS's can (:class:`EventPlan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from airflow_batch_jobs.event_view import SAFETY_NET_MAX_FACTOR  # with events, polls at most this many intervals apart

EXIT_CODES = (0, 1, 3, 4, 137)
SUCCESS_CODE = 4  # in success_exit_codes when the policy uses them
SKIP_CODE = 3  # in skip_exit_codes when the policy uses them
RETRY_137_THEN_EXIT = [{"onExitCode": "137", "action": "RETRY"}, {"onExitCode": "*", "action": "EXIT"}]


@dataclass(frozen=True)
class JobPlan:
    name: str
    submit_at: float
    exit_codes: tuple[int, ...]  # per attempt; the last one repeats
    attempts: int  # retryStrategy.attempts
    evaluate_on_exit: bool
    duration: float
    runnable: float
    array_size: int | None = None
    child_exit_codes: tuple[tuple[int, ...], ...] = ()  # per child index, for arrays
    stop_after: float | None = None  # seconds after submission
    stop_how: str = "cancel"
    submitted: float = 1.0  # seconds SUBMITTED (a job sends no event before it leaves that status)

    @property
    def matches(self) -> bool:
        return self.name.startswith("etl-")


@dataclass(frozen=True)
class EventPlan:
    """The wait reads job state-change events from the emulator's queue, delivered as badly as the service's can be
    (at least once, unordered, late or lost; a queue that cannot be read for a while): shares of events delivered
    twice, held back up to ``reorder_window_seconds`` (overtaken by later ones) or lost, every one ``delay_seconds``
    late, and the queue unreachable ``(from, for, how)`` emulated seconds after the start ("error": 503s, "refuse":
    connections closed). The emulated clock moves ``step_seconds`` at a time, each step's messages read before the
    next."""

    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_window_seconds: float = 10.0
    delay_seconds: float = 0.0
    loss: float = 0.0
    unreachable: tuple[float, float, str] | None = None
    step_seconds: float = 1.0


@dataclass(frozen=True)
class History:
    jobs: tuple[JobPlan, ...]
    behaviours: dict[str, Any]
    retention_seconds: float
    faults: tuple[tuple[str, str, float], ...]  # (operation, kind, rate)
    mode: str  # poke | reschedule | deferrable
    interval: float
    restart_after_polls: int | None  # deferrable: the triggerer restarts after this many polls
    policy: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    log_lines: int = 0  # the failed jobs' log lines read at a failure (each read makes a logs client: mostly off)
    state_store: bool = True  # the context has a task_state_store (Airflow >= 3.3); without: Airflow 3.0 to 3.2
    events: EventPlan | None = None  # deferrable only: the trigger reads job state-change events too

    @property
    def label(self) -> str:
        """The mode as make fuzz counts it."""
        return f"{self.mode}+events" if self.events is not None else self.mode


def _job(index: int, draw: st.DrawFn, events: bool = False) -> JobPlan:
    matching = draw(st.booleans()) if index else True
    name = f"{'etl' if matching else 'other'}-{index}"
    attempts = draw(st.integers(1, 3))
    exit_codes = tuple(draw(st.lists(st.sampled_from(EXIT_CODES), min_size=1, max_size=3)))
    array_size = draw(st.one_of(st.none(), st.integers(2, 3))) if draw(st.integers(0, 3)) == 0 else None
    child_codes: tuple[tuple[int, ...], ...] = ()
    if array_size:
        child_codes = tuple(
            tuple(draw(st.lists(st.sampled_from(EXIT_CODES), min_size=1, max_size=2))) for _ in range(array_size)
        )
    stop_after = (
        draw(st.one_of(st.none(), st.floats(0, 40).map(lambda x: round(x, 1)))) if draw(st.booleans()) else None
    )
    return JobPlan(
        name=name,
        submit_at=draw(st.sampled_from((0.0, 0.0, 5.0, 20.0, 45.0, 90.0))),
        exit_codes=exit_codes,
        attempts=attempts,
        evaluate_on_exit=draw(st.booleans()),
        duration=draw(st.sampled_from((1.0, 5.0, 12.0, 30.0))),
        runnable=draw(st.sampled_from((1.0, 2.0, 8.0, 25.0))),
        array_size=array_size,
        child_exit_codes=child_codes,
        stop_after=stop_after,
        stop_how=draw(st.sampled_from(("cancel", "terminate"))),
        # with events: a job the scheduler has not evaluated yet is listed, and no event says so
        submitted=draw(st.sampled_from((1.0, 1.0, 30.0, 90.0))) if events else 1.0,
    )


@st.composite
def event_plans(draw: st.DrawFn) -> EventPlan:
    return EventPlan(
        duplicate=draw(st.sampled_from((0.0, 0.0, 0.3, 1.0))),
        reorder=draw(st.sampled_from((0.0, 0.5, 1.0))),
        reorder_window_seconds=draw(st.sampled_from((5.0, 30.0, 120.0))),
        delay_seconds=draw(st.sampled_from((0.0, 0.0, 5.0, 60.0))),
        loss=draw(st.sampled_from((0.0, 0.0, 0.3, 1.0))),
        unreachable=draw(
            st.one_of(
                st.none(),
                st.tuples(
                    st.sampled_from((0.0, 20.0, 60.0)),
                    st.sampled_from((30.0, 120.0, 400.0)),
                    st.sampled_from(("error", "refuse")),
                ),
            )
        ),
        step_seconds=draw(st.sampled_from((0.5, 2.0))),
    )


@st.composite
def histories(draw: st.DrawFn, events: bool = False) -> History:
    """``events``: a deferrable wait reading job state-change events (:func:`event_plans`); else any mode, no
    events."""
    count = draw(st.integers(1, 5))
    jobs = tuple(_job(i, draw, events) for i in range(count))
    retention = draw(st.sampled_from((7 * 24 * 3600.0, 300.0, 120.0)))
    # Minutes of retention stand in for the service's days. With faults on top, every listing a wait makes before
    # the jobs age out can fail, and nothing can be known of them: that is no behaviour of the service's.
    fault_rate = draw(st.sampled_from((0.0, 0.0, 0.1, 0.3))) if retention > 3600 else 0.0
    faults: tuple[tuple[str, str, float], ...] = ()
    if fault_rate:
        kind = draw(st.sampled_from(("throttle", "server", "drop")))
        faults = tuple((op, kind, fault_rate) for op in ("ListJobs", "DescribeJobs"))
    mode = "deferrable" if events else draw(st.sampled_from(("poke", "reschedule", "deferrable")))
    uses_codes = draw(st.booleans())
    policy = {
        "match": draw(st.sampled_from(("all", "all", "latest"))),
        "min_jobs": draw(st.integers(1, 2)),
        "success_exit_codes": [SUCCESS_CODE] if uses_codes else [],
        "skip_exit_codes": [SKIP_CODE] if uses_codes and draw(st.booleans()) else [],
        "max_failed_jobs": draw(st.integers(0, 1)),
        "fail_fast": draw(st.booleans()),
        "include_array_children": draw(st.booleans()),
    }
    if policy["match"] == "latest":
        policy["min_jobs"] = 1  # 'latest' judges one job
    behaviours = {
        "visibility_lag_seconds": draw(st.sampled_from((0.0, 3.0, 10.0))),
        "summary_lag_seconds": draw(st.sampled_from((0.0, 5.0, 20.0))),
        "grouped_listing": draw(st.booleans()),
    }
    interval = draw(st.sampled_from((5.0, 15.0, 30.0, 60.0)))
    if events and retention < 3 * SAFETY_NET_MAX_FACTOR * interval:
        # The safety net polls every 10 to 30 intervals, minutes here where the service keeps jobs for days: a history
        # whose jobs age out between two safety-net polls would be no night the service has.
        retention = 7 * 24 * 3600.0
    return History(
        jobs=jobs,
        behaviours=behaviours,
        retention_seconds=retention,
        faults=faults,
        mode=mode,
        interval=interval,
        restart_after_polls=draw(st.one_of(st.none(), st.integers(1, 4))) if mode == "deferrable" else None,
        policy=policy,
        seed=draw(st.integers(0, 2**16)),
        log_lines=draw(st.sampled_from((0, 0, 0, 20))),
        state_store=draw(st.booleans()) if mode == "reschedule" else True,
        events=draw(event_plans()) if events else None,
    )
