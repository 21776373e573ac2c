"""Keep job secrets out of botocore's DEBUG logs.

At DEBUG, botocore logs every response body; a DescribeJobs body carries environment values, secrets and
parameters. This filter, installed on botocore's parser logger when the hook is first created, rewrites such
bodies with :func:`airflow_batch_jobs.jobs.redact` before any handler sees them. Other bodies pass unchanged.
"""

from __future__ import annotations

import json
import logging

from airflow_batch_jobs.jobs import redact

_BODY_MESSAGE = "Response body:\n%r"
_SENSITIVE_KEYS = (b'"environment"', b'"parameters"', b'"secrets"', b'"env"')


class BatchBodyRedactor(logging.Filter):
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


def install() -> None:
    """Idempotent: one filter on botocore's parser logger."""
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, BatchBodyRedactor) for f in logger.filters):
        logger.addFilter(BatchBodyRedactor())
