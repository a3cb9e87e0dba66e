"""An independent local emulator of OSS: PostObject and the upload callback, object calls signed in the
header or presigned (V1/V4) as the official SDKs make them (ranges, conditional GETs, ListObjects V1/V2,
DeleteMultipleObjects, AppendObject, tagging, multipart upload and UploadPartCopy), and the OSS trigger
events Function Compute delivers. app.py dispatches each call to its module: objects, multipart_upload,
listing_api, bucket, postobject. docs/local-development.md says how to point each SDK at it.

It is written from the OSS documentation, not from ossdirect's signing code
(it never imports it), so a bug in one cannot hide in the other.
"""

from .app import EmulatorConfig, create_app, serve

__all__ = ["EmulatorConfig", "create_app", "serve"]
