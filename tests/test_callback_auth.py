"""Callback verification: the OSS documentation's worked example with the real OSS key, and tampering."""

import base64

import pytest

from ossdirect.oss.callback_auth import CallbackAuthError, KeyCache, check_key_url, string_to_sign, verify_callback

DOC_AUTH = "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/RaHBovRCE8OkQDjC3uG33esH2txA=="
HTTP_KEY_URL = "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ=="
HTTPS_KEY_URL = base64.b64encode(b"https://gosspublic.alicdn.com/callback_pub_key_v1.pem").decode()


def headers(auth=DOC_AUTH, key_url=HTTP_KEY_URL):
    return {"authorization": auth, "x-oss-pub-key-url": key_url}


def test_documented_example_verifies_with_pinned_key_and_no_network():
    cache = KeyCache()
    verify_callback(headers(), "/index.php", "id=1&index=2", b"bucket=yonghu-test", cache=cache)
    verify_callback(headers(key_url=HTTPS_KEY_URL), "/index.php", "id=1&index=2", b"bucket=yonghu-test", cache=cache)
    assert not cache.keys  # nothing fetched


def test_string_to_sign_decodes_path_only():
    assert string_to_sign("/a%20b", "x=%20", b"body") == b"/a b?x=%20\nbody"
    assert string_to_sign("/cb", "", b"b") == b"/cb\nb"


@pytest.mark.parametrize("path,query,body", [
    ("/index.php", "id=1&index=3", b"bucket=yonghu-test"),      # query
    ("/index.PHP", "id=1&index=2", b"bucket=yonghu-test"),      # path
    ("/index.php", "id=1&index=2", b"bucket=yonghu-tesT"),      # body
    ("/index.php", " id=1&index=2", b"bucket=yonghu-test"),     # the doc's typo, a space after '?'
    ("/index.php", "", b"bucket=yonghu-test"),                  # query left out
    ("index.php", "id=1&index=2", b"bucket=yonghu-test"),       # leading slash dropped
])
def test_tampered_request_is_rejected(path, query, body):
    with pytest.raises(CallbackAuthError) as err:
        verify_callback(headers(), path, query, body)
    assert not err.value.malformed


def test_tampered_signature_is_rejected():
    raw = bytearray(base64.b64decode(DOC_AUTH))
    raw[10] ^= 1
    with pytest.raises(CallbackAuthError):
        verify_callback(headers(auth=base64.b64encode(bytes(raw)).decode()), "/index.php", "id=1&index=2",
                        b"bucket=yonghu-test")


def test_stray_question_mark_is_rejected(rsa_signer, key_server):
    # A verifier that appends '?' to a query-less path must not accept, and we must not add one.
    key_url = base64.b64encode(f"{key_server.url}/_emulator/callback_pub_key.pem".encode()).decode()
    trusted = (f"{key_server.url}/_emulator/",)
    good = rsa_signer.sign("/cb", "", b"x=1")
    verify_callback(headers(good, key_url), "/cb", "", b"x=1", trusted, KeyCache())
    stray = base64.b64encode(rsa_signer.key.sign(b"/cb?\nx=1", *_pkcs1_md5())).decode()
    with pytest.raises(CallbackAuthError):
        verify_callback(headers(stray, key_url), "/cb", "", b"x=1", trusted, KeyCache())


def _pkcs1_md5():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), hashes.MD5()


@pytest.mark.parametrize("url", [
    "http://gosspublic.alicdn.com.evil.example/callback_pub_key_v1.pem",
    "https://gosspublic.alicdn.com.evil.example/callback_pub_key_v1.pem",
    "https://evil.example/gosspublic.alicdn.com/callback_pub_key_v1.pem",
    "https://gosspublic.alicdn.com@evil.example/callback_pub_key_v1.pem",
    "ftp://gosspublic.alicdn.com/callback_pub_key_v1.pem",
    "https://GOSSPUBLIC.alicdn.com/callback_pub_key_v1.pem",
    "http://127.0.0.1:9/_emulator/callback_pub_key.pem",  # not trusted unless configured
])
def test_untrusted_key_urls_are_rejected_before_any_fetch(url):
    with pytest.raises(CallbackAuthError):
        check_key_url(url)
    with pytest.raises(CallbackAuthError) as err:
        verify_callback(headers(key_url=base64.b64encode(url.encode()).decode()), "/index.php", "id=1&index=2",
                        b"bucket=yonghu-test")
    assert not err.value.malformed


def test_configured_prefix_key_is_fetched_once_and_cached(rsa_signer, key_server):
    url = f"{key_server.url}/_emulator/callback_pub_key.pem"
    trusted = (f"{key_server.url}/_emulator/",)
    cache = KeyCache()
    for body in (b"a=1", b"a=2", b"a=3"):
        verify_callback(headers(rsa_signer.sign("/cb", "q=1", body), base64.b64encode(url.encode()).decode()),
                        "/cb", "q=1", body, trusted, cache)
    assert key_server.hits == ["/_emulator/callback_pub_key.pem"]


@pytest.mark.parametrize("hdrs", [
    {},
    {"authorization": DOC_AUTH},
    {"authorization": "not base64!!", "x-oss-pub-key-url": HTTP_KEY_URL},
    {"authorization": DOC_AUTH, "x-oss-pub-key-url": "%%%"},
])
def test_malformed_headers_are_400_material(hdrs):
    with pytest.raises(CallbackAuthError) as err:
        verify_callback(hdrs, "/index.php", "id=1&index=2", b"bucket=yonghu-test")
    assert err.value.malformed


def test_pinned_numbers_are_the_published_pem_key():
    from cryptography.hazmat.primitives import serialization

    from ossdirect.oss.callback_auth import OSS_CALLBACK_KEY_E, OSS_CALLBACK_KEY_N, OSS_CALLBACK_PUBLIC_KEY_PEM

    numbers = serialization.load_pem_public_key(OSS_CALLBACK_PUBLIC_KEY_PEM).public_numbers()
    assert (numbers.n, numbers.e) == (OSS_CALLBACK_KEY_N, OSS_CALLBACK_KEY_E)
    assert numbers.n.bit_length() == 512


def test_library_callers_may_pass_headers_in_any_case_and_must_pass_bytes():
    import pytest as _pytest

    from ossdirect.oss.callback_auth import CallbackAuthError, verify_callback

    with _pytest.raises(TypeError, match="raw bytes"):
        verify_callback({"authorization": "x"}, "/", "", "text body")
    # mixed-case names reach the signature check (not "missing Authorization")
    with _pytest.raises(CallbackAuthError) as caught:
        verify_callback({"Authorization": "eA==", "X-OSS-Pub-Key-Url": "eA=="}, "/", "", b"body")
    assert "missing" not in str(caught.value)
