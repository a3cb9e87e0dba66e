"""An independent local emulator of OSS PostObject and the upload callback.

It is written from the OSS documentation, not from ossdirect's signing code
(it never imports it), so a bug in one cannot hide in the other.
"""

from .app import EmulatorConfig, create_app, serve

__all__ = ["EmulatorConfig", "create_app", "serve"]
