"""An independent local emulator of OSS: PostObject and the upload callback, object calls signed in the
header or presigned (V1/V4), multipart upload, and the OSS trigger events Function Compute delivers.

It is written from the OSS documentation, not from ossdirect's signing code
(it never imports it), so a bug in one cannot hide in the other.
"""

from .app import EmulatorConfig, create_app, serve

__all__ = ["EmulatorConfig", "create_app", "serve"]
