from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_batch_jobs.get_provider_info import get_provider_info


def test_provider_info_is_valid_for_airflow() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-batch-jobs"  # must equal the canonical distribution name


def test_entry_point_and_every_listed_module_import() -> None:
    (entry,) = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("airflow_batch_jobs")]
    info = entry.load()()
    integrations = {i["integration-name"] for i in info["integrations"]}
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for item in info.get(kind, []):
            assert item["integration-name"] in integrations
            for module in item["python-modules"]:
                importlib.import_module(module)
    for path in info.get("extra-links", []):
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name)
