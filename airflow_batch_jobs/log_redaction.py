"""Keep job secrets and AWS credentials out of botocore's DEBUG logs.

At DEBUG, botocore logs every response body (a DescribeJobs body carries environment values, secrets and
parameters) and every signed request (the session token and the access key id in headers and the canonical
request). The filters here, installed on those loggers when the hook is first created, rewrite such records
before any handler sees them. Other records pass unchanged; nothing is formatted unless DEBUG is on.
"""

from __future__ import annotations

import json
import logging
import re

from airflow_batch_jobs.jobs import REDACTED, redact

_BODY_MESSAGE = "Response body:\n%r"
_SENSITIVE_KEYS = (b'"environment"', b'"parameters"', b'"secrets"', b'"env"')
# header or canonical-request forms: "'X-Amz-Security-Token': b'...'", "x-amz-security-token:...",
# "Credential=AKID/...", "Signature=..."
_CREDENTIALS = re.compile(
    r"(?P<key>x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?|Credential=|Signature=)(?P<value>[^'\"\s,&/}]+)",
    re.IGNORECASE,
)


class BatchBodyRedactor(logging.Filter):
    """Response bodies that hold environment, parameters or secrets are logged redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _BODY_MESSAGE or not record.args:
            return True
        body = record.args[0] if isinstance(record.args, tuple) else None
        if isinstance(body, bytes) and any(key in body for key in _SENSITIVE_KEYS):
            try:
                record.args = (json.dumps(redact(json.loads(body))).encode(),)
            except ValueError:
                record.args = (b"<response body withheld: it may hold job secrets>",)
        return True


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
