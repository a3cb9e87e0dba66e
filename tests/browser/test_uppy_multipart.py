"""The real Uppy (@uppy/core + @uppy/aws-s3 v5 from npm) uploads through our /multipart routes in chromium.

tests/browser/multipart-uppy/ holds the npm packages (package.json + lock; `make test` runs `npm ci`
there); the test bundles them with esbuild into its temp dir and publishes the bundle, a test page and
web/ (with web/adapters/uppy-multipart.js, imported unbundled) into the stack's emulated bucket. Uppy
then does what it does for S3: createMultipartUpload, signPart per part, PUTs, completeMultipartUpload
(and listParts after a pause, abortMultipartUpload after a removal), and the record arrives.
"""

import re
import shutil
import socket
import subprocess
from pathlib import Path

import oss2
import pytest

from devstack import BUCKET, LocalStack

pytestmark = pytest.mark.browser
HERE = Path(__file__).resolve().parent / "multipart-uppy"
MiB = 1 << 20

PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>Uppy multipart test</title>
<script type="module">
import { Uppy, AwsS3 } from "./uppy-test/uppy.bundle.js";
import { ossdirectAwsS3Options } from "./adapters/uppy-multipart.js";
const blob = (size, seed) => {
  const block = new Uint8Array(1048576);
  for (let i = 0; i < block.length; i++) block[i] = (i * seed + 11) & 255;
  const pieces = [];
  for (let at = 0; at < size; at += block.length) pieces.push(block.subarray(0, Math.min(block.length, size - at)));
  return new Blob(pieces);
};
window.start = (sig, threshold) => {
  const uppy = new Uppy({ autoProceed: false });
  uppy.use(AwsS3, ossdirectAwsS3Options(uppy, sig, { threshold }));
  const log = window.log = { parts: {}, success: {}, errors: [], progress: {}, removed: null };
  uppy.on("s3-multipart:part-uploaded", (file, part) => (log.parts[file.name] ||= []).push(part.PartNumber));
  uppy.on("upload-progress", (file, p) => { log.progress[file.name] = [p.bytesUploaded, p.bytesTotal]; });
  uppy.on("upload-success", (file, response) => {
    log.success[file.name] = { body: response.body, uploadURL: response.uploadURL, upload_id: file.meta.upload_id };
  });
  uppy.on("upload-error", (file, error) => log.errors.push(`${file?.name}: ${error}`));
  window.uppy = uppy;
  return uppy;
};
window.blob = blob;
window.pageReady = true;
</script></html>"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def uppy_bundle(tmp_path_factory):
    node = shutil.which("node")
    if not node:
        pytest.fail("node is needed to bundle Uppy for this test (apt-get install -y nodejs npm)")
    if not (HERE / "node_modules" / "@uppy" / "aws-s3").is_dir():
        pytest.fail(f"Uppy is not installed: run `cd {HERE} && npm ci` (make test does)")
    out = tmp_path_factory.mktemp("uppy") / "uppy.bundle.js"
    subprocess.run([node, str(HERE / "build.mjs"), str(out)], check=True, cwd=HERE, timeout=120,
                   capture_output=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, uppy_bundle):
    data_dir = tmp_path_factory.mktemp("uppystack")
    port = free_port()
    env = {"OSSDIRECT_OSS_ENDPOINT": f"http://127.0.0.1:{port}/{BUCKET}",
           "OSSDIRECT_RECORDS": f"sqlite:///{data_dir / 'records.sqlite3'}"}
    with LocalStack(data_dir, emulator_port=port, env=env) as s:
        bucket = sdk(s)
        bucket.put_object("uppy-test/uppy.bundle.js", uppy_bundle, headers={"Content-Type": "text/javascript"})
        bucket.put_object("uppy-test.html", PAGE.encode(), headers={"Content-Type": "text/html"})
        yield s


def sdk(stack):
    return oss2.Bucket(oss2.StsAuth(*stack.credentials), stack.emulator.url, BUCKET)


@pytest.fixture
def uppy_page(browser, stack):
    context = browser.new_context()
    page = context.new_page()
    calls = []  # (method, route) of every request to the signature function and every part PUT
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_request(request):
        if request.url.startswith(stack.signature_url) and request.method != "OPTIONS":
            calls.append((request.method, re.sub(r"\?.*", "", request.url[len(stack.signature_url) - 1:])))
        elif request.method == "PUT" and "partNumber=" in request.url:
            calls.append(("PUT", "part " + re.search(r"partNumber=(\d+)", request.url).group(1)))

    page.on("request", on_request)
    page.goto(f"{stack.bucket_url}/uppy-test.html")
    page.wait_for_function("() => window.pageReady === true")
    yield page, calls
    context.close()
    assert errors == []


