"""No false verdict, on generated job histories (issue #13): hypothesis plays histories within the service's
documented behaviour on the emulator's ``realistic`` profile and checks every verdict against the ground truth.

``make test`` runs a bounded number of examples; ``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``) runs many more.
Every failing example it finds becomes an ordinary regression test in ``test_regressions.py``.

A second property plays deferrable waits that read job state-change events (#17) delivered with faults (duplicated,
reordered, late, lost, the queue unreachable a while) on the emulator's SQS queue: the verdict still comes from a
listing, so the same oracle judges it. Each such history runs an SQS server and a consumer, so fewer of them run:
``EVENTS_SHARE`` of the profile's examples.
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
EVENTS_SHARE = 0.3
EVENT_EXAMPLES = max(1, round(settings().max_examples * EVENTS_SHARE))


@pytest.mark.slow  # 25 generated histories, each polled in three modes
@given(histories())
def test_every_verdict_is_right(history: History) -> None:
    emu, result = play(history)
    check(emu, history, result)
    count(history)


@pytest.mark.slow  # EVENT_EXAMPLES generated histories, deferrable with events
@settings(max_examples=EVENT_EXAMPLES)
@given(histories(events=True))
def test_every_verdict_with_events_is_right(history: History) -> None:
    emu, result = play(history)
    check(emu, history, result)
    if result.events is not None and result.events["sent"]:  # the wait did read its events (none lost them all)
        assert result.events["received"], f"events were put on the queue, the wait read none: {result.events}"
    count(history)


def count(history: History) -> None:
    if COUNTER:  # make fuzz counts the histories played
        with open(COUNTER, "a") as counter:
            counter.write(f"{history.label}\n")


COUNTER = os.environ.get("FUZZ_COUNTER")
