"""Keep job secrets and AWS credentials out of botocore's DEBUG logs.

At DEBUG, botocore and aiobotocore log every response body (a DescribeJobs body carries environment values, secrets
and parameters; botocore formats it with ``%r``, aiobotocore with ``%s``) and every signed request (the session
token and the access key id in headers and the canonical request). The filters here, installed on those loggers
when the hook is first created, rewrite such records before any handler sees them. Other records pass unchanged;
nothing is formatted unless DEBUG is on.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from airflow_batch_jobs.jobs import REDACTED, redact

# botocore logs a response body as "Response body:\n%r", aiobotocore as "Response body:\n%s" (both with the bytes)
_BODY_MESSAGES = frozenset({"Response body:\n%r", "Response body:\n%s"})
_SENSITIVE_KEYS: tuple[str, ...] = ('"environment"', '"parameters"', '"secrets"', '"env"')
# ... and inside a JSON string of the body (an SQS message's Body: a job state-change event, whose detail is a job's)
_NESTED_KEYS = tuple(json.dumps(key)[1:-1] for key in _SENSITIVE_KEYS)
_WITHHELD = "<withheld: it may hold job secrets>"
# header or canonical-request forms: "'X-Amz-Security-Token': b'...'", "x-amz-security-token:...",
# "Credential=AKID/...", "Signature=..."
_CREDENTIALS = re.compile(
    r"(?P<key>x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?|Credential=|Signature=)(?P<value>[^'\"\s,&/}]+)",
    re.IGNORECASE,
)


class BatchBodyRedactor(logging.Filter):
    """Response bodies that hold environment, parameters or secrets are logged redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _BODY_MESSAGES or not isinstance(record.args, tuple) or not record.args:
            return True
        body = record.args[0]
        if isinstance(body, bytes | bytearray):
            text = bytes(body).decode("utf-8", "replace")
        elif isinstance(body, str):
            text = body
        else:
            return True
        if any(key in text for key in _SENSITIVE_KEYS + _NESTED_KEYS):
            try:
                redacted = json.dumps(redact(_parse_nested(json.loads(text))))
            except ValueError:
                redacted = f"<response body {_WITHHELD[1:]}"
            # the same type as logged, so the line keeps its format (b'...' for bytes)
            record.args = (redacted.encode() if not isinstance(body, str) else redacted, *record.args[1:])
        return True


def _parse_nested(value: Any) -> Any:
    """``value`` with each string holding a JSON object or array replaced by what it holds (an SQS message's
    ``Body``), so that :func:`redact` reaches the job details inside; one that names a sensitive key but is not JSON
    (a truncated body) is withheld."""
    if isinstance(value, dict):
        return {key: _parse_nested(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_parse_nested(item) for item in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return _parse_nested(json.loads(value))
        except ValueError:
            pass
    if isinstance(value, str) and any(key in value for key in _SENSITIVE_KEYS):
        return _WITHHELD
    return value


class CredentialRedactor(logging.Filter):
    """Session tokens, access key ids and signatures in signed-request logs are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _CREDENTIALS.sub(lambda m: m["key"] + REDACTED, message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTERS: dict[str, type[logging.Filter]] = {
    "botocore.parsers": BatchBodyRedactor,
    "botocore.auth": CredentialRedactor,
    "botocore.endpoint": CredentialRedactor,
}


def install() -> None:
    """Idempotent: one filter on each of botocore's loggers that can carry secrets."""
    for name, kind in _FILTERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
