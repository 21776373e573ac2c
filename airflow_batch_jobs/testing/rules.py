"""The service's own rules for names, ids and ListJobs filters, written from the AWS Batch API reference.

Nothing here comes from the provider (``airflow_batch_jobs.query`` and friends): the emulator is an independent
oracle, so a misreading of the service in the provider cannot hide behind the same misreading here.
Sources: the ListJobs ``filters`` reference (JOB_NAME, JOB_DEFINITION, created-at filters), SubmitJob's
``jobName`` rule, and botocore's ``batch`` service model.
"""

from __future__ import annotations

import re

from airflow_batch_jobs.testing.errors import BatchServiceError

ACTIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
TERMINAL_STATUSES = ("SUCCEEDED", "FAILED")
STATUSES = (*ACTIVE_STATUSES, *TERMINAL_STATUSES)
FILTER_NAMES = ("JOB_NAME", "JOB_DEFINITION", "BEFORE_CREATED_AT", "AFTER_CREATED_AT", "SHARE_IDENTIFIER")
ACCOUNT = "123456789012"

# SubmitJob: "It can be up to 128 letters long. The first character must be alphanumeric, can contain uppercase and
# lowercase letters, numbers, hyphens (-), and underscores (_)." ASCII only: no spaces, no dots, no Unicode.
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def check_job_name(name: str) -> None:
    if not _JOB_NAME.match(name):
        raise BatchServiceError(
            f"Job name {name!r} is invalid: up to 128 letters, numbers, hyphens and underscores, "
            "starting with a letter or number."
        )


def ascii_lower(text: str) -> str:
    """Lower-case A-Z only: the service's case-insensitive match is over ASCII names, not Unicode case folding."""
    return text.translate(_ASCII_LOWER)


def job_name_matches(value: str, job_name: str) -> bool:
    """JOB_NAME: case-insensitive; a trailing ``*`` matches every name that begins with what precedes it."""
    if value.endswith("*"):
        return ascii_lower(job_name).startswith(ascii_lower(value[:-1]))
    return ascii_lower(job_name) == ascii_lower(value)


def job_definition_matches(value: str, name: str, revision: int, arn: str) -> bool:
    """JOB_DEFINITION: case-sensitive; a name matches every revision, ``name*`` prefixes names, a full ARN matches
    that revision only. (A bare ``name:revision`` and an ARN without a revision are our best reading.)"""
    if value.startswith("arn:"):
        tail = value.split("job-definition/", 1)[-1]
        wanted, _, wanted_revision = tail.partition(":")
        return wanted == name and (not wanted_revision or wanted_revision == str(revision))
    if value.endswith("*"):
        return name.startswith(value[:-1])
    wanted, _, wanted_revision = value.partition(":")
    return wanted == name and (not wanted_revision or wanted_revision == str(revision))


def check_filter(name: object, values: list[str]) -> None:
    if name not in FILTER_NAMES:
        raise BatchServiceError(f"Invalid filter name {name}. Valid names: {', '.join(FILTER_NAMES)}.")
    if len(values) > 1:
        raise BatchServiceError("Filter cannot take more than one value.")  # aws/aws-cli#7982
    if not values:
        raise BatchServiceError(f"Filter {name} needs a value.")
    value = values[0]
    if name == "JOB_DEFINITION" and value.startswith("arn:") and "*" in value:
        raise BatchServiceError("Wildcard (*) is not supported with a job definition ARN.")
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT") and not (value.isascii() and value.isdigit()):
        raise BatchServiceError(f"Invalid value {value} for {name}: expected a Unix timestamp in milliseconds.")


def job_id_from(ref: str) -> str:
    """DescribeJobs and the job-id arguments take ids; ARNs (``arn:...:job/<id>``) are seen in practice too."""
    return ref.split(":job/", 1)[1] if ref.startswith("arn:") and ":job/" in ref else ref


def arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:batch:{region}:{ACCOUNT}:{kind}/{name}"
