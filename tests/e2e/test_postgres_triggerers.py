"""A deployment as users run it: a real Airflow on a PostgreSQL metadata database with two triggerers.

32 deferred sensors (tests/e2e/dags/e2e_postgres_triggerers.py), 16 on each triggerer: the first, alone and with room
for 16, takes the first 16 to defer; the second takes the rest. Each triggerer talks to the emulator through its own
endpoint, so the ListJobs calls of each are counted apart: the sensors asking the same question share one poll per
interval. Then the first triggerer is killed with SIGKILL, every process of it at once, mid-wait: the second picks up
its triggers once it is seen dead (no heartbeat for the health-check threshold), and polls their questions once per
interval too. The jobs then end: every verdict is the rule's, every task has exactly one XCom result (its jobs, each
once) and ran one try."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from airflow_batch_jobs.testing import BatchEmulator
from tests.e2e.emulator_endpoint import EmulatorEndpoint
from tests.e2e.postgres import PostgresServer, server_bindir
from tests.e2e.real_airflow import COMPONENTS, FINAL_STATES, TRIGGERER, Airflow, airflow_env, free_port, running

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POLL_INTERVAL_S = 2  # the sensors' poke_interval (the DAG file's POLL_INTERVAL_S)
HEALTH_CHECK_THRESHOLD_S = 15  # a triggerer silent this long is dead: its triggers go to another
WAVES = {"e2e_pg_wave_1": ("alpha", "beta"), "e2e_pg_wave_2": ("gamma", "delta")}
PER_WAVE = 16
FAILING_QUERIES = ("alpha", "gamma")  # their second job fails with exit code 3; the other queries' jobs all succeed
# The oracle: each rule's verdict on two jobs, one succeeded and one failed with exit code 3 (the README's rules).
VERDICT_ON_ONE_FAILED = {
    "strict": "failed",
    "wait_all": "failed",
    "exit4_ok": "failed",
    "tolerant": "success",
    "tolerant_wait_all": "success",
    "exit3_ok": "success",
    "exit3_skips": "skipped",
    "soft_fail": "skipped",
}
MEASURE_INTERVALS = 5  # ListJobs counted over this many poll intervals


def expected_verdicts(queries: tuple[str, ...]) -> dict[str, str]:
    return {
        f"{query}_{rule}": verdict if query in FAILING_QUERIES else "success"
        for query in queries
        for rule, verdict in VERDICT_ON_ONE_FAILED.items()
    }


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(server_bindir())
    try:
        server.start()
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"postgres did not shut down cleanly ({code})"


@pytest.fixture(scope="module")
def emulator() -> Iterator[BatchEmulator]:
    with BatchEmulator() as emu:  # manual clock: jobs move only when the test says so
        emu.setup()
        yield emu


@pytest.fixture(scope="module")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, emulator: BatchEmulator
) -> Iterator[Airflow]:
    """api-server, scheduler and dag-processor on PostgreSQL; the test starts the triggerers itself."""
    home = tmp_path_factory.mktemp("postgres_airflow")
    port = free_port()
    env = {
        **airflow_env(home, port, emulator.airflow_connection()),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD_S),
        # 32 task processes at once on two busy cores took over 30 s each to import the DAG file (Airflow then
        # reschedules the task, minutes later): fewer at a time, and more time to import
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
    }
    with running(home, env, port, {name: command for name, command in COMPONENTS.items() if name != "triggerer"}) as af:
        yield af


def list_jobs_per_interval(*endpoints: EmulatorEndpoint) -> list[dict[str, float]]:
    """For each endpoint, ListJobs calls per poll interval by question (job name filter), over MEASURE_INTERVALS."""
    before, started = [e.list_jobs_by_query() for e in endpoints], time.monotonic()
    time.sleep(MEASURE_INTERVALS * POLL_INTERVAL_S)
    after, elapsed = [e.list_jobs_by_query() for e in endpoints], time.monotonic() - started
    return [
        {
            json.loads(query)["filters"][0]["values"][0]: round(
                (calls[query] - earlier[query]) * POLL_INTERVAL_S / elapsed, 2
            )
            for query in calls
            if calls[query] > earlier[query]
        }
        for earlier, calls in zip(before, after, strict=True)
    ]


def triggers(airflow: Airflow, runs: dict[str, str]) -> dict[str, int | None]:
    """Every sensor of ``runs`` that is deferred, and the triggerer its trigger is assigned to (None: not yet)."""
    return {
        task_id: (ti["trigger"] or {}).get("triggerer_id")
        for dag_id, run_id in runs.items()
        for task_id, ti in airflow.task_instances(dag_id, run_id).items()
        if ti["state"] == "deferred"
    }


def placed(airflow: Airflow, runs: dict[str, str], on: set[int]) -> dict[str, int | None] | None:
    """The sensors' triggerers once every sensor is deferred and the triggerers holding them are exactly ``on``."""
    tasks = triggers(airflow, runs)
    return tasks if len(tasks) == len(runs) * PER_WAVE and set(tasks.values()) == on else None


