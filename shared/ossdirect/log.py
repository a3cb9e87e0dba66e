"""The package's logger, ``logging.getLogger("ossdirect")``, with ``logging`` imported only when a line is
really written.

Importing ``logging`` costs a cold start about 8 ms (it brings threading, traceback, string, weakref).
A function that logs nothing at start-up should not pay it: until some code has imported ``logging``,
nobody can have configured it, so the root logger is at its default WARNING level and INFO lines are
off; ``isEnabledFor`` can answer that without the import. Anything written (a warning, an error) imports
``logging`` and goes through the real logger, so handlers, levels and pytest's ``caplog`` see every line.
On Function Compute the runtime has already imported and configured ``logging``: this then costs nothing.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INFO, WARNING, ERROR = 20, 30, 40  # logging's own level numbers


class LazyLogger:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        logging = sys.modules.get("logging")
        if logging is None:
            return level >= WARNING  # not imported, so not configured: the root logger's default level
        return bool(logging.getLogger(self.name).isEnabledFor(level))

    def __getattr__(self, method: str) -> Any:  # info, warning, error, exception, ...
        import logging

        return getattr(logging.getLogger(self.name), method)


log = LazyLogger("ossdirect")
