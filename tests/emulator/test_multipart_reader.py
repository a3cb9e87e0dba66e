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


# --- linear work and the pre-file cap ------------------------------------------------------------------
class CountingReader(multipart.Reader):
    made = []

    def __init__(self, *args):
        super().__init__(*args)
        CountingReader.made.append(self)


EMPTY_FIELD = b'--b0undary\r\nContent-Disposition: form-data; name="a"\r\n\r\n\r\n'
FILE_PART = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n'
             b"payload\r\n--b0undary--\r\n")


@pytest.mark.parametrize("field", [EMPTY_FIELD, EMPTY_FIELD.replace(b"\r\n\r\n\r\n", b"\r\n\r\nv\r\n")])
def test_8_mib_of_tiny_fields_is_parsed_with_linear_work(monkeypatch, field):
    count = (multipart.MAX_PRE_FILE - 4096) // len(field)
    raw = field * count + FILE_PART
    CountingReader.made = []
    monkeypatch.setattr(multipart, "Reader", CountingReader)
    fields, (_, _, got) = multipart.read_form(io.BytesIO(raw), len(raw), "multipart/form-data; boundary=b0undary",
                                              lambda *a: Collect())
    assert len(fields) == count and got == b"payload"
    reader, = CountingReader.made
    # every byte is copied and searched a small constant number of times; copying what is left of the
    # buffer for each field (the old reader) would be ~count * 1 MiB, i.e. tens of GiB here
    assert reader.copied <= 3 * len(raw), reader.copied
    assert reader.scanned <= 2 * len(raw), reader.scanned


def test_pre_file_cap_counts_names_and_part_headers():
    name = "n" * 8000  # within the 8 KiB limit on a name, and every value empty
    field = f'--b0undary\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n\r\n'.encode()
    count = multipart.MAX_PRE_FILE // len(field) + 1
    raw = field * count + FILE_PART
    sinks = []
    with pytest.raises(multipart.OSSError) as err:
        multipart.read_form(io.BytesIO(raw), len(raw), "multipart/form-data; boundary=b0undary",
                            lambda *a: sinks.append(1) or Collect())
    assert err.value.code == "MaxPOSTPreDataLengthExceededError" and sinks == []
    # just under the cap is fine: the count is of bytes before the file, not of fields
    raw = field * (count - 2) + FILE_PART
    fields, info = multipart.read_form(io.BytesIO(raw), len(raw), "multipart/form-data; boundary=b0undary",
                                       lambda *a: Collect())
    assert len(fields) == count - 2 and info[2] == b"payload"


def test_a_name_over_8_kib_is_field_item_too_long():
    raw = (f'--b0undary\r\nContent-Disposition: form-data; name="{"n" * 9000}"\r\n\r\nv\r\n'.encode() + FILE_PART)
    with pytest.raises(multipart.OSSError) as err:
        multipart.read_form(io.BytesIO(raw), len(raw), "multipart/form-data; boundary=b0undary", lambda *a: Collect())
    assert err.value.code == "FieldItemTooLong"
