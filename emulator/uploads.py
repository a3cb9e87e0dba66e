"""Multipart uploads on disk: InitiateMultipartUpload, UploadPart, ListParts, Complete, Abort.

``<data>/<bucket>/uploads/<UploadId>/{info.json, stride, assembly, parts/<PartNumber>/{data,meta.json}}``.
A part is streamed by the same Sink as an object (MD5 and CRC-64 on the way, never held in memory):
in place into ``assembly`` at (number - 1) × stride when it fits there (see Uploads.part_sink), else
into a temp directory of its own; its meta is renamed into place. Uploading the same part number
again replaces it, as OSS does. Completing claims the upload (moves its directory out of ``uploads/``
under the lock, so concurrent UploadPart/Complete/Abort calls find NoSuchUpload), then links
``assembly`` as the object when parts 1..n are all in place in it, or else concatenates the listed
parts into a new object (a kernel copy), and commits it like any other upload.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time

from .errors import OSSError
from .storage import ensure_dir

MIN_PART = 100 * 1024  # every part but the last, checked at Complete
MAX_PART = 5 * 1024**3
MAX_PART_NUMBER = 10000
COPY_CHUNK = 4 << 20
_UPLOAD_ID = re.compile(r"[0-9A-F]{32}")


def no_such_upload(upload_id):
    return OSSError(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                    "upload may have been aborted or completed.", "0017-00000244", UploadId=upload_id or "")


def multipart_etag(part_md5_hexes):
    """OSS's ETag of a completed multipart object: MD5 of the parts' binary MD5s, then -<part count>."""
    digest = hashlib.md5(b"".join(bytes.fromhex(h) for h in part_md5_hexes)).hexdigest().upper()
    return f"{digest}-{len(part_md5_hexes)}"


ASSEMBLY = "assembly"  # the upload's parts written in place: Complete renames it instead of copying


class Uploads:
    def __init__(self, store):
        self.store = store
        self.lock = threading.Lock()
        self._writing = {}  # (bucket, upload_id) -> part numbers being written into ASSEMBLY right now

    def _root(self, bucket):
        path = os.path.join(self.store.root, bucket, "uploads")
        ensure_dir(path)
        return path

    def path(self, bucket, upload_id):
        """The upload's directory. The id names a directory: only ids of our own form are ever used."""
        return self._dir(bucket, upload_id)

    def _dir(self, bucket, upload_id):
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise no_such_upload(upload_id)
        return os.path.join(self._root(bucket), upload_id)

    # --- initiate / look up ---------------------------------------------------------------------------
    def initiate(self, bucket, key, meta, forbid_overwrite):
        """Start an upload; ``meta`` (content_type, headers) is applied to the object at Complete."""
        # time-ordered (microseconds, then random): lexical order = initiation order, so upload-id-marker
        # paging ("ids greater than the marker") and listing oldest-first agree
        upload_id = f"{time.time_ns() // 1000:016X}{os.urandom(8).hex().upper()}"
        path = self._dir(bucket, upload_id)
        os.makedirs(os.path.join(path, "parts"))
        info = {"key": key, "upload_id": upload_id, "initiated": time.time(), "meta": meta,
                "forbid_overwrite": bool(forbid_overwrite)}
        with open(os.path.join(path, "info.json.tmp"), "w", encoding="utf-8") as f:
            json.dump(info, f, ensure_ascii=False)
        os.replace(os.path.join(path, "info.json.tmp"), os.path.join(path, "info.json"))
        return info

    def _read_info(self, path):
        try:
            with open(os.path.join(path, "info.json"), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def info(self, bucket, upload_id, key):
        """The upload's info; NoSuchUpload when it is unknown, finished, or belongs to another key."""
        info = self._read_info(self._dir(bucket, upload_id))
        if info is None or info["key"] != key:
            raise no_such_upload(upload_id)
        return info

    def list(self, bucket):
        """Every upload in progress: [info], sorted by key, then upload id (= initiation time)."""
        root = self._root(bucket)
        out = []
        for name in os.listdir(root):
            if _UPLOAD_ID.fullmatch(name):
                info = self._read_info(os.path.join(root, name))
                if info is not None:
                    out.append(info)
        out.sort(key=lambda i: (i["key"].encode("utf-8"), i["upload_id"]))
        return out

    # --- parts ----------------------------------------------------------------------------------------
    def part_sink(self, bucket, upload_id, key, number, length):
        """A Sink for part ``number`` of ``length`` bytes (None: unknown). Written in place, at
        (number - 1) × stride of the upload's ASSEMBLY file, when it can be: the stride is the first
        placed part's length (the clients' uniform part size); a part longer than the stride, a part
        number already uploaded or being written, or an unknown length gets a file of its own. Parts
        1..n in place are then the object already, and Complete links instead of copying 1 GiB."""
        if length:
            with self.lock:
                path = self._dir(bucket, upload_id)
                info = self._read_info(path)
                if info is None or info["key"] != key:
                    raise no_such_upload(upload_id)
                stride = self._stride(path, length)
                writing = self._writing.setdefault((bucket, upload_id), set())
                if (length <= stride and number not in writing
                        and not os.path.isdir(os.path.join(path, "parts", str(number)))):
                    writing.add(number)
                    return self.store.sink(bucket, (os.path.join(path, ASSEMBLY), (number - 1) * stride, length,
                                                    self._releaser(bucket, upload_id, number)))
        return self.store.sink(bucket)

    @staticmethod
    def _stride(path, length):
        """The upload's stride (call with the lock held): set once, by the first placed part."""
        name = os.path.join(path, "stride")
        try:
            with open(name, encoding="ascii") as f:
                return int(f.read())
        except FileNotFoundError:
            with open(name + ".tmp", "w", encoding="ascii") as f:
                f.write(str(length))
            os.replace(name + ".tmp", name)
            return length

    def _releaser(self, bucket, upload_id, number):
        done = []

        def release():  # once: the part number is no longer being written in place
            if not done:
                done.append(True)
                with self.lock:
                    writing = self._writing.get((bucket, upload_id), set())
                    writing.discard(number)
                    if not writing:
                        self._writing.pop((bucket, upload_id), None)
        return release

    def put_part(self, bucket, upload_id, key, number, staged):
        """Move a finished part (``staged`` from Sink.finish) into place, replacing an earlier one."""
        part = {"number": number, "etag": staged["etag"], "size": staged["size"], "crc64": staged["crc64"],
                "content_md5": staged["content_md5"], "last_modified": time.time()}
        if "offset" in staged:
            part["offset"] = staged["offset"]
        try:
            self._put_part(bucket, upload_id, key, number, staged, part)
        finally:
            if staged.get("release"):
                staged["release"]()
        return part

    def _put_part(self, bucket, upload_id, key, number, staged, part):
        with open(os.path.join(staged["dir"], "meta.json"), "w", encoding="utf-8") as f:
            json.dump(part, f)
        with self.lock:
            try:
                path = self._dir(bucket, upload_id)
                info = self._read_info(path)
                if info is None or info["key"] != key:
                    raise no_such_upload(upload_id)
                target = os.path.join(path, "parts", str(number))
                if os.path.isdir(target):
                    trash = tempfile.mkdtemp(prefix="oldpart-", dir=self.store.tmp_dir(bucket))
                    os.rename(target, os.path.join(trash, "x"))
                    shutil.rmtree(trash, ignore_errors=True)
                os.rename(staged["dir"], target)
            except BaseException:
                shutil.rmtree(staged["dir"], ignore_errors=True)
                raise

    @staticmethod
    def parts_in(path):
        """{part number: part meta (with its data path)} of an upload directory."""
        out = {}
        parts_dir = os.path.join(path, "parts")
        try:
            names = os.listdir(parts_dir)
        except FileNotFoundError:
            return out
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open(os.path.join(parts_dir, name, "meta.json"), encoding="utf-8") as f:
                    part = json.load(f)
            except (FileNotFoundError, NotADirectoryError):
                continue
            part["path"] = part_path(path, part)
            out[int(name)] = part
        return out

    def parts(self, bucket, upload_id, key):
        self.info(bucket, upload_id, key)
        return self.parts_in(self._dir(bucket, upload_id))

    # --- abort / complete -----------------------------------------------------------------------------
    def abort(self, bucket, upload_id, key):
        with self.lock:
            self.info(bucket, upload_id, key)
            trash = tempfile.mkdtemp(prefix="abort-", dir=self.store.tmp_dir(bucket))
            os.rename(self._dir(bucket, upload_id), os.path.join(trash, "x"))
        shutil.rmtree(trash, ignore_errors=True)

    def claim(self, bucket, upload_id):
        """Take the upload out of ``uploads/`` (call with ``self.lock`` held); returns where it went."""
        holder = tempfile.mkdtemp(prefix="completing-", dir=self.store.tmp_dir(bucket))
        claimed = os.path.join(holder, "x")
        os.rename(self._dir(bucket, upload_id), claimed)
        return claimed

    def unclaim(self, bucket, upload_id, claimed):
        """Put a claimed upload back (Complete failed after claiming: the upload stays usable)."""
        with self.lock:
            try:
                os.rename(claimed, self._dir(bucket, upload_id))
            except OSError:
                pass
        shutil.rmtree(os.path.dirname(claimed), ignore_errors=True)

    def discard(self, claimed):
        shutil.rmtree(os.path.dirname(claimed), ignore_errors=True)

    def assemble(self, bucket, upload_id, claimed, parts):
        """The object made of ``parts`` (in order) of the upload claimed at ``claimed``, staged for
        Store.commit; the CRC-64 combined from the parts' stored CRCs rather than recomputed, ETag in OSS's
        multipart form. Parts 1..n all in place in ASSEMBLY (and nothing else in it, no part still being
        written there): ASSEMBLY is the object, hard-linked (a failed commit leaves the upload whole).
        Otherwise the parts are copied in the kernel (copy_file_range: no bytes through Python). The
        staged directory is removed on failure."""
        staged_dir = tempfile.mkdtemp(prefix="upload-", dir=self.store.tmp_dir(bucket))
        crc, size = 0, 0
        try:
            for part in parts:
                crc = crc64_combine(crc, int(part["crc64"]), part["size"])
                size += part["size"]
            assembly = os.path.join(claimed, ASSEMBLY)
            with self.lock:  # claimed: no new part can start; one already writing keeps its number here
                writing = bool(self._writing.get((bucket, upload_id)))
            if not writing and _in_place(parts) and os.path.isfile(assembly) and os.path.getsize(assembly) == size:
                os.link(assembly, os.path.join(staged_dir, "data"))
            else:
                with open(os.path.join(staged_dir, "data"), "wb", buffering=0) as out:
                    for part in parts:
                        with open(part["path"], "rb", buffering=0) as src:
                            if _copy_range(src, out, part.get("offset", 0), part["size"]) != part["size"]:
                                raise OSError(f"part {part['number']} is shorter than recorded")
        except BaseException:
            shutil.rmtree(staged_dir, ignore_errors=True)
            raise
        return {"dir": staged_dir, "size": size, "etag": multipart_etag([p["etag"] for p in parts]),
                "content_md5": "", "crc64": str(crc)}


def part_path(upload_dir, part):
    """Where a part's bytes are (from ``part["offset"]`` when it was written in place)."""
    if "offset" in part:
        return os.path.join(upload_dir, ASSEMBLY)
    return os.path.join(upload_dir, "parts", str(part["number"]), "data")


def _in_place(parts):
    """Parts 1..n, each at the offset where the object has it."""
    at = 0
    for number, part in enumerate(parts, 1):
        if part["number"] != number or part.get("offset") != at:
            return False
        at += part["size"]
    return True


def _copy_range(src, out, offset, length):
    """Append ``length`` bytes of ``src`` from ``offset`` to ``out``; returns the byte count. Kernel copy
    where the OS has it."""
    total = 0
    copy = getattr(os, "copy_file_range", None)
    while copy is not None and total < length:
        try:
            n = copy(src.fileno(), out.fileno(), min(COPY_CHUNK, length - total), offset + total)
        except OSError:  # e.g. EXDEV/ENOSYS on some filesystems: plain copy from where we are
            break
        if not n:
            return total
        total += n
    src.seek(offset + total)
    while total < length and (chunk := src.read(min(COPY_CHUNK, length - total))):
        out.write(chunk)
        total += len(chunk)
    return total


CRC64_POLY = 0xC96C5795D7870F42  # CRC-64/ECMA-182 as OSS uses it (XZ form), reflected


def _mult_mod(a, b):
    """a(x)·b(x) modulo the CRC polynomial, both reflected (bit 63 is x^0), as zlib's multmodp."""
    m, p = 1 << 63, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ CRC64_POLY if b & 1 else b >> 1


def _x_powers(count=64):
    """x^(2^k) modulo the polynomial for k < count: a zero-bit shift of any length is a few products."""
    table = [1 << 62]  # x^1
    for _ in range(count - 1):
        table.append(_mult_mod(table[-1], table[-1]))
    return table


_X_POWERS = _x_powers()


def crc64_combine(crc1, crc2, len2):
    """CRC-64 of A+B from crc(A), crc(B) and len(B) (zlib 1.2.12's crc32_combine, in 64 bits): completing
    a multipart upload need not re-read the parts to checksum them. crc(A) is shifted through len(B)
    zero bytes by multiplying it by x^(8·len(B)), built from the table of x^(2^k): ~0.1 ms per part
    (the 64×64 matrix squarings this replaces took ~9 ms per 8 MiB part, serial at Complete)."""
    if len2 <= 0:
        return crc1
    shift, n, k = 1 << 63, len2, 3  # x^0; n bytes = n·2^3 bits
    while n:
        if n & 1:
            shift = _mult_mod(_X_POWERS[k], shift)
        n >>= 1
        k += 1
    return _mult_mod(shift, crc1) ^ crc2
