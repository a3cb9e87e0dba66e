"""The errors of OSS calls: :class:`OssError`, with the client-side codes it can carry.

(``alibabacloud-oss-python-sdk-v2`` keeps its ``ServiceError`` and the client-side errors in one
``exceptions`` module too.) The text of an ``OssError`` never holds a secret or a token: it is made
from OSS's answer (code, message, request id) or from the transport's own sentence.
"""

from __future__ import annotations

from ..errors import OssdirectError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["OssError", "CLIENT_TIMEOUT", "CONNECTION_FAILED", "BAD_RESPONSE"]

# Client-side codes (OSS's own ``RequestTimeout`` is a server answer, not one of these).
CLIENT_TIMEOUT = "ClientTimeout"  # no answer within the timeout
CONNECTION_FAILED = "ConnectionFailed"  # could not connect, or the connection broke
BAD_RESPONSE = "BadResponse"  # an answer that is not what the operation promises


class OssError(OssdirectError):
    """An OSS call that failed: ``status`` (0 when no HTTP answer), OSS's ``code``, ``message``.

    Client-side codes: ``RequestTimeout`` is OSS's own; ``ClientTimeout`` (no answer in ``timeout``),
    ``ConnectionFailed`` (could not connect, or the connection broke), ``BadResponse``.
    """

    def __init__(self, status: int, code: str, message: str = "", request_id: Optional[str] = None,
                 ec: Optional[str] = None) -> None:
        Exception.__init__(self, status, code, message)  # a plain error under the root: no kind, never an answer
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.ec = ec

    def __str__(self) -> str:
        text = f"OSS {self.status or '-'} {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text
