"""AWS Batch job state-change events, delivered as an EventBridge rule delivers them to an SQS queue (#17).

AWS Batch sends a "Batch Job State Change" event to EventBridge each time an existing job changes status (none at
submission); a rule can deliver them to an SQS queue, whose message bodies are then the EventBridge envelope::

    {"version": "0", "id": "<uuid>", "detail-type": "Batch Job State Change", "source": "aws.batch",
     "account": "123456789012", "time": "2026-11-22T07:00:00Z", "region": "us-east-1",
     "resources": ["arn:aws:batch:us-east-1:123456789012:job/<jobId>"], "detail": {<JobDetail>}}

``BatchEmulator(events=True)`` (or ``events: true`` in a scenario) does the same against a local queue:

- The queue is served by moto's server mode (the WSGI application ``moto.server.ThreadedMotoServer`` runs), on
  127.0.0.1 and a free port, behind a gate that can make it unreachable (below). ``emulator.events_queue_url``
  names the queue and ``emulator.events_endpoint_url`` the endpoint; ``emulator.airflow_connection()`` then sends
  an ``aws`` connection's SQS calls there (``service_config.sqs.endpoint_url``). The queue URL carries no region
  (moto names it ``http://127.0.0.1:<port>/123456789012/<name>``): read it with the emulator's region.
- Every status change of every job is published once the emulator's clock has passed it, in emulated-time order:
  on :meth:`BatchEmulator.advance` (manual clock), after every request the emulator serves (a CancelJob's FAILED
  is in the queue when the call returns), and every ``events_pump_seconds`` of wall time with a scaled clock.
  ``detail`` is what DescribeJobs returns for the job at that moment (``jobQueue`` an ARN, ``attempts`` with exit
  codes, the container's ``environment`` unredacted: the emulator is the service, the consumer must redact).
  No event at submission (SUBMITTED); array children and multi-node nodes get events from their first status (the
  service creates them: our reading); a retried job goes back to RUNNABLE with one more attempt in ``attempts``.
  A status that lasts no time at all (two transitions at the same millisecond) is not published: DescribeJobs
  never shows it either. A scenario's submission carried out late (its time passed between two pumps) publishes
  its past transitions on the next pump.
- Faults, deterministic under the emulator's seed (each event's fate is drawn from the seed and the event's id,
  whatever the pumps' timing): ``emulator.inject_event_faults(duplicate=p, reorder=p, delay_seconds=s, loss=p,
  reorder_window_seconds=w)``: a share ``p`` of events is delivered twice (same id; the copy up to ``w`` emulated
  seconds later), held back up to ``w`` seconds (so later events overtake it), or never delivered; every event
  arrives ``s`` emulated seconds late. ``emulator.queue_unreachable(seconds, how="error" | "refuse")``: for that many
  emulated seconds from now, every SQS request answers HTTP 503 ``ServiceUnavailable`` ("error") or has its
  connection closed without an answer ("refuse"); EventBridge retries its deliveries (it does for up to 24 hours),
  so what falls due meanwhile is delivered when the queue is back. The emulator's own deliveries pass the gate
  (a header with a per-emulator token).
- ``emulator.events_published()`` counts: ``events`` (status changes seen), ``sent`` (messages put on the queue,
  duplicates included), ``lost``, ``duplicated``, ``pending`` (waiting for their delivery time), ``refused`` (SQS
  requests the gate turned away).

moto keeps its queues in the process (one moto backend per account and region, shared by every moto server and
``mock_aws`` of the process): each emulator makes its own queue and deletes it when it stops. A ``mock_aws``
started while an emulator publishes resets that state (don't mix them in one test).
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import json
import logging
import random
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3

from airflow_batch_jobs.testing.keepalive import KeepAliveServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from airflow_batch_jobs.testing.lifecycle import Job, Lifecycle
    from airflow_batch_jobs.testing.model import BatchModel

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DETAIL_TYPE = "Batch Job State Change"
SOURCE = "aws.batch"
# EventBridge's event structure: every field is in every event (EventBridge user guide, "Amazon EventBridge events")
ENVELOPE_KEYS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
PUBLISHER_HEADER = "X-Emulator-Eventbridge"
OUTAGE_KINDS = ("error", "refuse")
SEND_BATCH = 10  # SendMessageBatch: at most 10 messages
SEND_BATCH_BYTES = 200 * 1024  # and 256 KiB in all; kept well under it
DUMMY_KEY = "emulator-access-key-id"
DUMMY_SECRET = "emulator-secret-access-key"


def event_time(ms: int) -> str:
    """EventBridge's ``time``: UTC, to the second, with a Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(event_id: str, detail: Mapping[str, Any], at_ms: int, *, region: str, account: str) -> dict[str, Any]:
    """The event as EventBridge delivers it to an SQS target (the message body, as JSON)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": event_time(at_ms),
        "region": region,
        "resources": [detail["jobArn"]],
        "detail": dict(detail),
    }


# -- status changes ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """A job's status at ``at`` differs from the one last published; ``detail`` is DescribeJobs' answer then."""

    at: int
    job_id: str
    number: int  # the job's first change is 0: with the job id, what names the event whatever the clock's start
    status: str
    detail: dict[str, Any]


@dataclass(eq=False)
class _Track:
    job: Job
    moments: list[int]  # the instants at which the job's status may change, ascending
    index: int  # the next of them to look at
    last: str | None  # the status last published; SUBMITTED for a submitted job (no event at submission)
    changes: int = 0


def change_moments(life: Lifecycle, job: Job) -> list[int]:
    """When a job's status can change: its own transitions and, for a parent, when its children appear, the main
    node's transitions (multi-node) and its end (an array parent ends with its last child plus the summary lag)."""
    timeline = life.timeline(job)
    times = {t for t, _, _ in timeline.transitions}
    if job.is_parent and timeline.release_at is not None:
        times.add(timeline.release_at)
        if job.num_nodes and job.children:
            times.update(t for t, _, _ in life.timeline(job.children[0]).transitions)
        end = life.end_of(job)
        if end is not None:
            times.add(end[0])
    return sorted(times)


