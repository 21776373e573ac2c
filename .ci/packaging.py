"""CI step (after `make test`): the package as users get it. Builds the wheel and the sdist (`python -m build`),
checks them (`twine check --strict`, what they ship), then installs the wheel from the registry into fresh venvs in a
temporary directory, away from the source tree:

- the wheel alone: `airflow providers get airflow-batch-jobs` knows the provider (its version and documentation
  URL), and the example DAGs parse;
- the wheel with `[testing]`: `python -m airflow_batch_jobs.testing serve --scenario demo` starts the emulator and
  prints the connection line; with it exported, the README quickstart's sensor fails on etl-publish as the README
  says; and the README's testing examples pass as a user's test files (with the user's pytest).

Run by `.venv/bin/python .ci/packaging.py` (needs the dev extra: build, twine, uv); prints how long each part took.
"""

from __future__ import annotations

import email
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGE = "airflow-batch-jobs"
EXAMPLE_DAGS = ROOT / "example_dags"
QUICKSTART_CHECK = """
import os, time
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.dag_processing.dagbag import DagBag
from airflow_batch_jobs.testing import BatchEmulator

bag = DagBag(dag_folder=os.environ["QUICKSTART_DAGS"])
assert bag.import_errors == {}, bag.import_errors
(sensor,) = bag.dags["batch_quickstart"].tasks
sensor.deferrable = False  # poked here, in poke mode: the emulator runs in another process, on its own clock
for _ in range(120):
    try:
        if sensor.poke({}):
            raise SystemExit("the quickstart's wait succeeded; the README says it fails on etl-publish")
    except AirflowFailException as failure:
        message = str(failure)
        assert "etl-publish" in message and "exit code 2" in message, message
        print("quickstart sensor:", message.splitlines()[0])
        break
    time.sleep(1)
else:
    raise SystemExit("the quickstart's wait did not end in 120 s")
"""


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; its output, or exit with it when it fails."""
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"FAILED ({done.returncode}): {shlex.join(str(c) for c in command)}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"FAILED: {message}")


def build(scratch: Path) -> tuple[Path, str]:
    dist = scratch / "dist"
    run(BIN / "python", "-m", "build", "--installer", "uv", "--outdir", dist, ROOT, cwd=ROOT)
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    run(BIN / "twine", "check", "--strict", wheel, sdist, cwd=ROOT)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
    check(metadata["License-Expression"] == "Apache-2.0", f"License-Expression is {metadata['License-Expression']}")
    check(any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the wheel ships no LICENSE")
    check("airflow_batch_jobs/testing/scenarios/demo.yaml" in names, "the wheel lacks the demo scenario")
    check("airflow_batch_jobs/py.typed" in names, "the wheel lacks py.typed")
    check(
        not any(n.startswith(("tests/", "demo/", "example_dags/")) for n in names), "the wheel ships non-package dirs"
    )
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    check("Documentation" in urls, "no Documentation Project-URL")
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    for needed in ("LICENSE", "README.md", "pyproject.toml", "airflow_batch_jobs/testing/scenarios/demo.yaml"):
        check(needed in members, f"the sdist lacks {needed}")
    print(f"built {wheel.name} and {sdist.name}; twine check passed", flush=True)
    return wheel, urls["Documentation"]


def fresh_venv(scratch: Path, name: str, *requirements: str) -> Path:
    """A venv of this Python with only ``requirements`` installed (from the registry, uv's cache helping)."""
    venv = scratch / name
    run(BIN / "uv", "venv", "--quiet", "--python", sys.executable, venv, cwd=scratch)
    run(BIN / "uv", "pip", "install", "--quiet", "--python", venv / "bin" / "python", *requirements, cwd=scratch)
    return venv


def airflow_env(scratch: Path, name: str) -> dict[str, str]:
    home = scratch / f"{name}-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    return {**env, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def check_wheel_alone(scratch: Path, wheel: Path, documentation_url: str) -> None:
    venv = fresh_venv(scratch, "wheel", str(wheel))
    env = airflow_env(scratch, "wheel")
    where = run(venv / "bin" / "python", "-c", "import airflow_batch_jobs; print(airflow_batch_jobs.__file__)",
                cwd=scratch, env=env)  # fmt: skip
    check(where.startswith(str(venv)), f"airflow_batch_jobs was imported from {where.strip()}, not the wheel")
    listed = run(venv / "bin" / "airflow", "providers", "get", PACKAGE, "--full", "-o", "json", cwd=scratch, env=env)
    (info,) = json.loads(listed[listed.index("[") :])
    check(info["package-name"] == PACKAGE, f"airflow providers get answered {info}")
    check(info.get("documentation-url") == documentation_url, f"documentation-url is {info.get('documentation-url')}")
    print(f"wheel alone: airflow providers get {PACKAGE} -> {info['versions']}, {info['documentation-url']}")
    code = (
        "import sys\nfrom airflow.dag_processing.dagbag import DagBag\n"
        "bag = DagBag(dag_folder=sys.argv[1])\n"
        "assert bag.import_errors == {}, bag.import_errors\nprint(' '.join(sorted(bag.dag_ids)))\n"
    )
    dag_ids = run(venv / "bin" / "python", "-c", code, EXAMPLE_DAGS, cwd=scratch, env=env).splitlines()[-1].split()
    expected = sorted(p.stem for p in EXAMPLE_DAGS.glob("example_*.py"))
    check(dag_ids == expected, f"the example DAGs parsed as {dag_ids}, expected {expected}")
    print(f"wheel alone: the example DAGs parse: {', '.join(dag_ids)}", flush=True)


def check_wheel_with_testing(scratch: Path, wheel: Path) -> None:
    venv = fresh_venv(scratch, "testing", f"{wheel}[testing]", "pytest")
    env = airflow_env(scratch, "testing")
    serve = subprocess.Popen(
        [venv / "bin" / "python", "-m", "airflow_batch_jobs.testing", "serve", "--scenario", "demo", "--speed", "10"],
        cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        printed = [serve.stdout.readline() for _ in range(3)]
        check(printed[2].startswith("export AIRFLOW_CONN_AWS_DEFAULT="), f"serve printed {printed}")
        (assignment,) = shlex.split(printed[2].removeprefix("export "))
        variable, connection = assignment.split("=", 1)
        print(f"wheel[testing]: {printed[0].strip()}", flush=True)
        dags = scratch / "quickstart-dags"
        dags.mkdir()
        (dags / "batch_quickstart.py").write_text(readme_blocks("QUICKSTART_SECTION")[0])
        run(venv / "bin" / "python", "-c", QUICKSTART_CHECK, cwd=scratch,
            env={**env, variable: connection, "QUICKSTART_DAGS": str(dags)})  # fmt: skip
        print("wheel[testing]: the README quickstart's DAG fails on etl-publish, as the README says", flush=True)
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=30)
    check(code == 0, f"serve exited {code} on SIGTERM")
    user_project = scratch / "user-project"
    user_project.mkdir()
    (user_project / "pytest.ini").write_text("[pytest]\n")
    for number, example in enumerate(readme_blocks("TESTING_SECTION"), 1):
        (user_project / f"test_readme_example_{number}.py").write_text(example)
    output = run(venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "-q", cwd=user_project, env=env)
    print(f"wheel[testing]: the README's testing examples: {output.strip().splitlines()[-1]}", flush=True)
    check(" passed" in output and " failed" not in output, f"the README's testing examples: {output}")


def readme_blocks(section: str) -> list[str]:
    """The README section's Python blocks, as tests/unit/test_readme_examples.py extracts them."""
    sys.path.insert(0, str(ROOT))
    from tests.unit import readme

    return readme.python_blocks(getattr(readme, section))


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="packaging-") as tmp:
        scratch = Path(tmp)
        wheel, documentation_url = build(scratch)
        built = time.monotonic()
        check_wheel_alone(scratch, wheel, documentation_url)
        alone = time.monotonic()
        check_wheel_with_testing(scratch, wheel)
        done = time.monotonic()
    print(
        f"packaging: OK in {done - started:.0f} s (build and checks {built - started:.0f} s, wheel alone "
        f"{alone - built:.0f} s, wheel[testing] {done - alone:.0f} s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