def verdicts(airflow: Airflow, dag_id: str, run_id: str) -> dict[str, str] | None:
    """Each task's final state, once every task of the run has one."""
    states = {task_id: ti["state"] for task_id, ti in airflow.task_instances(dag_id, run_id).items()}
    return states if all(state in FINAL_STATES for state in states.values()) else None


def questions(tasks: dict[str, int | None], triggerer: int) -> dict[str, int]:
    """How many of ``triggerer``'s sensors ask each question (``<query>-*``)."""
    held = Counter(task_id.split("_")[0] + "-*" for task_id, owner in tasks.items() if owner == triggerer)
    return dict(held)


def test_deferred_sensors_over_two_triggerers_on_postgres(
    airflow: Airflow, emulator: BatchEmulator, postgres: PostgresServer
) -> None:
    began = time.monotonic()
    sensors = 2 * PER_WAVE
    for dag_queries in WAVES.values():
        for query in dag_queries:
            if query in FAILING_QUERIES:
                emulator.add_outcome({"attempts": [{"exit_code": 3, "reason": "bad rows"}]}, name=f"{query}-2")
            for n in (1, 2):
                emulator.submit(f"{query}-{n}")  # the clock stands still: SUBMITTED until the test moves it

    with EmulatorEndpoint(emulator) as door_a, EmulatorEndpoint(emulator) as door_b:
        # Triggerer A alone, room for half the sensors: it takes the first 16 to defer and is full.
        airflow.start(
            {"triggerer-a": [*TRIGGERER, "--capacity", str(PER_WAVE)]},
            env={"AIRFLOW_CONN_AWS_DEFAULT": door_a.airflow_connection()},
        )
        a = airflow.wait_for("triggerer A registered", airflow.triggerer_job_ids)[0]
        runs = {dag_id: airflow.trigger_run(dag_id) for dag_id in WAVES}
        airflow.wait_for("triggerer A full", lambda: list(triggers(airflow, runs).values()).count(a) == PER_WAVE)

        # Triggerer B, room for all: it takes the other 16, for which A has no room.
        airflow.start(
            {"triggerer-b": [*TRIGGERER, "--capacity", str(sensors)]},
            env={"AIRFLOW_CONN_AWS_DEFAULT": door_b.airflow_connection()},
        )
        b = airflow.wait_for("triggerer B registered", lambda: airflow.triggerer_job_ids()[1:])[0]
        spread = airflow.wait_for(
            "every sensor deferred, on A or B",
            lambda: placed(airflow, runs, on={a, b}),
            timeout=300,
        )
        assert list(spread.values()).count(a) == list(spread.values()).count(b) == PER_WAVE, spread
        spread_after = time.monotonic() - began

        # Each triggerer asks each of its questions once per interval, however many of its sensors ask it.
        held_a, held_b = questions(spread, a), questions(spread, b)
        rate_a, rate_b = list_jobs_per_interval(door_a, door_b)
        bound = 1 + 1 / MEASURE_INTERVALS  # one poll per interval, one more where the window cuts a poll in two
        assert set(rate_a) == set(held_a) and set(rate_b) == set(held_b), (rate_a, held_a, rate_b, held_b)
        assert all(rate <= bound for rate in (*rate_a.values(), *rate_b.values())), (rate_a, rate_b)
        assert max(*held_a.values(), *held_b.values()) >= 4  # a question shared by 4+ sensors polled once

        # Triggerer A dies mid-wait (every process of it at once): B picks up its 16 triggers.
        killed_at = time.monotonic()
        killed = airflow.kill("triggerer-a")
        handed_over = airflow.wait_for(
            "A's triggers on B",
            lambda: placed(airflow, runs, on={b}),
            timeout=120,
        )
        picked_up_after = time.monotonic() - killed_at
        silent_a = door_a.list_jobs_by_query()
        (rate_after,) = list_jobs_per_interval(door_b)
        assert door_a.list_jobs_by_query() == silent_a  # nothing of A polls any more
        assert set(rate_after) == set(questions(handed_over, b)) == {"alpha-*", "beta-*", "gamma-*", "delta-*"}
        assert all(rate <= bound for rate in rate_after.values()), rate_after

        for dag_id, run_id in runs.items():
            drained = lambda d=dag_id, r=run_id: all(  # noqa: E731
                airflow.scheduler_saw_defer_exit(d, r, t) for t in expected_verdicts(WAVES[d])
            )
            airflow.wait_for(f"the scheduler to drain {dag_id}'s defer exits", drained)

        emulator.advance(3600)  # every job runs to its end
        finals = {
            dag_id: airflow.wait_for(f"{dag_id} finished", lambda d=dag_id, r=run_id: verdicts(airflow, d, r), 300)
            for dag_id, run_id in runs.items()
        }
    finished_after = time.monotonic() - began

    assert finals == {dag_id: expected_verdicts(queries) for dag_id, queries in WAVES.items()}, airflow.logs()
    for dag_id, run_id in runs.items():
        results = airflow.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/~/xcomEntries?xcom_key=return_value&limit=100"
        )
        assert Counter(x["task_id"] for x in results["xcom_entries"]) == dict.fromkeys(finals[dag_id], 1)
        for task_id, ti in airflow.task_instances(dag_id, run_id).items():
            assert ti["try_number"] == 1, (task_id, ti["try_number"])  # the handover cost no try
            xcom = airflow.request(
                "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
            )
            records = xcom["value"] if isinstance(xcom["value"], list) else json.loads(xcom["value"])
            query = task_id.split("_")[0]
            failed = {f"{query}-2": 3} if query in FAILING_QUERIES else {}
            seen = sorted((r["job_name"], r["status"], r["final_exit_code"]) for r in records)
            assert seen == [
                (f"{query}-{n}", "FAILED" if f"{query}-{n}" in failed else "SUCCEEDED", failed.get(f"{query}-{n}", 0))
                for n in (1, 2)
            ], (task_id, records)

    # the metadata database really was this PostgreSQL server
    with postgres.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM task_instance WHERE dag_id LIKE 'e2e_pg_wave_%%'")
        assert cursor.fetchone() == (sensors,)

    print(
        f"\n{sensors} deferred sensors on PostgreSQL over two triggerers, spread after {spread_after:.0f} s: "
        f"A held {held_a}, polled {rate_a} ListJobs per interval; B held {held_b}, polled {rate_b}. "
        f"A killed (SIGKILL, {len(killed)} processes): its triggers on B {picked_up_after:.0f} s later "
        f"(health-check threshold {HEALTH_CHECK_THRESHOLD_S} s), B then polled {rate_after}. "
        f"Every verdict after {finished_after:.0f} s."
    )
