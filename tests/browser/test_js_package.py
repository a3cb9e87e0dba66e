"""packages/js (the `ossdirect` npm package): built from web/'s modules (one copy), packed with `npm pack`,
type-checked with the pinned typescript against a typed usage file, and its React and Vue components
uploading for real in Chromium with React 18 and Vue 3 from npm (test pages bundled by esbuild through the
package's "exports", published into the emulated bucket next to the upload page: same origin, CORS as
deployed). Also in Chinese: Chromium with locale zh-CN gets the package's messages in zh-CN (axe: no violation)."""

import json
import re
import subprocess
import tarfile
from pathlib import Path

import oss2
import pytest

from devstack import BUCKET
from test_accessibility import assert_no_violations
from tools.bucket_setup import content_type

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "packages" / "js"
WEB = ROOT / "web"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20


@pytest.fixture(scope="session")
def js_package():
    """npm ci once (skipped when installed), then the package build and the test pages' bundles."""
    if not (PKG / "node_modules" / "typescript").is_dir():
        subprocess.run(["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=PKG, check=True, timeout=600)
    subprocess.run(["node", "build.mjs"], cwd=PKG, check=True, timeout=120)
    subprocess.run(["node", "test/build-pages.mjs"], cwd=PKG, check=True, timeout=300)
    return PKG


def test_dist_is_web_copied_not_a_second_copy(js_package):
    for name in ["common.js", "i18n.js", "uploader.js", "multipart.js"]:
        assert (js_package / "dist" / name).read_bytes() == (WEB / name).read_bytes(), name
    for path in (WEB / "adapters").glob("*.js"):
        assert (js_package / "dist" / "adapters" / path.name).read_bytes() == path.read_bytes(), path.name
    assert not list((js_package / "src").glob("uploader*.js")) and not list((js_package / "src").glob("multipart*.js"))


def test_npm_pack_holds_every_export_with_its_types(js_package, tmp_path):
    out = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(tmp_path)], cwd=js_package,
                         check=True, capture_output=True, text=True, timeout=120).stdout
    [info] = json.loads(out[out.index("["):])
    assert info["name"] == "ossdirect"
    with tarfile.open(tmp_path / info["filename"]) as tar:
        names = {n.removeprefix("package/") for n in tar.getnames()}
        manifest = json.load(tar.extractfile("package/package.json"))
    assert manifest["type"] == "module" and manifest["types"] == "./dist/index.d.ts"
    assert "node_modules" not in " ".join(names) and not any(n.startswith(("src/", "test/")) for n in names)
    subpaths = {k: v for k, v in manifest["exports"].items() if isinstance(v, dict)}
    assert {".", "./react", "./vue", "./uploader", "./multipart", "./adapters/uppy", "./adapters/uppy-multipart",
            "./adapters/filepond", "./adapters/antd"} <= set(subpaths)
    for subpath, targets in subpaths.items():
        assert targets["types"].removeprefix("./") in names, subpath
        assert targets["default"].removeprefix("./") in names, subpath
    # every relative import inside the packed modules (static and dynamic) resolves to a packed file
    for name in [n for n in names if n.endswith(".js")]:
        code = "\n".join(line for line in (js_package / name).read_text().splitlines()
                         if not line.lstrip().startswith(("//", "*", "/*")))
        specs = re.findall(r'from "(\.\.?/[^"]+)"|import\("(\.\.?/[^"]+)"\)', code)
        assert specs or name in {"dist/i18n.js", "dist/crc64.js", "dist/md5.js"}, name  # the three with no import
        for spec in [a or b for a, b in specs]:
            target = ((js_package / name).parent / spec).resolve().relative_to(js_package).as_posix()
            assert target in names, (name, spec)


