"""How a deferred wait uses job state-change events (``BatchJobsTrigger(events_queue_url=...)``): events wake a
confirming listing; polling is the safety net.

The trigger subscribes to the :class:`~airflow_batch_jobs.triggers.event_consumer.EventConsumer` of its queue (one
per queue and connection per event loop, shared by every wait) and to its shared poll, which then polls at
:data:`~airflow_batch_jobs.event_view.SAFETY_NET_FACTOR` times ``poll_interval``: a wait whose events are all lost
still ends within one such interval. While the events prove right (events for the wait came since the last listing,
and it showed no change they had not told), the safety net stretches, doubling up to
:data:`~airflow_batch_jobs.event_view.SAFETY_NET_MAX_FACTOR` intervals; one listing that shows an untold change, or
none of the wait's events since the last one, brings it back. Events that stop coming mid-wait thus delay a verdict
by at most the stretched interval; the verdict itself still comes from a listing.

Each event that matches the wait moves its :class:`EventView` on; when the view predicts a verdict, :class:`EventWait`
asks the shared poll for a listing now (:meth:`~airflow_batch_jobs.triggers.shared_poll.SharedPoll.request_listing`),
and the trigger judges that listing as it judges every other one: the verdict, its records and its message are those
polling gives.

A confirming listing can disagree: the service lists a job a moment after its event, or a job is still SUBMITTED
(it has sent no event). The wait then asks again after :data:`~airflow_batch_jobs.event_view.CONFIRM_BACKOFF_S`,
doubling up to ``poll_interval``, or at once when a new event moves the view: never in a tight loop. A listing is
also asked for within one ``poll_interval`` of subscribing (events sent before reached no one, or another wait that
deleted them), and when a deadline falls due that no event announces: a job RUNNABLE for ``runnable_timeout``, an id of
``job_ids`` still unknown after ``UNKNOWN_JOB_ID_TIMEOUT_S``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from airflow_batch_jobs.event_view import CONFIRM_BACKOFF_S, SAFETY_NET_FACTOR, SAFETY_NET_MAX_FACTOR, EventView
from airflow_batch_jobs.job_events import event_matches
from airflow_batch_jobs.policy import Verdict
from airflow_batch_jobs.watch import UNKNOWN_JOB_ID_TIMEOUT_S, Listed

if TYPE_CHECKING:
    import logging

    from airflow_batch_jobs.job_events import JobEvent
    from airflow_batch_jobs.policy import Policy
    from airflow_batch_jobs.query import JobQuery
    from airflow_batch_jobs.triggers.shared_poll import Cadence, PollResult, SharedPoll
    from airflow_batch_jobs.watch import JobWatch

# A deadline's listing comes this long after the deadline itself (a job is stuck once it waited *more* than
# runnable_timeout), so that it is due when the listing judges it.
DEADLINE_MARGIN_MS = 1000


class EventWait:
    """One deferred wait's events: :meth:`deliver` is the consumer's callback; :meth:`attach` once the wait has its
    shared poll and watch; :meth:`listed` after each listing the wait judged without a verdict."""

    def __init__(self, query: JobQuery, policy: Policy, poll_interval: float, log: logging.Logger | Any) -> None:
        self.query = query
        self.policy = policy
        self.poll_interval = poll_interval
        self.log = log
        self.poll: SharedPoll | None = None
        self.watch: JobWatch | None = None
        self.cadence: Cadence | None = None  # the safety net's, on the shared poll
        self.factor = SAFETY_NET_FACTOR  # the safety net polls every factor * poll_interval
        self._moved_by_then = 0  # self.moved at the last listing
        self.view = EventView(query, policy)
        self.ticket: int | None = None  # the poll that answers this wait's last request
        self.backoff = 0.0
        # counts, for the progress line and tests
        self.delivered = 0  # events the consumer handed over
        self.matched = 0  # ... that match the wait
        self.moved = 0  # ... that moved the view on
        self.confirmations = 0  # listings asked for

    def deliver(self, event: JobEvent) -> None:
        """Every event the consumer reads, once (it deduplicates by event id): the wait matches it locally."""
        self.delivered += 1
        if not event_matches(self.query, event, include_array_children=self.policy.include_array_children):
            return
        self.matched += 1
        if not self.view.add(event):  # a duplicate, or older than what the wait knows of the job
            return
        self.moved += 1
        if self.poll is None:
            return
        if self._predicts():
            self._confirm(0.0, None)  # a new event: confirm now, whatever the backoff
        elif event.status == "RUNNABLE" and self.policy.runnable_timeout is not None:
            # runnable_timeout counts from the listings that see a job RUNNABLE: one within poll_interval, as polling
            # would, starts the count, and the deadline it arms (_arm_deadlines) ends it on time
            self.poll.request_listing(self.poll_interval)

    def attach(self, poll: SharedPoll, watch: JobWatch, cadence: Cadence) -> None:
        """The wait's shared poll, its cadence there (the safety net's) and its watch: the view judges jobs as the
        watch's listing does. A poll this wait joined may have listed already: its last listing is the view's base."""
        self.poll, self.watch, self.cadence = poll, watch, cadence
        self.view.view_of = watch.listing.details.view
        if poll.version > 0 and isinstance(poll.result, list):
            self.view.rebase(poll.result, self._unknown(poll.result), watch.listing.parent.size)
        if self.moved and self._predicts():  # events came while the wait set up
            self._confirm(0.0, "an event")
        # The events sent between the sensor's last poke and this subscription reached no one, or another wait on the
        # queue's consumer, which deleted them: a listing after subscribing closes that gap, within one poll_interval
        # as polling would (at a random moment of it, so that a restarted triggerer's waits do not list at once).
        poll.request_listing(self.poll_interval * random.random())

    def listed(self, result: PollResult, number: int) -> None:
        """After a listing judged WAITING (or a failed poll): the view starts again from it; if it still predicts a
        verdict, the listing disagreed with the events: ask again after the backoff (or when a new event comes)."""
        assert self.poll is not None and self.watch is not None
        if self.ticket is not None and number >= self.ticket:
            self.ticket = None  # answered
        if isinstance(result, list):
            untold = self.view.rebase(result, self._unknown(result), self.watch.listing.parent.size)
            self._pace(proven=untold == 0 and self.moved > self._moved_by_then)
            self._moved_by_then = self.moved
        if not self._predicts():
            self.backoff = 0.0
        elif self.ticket is None:
            self.backoff = min(max(2 * self.backoff, CONFIRM_BACKOFF_S), self.poll_interval)
            self._confirm(self.backoff, "the listing disagreed with the events")
        self._arm_deadlines()

    def _pace(self, *, proven: bool) -> None:
        """Stretch the safety net after a listing that proved the events right, back to its start otherwise."""
        assert self.poll is not None and self.cadence is not None
        factor = min(2 * self.factor, SAFETY_NET_MAX_FACTOR) if proven else SAFETY_NET_FACTOR
        if factor == self.factor:
            return
        self.factor = factor
        self.poll.retime(self.cadence, factor * self.poll_interval)
        self.log.info(
            "The listing %s; safety-net polls every %.0f s.",
            "agreed with the events" if proven else "showed changes no event told, or no event came",
            factor * self.poll_interval,
        )

    def _unknown(self, result: list[dict[str, Any]]) -> tuple[str, ...]:
        assert self.watch is not None
        return result.unknown_ids if isinstance(result, Listed) else tuple(self.watch.listing.unknown_ids(result))

    def _predicts(self) -> bool:
        if self.watch is None:
            return False
        watch = self.watch
        verdict = self.view.predict(
            now_ms=watch.clock(), runnable_since=watch.runnable.since, account_for_unknown=watch.account_for_unknown
        )
        return verdict is not Verdict.WAITING

    def _confirm(self, within: float, why: str | None) -> None:
        """Ask for a listing within ``within`` s; ``why`` is logged. None: asked from :meth:`deliver`, which runs in
        the consumer's task, whose log is not this wait's (Airflow routes a trigger's log by its task's context):
        the wait's progress line counts the listings asked for instead."""
        assert self.poll is not None
        ticket = self.poll.request_listing(within)
        if ticket == self.ticket:  # merged into a request already made: the same listing answers both
            return
        self.ticket = ticket
        self.confirmations += 1
        if why is None:
            return
        if within:
            self.log.info("Events say the wait may be over, but %s; listing again in %.0f s.", why, within)
        else:
            self.log.info("Events say the wait may be over (%s); listing to confirm.", why)

    def _arm_deadlines(self) -> None:
        """A listing when a deadline no event announces falls due (the safety net may be later)."""
        assert self.poll is not None and self.watch is not None
        watch, deadlines = self.watch, []
        if self.policy.runnable_timeout is not None:
            limit = int(self.policy.runnable_timeout * 1000)
            deadlines += [
                s + limit for job_id, s in watch.runnable.since.items() if self.view.status(job_id) == "RUNNABLE"
            ]
        if self.view.unknown and watch.began_ms is not None:
            deadlines.append(watch.began_ms + UNKNOWN_JOB_ID_TIMEOUT_S * 1000)
        if deadlines:
            self.poll.request_listing(max(0, min(deadlines) + DEADLINE_MARGIN_MS - watch.clock()) / 1000)

    def describe(self) -> str:
        """For the progress line: what the events did."""
        return (
            f"events: {self.matched} for this wait of {self.delivered} read, {self.confirmations} listing(s) asked for,"
            f" safety net every {self.factor * self.poll_interval:.0f} s"
        )