def test_uppy_uploads_a_multipart_file_through_our_routes_and_the_record_arrives(stack, uppy_page):
    page, calls = uppy_page
    size = 20 * 10**6  # 3 parts: 8 MiB, 8 MiB, the rest
    digests = []  # issue 24: signPart sends the part's MD5; Uppy sends the Content-MD5 its URL signs
    page.on("request", lambda r: digests.append(r.headers.get("content-md5"))
            if r.method == "PUT" and "partNumber=" in r.url else None)
    result = page.evaluate("""async ([sig, size]) => {
      const uppy = start(sig, 8 * 1048576);
      uppy.addFile({ name: "uppy video.mp4", type: "video/mp4", data: blob(size, 31) });
      uppy.addFile({ name: "uppy note.txt", type: "text/plain", data: new Blob(["hello from uppy"]) });
      const result = await uppy.upload();
      return { successful: result.successful.length, failed: result.failed.length, log };
    }""", [stack.signature_url, size])
    log = result["log"]
    assert result["successful"] == 2 and result["failed"] == 0 and log["errors"] == []
    assert sorted(log["parts"]["uppy video.mp4"]) == [1, 2, 3]
    assert log["progress"]["uppy video.mp4"] == [size, size]

    big = log["success"]["uppy video.mp4"]
    record = big["body"]
    assert record["ok"] is True and record["size"] == size and record["etag"].endswith("-3")
    assert record["upload_id"] == big["upload_id"] and big["uploadURL"] == record["location"]
    assert record["content_type"] == "video/mp4" and record["filename"] == "uppy video.mp4"
    [rec] = [r for r in stack.records() if r["upload_id"] == big["upload_id"]]
    assert (rec["status"], rec["source"], rec["size"], rec["key"]) == ("recorded", "multipart", size, record["key"])

    # the small file went as one signed form (getUploadParameters), recorded too
    small = log["success"]["uppy note.txt"]
    [small_rec] = [r for r in stack.records() if r["upload_id"] == small["upload_id"]]
    assert small_rec["status"] == "recorded" and small_rec["size"] == len(b"hello from uppy")
    assert stack.get_object(small_rec["key"]) == b"hello from uppy"

    routes = [(m, re.sub(r"/multipart/[^/]+", "/multipart/<id>", path)) for m, path in calls]
    assert routes.count(("POST", "/multipart")) == 1
    assert sorted(p for m, p in routes if m == "GET" and re.fullmatch(r"/multipart/<id>/\d+", p)) == \
        ["/multipart/<id>/1", "/multipart/<id>/2", "/multipart/<id>/3"]
    assert sorted(p for m, p in routes if m == "PUT") == ["part 1", "part 2", "part 3"]
    assert len(digests) == 3 and all(d and len(d) == 24 for d in digests), digests
    assert routes.count(("POST", "/multipart/<id>/complete")) == 1
    assert ("GET", "/") in routes  # the small file's form


def test_uppy_pause_resume_lists_parts_and_removal_aborts_on_oss(stack, uppy_page):
    page, calls = uppy_page
    size = 48 * MiB  # 6 parts
    result = page.evaluate("""async ([sig, size]) => {
      const uppy = start(sig, 8 * 1048576);
      const id = uppy.addFile({ name: "paused.mp4", type: "video/mp4", data: blob(size, 17) });
      let paused = false;
      const resumed = new Promise((resolve) => {
        uppy.on("s3-multipart:part-uploaded", () => {
          if (paused) return;
          paused = true;
          uppy.pauseResume(id);                               // pause after the first part
          setTimeout(() => { uppy.pauseResume(id); resolve(); }, 300);  // and resume: Uppy calls listParts
        });
      });
      const done = uppy.upload();
      await resumed;
      const result = await done;
      // a third file: removed mid-upload, Uppy aborts it through abortMultipartUpload
      const other = uppy.addFile({ name: "removed.mp4", type: "video/mp4", data: blob(size, 5) });
      const aborted = new Promise((resolve) => {
        uppy.on("s3-multipart:part-uploaded", (file) => {
          if (file.id === other && !log.removed) { log.removed = uppy.getFile(other).meta.upload_id; uppy.removeFile(other); resolve(); }
        });
      });
      uppy.upload();
      await aborted;
      await new Promise((r) => setTimeout(r, 500));
      return { successful: result.successful.map((f) => f.name), log };
    }""", [stack.signature_url, size])
    log = result["log"]
    assert result["successful"] == ["paused.mp4"] and log["errors"] == []
    record = log["success"]["paused.mp4"]["body"]
    assert record["ok"] is True and record["size"] == size and record["etag"].endswith("-6")
    routes = [(m, re.sub(r"/multipart/[^/]+", "/multipart/<id>", path)) for m, path in calls]
    assert ("GET", "/multipart/<id>") in routes  # listParts on resume
    assert ("DELETE", "/multipart/<id>") in routes  # abortMultipartUpload on removal
    [removed] = [r for r in stack.records() if r["upload_id"] == log["removed"]]
    assert removed["status"] == "aborted"
    assert [u.key for u in oss2.MultipartUploadIterator(sdk(stack))] == []
