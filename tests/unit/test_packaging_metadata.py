"""The package's metadata as pyproject.toml declares it (the built wheel and sdist are checked by .ci/packaging.py):
an SPDX license with its text shipped, and one documentation URL, the same wherever Airflow reads it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from airflow_batch_jobs.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def test_the_license_is_an_spdx_expression_with_its_text_shipped(project: dict[str, Any]) -> None:
    assert project["license"] == "Apache-2.0"  # a string (PEP 639), not the deprecated {text = ...} table
    (license_file,) = project["license-files"]
    text = (ROOT / license_file).read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # PEP 639 forbids both


def test_the_documentation_url_is_the_one_airflow_shows(project: dict[str, Any]) -> None:
    """Airflow 3.3 reads documentation-url from the metadata's Project-URL, older versions from the provider info:
    both must be the README's page."""
    declared = project["urls"]["Documentation"]
    assert declared.startswith("https://")
    assert get_provider_info()["documentation-url"] == declared
