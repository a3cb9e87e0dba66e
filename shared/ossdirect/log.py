"""The package's logger, ``logging.getLogger("ossdirect")``, without importing ``logging`` for it.

Importing ``logging`` costs a cold start 8 to 12 ms (it brings threading, traceback, string, weakref).
Until some code has imported ``logging``, nobody can have configured it, and what it would do is fixed:
the root logger is at WARNING, so DEBUG and INFO lines are dropped, and a WARNING or ERROR line finds no
handler and goes to ``logging.lastResort``, which writes the bare message and a newline to stderr. So
until then this logger does exactly that itself. Once ``logging`` is imported (on Function Compute the
runtime has imported and configured it before our code loads; pytest's ``caplog`` does too), every call
goes to the real logger, so handlers, levels and formats apply as usual. ``exception`` (a traceback)
always goes through ``logging``. ``tests/test_log.py`` compares both outputs byte for byte.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INFO, WARNING, ERROR = 20, 30, 40  # logging's own level numbers


class LazyLogger:
    __slots__ = ("name", "_real")

    def __init__(self, name: str) -> None:
        self.name = name
        self._real: tuple[Any, Any] = (None, None)  # (logging module, its logger of this name)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        logging = sys.modules.get("logging")
        if logging is None:
            return level >= WARNING  # not imported, so not configured: the root logger's default level
        real = self._real
        if real[0] is not logging:  # getLogger takes logging's lock: once, not per request
            real = self._real = (logging, logging.getLogger(self.name))
        return bool(real[1].isEnabledFor(level))

    def _log(self, level: int, method: str, msg: str, args: tuple[Any, ...]) -> None:
        logging = sys.modules.get("logging")
        if logging is not None:
            getattr(logging.getLogger(self.name), method)(msg, *args)
        elif level >= WARNING:  # what logging.lastResort would write: "%(message)s" and a newline
            stream = sys.stderr
            if stream is not None:
                stream.write((msg % args if args else str(msg)) + "\n")
                stream.flush()

    def debug(self, msg: str, *args: Any) -> None:
        self._log(10, "debug", msg, args)

    def info(self, msg: str, *args: Any) -> None:
        self._log(INFO, "info", msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._log(WARNING, "warning", msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._log(ERROR, "error", msg, args)

    def __getattr__(self, method: str) -> Any:  # exception, critical, log, ...: the real logger's own
        import logging

        return getattr(logging.getLogger(self.name), method)


log = LazyLogger("ossdirect")
