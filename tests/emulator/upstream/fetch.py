"""The upstream oss2 test suite, taken from oss2's own source distribution on PyPI (the pinned version's
sdist ships its tests/ and LICENSE). Nothing of it is committed here: it is downloaded once with pip
into tests/emulator/upstream/cache/ (git-ignored), checked against its SHA-256, and only tests/ and
LICENSE are extracted, so the suite runs against the installed SDK.

    python tests/emulator/upstream/fetch.py      # prints the extracted directory
"""

import hashlib
import os
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "cache")
# oss2 version -> SHA-256 of its sdist (oss2-VERSION.tar.gz on PyPI)
SDISTS = {"2.19.1": "a8ab9ee7eb99e88a7e1382edc6ea641d219d585a7e074e3776e9dec9473e59c1"}
# the upstream files run against the emulator (tests/common.py is their shared harness)
FILES = ("test_object.py", "test_multipart.py", "test_list_objects_v2.py", "test_iterator.py",
         "test_exception_ec.py", "test_chinese.py", "test_headers.py")


def installed_version() -> str:
    from importlib.metadata import version

    return version("oss2")


def fetch(version: str = "", download: bool = True) -> str:
    """The directory holding the upstream ``tests/`` package and ``LICENSE`` for ``version`` (default:
    the installed oss2); downloads and extracts them on first use."""
    version = version or installed_version()
    if version not in SDISTS:
        raise SystemExit(f"oss2 {version} is installed; tests/emulator/upstream/fetch.py knows the sdist hash of "
                         f"{', '.join(SDISTS)} only: add this version's SHA-256 to SDISTS.")
    root = os.path.join(CACHE, f"oss2-{version}")
    if os.path.exists(os.path.join(root, "tests", "common.py")):
        return root
    os.makedirs(CACHE, exist_ok=True)
    archive = os.path.join(CACHE, f"oss2-{version}.tar.gz")
    if not os.path.exists(archive):
        if not download:  # tests never reach out: `make test` fetches it first
            raise SystemExit(f"{archive} is missing: run `python tests/emulator/upstream/fetch.py` (make test does).")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--no-binary", ":all:", f"oss2=={version}", "-d", CACHE], check=True)
    with open(archive, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SDISTS[version]:
        os.remove(archive)
        raise SystemExit(f"{archive}: SHA-256 {digest}, expected {SDISTS[version]}; removed.")
    prefix = f"oss2-{version}/"
    tmp = root + ".tmp"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and
                   (m.name == prefix + "LICENSE" or (m.name.startswith(prefix + "tests/") and "/" not in
                                                     m.name[len(prefix + "tests/"):]))]
        for m in members:
            m.name = m.name[len(prefix):]
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.12+: plain files only
        tar.extractall(tmp, members=members, **safe)  # type: ignore[arg-type]
    os.replace(tmp, root)
    return root


if __name__ == "__main__":
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else ""))
