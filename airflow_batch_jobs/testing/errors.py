"""The service's error form: an error code, an HTTP status and a message, as botocore's ``ClientError`` reads them."""

from __future__ import annotations


class BatchServiceError(Exception):
    """An error the emulated service answers with (``ClientException``, HTTP 400, unless said otherwise)."""

    def __init__(self, message: str, code: str = "ClientException", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
