"""The safety net of a wait reading job state-change events (#17): it polls every 10 ``poke_interval`` s, stretches
(doubling, up to 30) while each listing agrees with the events that came since the one before, and comes back to
10 at once when a listing shows a change no event told (events lost, late, or read by another triggerer) or no event
came. A wait whose events all get lost therefore never polls less than every 10 intervals.

The real :class:`EventWait`, :class:`SharedPoll` (its loop not started: only its interval is read) and
:class:`JobWatch`; the listings are handed to the wait as the trigger hands them after judging them.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_batch_jobs.event_view import SAFETY_NET_FACTOR, SAFETY_NET_MAX_FACTOR
from airflow_batch_jobs.job_events import JobEvent
from airflow_batch_jobs.policy import Policy
from airflow_batch_jobs.query import JobQuery
from airflow_batch_jobs.triggers.event_wait import EventWait
from airflow_batch_jobs.triggers.shared_poll import Cadence, SharedPoll
from airflow_batch_jobs.watch import JobListing, JobWatch

QUERY = JobQuery.build(job_queue="queue", job_name="etl-*")
POLICY = Policy.build(min_jobs=3)
INTERVAL = 30.0
QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/queue"


def job(job_id: str, status: str) -> dict[str, Any]:
    return {"jobId": job_id, "jobName": f"etl-{job_id}", "status": status, "createdAt": 1000, "jobQueue": QUEUE_ARN}


class Night:
    """One wait on three jobs, attached to a shared poll that another subscriber may share."""

    def __init__(self, *, other_interval: float | None = None) -> None:
        listing = JobListing.for_policy(QUERY, POLICY)
        self.poll = SharedPoll("key", "connection", hook=None, listing=listing)  # type: ignore[arg-type]
        self.cadence = Cadence(SAFETY_NET_FACTOR * INTERVAL)
        self.poll.cadences.append(self.cadence)  # subscribed, as SharedPoll.subscribe does
        if other_interval is not None:
            self.poll.cadences.append(Cadence(other_interval))
        self.wait = EventWait(QUERY, POLICY, INTERVAL, logging.getLogger("test"))
        self.wait.attach(self.poll, JobWatch(QUERY, POLICY, listing=listing, began_ms=0), self.cadence)
        self.events = 0
        self.listings = 0

    def event(self, job_id: str, status: str) -> None:
        self.events += 1
        state = job(job_id, status)
        self.wait.deliver(JobEvent(f"e{self.events}", job_id, status, 0, None, state))

    def listing(self, **statuses: str) -> None:
        self.listings += 1
        self.wait.listed([job(job_id, status) for job_id, status in statuses.items()], self.listings)

    @property
    def safety_net(self) -> float:
        """Seconds between this wait's own polls."""
        return self.cadence.seconds


def test_the_safety_net_stretches_while_the_listings_agree_with_the_events() -> None:
    night = Night()
    night.listing(j1="RUNNING", j2="RUNNABLE", j3="SUBMITTED")  # the first: nothing to compare with
    assert night.safety_net == SAFETY_NET_FACTOR * INTERVAL
    night.event("j2", "STARTING")
    night.event("j2", "RUNNING")
    night.listing(j1="RUNNING", j2="RUNNING", j3="SUBMITTED")  # what the events said; j3 sends none yet
    assert night.safety_net == 2 * SAFETY_NET_FACTOR * INTERVAL
    assert night.poll.interval == night.safety_net  # the shared poll sleeps that long now
    night.event("j3", "PENDING")
    night.event("j3", "RUNNABLE")
    night.listing(j1="RUNNING", j2="RUNNING", j3="PENDING")  # listed a moment late: behind the events, not news
    assert night.safety_net == SAFETY_NET_MAX_FACTOR * INTERVAL
    night.event("j1", "SUCCEEDED")
    night.listing(j1="SUCCEEDED", j2="RUNNING", j3="RUNNABLE")
    assert night.safety_net == SAFETY_NET_MAX_FACTOR * INTERVAL  # capped
    assert "safety net every 900 s" in night.wait.describe()


def test_a_change_no_event_told_brings_the_safety_net_back_at_once() -> None:
    night = Night()
    night.listing(j1="RUNNING", j2="RUNNABLE", j3="RUNNABLE")
    night.event("j2", "RUNNING")
    night.listing(j1="RUNNING", j2="RUNNING", j3="RUNNABLE")
    assert night.safety_net == 2 * SAFETY_NET_FACTOR * INTERVAL
    night.event("j2", "SUCCEEDED")  # events still come, but j3's RUNNING was lost
    night.listing(j1="RUNNING", j2="SUCCEEDED", j3="RUNNING")
    assert night.safety_net == SAFETY_NET_FACTOR * INTERVAL


def test_a_listing_after_no_event_brings_the_safety_net_back() -> None:
    """Events that stop coming (lost, an unreachable queue) prove nothing: the next listing shortens the net, even if
    the jobs did not move meanwhile."""
    night = Night()
    night.listing(j1="RUNNING", j2="RUNNING", j3="RUNNING")
    night.event("j1", "SUCCEEDED")
    night.listing(j1="SUCCEEDED", j2="RUNNING", j3="RUNNING")
    assert night.safety_net == 2 * SAFETY_NET_FACTOR * INTERVAL
    night.event("j1", "SUCCEEDED")  # a duplicate (another event id, the same state): moves nothing
    night.listing(j1="SUCCEEDED", j2="RUNNING", j3="RUNNING")
    assert night.safety_net == SAFETY_NET_FACTOR * INTERVAL


def test_with_every_event_lost_the_safety_net_never_stretches() -> None:
    night = Night()
    for statuses in (("RUNNABLE", "RUNNABLE", "SUBMITTED"), ("RUNNING", "RUNNING", "SUBMITTED"), ("SUCCEEDED",) * 3):
        night.listing(**dict(zip(("j1", "j2", "j3"), statuses, strict=True)))
        assert night.safety_net == SAFETY_NET_FACTOR * INTERVAL


def test_a_failed_poll_changes_nothing() -> None:
    night = Night()
    night.listing(j1="RUNNING", j2="RUNNING", j3="RUNNING")
    night.event("j1", "SUCCEEDED")
    night.listing(j1="SUCCEEDED", j2="RUNNING", j3="RUNNING")
    stretched = night.safety_net
    night.wait.listed(TimeoutError("read timeout"), night.listings + 1)
    assert night.safety_net == stretched


def test_another_subscriber_keeps_its_own_shorter_interval() -> None:
    night = Night(other_interval=INTERVAL)  # a polling wait on the same question
    night.listing(j1="RUNNING", j2="RUNNING", j3="RUNNING")
    night.event("j1", "SUCCEEDED")
    night.listing(j1="SUCCEEDED", j2="RUNNING", j3="RUNNING")
    assert night.safety_net > SAFETY_NET_FACTOR * INTERVAL
    assert night.poll.interval == INTERVAL
