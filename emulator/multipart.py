"""A streaming multipart/form-data reader for PostObject.

Fields before ``file`` are read into memory (bounded); the file part is
written to disk as it arrives, hashed on the way, never held in memory.
Anything after the file part is drained and ignored, as OSS does.
"""

import re

from .errors import OSSError

CHUNK = 2 << 20
MAX_FIELD = 8 * 1024  # any non-file field name or value
MAX_PRE_FILE = 8 * 1024 * 1024  # all fields before the file

_DISPOSITION_PARAM = re.compile(r';\s*([a-zA-Z*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def malformed():
    return OSSError(400, "MalformedPOSTRequest",
                    "The body of your POST request is not well-formed multipart/form-data.", "0006-00000104")


def boundary_of(content_type):
    if not content_type.lower().startswith("multipart/form-data"):
        raise OSSError(400, "RequestIsNotMultiPartContent",
                       "Bucket POST must be of the enclosure-type multipart/form-data.")
    match = re.search(r'boundary=("?)([^";]+)\1', content_type, re.I)
    if not match:
        raise OSSError(400, "InvalidArgument", "The Content-Type of the POST request has no boundary.",
                       "0006-00000101")
    return match.group(2).encode("latin-1")


class Reader:
    """Pulls bytes from a stream with a push-back buffer."""

    def __init__(self, stream, remaining):
        self.stream, self.remaining, self.buf = stream, remaining, b""

    def fill(self, want=CHUNK):
        if self.remaining <= 0:
            return False
        data = self.stream.read(min(want, self.remaining))
        if not data:
            self.remaining = 0
            return False
        self.remaining -= len(data)
        self.buf += data
        return True

    def chunk(self):
        """The next piece of the body as it arrives (not appended to ``buf``: no copy)."""
        if self.remaining <= 0:
            return b""
        data = self.stream.read(min(CHUNK, self.remaining))
        self.remaining = self.remaining - len(data) if data else 0
        return data

    def drain(self):
        self.buf = b""
        while self.remaining > 0:
            data = self.stream.read(min(CHUNK, self.remaining))
            if not data:
                break
            self.remaining -= len(data)


def _parse_part_headers(raw):
    headers = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    params = {}
    for key, value in _DISPOSITION_PARAM.findall(disposition):
        value = value.strip()
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key.lower()] = value
    if not disposition.lower().startswith("form-data") or "name" not in params:
        raise malformed()
    return params["name"], params.get("filename"), headers


def read_form(stream, length, content_type, open_sink):
    """Parse the body: returns (fields before the file as [(name, value)], file_info).

    file_info is (filename, part content type, what sink.finish() returned), or None without a file.
    ``open_sink(fields, filename, part_headers)`` checks what came before the file (raising OSSError to
    refuse) and gives an object with ``write(bytes)``, ``finish()`` and ``abort()``."""
    boundary = boundary_of(content_type)
    delim = b"--" + boundary
    reader = Reader(stream, length)
    fields, total, file_info = [], 0, None
    # preamble up to the first delimiter
    while delim not in reader.buf:
        if len(reader.buf) > MAX_FIELD * 4 or not reader.fill():
            raise malformed()
    reader.buf = reader.buf[reader.buf.index(delim) + len(delim):]
    try:
        while True:
            while len(reader.buf) < 2 and reader.fill():
                pass
            if reader.buf.startswith(b"--"):
                break  # closing delimiter: no (more) parts
            if not reader.buf.startswith(b"\r\n"):
                raise malformed()
            while b"\r\n\r\n" not in reader.buf:
                if len(reader.buf) > 64 * 1024 or not reader.fill():
                    raise malformed()
            head, reader.buf = reader.buf[2:].split(b"\r\n\r\n", 1)
            name, filename, headers = _parse_part_headers(head)
            end_marker = b"\r\n" + delim
            if name.lower() == "file":
                sink = open_sink(fields, filename or "", headers)
                try:
                    _stream_file(reader, end_marker, sink)
                    file_info = (filename or "", headers.get("content-type", ""), sink.finish())
                except BaseException:
                    sink.abort()
                    raise
                reader.drain()  # fields after the file are ignored
                return fields, file_info
            while end_marker not in reader.buf:
                if len(reader.buf) > MAX_FIELD + len(end_marker) + 2:
                    raise OSSError(400, "FieldItemTooLong", "Your name of form field is too long.")
                if not reader.fill():
                    raise malformed()
            value, reader.buf = reader.buf.split(end_marker, 1)
            if len(value) > MAX_FIELD or len(name.encode()) > MAX_FIELD:
                raise OSSError(400, "FieldItemTooLong", "Your name of form field is too long.")
            total += len(value)
            if total > MAX_PRE_FILE:
                raise OSSError(400, "MaxPOSTPreDataLengthExceededError",
                               "Your POST request fields preceding the upload file were too large.", "0006-00000112")
            fields.append((name, value.decode("utf-8", "replace")))
    finally:
        reader.drain()
    return fields, file_info


def _stream_file(reader, end_marker, sink):
    """Write the file part to ``sink`` until ``end_marker``, without concatenating the big chunks."""
    size = len(end_marker)
    pending, reader.buf = reader.buf, b""
    while True:
        idx = pending.find(end_marker)
        if idx >= 0:
            sink.write(memoryview(pending)[:idx])
            reader.buf = pending[idx + size:]
            return
        carry = pending[-(size - 1):] if len(pending) >= size else pending
        if len(pending) > len(carry):
            sink.write(memoryview(pending)[:len(pending) - len(carry)])
        data = reader.chunk()
        if not data:
            raise malformed()
        probe = carry + data[:size]  # a marker that starts in the carry ends inside this probe
        j = probe.find(end_marker)
        if j >= 0:
            sink.write(probe[:j])
            reader.buf = probe[j + size:] + data[size:]
            return
        sink.write(carry)
        pending = data
