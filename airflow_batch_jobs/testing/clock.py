"""The emulator's clocks: time moves when a test says so, or with wall time at a chosen speed (demos)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def advance(self, seconds: float) -> None: ...


class ManualClock:
    """Epoch milliseconds that move only through :meth:`advance`. Starts at the wall time it was made."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now = start_ms if start_ms is not None else int(time.time() * 1000)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds={seconds}: a clock only moves forward.")
        with self._lock:
            self._now += int(seconds * 1000)


class ScaledClock:
    """Wall time sped up by ``speed`` (``speed=10``: a 60 s job takes 6 s), plus any :meth:`advance` jumps."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed={speed}: must be positive.")
        self.speed = speed
        self._start_wall = time.time()
        self._start_mono = time.monotonic()
        self._offset_ms = 0

    def now_ms(self) -> int:
        elapsed = (time.monotonic() - self._start_mono) * self.speed
        return int((self._start_wall + elapsed) * 1000) + self._offset_ms

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds={seconds}: a clock only moves forward.")
        self._offset_ms += int(seconds * 1000)
