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
    """Pulls bytes from a stream into a buffer read from ``pos`` on: parsing never re-copies what is left.

    Consumed bytes are dropped only when at least half the buffer is consumed, so every byte of the body
    is copied a bounded number of times whatever the fields look like (linear in the body size).
    ``copied`` and ``scanned`` count the bytes copied and searched, so tests can bound the work."""

    def __init__(self, stream, remaining):
        self.stream, self.remaining = stream, remaining
        self.buf = bytearray()
        self.pos = 0  # next unread byte in buf
        self.base = 0  # body offset of buf[0]
        self.copied = 0
        self.scanned = 0

    @property
    def offset(self):
        """How many bytes of the body the parser has consumed."""
        return self.base + self.pos

    @property
    def available(self):
        return len(self.buf) - self.pos

    def fill(self, want=None):
        if self.remaining <= 0:
            return False
        data = self.stream.read(min(want or CHUNK, self.remaining))
        if not data:
            self.remaining = 0
            return False
        self.remaining -= len(data)
        if self.pos and self.pos >= len(self.buf) - self.pos:  # drop the consumed head (amortized)
            self.copied += len(self.buf) - self.pos
            del self.buf[:self.pos]
            self.base += self.pos
            self.pos = 0
        self.buf += data
        self.copied += len(data)
        return True

    def ensure(self, n):
        """At least ``n`` unread bytes buffered (False at the end of the body)."""
        while self.available < n:
            if not self.fill():
                return False
        return True

    def startswith(self, prefix):
        self.ensure(len(prefix))
        self.scanned += len(prefix)
        return self.buf.startswith(prefix, self.pos)

    def find(self, sub, limit):
        """Offset (from ``pos``) of ``sub`` if it starts within ``limit`` bytes; -1 if it does not; None at EOF."""
        searched = 0  # offsets below this (from pos) cannot start a match
        while True:
            end = min(len(self.buf), self.pos + limit + len(sub))
            start = self.pos + searched
            i = self.buf.find(sub, start, end)
            if i >= 0:
                self.scanned += i + len(sub) - start
                return i - self.pos
            self.scanned += max(0, end - start)
            if self.available >= limit + len(sub):
                return -1
            searched = max(0, self.available - len(sub) + 1)
            if not self.fill():
                return None

    def take(self, n):
        data = bytes(self.buf[self.pos:self.pos + n])
        self.copied += n
        self.pos += n
        return data

    def skip(self, n):
        self.pos += n

    def rest(self):
        """Everything buffered and unread, leaving the buffer empty."""
        data = self.take(self.available)
        self.base += self.pos
        self.buf, self.pos = bytearray(), 0
        return data

    def push(self, data):
        """Give back bytes read past the end of a part (the buffer is empty)."""
        self.base -= len(data)
        self.buf, self.pos = bytearray(data), 0

    def chunk(self):
        """The next piece of the body as it arrives (not appended to ``buf``: no copy)."""
        if self.remaining <= 0:
            return b""
        data = self.stream.read(min(CHUNK, self.remaining))
        self.remaining = self.remaining - len(data) if data else 0
        return data

    def drain(self):
        self.buf, self.pos = bytearray(), 0
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


def _too_much():
    return OSSError(400, "MaxPOSTPreDataLengthExceededError",
                    "Your POST request fields preceding the upload file were too large.", "0006-00000112")


def _too_long():
    return OSSError(400, "FieldItemTooLong", "Your name of form field is too long.")


MAX_PART_HEADERS = 64 * 1024


def read_form(stream, length, content_type, open_sink):
    """Parse the body: returns (fields before the file as [(name, value)], file_info).

    file_info is (filename, part content type, what sink.finish() returned), or None without a file.
    ``open_sink(fields, filename, part_headers)`` checks what came before the file (raising OSSError to
    refuse) and gives an object with ``write(bytes)``, ``finish()`` and ``abort()``.

    Everything before the file's content (preamble, delimiters, part headers, names and values) counts
    towards MAX_PRE_FILE."""
    boundary = boundary_of(content_type)
    delim = b"--" + boundary
    end_marker = b"\r\n" + delim
    reader = Reader(stream, length)
    fields, file_info = [], None
    try:
        # preamble up to the first delimiter
        i = reader.find(delim, MAX_FIELD * 4)
        if i is None or i < 0:
            raise malformed()
        reader.skip(i + len(delim))
        while True:
            if reader.startswith(b"--"):
                break  # closing delimiter: no (more) parts
            if not reader.startswith(b"\r\n"):
                raise malformed()
            reader.skip(2)
            i = reader.find(b"\r\n\r\n", MAX_PART_HEADERS)
            if i is None or i < 0:
                raise malformed()
            head = reader.take(i)
            reader.skip(4)
            if reader.offset > MAX_PRE_FILE:
                raise _too_much()
            name, filename, headers = _parse_part_headers(head)
            if len(name.encode()) > MAX_FIELD:
                raise _too_long()
            if name.lower() == "file":
                sink = open_sink(fields, filename or "", headers)
                try:
                    _stream_file(reader, end_marker, sink)
                    file_info = (filename or "", headers.get("content-type", ""), sink.finish())
                except BaseException:
                    sink.abort()
                    raise
                return fields, file_info  # fields after the file are drained (finally) and ignored
            i = reader.find(end_marker, MAX_FIELD)
            if i is None:
                raise malformed()
            if i < 0:
                raise _too_long()
            value = reader.take(i)
            reader.skip(len(end_marker))
            if reader.offset > MAX_PRE_FILE:
                raise _too_much()
            fields.append((name, value.decode("utf-8", "replace")))
    finally:
        reader.drain()
    return fields, file_info


def _stream_file(reader, end_marker, sink):
    """Write the file part to ``sink`` until ``end_marker``, without concatenating the big chunks."""
    size = len(end_marker)
    keep = size - 1  # a marker may start in the last keep bytes of what we have
    pending = reader.rest()
    while True:
        idx = pending.find(end_marker)
        if idx >= 0:
            sink.write(memoryview(pending)[:idx])
            reader.push(pending[idx + size:])
            return
        if len(pending) > keep:
            sink.write(memoryview(pending)[:len(pending) - keep])
            carry = pending[len(pending) - keep:]
        else:
            carry = pending
        data = reader.chunk()
        if not data:
            raise malformed()
        if len(data) < size:  # a short read: join the small pieces and look again
            pending = carry + data
            continue
        probe = carry + data[:size]  # a marker that starts in the carry ends inside this probe
        j = probe.find(end_marker)
        if j >= 0:
            sink.write(probe[:j])
            reader.push(probe[j + size:] + data[size:])
            return
        sink.write(carry)
        pending = data
