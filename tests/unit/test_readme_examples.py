"""The README's examples, run as they are written there (extracted, so that they cannot drift): each Python block of
"Testing your own DAGs with the emulator" is a user's test file, run by pytest in a project of its own; the
quickstart's DAG file waits on the built-in demo scenario and fails as the README says."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_batch_jobs.sensors.batch_jobs import BatchJobsSensor
from airflow_batch_jobs.testing import BatchEmulator, run_deferred
from tests.unit.readme import QUICKSTART_SECTION, TESTING_SECTION, python_blocks

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def testing_examples() -> list[str]:
    blocks = python_blocks(TESTING_SECTION)
    assert len(blocks) == 3, "the testing section shows a wait that succeeds, one that fails and one that defers"
    return blocks


def test_the_examples_show_a_success_a_failure_a_deferral_and_another_queue(testing_examples: list[str]) -> None:
    success, failure, deferral = testing_examples
    assert "pytest.raises" not in success and "result.is_done" in success
    assert "pytest.raises(AirflowFailException" in failure and "sensor.poke({})" in failure
    assert "run_deferred(sensor, batch_emulator)" in deferral and "deferrable=True" in deferral
    assert 'setup(queue="nightly"' in deferral


@pytest.mark.slow  # a pytest run in a new Python process (.ci/packaging.py runs them again from the wheel)
def test_the_testing_examples_pass_as_a_users_test_files(testing_examples: list[str], tmp_path: Path) -> None:
    for number, code in enumerate(testing_examples, 1):
        (tmp_path / f"test_readme_example_{number}.py").write_text(code)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the user's project, not this repository's settings
    run = subprocess.run(
        # live logs from WARNING up: an unclosed AWS client ("Unclosed client session") would be logged there
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "log_cli=true", "--log-cli-level=WARNING"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    tests = sum(code.count("\ndef test_") for code in testing_examples)
    assert run.returncode == 0, output
    assert f"{tests} passed" in output, output
    assert "Unclosed" not in output and "Task was destroyed" not in output, output


def test_the_quickstart_dag_waits_on_the_demo_scenario_and_fails_on_etl_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.compat.airflow_versions import dag_bag

    (dag_file,) = python_blocks(QUICKSTART_SECTION)
    (tmp_path / "batch_quickstart.py").write_text(dag_file)
    bag = dag_bag(tmp_path)  # as Airflow's DAG processor parses it
    assert bag.import_errors == {}
    (sensor,) = bag.dags["batch_quickstart"].tasks
    assert isinstance(sensor, BatchJobsSensor)
    with BatchEmulator(scenario="demo") as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", emulator.airflow_connection())
        with pytest.raises(AirflowFailException) as failure:
            run_deferred(sensor, emulator)  # the demo's jobs come and run while the trigger waits
    message = str(failure.value)
    assert message.startswith("1 of 4 AWS Batch job(s) failed"), message
    assert re.search(r"etl-publish .*\n.*exit code 2, reason 'AccessDenied", message), message
