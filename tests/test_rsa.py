"""ossdirect.rsa (stdlib RSA PKCS#1 v1.5 verification and RSA key reading) against cryptography (OpenSSL),
the reference, on golden vectors: real signatures, every single-byte change of them, hand-built
encodings (wrong block type, short padding, DigestInfo without NULL, garbage after the digest), the
e=3 forgery of Bleichenbacher 2006, and keys read from PEM, DER and JWK with every byte changed."""

import base64
import hashlib
import os

import pytest
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa as crypto_rsa

from ossdirect import rsa
from ossdirect.oss.callback_auth import OSS_CALLBACK_KEY_E, OSS_CALLBACK_KEY_N, OSS_CALLBACK_PUBLIC_KEY_PEM

HASHES = {"md5": hashes.MD5, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@pytest.fixture(scope="module", params=[(1024, 65537), (2048, 65537), (3072, 65537), (2048, 3)],
                ids=lambda p: f"{p[0]}-e{p[1]}")
def key(request):
    bits, e = request.param
    return crypto_rsa.generate_private_key(public_exponent=e, key_size=bits)


def ours(private):
    numbers = private.public_key().public_numbers()
    return rsa.RsaPublicKey(numbers.n, numbers.e)


def reference(private, signature, message, hash_name):
    try:
        private.public_key().verify(signature, message, padding.PKCS1v15(), HASHES[hash_name]())
        return True
    except (InvalidSignature, ValueError):
        return False


@pytest.mark.parametrize("hash_name", sorted(HASHES))
def test_real_signatures_and_every_one_byte_change_agree(key, hash_name):
    mine = ours(key)
    message = os.urandom(200)
    signature = key.sign(message, padding.PKCS1v15(), HASHES[hash_name]())
    assert mine.verify_pkcs1v15(signature, message, hash_name) is True
    cases = [(signature, message + b"x"), (signature, message[:-1]), (signature[:-1], message),
             (b"\x00" + signature, message), (signature + b"\x00", message), (b"", message)]
    for i in range(len(signature)):
        changed = bytearray(signature)
        changed[i] ^= 1 << (i % 8)
        cases.append((bytes(changed), message))
    for sig, msg in cases:
        assert mine.verify_pkcs1v15(sig, msg, hash_name) is reference(key, sig, msg, hash_name) is False
    other = "sha256" if hash_name != "sha256" else "sha512"
    assert mine.verify_pkcs1v15(signature, message, other) is reference(key, signature, message, other) is False


def raw_sign(private, encoded: bytes) -> bytes:
    """The RSA private operation on an encoding we built ourselves (a signer that pads wrongly, or a forger)."""
    p = private.private_numbers()
    k = (p.public_numbers.n.bit_length() + 7) // 8
    return pow(int.from_bytes(encoded, "big"), p.d, p.public_numbers.n).to_bytes(k, "big")


def encodings(k, digest_info, digest):
    t = digest_info + digest
    good = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    no_null = digest_info.replace(b"\x05\x00", b"")
    no_null = bytes([0x30, no_null[1] - 2]) + no_null[2:3] + bytes([no_null[3] - 2]) + no_null[4:]
    t2 = no_null + digest
    yield "good", good
    yield "block type 2", b"\x00\x02" + good[2:]
    yield "no leading zero", b"\x01" + good[2:] + b"\xff"
    yield "short padding, garbage after the digest", b"\x00\x01" + b"\xff" * 7 + b"\x00" + t + b"\x00" * (k - len(t) - 10)
    yield "a zero inside the padding", good[:5] + b"\x00" + good[6:]
    yield "no separator", b"\x00\x01" + b"\xff" * (k - len(t) - 2) + t
    yield "DigestInfo without NULL", b"\x00\x01" + b"\xff" * (k - len(t2) - 3) + b"\x00" + t2
    yield "digest cut short", good[:-1] + b"\x00"
    yield "wrong algorithm OID", good.replace(digest_info, digest_info[:-5] + bytes([digest_info[-5] ^ 1]) + digest_info[-4:])


@pytest.mark.parametrize("hash_name", ["md5", "sha256"])
def test_hand_built_encodings_agree_with_openssl(key, hash_name):
    mine = ours(key)
    k = (key.key_size + 7) // 8
    message = b"the signed bytes"
    seen = {}
    for name, encoded in encodings(k, rsa._DIGEST_INFO[hash_name], hashlib.new(hash_name, message).digest()):
        assert len(encoded) == k, name
        signature = raw_sign(key, encoded)
        seen[name] = mine.verify_pkcs1v15(signature, message, hash_name)
        assert seen[name] is reference(key, signature, message, hash_name), name
    assert seen["good"] is True and sum(seen.values()) == 1


def icbrt(n):
    lo, hi = 0, 1 << (n.bit_length() // 3 + 2)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid ** 3 <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo


def test_the_e3_forgery_is_refused():
    """Bleichenbacher 2006: with e=3, a cube root of 00 01 FF 00 DigestInfo H garbage verifies in any
    checker that parses the block instead of rebuilding it. Both refuse it here."""
    key = crypto_rsa.generate_private_key(public_exponent=3, key_size=3072)
    mine = ours(key)
    k = 384
    message = b"pay the attacker"
    t = rsa._DIGEST_INFO["sha256"] + hashlib.sha256(message).digest()
    prefix = b"\x00\x01\xff\x00" + t
    target = int.from_bytes(prefix + b"\xff" * (k - len(prefix)), "big")
    forged = icbrt(target)
    assert (forged ** 3).to_bytes(k, "big").startswith(prefix)  # the forgery is well made
    signature = forged.to_bytes(k, "big")
    assert mine.verify_pkcs1v15(signature, message, "sha256") is False
    assert reference(key, signature, message, "sha256") is False


def test_a_signature_at_or_above_the_modulus_is_refused(key):
    mine = ours(key)
    n = key.public_key().public_numbers().n
    k = (key.key_size + 7) // 8
    for s in (n, n + 1, (1 << (8 * k)) - 1):
        if s.bit_length() <= 8 * k:
            sig = s.to_bytes(k, "big")
            assert mine.verify_pkcs1v15(sig, b"m", "sha256") is reference(key, sig, b"m", "sha256") is False


def test_the_pinned_oss_key_reads_as_the_numbers():
    key = rsa.from_pem(OSS_CALLBACK_PUBLIC_KEY_PEM)
    assert (key.n, key.e, key.key_size) == (OSS_CALLBACK_KEY_N, OSS_CALLBACK_KEY_E, 512)
    assert key == rsa.RsaPublicKey(OSS_CALLBACK_KEY_N, OSS_CALLBACK_KEY_E)


def pem_of(public, fmt):
    return public.public_bytes(serialization.Encoding.PEM, fmt)


def test_keys_read_from_pem_der_and_jwk_equal_cryptographys(key):
    public = key.public_key()
    numbers = public.public_numbers()
    for fmt in (serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1):
        got = rsa.from_pem(pem_of(public, fmt))
        assert (got.n, got.e, got.key_size) == (numbers.n, numbers.e, public.key_size)
        assert rsa.from_pem(pem_of(public, fmt).decode().replace("\n", "\r\n")) == got
    def b64u(i):
        return base64.urlsafe_b64encode(i.to_bytes((i.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
    assert rsa.from_jwk_numbers(b64u(numbers.n), b64u(numbers.e)) == got


def test_every_one_byte_change_of_a_der_key_is_never_read_more_leniently():
    """Flip each byte of a SubjectPublicKeyInfo: whatever ours reads, cryptography reads the same numbers;
    whatever cryptography refuses, ours refuses (ours may refuse more: an even exponent, say)."""
    public = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    stricter = 0
    for i in range(len(der)):
        for bit in (0x01, 0x80):
            changed = bytearray(der)
            changed[i] ^= bit
            try:
                mine = rsa.from_der(bytes(changed))
            except rsa.RsaKeyError:
                mine = "refused"
            try:
                theirs = serialization.load_der_public_key(bytes(changed))
            except (ValueError, TypeError, UnsupportedAlgorithm):
                theirs = "refused"
            if mine == "refused" or mine is None:
                stricter += theirs != "refused" and isinstance(theirs, crypto_rsa.RSAPublicKey)
                continue
            assert isinstance(theirs, crypto_rsa.RSAPublicKey), (i, bit)
            n = theirs.public_numbers()
            assert (mine.n, mine.e) == (n.n, n.e), (i, bit)
    assert stricter < len(der)  # most changes inside the modulus give another valid key to both


def test_other_keys_and_blocks_are_left_to_cryptography():
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert rsa.from_pem(pem_of(ec_public, serialization.PublicFormat.SubjectPublicKeyInfo)) is None
    assert rsa.from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None
    assert rsa.from_pem("not a pem") is None


@pytest.mark.parametrize("bad", [
    "-----BEGIN PUBLIC KEY-----\nMFwwDQ!!\n-----END PUBLIC KEY-----\n",
    "-----BEGIN PUBLIC KEY-----\nMFwwDQYJ\n-----END PUBLIC KEY-----\n",  # truncated DER
    "even exponent",
])
def test_broken_rsa_pems_are_refused(bad):
    if bad == "even exponent":  # OSS's key with its exponent 65537 turned into 65536
        der = base64.b64decode("".join(OSS_CALLBACK_PUBLIC_KEY_PEM.decode().splitlines()[1:-1]))
        assert der.endswith(b"\x02\x03\x01\x00\x01")
        body = base64.b64encode(der[:-1] + b"\x00").decode()
        bad = f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"
    with pytest.raises(rsa.RsaKeyError):
        rsa.from_pem(bad)


@pytest.mark.parametrize("n, e", [(3, 3), (2 ** 64, 3), (2 ** 64 + 1, 2), (15, 17), (1, 3)])
def test_impossible_numbers_are_refused(n, e):
    with pytest.raises(rsa.RsaKeyError):
        rsa.RsaPublicKey(n, e)
