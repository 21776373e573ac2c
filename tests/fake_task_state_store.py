"""Airflow 3.3's ``task_state_store`` for tests without a Task SDK supervisor (one per task instance)."""

from __future__ import annotations

import json
from typing import Any


class FakeTaskStateStore:
    """``get`` / ``set`` / ``delete`` as ``airflow.sdk.execution_time.context.TaskStateStoreAccessor`` has them: values
    must be JSON-native (kept as JSON text, as the metadata database keeps them)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
