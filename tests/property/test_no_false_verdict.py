"""No false verdict, on generated job histories (issue #13): hypothesis plays histories within the service's
documented behaviour on the emulator's ``realistic`` profile and checks every verdict against the ground truth.

``make test`` runs a bounded number of examples; ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``) runs many more.
Every failing example it finds becomes an ordinary regression test in ``test_regressions.py``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from .driver import play
from .histories import History, histories
from .oracle import check

# No 'explain' phase: it traces every line of a replayed history, hundreds of times slower than the history itself.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "10000")),
    deadline=None,
    phases=PHASES,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.mark.slow  # 25 generated histories, each polled in three modes
@given(histories())
def test_every_verdict_is_right(history: History) -> None:
    emu, result = play(history)
    check(emu, history, result)
    if COUNTER:  # make fuzz counts the histories played
        with open(COUNTER, "a") as counter:
            counter.write(f"{history.mode}\n")


COUNTER = os.environ.get("FUZZ_COUNTER")