class StateChanges:
    """Finds every job's status changes as the clock passes them. Keeps one heap entry a job (its next possible
    change), so a pump costs what changed, not the number of jobs; reads timelines again after ``forget()``."""

    def __init__(self, model: BatchModel) -> None:
        self.model = model
        self.cursor: int | None = None  # every moment up to here was looked at
        self._known = 0  # jobs of model.jobs (in insertion order) already tracked
        self._generation = model.lifecycle.generation
        self._tracks: dict[str, _Track] = {}
        self._heap: list[tuple[int, int, str]] = []  # (moment, job seq, job id)

    def due(self, now: int) -> list[Change]:
        """The status changes up to ``now`` not returned before, in emulated-time order. Call under the model's
        lock."""
        life = self.model.lifecycle
        if life.generation != self._generation:  # a cancel or a new script: timelines were recomputed
            self._generation = life.generation
            self._rebuild()
        self._track_new_jobs()
        out: list[Change] = []
        while self._heap and self._heap[0][0] <= now:
            at, _, job_id = heapq.heappop(self._heap)
            track = self._tracks[job_id]
            track.index += 1
            status, _ = life.state_at(track.job, at)
            if status != track.last:
                track.last = status
                out.append(Change(at, job_id, track.changes, status, self.model.shapes.detail(life, track.job, at)))
                track.changes += 1
            self._push(track)
        self.cursor = now if self.cursor is None else max(self.cursor, now)
        return out

    def _push(self, track: _Track) -> None:
        if track.index < len(track.moments):
            heapq.heappush(self._heap, (track.moments[track.index], track.job.seq, track.job.job_id))

    def _track_new_jobs(self) -> None:
        jobs = self.model.jobs
        if len(jobs) == self._known:
            return
        life = self.model.lifecycle
        for job in list(jobs.values())[self._known :]:
            # from its creation: a late scenario submission's past transitions are still published
            track = _Track(job, change_moments(life, job), 0, "SUBMITTED" if job.parent is None else None)
            self._tracks[job.job_id] = track
            self._push(track)
        self._known = len(jobs)

    def _rebuild(self) -> None:
        """Timelines changed: look again from the cursor (inclusive: a cancel's FAILED can fall on it)."""
        life = self.model.lifecycle
        self._heap = []
        since = self.cursor if self.cursor is not None else -(2**62)
        for track in self._tracks.values():
            track.moments = change_moments(life, track.job)
            track.index = bisect.bisect_left(track.moments, since)
            self._push(track)


# -- faults --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventFaults:
    """How deliveries go wrong (see the module docstring). Shares are between 0 and 1, times emulated seconds."""

    duplicate: float = 0.0
    reorder: float = 0.0
    delay_seconds: float = 0.0
    loss: float = 0.0
    reorder_window_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in ("duplicate", "reorder", "loss"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value}: a share between 0 and 1.")
        for name in ("delay_seconds", "reorder_window_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: seconds, not negative.")

    def deliveries(self, seed: int, event_id: str, at: int) -> list[int]:
        """When the event reaches the queue (emulated ms): none (lost), once, or twice (a duplicate).

        Every draw is made whatever the shares, in one order: changing one share leaves the other decisions
        of every event as they were."""
        rng = random.Random(f"{seed}/{event_id}")
        lost, dup, held = (rng.random() for _ in range(3))
        hold_ms, dup_ms = (int(rng.uniform(0, self.reorder_window_seconds) * 1000) for _ in range(2))
        if lost < self.loss:
            return []
        base = at + int(self.delay_seconds * 1000)
        out = [base + (hold_ms if held < self.reorder else 0)]
        if dup < self.duplicate:
            out.append(base + dup_ms)
        return out


