"""The CRC-64 combine that completes a multipart upload without re-reading the parts equals fastcrc's
CRC of the concatenation (real bytes, several part shapes)."""

import os

import pytest
from fastcrc import crc64

from emulator.uploads import crc64_combine


@pytest.mark.parametrize("sizes", [(1, 1), (0, 5), (7, 0), (1000, 333), (100 * 1024, 100 * 1024, 17),
                                   (3 << 20, (1 << 20) + 7)])
def test_combine_equals_crc_of_concatenation(sizes):
    blobs = [os.urandom(n) for n in sizes]
    crc = 0
    for blob in blobs:
        crc = crc64_combine(crc, crc64.xz(blob), len(blob))
    assert crc == crc64.xz(b"".join(blobs))
