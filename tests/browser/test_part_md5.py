"""Issue 24 in Debian's chromium: web/md5.js gives the RFC 1321 digests (and hashlib's for any bytes, in any
slicing), and web/multipart.js sends each part's MD5 when it asks for the part's URL: a byte flipped by a real
proxy between the page and OSS is refused by OSS itself (400 InvalidDigest) and the part is sent again;
with md5: false OSS stores the changed part and the page's per-part CRC-64 check sends it again."""

import base64
import hashlib

import pytest
from support import FlippingProxy
from test_upload_page import open_page

from devstack import BUCKET, LocalStack

pytestmark = pytest.mark.browser
MiB = 1 << 20

RFC1321 = {"": "d41d8cd98f00b204e9800998ecf8427e", "a": "0cc175b9c0f1b6a831c399e269772661",
           "abc": "900150983cd24fb0d6963f7d28e17f72", "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
           "abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": "d174ab98d277d9f5a5611c2c9f419d9f",
           "1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a"}

# 9 MiB: two parts of the 8 MiB plan; "quick" (what the proxy flips) only in part 1
MAKE_FILE = """(size) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 255;
  bytes.set(new TextEncoder().encode("quick"), 100);
  return new File([bytes], "big.bin", { type: "video/mp4" });
}"""


def file_bytes(size):
    data = bytearray((i * 31 + 7) & 255 for i in range(size))
    data[100:105] = b"quick"
    return bytes(data)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    proxy = FlippingProxy("")
    stack = LocalStack(tmp_path_factory.mktemp("partmd5"), env={"OSSDIRECT_UPLOAD_HOST": f"{proxy.url}/{BUCKET}",
                                                              "OSSDIRECT_MAX_BYTES": str(64 * MiB)}).start()
    proxy.target = stack.emulator.url
    yield stack, proxy
    stack.stop()
    proxy.close()


def test_md5_gives_the_rfc_1321_digests_and_hashlibs_in_any_slicing(page, proxied):
    stack, _ = proxied
    open_page(page, stack)
    got = page.evaluate("""async (texts) => {
      const { Md5, md5OfBlob } = await import('./md5.js');
      const enc = new TextEncoder();
      const rfc = Object.fromEntries(texts.map((t) => [t, new Md5().update(enc.encode(t)).hex()]));
      const sizes = [1, 55, 56, 57, 63, 64, 65, 127, 128, 129, 1000, 65536 + 3];
      const sliced = {};
      for (const n of sizes) {
        const bytes = new Uint8Array(n).map((_, i) => (i * 131 + n) & 255);
        const md5 = new Md5();
        for (let at = 0; at < n; at += 13) md5.update(bytes.subarray(at, at + 13).slice().buffer);
        sliced[n] = [md5.base64(), new Md5().update(bytes).base64()];
      }
      const blob = new Blob([new Uint8Array(9 * 1048576 + 5).map((_, i) => i & 255)]);
      return { rfc, sliced, blob: await md5OfBlob(blob) };  // read in 8 MiB slices: two reads
    }""", list(RFC1321))
    assert got["rfc"] == RFC1321
    for n, (incremental, whole) in got["sliced"].items():
        want = base64.b64encode(hashlib.md5(bytes((i * 131 + int(n)) & 255 for i in range(int(n)))).digest()).decode()
        assert (incremental, whole) == (want, want), n
    blob = bytes(i & 255 for i in range(9 * MiB + 5))
    assert got["blob"] == base64.b64encode(hashlib.md5(blob).digest()).decode()


def _upload(page, stack, options):
    return page.evaluate("""async ([sig, size, options, makeFile]) => {
      const { uploadMultipart } = await import('./multipart.js');
      const file = eval(makeFile)(size);
      const result = await uploadMultipart(sig, file, options).promise;
      return { state: result.state, key: result.key, partsSent: result.multipart.partsSent };
    }""", [stack.signature_url, 9 * MiB, options, MAKE_FILE])


def test_a_part_flipped_on_the_way_is_refused_by_oss_and_sent_again(page, proxied):
    stack, proxy = proxied
    open_page(page, stack)
    signed = []
    page.on("request", lambda r: signed.append(r.url) if "/parts?" in r.url else None)
    proxy.flipped, proxy.times, proxy.answers = 0, 1, []
    result = _upload(page, stack, {})
    assert proxy.flipped == 1 and result["state"] == "done", (result, proxy.answers)
    assert stack.get_object(result["key"]) == file_bytes(9 * MiB)
    # OSS itself refused the changed part (its URL signs Content-MD5), before storing anything
    refused = [(status, "<Code>InvalidDigest</Code>" in text) for status, text in proxy.answers if status != 200]
    assert refused == [(400, True)], proxy.answers
    assert signed and all("md5=" in url for url in signed), signed


def test_with_md5_false_oss_stores_the_changed_part_and_the_pages_part_crc_sends_it_again(page, proxied):
    """The contrast: without part digests OSS takes the changed part (200); the page finds it afterwards, by
    comparing the part's CRC-64 with the x-oss-hash-crc64ecma OSS answers (the bucket's CORS, as
    tools/bucket_setup.py writes it, exposes it), and sends that part again."""
    stack, proxy = proxied
    open_page(page, stack)
    signed = []
    page.on("request", lambda r: signed.append(r.url) if "/parts?" in r.url else None)
    proxy.flipped, proxy.times, proxy.answers = 0, 1, []
    result = _upload(page, stack, {"md5": False})
    assert proxy.flipped == 1 and result["state"] == "done", (result, proxy.answers)
    assert all(status == 200 for status, _ in proxy.answers), proxy.answers  # OSS took the changed part too
    assert stack.get_object(result["key"]) == file_bytes(9 * MiB)
    assert signed and not any("md5=" in url for url in signed), signed


def test_a_part_changed_every_time_fails_with_the_pages_sentence_after_its_retries(page, proxied):
    stack, proxy = proxied
    open_page(page, stack)
    proxy.flipped, proxy.times, proxy.answers = 0, None, []  # a link that always changes part 1
    with pytest.raises(Exception) as caught:
        _upload(page, stack, {"retries": 1})
    assert "arrived changed on the way" in str(caught.value)
    refused = [status for status, text in proxy.answers if "<Code>InvalidDigest</Code>" in text]
    assert refused == [400, 400], proxy.answers  # the first PUT and its one retry, both refused by OSS
