"""ali-oss (the official Node SDK), signing V1 and V4, through the calls of issue 21 against the emulator:
tests/emulator/ali-oss/run.js does the calls and checks bodies; here the answers are checked, including
the CRC-64 and MD5 of the data recomputed independently. `make test` installs the pinned ali-oss (npm ci)."""

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import AK, BUCKET, REGION, SK
from oss2.utils import Crc64  # crcmod's CRC-64, not the emulator's fastcrc

HERE = Path(__file__).parent / "ali-oss"


def data():
    n = 300 * 1024 + 3
    return bytes((i * 31 + 7) % 251 for i in range(n))  # as run.js makes it


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_ali_oss_against_the_emulator(emulator, version):
    node = shutil.which("node")
    assert node and (HERE / "node_modules" / "ali-oss").is_dir(), \
        "needs node and `npm ci` in tests/emulator/ali-oss (make test runs it)"
    endpoint = emulator.url.replace("127.0.0.1", "localhost")  # see docs/local-development.md
    run = subprocess.run([node, str(HERE / "run.js"), endpoint, BUCKET, AK, SK, REGION, version],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    body = data()
    check = Crc64()
    check.update(body)
    crc = str(check.crc)
    assert out["put"] == {"status": 200, "crc64": crc} and out["get"]["crc64"] == crc
    assert out["get"]["md5"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert out["head"] == {"length": len(body)} and out["range"] == f"bytes 10-19/{len(body)}"
    p = f"n-{version}/"
    assert out["copy"] and out["multipart"] and out["partCopy"]
    assert out["list"] == [[p + "copy.bin"], True, [p + "data.bin"]]
    assert out["listV2"] == [p + "copy.bin", p + "data.bin"]
    assert out["presign"] == {"status": 200, "type": "text/csv", "disposition": "attachment", "same": True}
    assert out["conditional"] == [304, 412]
    assert out["append"] == "one,two" and out["tagging"] == {"team": "a"}
    assert out["deleteMulti"] == [p + "copy.bin", p + "multi.bin"]


def test_ali_oss_default_ip_endpoint_is_refused_as_a_foreign_host(emulator):
    """With an IP endpoint ali-oss sends Host: <bucket>.oss-<region>.aliyuncs.com; the emulator refuses
    every foreign Host (DNS rebinding), so docs/local-development.md says: localhost + sldEnable."""
    script = ("const OSS=require('ali-oss');new OSS({endpoint:process.argv[1],bucket:process.argv[2],"
              "accessKeyId:'a',accessKeySecret:'b',region:'oss-cn-hangzhou'}).head('x')"
              ".then(()=>process.exit(0),e=>{console.log(e.status);process.exit(2)})")
    run = subprocess.run([shutil.which("node"), "-e", script, emulator.url, BUCKET], capture_output=True, text=True,
                         timeout=60, cwd=HERE)
    assert run.returncode == 2 and run.stdout.strip() == "403"
