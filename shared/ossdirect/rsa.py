"""RSA public keys and PKCS#1 v1.5 signature checks in the standard library.

Both trusted checks on the functions' cold path are RSA PKCS#1 v1.5: OSS signs its upload callbacks
with RSA-MD5, and nearly every identity provider signs its tokens RS256. Importing ``cryptography``
for them costs the cold start 15 to 60 ms; the check itself is one modular exponentiation and a
comparison. Verification here is done the way RFC 8017 section 8.2.2 prescribes and OpenSSL does it:
the expected encoding is rebuilt from the digest and compared whole, so nothing is parsed out of
attacker-chosen bytes (no Bleichenbacher-style forgery). ``tests/test_rsa.py`` proves
every answer equal to ``cryptography``'s on valid, altered and malformed signatures and keys.

Only RSA lives here; every other key type (EC, Ed25519, certificates) is left to ``cryptography``.
"""

from __future__ import annotations

import binascii
import hashlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1): what precedes the digest in the padded block.
_DIGEST_INFO = {
    "md5": bytes.fromhex("3020300c06082a864886f70d020505000410"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1


class RsaKeyError(ValueError):
    """The bytes are not an RSA public key this module reads."""


class RsaPublicKey:
    """An RSA public key as two integers. ``key_size`` is the modulus' length in bits, as cryptography says it."""

    __slots__ = ("n", "e", "key_size", "_length", "_heads")

    def __init__(self, n: int, e: int) -> None:
        if n < 3 or n % 2 == 0 or e < 3 or e % 2 == 0 or e >= n:
            raise RsaKeyError("not an RSA public key (modulus and exponent must be odd, exponent below modulus)")
        self.n, self.e = n, e
        self.key_size = n.bit_length()
        self._length = (self.key_size + 7) // 8
        self._heads: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"RsaPublicKey(RSA-{self.key_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RsaPublicKey) and (self.n, self.e) == (other.n, other.e)

    def __hash__(self) -> int:
        return hash((self.n, self.e))

    def verify_pkcs1v15(self, signature: bytes, message: bytes, hash_name: str) -> bool:
        """True when ``signature`` is this key's RSASSA-PKCS1-v1_5 signature of ``message`` under
        ``hash_name`` (md5, sha256, sha384, sha512)."""
        k = self._length
        if len(signature) != k:  # OpenSSL refuses any other length too (RSA_R_WRONG_SIGNATURE_LENGTH)
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        head = self._heads.get(hash_name)
        if head is None:
            head = self._heads[hash_name] = self._head(hash_name)
        if not head:  # too small a key for this digest: no valid encoding exists
            return False
        # Everything compared is public (key, message, signature): an equality test of integers leaks nothing.
        return pow(s, self.e, self.n) == int.from_bytes(head + _HASHES[hash_name](message).digest(), "big")

    def _head(self, hash_name: str) -> bytes:
        """00 01 FF..FF 00 DigestInfo: the encoded block up to the digest, the same for every message."""
        prefix = _DIGEST_INFO[hash_name]
        pad = self._length - len(prefix) - _HASHES[hash_name]().digest_size - 3
        return b"\x00\x01" + b"\xff" * pad + b"\x00" + prefix if pad >= 8 else b""

    def to_cryptography(self) -> Any:
        """The same key as a ``cryptography`` object, for the algorithms this module does not do (PSS)."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        return rsa.RSAPublicNumbers(self.e, self.n).public_key()


# ------------------------------------------------------------------------ reading keys

def from_pem(text: str | bytes) -> RsaPublicKey | None:
    """The RSA key of a ``PUBLIC KEY`` (SubjectPublicKeyInfo) or ``RSA PUBLIC KEY`` (PKCS#1) PEM block;
    None when the PEM holds another kind of key or block (let ``cryptography`` read it). Raises
    :class:`RsaKeyError` when it claims to be an RSA key and is not a valid one."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        return None
    label = lines[0][len("-----BEGIN "):].rstrip("-")
    if lines[-1] != f"-----END {label}-----" or label not in ("PUBLIC KEY", "RSA PUBLIC KEY"):
        return None
    if any(":" in line for line in lines[1:-1]):
        return None  # RFC 1421 headers (encrypted PEM): not a plain key
    body = "".join(lines[1:-1])
    if len(body) % 4 or not _B64.issuperset(body.rstrip("=")) or len(body) - len(body.rstrip("=")) > 2:
        raise RsaKeyError("the PEM body is not base64")
    der = binascii.a2b_base64(body.encode("ascii"))
    return from_der(der, pkcs1=label == "RSA PUBLIC KEY")


def from_der(der: bytes, pkcs1: bool = False) -> RsaPublicKey | None:
    """The RSA key of a DER SubjectPublicKeyInfo (or, with ``pkcs1``, a bare RSAPublicKey); None for
    a SubjectPublicKeyInfo of another algorithm."""
    if pkcs1:
        return _rsa_public_key(der)
    spki, rest = _read(der, 0x30)
    if rest:
        raise RsaKeyError("trailing bytes after the key")
    algorithm, bits = _read(spki, 0x30)
    if not algorithm.startswith(_RSA_ENCRYPTION_OID):
        return None  # EC, Ed25519, ...: not ours to read
    if algorithm[len(_RSA_ENCRYPTION_OID):] not in (b"", b"\x05\x00"):
        raise RsaKeyError("unexpected RSA algorithm parameters")
    bit_string, rest = _read(bits, 0x03)
    if rest or not bit_string or bit_string[0] != 0:
        raise RsaKeyError("the key's bit string is malformed")
    return _rsa_public_key(bit_string[1:])


def from_jwk_numbers(n_b64url: object, e_b64url: object) -> RsaPublicKey:
    """The key of an RSA JWK (RFC 7518 section 6.3.1: unsigned big-endian base64url, no padding)."""
    return RsaPublicKey(_b64url_uint(n_b64url), _b64url_uint(e_b64url))


def _rsa_public_key(der: bytes) -> RsaPublicKey:
    body, rest = _read(der, 0x30)
    if rest:
        raise RsaKeyError("trailing bytes after the key")
    n, body = _read_uint(body)
    e, body = _read_uint(body)
    if body:
        raise RsaKeyError("the RSA key holds more than a modulus and an exponent")
    return RsaPublicKey(n, e)


def _read(data: bytes, tag: int) -> tuple[bytes, bytes]:
    """One DER element with ``tag``: (its contents, what follows). Definite, minimal lengths only."""
    if len(data) < 2 or data[0] != tag:
        raise RsaKeyError("not a DER-encoded RSA key")
    length, start = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count or data[2] == 0:
            raise RsaKeyError("bad DER length")
        length, start = int.from_bytes(data[2:2 + count], "big"), 2 + count
        if length < 0x80:
            raise RsaKeyError("bad DER length")
    if len(data) < start + length:
        raise RsaKeyError("truncated DER")
    return data[start:start + length], data[start + length:]


def _read_uint(data: bytes) -> tuple[int, bytes]:
    value, rest = _read(data, 0x02)
    if not value or value[0] & 0x80 or (len(value) > 1 and value[0] == 0 and not value[1] & 0x80):
        raise RsaKeyError("bad DER integer")  # negative, empty or not minimally encoded
    return int.from_bytes(value, "big"), rest


def _b64url_uint(value: object) -> int:
    if not isinstance(value, str) or not value or len(value) % 4 == 1 or not _B64URL.issuperset(value):
        raise RsaKeyError("not an unsigned base64url integer")
    raw = binascii.a2b_base64((value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)).encode())
    return int.from_bytes(raw, "big")


_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_B64, _B64URL = frozenset(_ALNUM + "+/"), frozenset(_ALNUM + "-_")
