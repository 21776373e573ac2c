"""Provider registration, read by Airflow through the ``apache_airflow_provider`` entry point.

Airflow validates this dict when ``airflow.configuration`` is imported: a bad one breaks every ``airflow``
command on the machine, so ``tests/test_provider_info.py`` validates it against Airflow's own schema.
"""

from __future__ import annotations

from typing import Any

from airflow_batch_jobs import __version__

INTEGRATION = "AWS Batch jobs"
# pyproject.toml's project.urls Documentation (the README, as the package's page shows it). Airflow 3.3 takes it from
# the installed metadata's Project-URL, over this value; older versions take it from here. A test keeps them equal.
DOCUMENTATION_URL = "https://pypi.org/project/airflow-batch-jobs/"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-batch-jobs",
        "name": "AWS Batch jobs",
        "description": "Find, wait on and judge AWS Batch jobs by queue, name, definition and creation time.",
        "documentation-url": DOCUMENTATION_URL,
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.aws.amazon.com/batch/latest/APIReference/API_ListJobs.html",
                "tags": ["aws"],
            }
        ],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_batch_jobs.hooks.batch_jobs"]}],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_batch_jobs.sensors.batch_jobs"]}],
        "operators": [{"integration-name": INTEGRATION, "python-modules": ["airflow_batch_jobs.operators.batch_jobs"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_batch_jobs.triggers.batch_jobs"]}],
        # Airflow 2 deserializes an operator's links only from registered classes
        "extra-links": [
            "airflow_batch_jobs.links.BatchJobDetailsLink",
            "airflow_batch_jobs.links.BatchJobQueueLink",
            "airflow_batch_jobs.links.CloudWatchEventsLink",
        ],
    }
