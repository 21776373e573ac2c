"""The ``pytest11`` plugin is registered by every install of the provider, also without the ``testing`` extra:
pytest must still run there, and only a test that uses the emulator's fixtures fails, saying what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a pytest run in a new Python process

# Runs pytest as a user without the extra has it: werkzeug and PyYAML (what the extra adds) cannot be imported, and
# importing them raises what Python raises for a module that is not installed.
WITHOUT_THE_EXTRA = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("werkzeug", "yaml"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

assert "werkzeug" not in sys.modules and "yaml" not in sys.modules
sys.meta_path.insert(0, NotInstalled())
import pytest
sys.exit(pytest.main(sys.argv[1:]))
"""

USER_TESTS = """
def test_that_needs_no_emulator():
    assert True


def test_that_uses_the_emulator(batch_emulator):
    pass
"""


@pytest.fixture(scope="module")
def pytest_without_the_extra(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """A user's pytest run of two tests, one using ``batch_emulator``, where the extra is not installed."""
    project = tmp_path_factory.mktemp("user_project")
    (project / "test_user.py").write_text(USER_TESTS)
    (project / "pytest.ini").write_text("[pytest]\n")  # not the repository's settings
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXTRA, "-p", "no:cacheprovider", str(project)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pytest_runs_without_the_testing_extra(pytest_without_the_extra: subprocess.CompletedProcess[str]) -> None:
    output = pytest_without_the_extra.stdout + pytest_without_the_extra.stderr
    assert "plugins: " in output and "airflow-batch-jobs" in output, output  # loaded through its entry point
    assert "Error while loading plugin" not in output and "INTERNALERROR" not in output, output
    assert "collected 2 items" in output, output
    assert "1 passed" in output, output  # a test that does not use the emulator runs as usual


def test_the_emulator_fixture_names_the_extra_to_install(
    pytest_without_the_extra: subprocess.CompletedProcess[str],
) -> None:
    output = pytest_without_the_extra.stdout + pytest_without_the_extra.stderr
    assert pytest_without_the_extra.returncode == 1, output
    assert "1 passed, 1 error" in output, output
    assert (
        "The batch_emulator fixture needs the local AWS Batch emulator's dependencies ('werkzeug' is not installed): "
        "pip install 'airflow-batch-jobs[testing]'"
    ) in output, output
    assert "fixture 'batch_emulator' not found" not in output, output
