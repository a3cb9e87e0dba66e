"""An OSSDIRECT_ON_UPLOAD hook: image dimensions, and a JPEG thumbnail written beside the upload.

Deploy: copy this file beside functions/process/index.py, add ``Pillow`` to
functions/process/requirements.txt, set ``OSSDIRECT_ON_UPLOAD=thumbnail_hook:on_upload``.

The process function calls ``on_upload(record, obj)`` once per recorded upload, after the content
check (so the bytes really are the declared image type): ``record`` is the stored record (a dict),
``obj`` reads the object (``obj.read(start, length)``) and writes derived objects beside it
(``obj.put_beside(suffix, data, content_type)``, marked so they are recorded as ``derived`` and never
run through the hook again). Raise to have the platform retry (up to OSSDIRECT_HOOK_MAX_ATTEMPTS).
A returned dict may set ``image_width``, ``image_height``, ``image_format`` on the record.
"""

import io

THUMB_SIZE = (256, 256)
MAX_SOURCE_BYTES = 40 * 1024 * 1024  # read at most this much into memory
MAX_PIXELS = 50_000_000              # refuse decompression bombs
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff")


def on_upload(record, obj):
    if (record.get("content_type") or "").lower() not in IMAGE_TYPES:
        return None  # not an image we thumbnail: nothing to do (still "done")
    if (record.get("size") or 0) > MAX_SOURCE_BYTES:
        return None
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(io.BytesIO(obj.read())) as image:
        width, height, fmt = image.width, image.height, image.format
        image.thumbnail(THUMB_SIZE)
        thumb = image.convert("RGB")
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=85, optimize=True)
    obj.put_beside(".thumb.jpg", out.getvalue(), "image/jpeg")
    return {"image_width": width, "image_height": height, "image_format": (fmt or "").lower() or None}