@dataclass(frozen=True)
class Outage:
    start: int
    end: int
    how: str


def _event_id(seed: int, change: Change) -> str:
    digest = hashlib.sha256(f"{seed}/{change.job_id}/{change.number}/{change.status}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


@dataclass(order=True)
class _Delivery:
    at: int
    seq: int
    body: str = field(compare=False)


# -- the rule, the queue and the gate in front of it ---------------------------------------------------------
class EventBus:
    """The EventBridge rule that sends the emulated service's job state changes to an SQS queue on moto's server."""

    def __init__(self, model: BatchModel, *, seed: int = 0, account: str, pump_seconds: float = 0.05) -> None:
        self.model = model
        self.seed = seed
        self.account = account
        self.pump_seconds = pump_seconds
        self.faults = EventFaults()
        self.changes = StateChanges(model)
        self.queue_name = f"batch-job-state-changes-{uuid.uuid4().hex[:12]}"
        self.counts: Counter[str] = Counter()
        self.sqs_calls: Counter[str] = Counter()  # requests to the queue's endpoint by action (the gate's view)
        self._outages: list[Outage] = []
        self._pending: list[_Delivery] = []
        self._seq = 0
        self._token = uuid.uuid4().hex  # what lets the emulator's own deliveries through the gate
        self._lock = threading.Lock()  # one pump at a time
        self._gate_lock = threading.Lock()  # the gate's counters (requests come in on many threads)
        self._server: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None
        self._pump_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._client: Any = None
        self._queue_url: str | None = None
        self._port = 0
        self._moto_app: Callable[..., Iterable[bytes]] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._server is not None

    def start(self, *, pump_thread: bool) -> None:
        """Serve the queue (same port as before after a stop), create it, and publish what is due."""
        if self._server is not None:
            return
        if self._moto_app is None:
            try:
                from moto.server import DomainDispatcherApplication, create_backend_app
            except ImportError as err:
                raise ImportError(
                    f"Job state-change events need moto's server mode ({err}): "
                    "pip install 'airflow-batch-jobs[testing]'"
                ) from err
            self._moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = KeepAliveServer(LOOPBACK, self._port, self._gate)
        self._port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="batch-events-sqs", daemon=True
        )
        self._thread.start()
        self._client = self.client()
        self._client.meta.events.register("before-sign.sqs.*", self._mark_publisher)
        self._queue_url = self._client.create_queue(QueueName=self.queue_name)["QueueUrl"]
        self._stop.clear()
        if pump_thread:
            self._pump_thread = threading.Thread(target=self._pump_loop, name="batch-events-pump", daemon=True)
            self._pump_thread.start()
        self.pump()

    def stop(self) -> None:
        """Stop pumping, delete the queue (moto keeps queues for the whole process) and stop serving."""
        if self._server is None:
            return
        self._stop.set()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=5)
            self._pump_thread = None
        with self._lock:
            try:
                self._client.delete_queue(QueueUrl=self._queue_url)
            except Exception as err:  # the queue goes with the process anyway
                log.warning("Could not delete the events queue %s: %s", self._queue_url, err)
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = self._client = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("The events queue is served once the emulator is started.")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def queue_url(self) -> str:
        if self._queue_url is None or self._server is None:
            raise RuntimeError("The events queue exists once the emulator is started.")
        return self._queue_url

    def client(self, **config: Any) -> Any:
        """A boto3 SQS client for the queue's endpoint (dummy credentials, the emulator's region)."""
        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint_url,
            region_name=self.model.region,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_SECRET,
            **config,
        )

    # -- faults ------------------------------------------------------------------------------------------------
    def set_faults(self, faults: EventFaults) -> None:
        with self._lock:
            self.faults = faults

    def unreachable(self, seconds: float, *, how: str = "error", start_ms: int | None = None) -> Outage:
        if how not in OUTAGE_KINDS:
            raise ValueError(f"how={how!r}: use one of {', '.join(OUTAGE_KINDS)}.")
        if seconds <= 0:
            raise ValueError(f"seconds={seconds}: an outage lasts a while.")
        start = self.model.clock.now_ms() if start_ms is None else start_ms
        outage = Outage(start, start + int(seconds * 1000), how)
        with self._lock:
            self._outages.append(outage)
        return outage

    def outage_at(self, now: int) -> Outage | None:
        return next((o for o in self._outages if o.start <= now < o.end), None)

    def _reachable_from(self, at: int) -> int:
        """When a delivery due at ``at`` gets through: after every outage it falls in (EventBridge retries)."""
        moved = True
        while moved:
            moved = False
            for outage in self._outages:
                if outage.start <= at < outage.end:
                    at, moved = outage.end, True
        return at

    # -- publishing --------------------------------------------------------------------------------------------
    def pump(self) -> None:
        """Publish what the clock has passed: find the status changes, apply the faults, send what is due."""
        with self._lock:
            model = self.model
            with model.lock:
                model.run_schedule()
                now = model.clock.now_ms()
                changes = self.changes.due(now)
            for change in changes:
                event_id = _event_id(self.seed, change)
                body = json.dumps(
                    envelope(event_id, change.detail, change.at, region=model.region, account=self.account)
                )
                times = self.faults.deliveries(self.seed, event_id, change.at)
                self.counts["events"] += 1
                self.counts["lost"] += not times
                self.counts["duplicated"] += max(len(times) - 1, 0)
                for at in times:
                    self._seq += 1
                    heapq.heappush(self._pending, _Delivery(at, self._seq, body))
            if self._server is not None:
                self._send_due(now)

    def _send_due(self, now: int) -> None:
        ready: list[_Delivery] = []
        while self._pending and self._pending[0].at <= now:
            delivery = heapq.heappop(self._pending)
            reachable = self._reachable_from(delivery.at)
            if reachable > now:
                heapq.heappush(self._pending, _Delivery(reachable, delivery.seq, delivery.body))
                continue
            ready.append(_Delivery(reachable, delivery.seq, delivery.body))  # held ones go out in their order
        ready.sort()
        for chunk in _chunks(ready):
            try:
                self._send(chunk)
            except Exception as err:  # the server is going down: keep them for the next pump
                log.warning("Could not deliver %d event(s) to %s: %s", len(chunk), self._queue_url, err)
                for delivery in chunk:
                    heapq.heappush(self._pending, delivery)
                return

    def _send(self, chunk: Sequence[_Delivery]) -> None:
        entries = [{"Id": str(i), "MessageBody": d.body} for i, d in enumerate(chunk)]
        answer = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        if answer.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed for {answer['Failed']}")
        self.counts["sent"] += len(chunk)

    def published(self) -> dict[str, int]:
        with self._lock:
            counts = {k: self.counts[k] for k in ("events", "sent", "lost", "duplicated")}
            return {**counts, "pending": len(self._pending), "refused": self.counts["refused"]}

    def _pump_loop(self) -> None:
        while not self._stop.wait(self.pump_seconds):
            try:
                self.pump()
            except Exception:  # keep pumping: a test sees the missing events, not a dead thread
                log.exception("Publishing the emulated job state-change events failed")

    def _mark_publisher(self, request: Any, **_: Any) -> None:
        request.headers[PUBLISHER_HEADER] = self._token

    # -- the gate ----------------------------------------------------------------------------------------------
    def _gate(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """moto's application, but for the outages: 503 ServiceUnavailable, or the connection closed."""
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "").rpartition(".")[2] or "query"
        publisher = environ.get("HTTP_" + PUBLISHER_HEADER.upper().replace("-", "_")) == self._token
        if not publisher:
            outage = self.outage_at(self.model.clock.now_ms())
            with self._gate_lock:
                self.sqs_calls[target] += 1
                self.counts["refused"] += outage is not None
            if outage is not None:
                if outage.how == "refuse":
                    sock = environ.get("werkzeug.socket")
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
                    start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                    return [b""]
                body = json.dumps(
                    {"__type": "com.amazonaws.sqs#ServiceUnavailable", "message": "Service Unavailable (emulated)"}
                ).encode()
                start_response(
                    "503 Service Unavailable",
                    [
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("x-amzn-query-error", "ServiceUnavailable;Receiver"),
                        ("x-amzn-RequestId", str(uuid.uuid4())),
                    ],
                )
                return [body]
        assert self._moto_app is not None
        return self._moto_app(environ, start_response)


def _chunks(deliveries: Sequence[_Delivery]) -> Iterable[list[_Delivery]]:
    chunk: list[_Delivery] = []
    size = 0
    for delivery in deliveries:
        if chunk and (len(chunk) == SEND_BATCH or size + len(delivery.body) > SEND_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(delivery)
        size += len(delivery.body)
    if chunk:
        yield chunk