def test_types_of_the_packed_package_check_against_the_typed_usage_file(js_package, tmp_path):
    """An app with the packed tarball in node_modules (its other packages: this package's pinned devDependencies)
    type-checks test/types/usage.tsx with the pinned typescript; a wrong use fails."""
    out = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(tmp_path)], cwd=js_package,
                         check=True, capture_output=True, text=True, timeout=120).stdout
    [info] = json.loads(out[out.index("["):])
    app = tmp_path / "app"
    (app / "node_modules").mkdir(parents=True)
    with tarfile.open(tmp_path / info["filename"]) as tar:
        tar.extractall(app / "node_modules", filter="data")
    (app / "node_modules" / "package").rename(app / "node_modules" / "ossdirect")
    for dep in (js_package / "node_modules").iterdir():
        if dep.name != ".bin":
            (app / "node_modules" / dep.name).symlink_to(dep)
    for name in ["tsconfig.json", "usage.tsx"]:
        (app / name).write_bytes((js_package / "test" / "types" / name).read_bytes())
    tsc = [str(js_package / "node_modules" / "typescript" / "bin" / "tsc"), "--noEmit", "-p", str(app)]
    run = subprocess.run(["node", *tsc], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    with (app / "usage.tsx").open("a") as f:
        f.write('export const wrong: number = formatBytes(3);\nexport const missing = <OssDirectUpload />;\n')
    run = subprocess.run(["node", *tsc], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "TS2322" in run.stdout and "signatureUrl" in run.stdout, run.stdout


def publish_pages(stack):
    sdk = oss2.Bucket(oss2.StsAuth(*stack.credentials), stack.emulator.url, BUCKET)  # the stack's own identity
    for path in [*(PKG / "test" / "pages").glob("*.html"), *(PKG / "test" / "dist").glob("*.js")]:
        key = "pkg/" + ("" if path.suffix == ".html" else "dist/") + path.name
        sdk.put_object(key, path.read_bytes(), headers={"Content-Type": content_type(path.name)})


@pytest.fixture
def open_pkg_page(browser, make_stack, js_package):
    contexts = []

    def open_(name, locale="en-US", **env):
        stack = make_stack(**env)
        publish_pages(stack)
        context = browser.new_context(locale=locale, viewport={"width": 1000, "height": 700})
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.goto(f"{stack.bucket_url}/pkg/{name}.html")
        page.wait_for_function("() => window.ready === true", timeout=15000)
        return stack, page

    yield open_
    for c in contexts:
        c.close()


def wait_events(page, count, timeout=20000):
    page.wait_for_function("n => window.events.length >= n", arg=count, timeout=timeout)
    return page.evaluate("window.events")


def files():
    return [{"name": "photo.png", "mimeType": "image/png", "buffer": PNG},
            {"name": "page.html", "mimeType": "text/html", "buffer": b"<p>no</p>"}]  # the service refuses it


def assert_uploaded(stack, event):
    record = event["result"]["record"]
    assert event["result"]["state"] == "done" and record["ok"] is True and record["size"] == len(PNG)
    [stored] = [r for r in stack.records() if r["upload_id"] == record["upload_id"]]
    assert stored["record_id"] == record["record_id"]
    assert stack.get_object(record["key"]) == PNG


def status(page, name):
    li = page.locator("li", has=page.locator(".name", has_text=name))
    return li.get_attribute("data-state"), li.locator(".status").inner_text()


def test_react_component_uploads_and_reports(open_pkg_page):
    stack, page = open_pkg_page("react")
    assert page.locator("label").inner_text() == "Choose files to upload"
    page.set_input_files("input[type=file]", files=files())
    events = {e["name"]: e for e in wait_events(page, 2)}
    assert not page.problems
    assert_uploaded(stack, events["photo.png"])
    assert events["page.html"]["event"] == "error" and events["page.html"]["code"] == "UnsupportedContentType"
    assert status(page, "photo.png") == ("done", "Uploaded and recorded")
    assert status(page, "page.html") == ("failed", "Files of this type are not accepted here.")
    # the hook alone: its items are React state
    page.evaluate("hookUpload([new File(['hello hook'], 'hook.txt', {type: 'text/plain'})])")
    [event] = [e for e in wait_events(page, 3) if e["event"] == "hook-uploaded"]
    assert stack.get_object(event["result"]["record"]["key"]) == b"hello hook"
    page.wait_for_function("JSON.parse(document.getElementById('hook-state').textContent)[0]?.state === 'done'")
    assert json.loads(page.locator("#hook-state").inner_text()) == [
        {"name": "hook.txt", "state": "done", "loaded": 10, "size": 10}]
    assert page.locator("#hook-state").get_attribute("data-busy") == "false"


def test_react_component_speaks_chinese_in_a_zh_cn_browser(open_pkg_page):
    stack, page = open_pkg_page("react", locale="zh-CN")
    assert page.locator("label").inner_text() == "选择要上传的文件"
    page.set_input_files("input[type=file]", files=files())
    events = {e["name"]: e for e in wait_events(page, 2)}
    assert_uploaded(stack, events["photo.png"])
    assert status(page, "photo.png") == ("done", "已上传并记录")
    assert status(page, "page.html") == ("failed", "此处不接受这种类型的文件。")
    assert events["page.html"]["sentence"] == "此处不接受这种类型的文件。"
    assert_no_violations(page, "pkg-react-zh-CN")


def test_vue_component_uploads_and_emits(open_pkg_page):
    stack, page = open_pkg_page("vue")
    page.set_input_files("input[type=file]", files=files())
    events = {e["name"]: e for e in wait_events(page, 2)}
    assert not page.problems
    assert_uploaded(stack, events["photo.png"])
    assert events["page.html"] == {"event": "error", "name": "page.html", "code": "UnsupportedContentType",
                                   "sentence": "Files of this type are not accepted here."}
    assert status(page, "photo.png") == ("done", "Uploaded and recorded")
    assert status(page, "page.html") == ("failed", "Files of this type are not accepted here.")


def test_vue_component_speaks_chinese_in_a_zh_cn_browser(open_pkg_page):
    stack, page = open_pkg_page("vue", locale="zh-CN")
    assert page.locator("label").inner_text() == "选择要上传的文件"
    page.set_input_files("input[type=file]", files=files()[:1])
    [event] = wait_events(page, 1)
    assert_uploaded(stack, event)
    assert status(page, "photo.png") == ("done", "已上传并记录")
    assert_no_violations(page, "pkg-vue-zh-CN")
