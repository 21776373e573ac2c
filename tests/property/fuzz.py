"""``make fuzz``: the no-false-verdict property over many more generated histories, in parallel processes.

Each worker runs the property test with hypothesis' ``fuzz`` profile and its own seed; the histories played are
counted from a shared file, so the figure printed is what ran, not what was asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def wait_for(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """The workers' exit codes; once one fails (a false verdict found), the others are stopped: the run is over."""
    while any(proc.poll() is None for proc in procs):
        if any(proc.returncode not in (None, 0) for proc in procs):
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait()
        time.sleep(1)
    return [int(proc.returncode) for proc in procs]


def main() -> int:
    total = int(os.environ.get("HYPOTHESIS_EXAMPLES", "10000"))
    workers = int(os.environ.get("FUZZ_WORKERS", str(os.cpu_count() or 2)))
    with tempfile.TemporaryDirectory() as tmp:
        counter = Path(tmp) / "histories"
        counter.touch()
        # each worker's output goes to a file: read through pipes one after another, a worker whose failure report
        # filled its pipe would block until the ones before it finished (it did, for an hour)
        outputs = [Path(tmp) / f"worker-{worker}.out" for worker in range(workers)]
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-x",
                    "-p",
                    "no:cacheprovider",
                    f"--hypothesis-seed={1000 + worker}",
                    "tests/property/test_no_false_verdict.py",
                ],
                env={
                    **os.environ,
                    "HYPOTHESIS_PROFILE": "fuzz",
                    "HYPOTHESIS_EXAMPLES": str(-(-total // workers)),
                    "FUZZ_COUNTER": str(counter),
                },
                stdout=output.open("w"),
                stderr=subprocess.STDOUT,
            )
            for worker, output in enumerate(outputs)
        ]
        codes = wait_for(procs)
        elapsed = time.monotonic() - started
        modes = Counter(counter.read_text().split())
        failed = [output.read_text() for code, output in zip(codes, outputs, strict=True) if code > 0]  # < 0: stopped
    for out in failed:
        print(out[-20_000:])
    played = sum(modes.values())
    print(
        f"{played} histories in {elapsed / 60:.1f} min over {workers} processes "
        f"({', '.join(f'{n} {mode}' for mode, n in sorted(modes.items()))}): "
        f"{'FALSE VERDICT FOUND' if failed else 'no false verdict'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
