"""The streaming multipart reader finds the closing boundary wherever the chunks split it."""

import io

import pytest

from emulator import multipart


class Collect:
    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(bytes(data))

    def finish(self):
        return b"".join(self.parts)

    def abort(self):
        self.parts = None


def body(file_bytes, boundary=b"b0undary", after=b""):
    return (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n'
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
            + file_bytes + b"\r\n--" + boundary + b"\r\n" + after + b"--" + boundary + b"--\r\n")


NEAR_MISSES = [b"", b"x", b"\r\n--b0undar", b"--b0undary", b"\r\n--b0undarz" * 3, bytes(range(256)) * 3,
               b"\r\n" * 50, b"data\r\n--b0und"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 11, 13, 64, 4096])
@pytest.mark.parametrize("payload", NEAR_MISSES)
def test_file_bytes_exact_for_any_chunking(monkeypatch, chunk, payload):
    monkeypatch.setattr(multipart, "CHUNK", chunk)
    raw = body(payload, after=b'Content-Disposition: form-data; name="late"\r\n\r\nv\r\n')
    fields, (filename, _, got) = multipart.read_form(io.BytesIO(raw), len(raw), "multipart/form-data; boundary=b0undary",
                                                     lambda *a: Collect())
    assert got == payload and fields == [("key", "k")] and filename == "f"


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_unterminated_file_is_malformed(monkeypatch, chunk):
    monkeypatch.setattr(multipart, "CHUNK", chunk)
    raw = body(b"abc")[:-30]
    sinks = []

    def sink(*a):
        sinks.append(Collect())
        return sinks[-1]

    with pytest.raises(multipart.OSSError) as err:
        multipart.read_form(io.BytesIO(raw), len(raw), "multipart/form-data; boundary=b0undary", sink)
    assert err.value.code == "MalformedPOSTRequest" and sinks[0].parts is None  # aborted
