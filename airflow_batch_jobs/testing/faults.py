"""Faults the emulator injects per operation, deterministic under a seed, and the counters that observe calls."""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

# kind -> (HTTP status, error code); "drop" closes the connection, "latency" only delays.
FAULT_KINDS: dict[str, tuple[int, str] | None] = {
    "throttle": (429, "TooManyRequestsException"),
    "throttling": (400, "ThrottlingException"),
    "server": (500, "ServerException"),
    "denied": (403, "AccessDeniedException"),
    "drop": None,
    "latency": None,
}


@dataclass
class Fault:
    """``kind`` on calls of ``operation`` ("*" = every operation): the next ``count`` calls after ``skip``, or
    a share ``rate`` of calls (seeded), or both unset: every call until cleared."""

    operation: str
    kind: str
    rate: float | None = None
    count: int | None = None
    skip: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind={self.kind!r}: use one of {', '.join(FAULT_KINDS)}.")
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise ValueError(f"rate={self.rate}: a share between 0 and 1.")

    def applies(self, operation: str, rng: random.Random) -> bool:
        if self.operation not in ("*", operation):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.count is not None:
            if self.count <= 0:
                return False
            self.count -= 1
            return True
        return self.rate is None or rng.random() < self.rate


class FaultPlan:
    """The faults in force, and what every request did."""

    def __init__(self, seed: int = 0, log_size: int = 100_000) -> None:
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faulted.clear()
            self.log.clear()

    def decide(self, operation: str) -> tuple[float, Fault | None]:
        """For one incoming call: seconds of added latency and the failing fault, if any. Counts the call."""
        with self._lock:
            self.calls[operation] += 1
            delay = 0.0
            failing = None
            for fault in self._faults:
                if fault.kind == "latency":
                    if fault.applies(operation, self._rng):
                        delay += fault.seconds
                elif failing is None and fault.applies(operation, self._rng):
                    failing = fault  # one failure per call: later faults keep their count
            if failing is not None:
                self.faulted[operation] += 1
            return delay, failing

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.log.append(entry)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls), "faulted": dict(self.faulted)}
