"""EventView: what a deferred wait knows between listings from job state-change events. Its prediction only decides
when to list, but a wrong one costs a listing (predicts too soon) or a safety-net interval (too late), so:

- whatever the events' order, duplicates and losses, each job is in the view at the newest state the listing and the
  delivered events show, never older than the listing, never newer than the truth;
- with every event delivered, the view predicts exactly the verdict ``judge`` gives on the true states;
- array children and multi-node nodes count in their parent's place as the listing counts them, members not known
  yet keep the view waiting; ``match='latest'`` looks at the newest job only; children the listing does not list
  (a queue query without ``include_array_children``) are left out.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_batch_jobs.event_view import EventView, check_events_queue_url
from airflow_batch_jobs.job_events import JobEvent
from airflow_batch_jobs.jobs import JobView
from airflow_batch_jobs.policy import Policy, Verdict, judge
from airflow_batch_jobs.query import JobQuery

QUERY = JobQuery.build(job_queue="queue", job_name="etl-*")
LIFECYCLE = ("PENDING", "RUNNABLE", "STARTING", "RUNNING")


def job(job_id: str, status: str, attempts: int = 0, exit_code: int | None = None, **extra: Any) -> dict[str, Any]:
    done = [{"container": {"exitCode": 1}, "startedAt": 1, "stoppedAt": 2, "statusReason": "Essential container"}]
    tries = done * max(attempts - 1, 0)
    if attempts:
        tries.append({"container": {"exitCode": exit_code if exit_code is not None else 0}, "startedAt": 3})
    out = {"jobId": job_id, "jobName": f"etl-{job_id}", "status": status, "createdAt": 1000, "attempts": tries}
    if status in ("SUCCEEDED", "FAILED"):
        out["container"] = {"exitCode": exit_code if exit_code is not None else (0 if status == "SUCCEEDED" else 1)}
    out.update(extra)
    return out


def event(state: dict[str, Any], n: int = 0) -> JobEvent:
    """The event the service sends for a job now in ``state`` (``n``: a distinct event id, for duplicates)."""
    return JobEvent(
        event_id=f"{state['jobId']}-{state['status']}-{len(state['attempts'])}-{n}",
        job_id=state["jobId"],
        status=state["status"],
        attempts=len(state["attempts"]),
        time_ms=None,
        job=state,
    )


@st.composite
def history(draw: st.DrawFn, job_id: str) -> list[dict[str, Any]]:
    """One job's states in order, as its events report them (none at submission): attempts that fail and are
    retried go back to RUNNABLE; the last state may be active (the job is not over)."""
    attempts = draw(st.integers(1, 3))
    states: list[dict[str, Any]] = []
    for attempt in range(attempts):
        for status in LIFECYCLE if attempt == 0 else LIFECYCLE[1:]:
            states.append(job(job_id, status, attempt))
    final = draw(st.sampled_from(["SUCCEEDED", "FAILED", "FAILED-skip", None]))
    if final is not None:
        status, _, kind = final.partition("-")
        states.append(job(job_id, status, attempts, exit_code=3 if kind else None))
    cut = draw(st.integers(1, len(states)))
    return states[:cut]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    histories = [draw(history(f"j{i}")) for i in range(n)]
    # the listing: each job at some state of its history up to its last, or not listed yet
    listed = [h[draw(st.integers(0, len(h) - 1))] for h in histories if draw(st.booleans())]
    events = [(i, k) for i, h in enumerate(histories) for k in range(len(h))]
    delivered = draw(st.lists(st.sampled_from(events), max_size=3 * len(events)) if events else st.just([]))
    policy = Policy.build(
        min_jobs=draw(st.integers(0, n + 1)),
        max_failed_jobs=draw(st.integers(0, 1)),
        fail_fast=draw(st.booleans()),
        skip_exit_codes=[3] if draw(st.booleans()) else None,
    )
    return {"histories": histories, "listed": listed, "delivered": delivered, "policy": policy}


def position(history: list[dict[str, Any]], state: dict[str, Any]) -> int:
    return next(
        i for i, s in enumerate(history) if s["status"] == state["status"] and s["attempts"] == state["attempts"]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_each_job_is_at_the_newest_state_shown_whatever_the_order(scenario: dict[str, Any]) -> None:
    histories, policy = scenario["histories"], scenario["policy"]
    view = EventView(QUERY, policy)
    view.rebase(scenario["listed"])
    seen: dict[int, int] = {}
    for i, k in scenario["delivered"]:
        view.add(event(histories[i][k], n=len(seen)))
        seen[i] = max(seen.get(i, -1), k)
    listed = {s["jobId"]: s for s in scenario["listed"]}
    in_view = {j["jobId"]: j for j in view.jobs()}
    for i, h in enumerate(histories):
        job_id = f"j{i}"
        floor = position(h, listed[job_id]) if job_id in listed else -1
        newest = max(floor, seen.get(i, -1))
        if newest < 0:
            assert job_id not in in_view
            continue
        assert position(h, in_view[job_id]) == newest
    # a new listing keeps what the events showed beyond it
    view.rebase(scenario["listed"])
    assert {j["jobId"]: position(histories[int(j["jobId"][1:])], j) for j in view.jobs()} == {
        job_id: position(histories[int(job_id[1:])], state) for job_id, state in in_view.items()
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.randoms(use_true_random=False))
def test_with_every_event_delivered_the_view_predicts_the_true_verdict(scenario: dict[str, Any], rnd: Any) -> None:
    histories, policy = scenario["histories"], scenario["policy"]
    everything = [event(state, n) for h in histories for n, state in enumerate(h)]  # every status change
    everything += everything[: len(everything) // 2]  # duplicates
    rnd.shuffle(everything)
    view = EventView(QUERY, policy)
    view.rebase(scenario["listed"])
    for e in everything:
        view.add(e)
    truth = [JobView(h[-1]) for h in histories]
    expected = judge(truth, policy, now_ms=10_000).verdict
    assert view.predict(now_ms=10_000) is expected


def test_an_old_running_event_after_the_end_changes_nothing() -> None:
    view = EventView(QUERY, Policy.build())
    view.rebase([job("a", "RUNNING")])
    assert view.add(event(job("a", "SUCCEEDED", 1)))
    assert not view.add(event(job("a", "RUNNING"), n=9))  # late
    assert not view.add(event(job("a", "SUCCEEDED", 1)))  # duplicate
    assert view.predict(now_ms=1) is Verdict.SUCCESS


def test_a_retry_back_to_runnable_keeps_the_view_waiting() -> None:
    view = EventView(QUERY, Policy.build())
    view.rebase([job("a", "RUNNING")])
    assert view.add(event(job("a", "RUNNABLE", 1)))  # the first attempt failed; retried
    assert not view.add(event(job("a", "RUNNING", 0), n=2))  # the first attempt's RUNNING, late
    assert view.status("a") == "RUNNABLE" and view.predict(now_ms=1) is Verdict.WAITING


def test_a_job_only_listed_keeps_a_success_from_being_predicted() -> None:
    """A job still SUBMITTED has sent no event: the listing shows it, the view keeps it."""
    view = EventView(QUERY, Policy.build())
    view.rebase([job("a", "RUNNING"), job("b", "SUBMITTED")])
    view.add(event(job("a", "SUCCEEDED", 1)))
    assert view.predict(now_ms=1) is Verdict.WAITING
    assert dict(view.counts) == {"jobs": 2, "success": 1, "active": 1}


def test_jobs_only_events_have_shown_count() -> None:
    view = EventView(QUERY, Policy.build(min_jobs=2))
    view.rebase([job("a", "RUNNING")])
    view.add(event(job("a", "SUCCEEDED", 1)))
    assert view.predict(now_ms=1) is Verdict.WAITING  # 1 of at least 2
    view.add(event(job("b", "SUCCEEDED", 1)))  # not listed yet: the service lists a new job late
    assert view.predict(now_ms=1) is Verdict.SUCCESS


def test_array_children_count_in_the_parents_place_and_unknown_ones_keep_it_waiting() -> None:
    policy = Policy.build(include_array_children=True)
    view = EventView(JobQuery.build(job_queue="queue"), policy)
    view.rebase([job("p", "PENDING", arrayProperties={"size": 3})])  # no child listed yet
    for i in range(2):
        view.add(event(job(f"p:{i}", "SUCCEEDED", 1, arrayProperties={"index": i})))
    assert dict(view.counts) == {"jobs": 3, "success": 2, "active": 1}  # child 2 not known yet
    assert view.predict(now_ms=1) is Verdict.WAITING
    view.add(event(job("p:2", "SUCCEEDED", 1, arrayProperties={"index": 2})))
    assert view.predict(now_ms=1) is Verdict.SUCCESS
    assert sorted(j["jobId"] for j in view.jobs()) == ["p:0", "p:1", "p:2"]  # not the parent


def test_children_are_left_out_where_the_listing_lists_none() -> None:
    view = EventView(JobQuery.build(job_queue="queue"), Policy.build())
    view.rebase([job("p", "RUNNING", arrayProperties={"size": 2})])
    assert not view.add(event(job("p:0", "FAILED", 1, arrayProperties={"index": 0})))
    assert not view.add(event(job("m#0", "SUCCEEDED", 1)))
    assert view.predict(now_ms=1) is Verdict.WAITING and [j["jobId"] for j in view.jobs()] == ["p"]


def test_nodes_of_a_multi_node_job_count_against_num_nodes() -> None:
    view = EventView(JobQuery.build(multi_node_job_id="m"), Policy.build())
    view.rebase([job("m", "RUNNABLE", nodeProperties={"numNodes": 2})])  # no node listed yet: the job stands for them
    view.add(event(job("m#0", "SUCCEEDED", 1, nodeProperties={"numNodes": 2})))
    assert view.predict(now_ms=1) is Verdict.WAITING
    view.add(event(job("m#1", "SUCCEEDED", 1, nodeProperties={"numNodes": 2})))
    assert view.predict(now_ms=1) is Verdict.SUCCESS


def test_latest_judges_the_newest_job_only() -> None:
    view = EventView(QUERY, Policy.build(match="latest"))
    view.rebase([job("old", "RUNNING", createdAt=1000)])
    view.add(event(job("new", "SUCCEEDED", 1, createdAt=2000)))
    assert [j["jobId"] for j in view.jobs()] == ["new"] and view.predict(now_ms=1) is Verdict.SUCCESS
    view.add(event(job("old", "FAILED", 1, createdAt=1000)))
    assert view.predict(now_ms=1) is Verdict.SUCCESS  # the older one's failure is not judged


def test_fail_fast_predicts_a_failure_before_the_others_end() -> None:
    view = EventView(QUERY, Policy.build(fail_fast=True))
    view.rebase([job("a", "RUNNING"), job("b", "RUNNING")])
    view.add(event(job("a", "FAILED", 1)))
    assert view.predict(now_ms=1) is Verdict.FAILURE


def test_unknown_ids_of_job_ids_keep_a_success_from_being_predicted() -> None:
    query = JobQuery.build(job_ids=["a", "b"])
    view = EventView(query, Policy.build())
    view.rebase([job("a", "SUCCEEDED", 1)], unknown_ids=["b"])
    assert view.predict(now_ms=1) is Verdict.WAITING
    view.add(event(job("b", "SUCCEEDED", 1)))  # b's first event: it exists after all
    assert view.predict(now_ms=1) is Verdict.SUCCESS


def test_events_queue_url_check() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/batch-events"
    assert check_events_queue_url(url) == url
    assert check_events_queue_url(None) is None and check_events_queue_url("") is None
    assert check_events_queue_url("http://127.0.0.1:5000/123456789012/q.fifo")  # a local endpoint
    for bad, says in [
        ("arn:aws:sqs:eu-west-1:123456789012:batch-events", url),
        ("batch-events", "aws sqs get-queue-url --queue-name batch-events"),
        ("https://sqs.eu-west-1.amazonaws.com/batch-events", "not an SQS queue URL"),
        ("sqs.eu-west-1.amazonaws.com/123456789012/batch-events", "not an SQS queue URL"),
        (42, "as a string"),
    ]:
        try:
            check_events_queue_url(bad)
        except ValueError as err:
            assert says in str(err), (bad, str(err))
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_before_any_listing_min_jobs_is_not_counted() -> None:
    """Jobs that finished before the wait deferred send no event: before its first listing, the view cannot count
    them, so every job it has seen having finished predicts a verdict (a listing then counts)."""
    view = EventView(QUERY, Policy.build(min_jobs=4))
    view.add(event(job("d", "RUNNING")))
    assert view.predict(now_ms=1) is Verdict.WAITING
    view.add(event(job("d", "SUCCEEDED", 1)))
    assert view.predict(now_ms=1) is Verdict.SUCCESS  # 1 job seen, 3 finished before: the listing will tell
    view.rebase([job("a", "SUCCEEDED", 1), job("d", "RUNNING")])
    assert view.predict(now_ms=1) is Verdict.WAITING  # listed: 2 of at least 4


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.data())
def test_a_listing_counts_the_changes_neither_the_events_nor_the_last_listing_showed(
    scenario: dict[str, Any], data: st.DataObject
) -> None:
    """What a wait's safety net stretches on: a job listed further on than the view knew is a change whose event
    was lost, is late, or went to another reader; a job listed where the events (or the last listing) had it already,
    or behind them (the listing lags), is not."""
    histories = scenario["histories"]
    view = EventView(QUERY, scenario["policy"])
    assert view.rebase(scenario["listed"]) == 0  # the first listing: nothing to compare with
    shown = {s["jobId"]: position(histories[int(s["jobId"][1:])], s) for s in scenario["listed"]}
    for n, (i, k) in enumerate(scenario["delivered"]):
        view.add(event(histories[i][k], n))
        shown[f"j{i}"] = max(shown.get(f"j{i}", -1), k)
    second = [h[data.draw(st.integers(0, len(h) - 1))] for h in histories if data.draw(st.booleans())]
    expected = sum(position(histories[int(s["jobId"][1:])], s) > shown.get(s["jobId"], -1) for s in second)
    assert view.rebase(second) == expected


def test_a_job_listed_submitted_is_no_untold_change() -> None:
    """No event is sent at submission: a job first seen SUBMITTED was not missed; first seen RUNNING, it was."""
    view = EventView(QUERY, Policy.build())
    view.rebase([job("j1", "RUNNING")])
    assert view.rebase([job("j1", "RUNNING"), job("j2", "SUBMITTED")]) == 0
    assert view.rebase([job("j1", "RUNNING"), job("j2", "SUBMITTED"), job("j3", "RUNNING")]) == 1


def test_with_a_created_window_children_count_once_their_parent_is_in_the_view() -> None:
    """Found by review: a child's createdAt is when its parent started; the children of an array created outside
    the window kept the view active (no confirming listing asked for) until the safety net."""
    query = JobQuery.build(job_queue="queue", job_name="etl-*", created_after=1_700_000_000_000)
    view = EventView(query, Policy.build(include_array_children=True))
    view.rebase([job("j1", "SUCCEEDED", 1)])
    assert not view.add(event(job("arr:0", "RUNNING", 0, jobName="etl-arr")))  # its parent unknown: not counted
    assert [j["jobId"] for j in view.jobs()] == ["j1"]
    view.add(event(job("arr", "PENDING", 0, arrayProperties={"size": 1}, jobName="etl-arr")))
    assert view.status("arr:0") == "RUNNING"  # its parent shown inside the window: the child's event counts now
    assert view.counts["active"] == 1
