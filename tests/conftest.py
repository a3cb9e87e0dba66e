"""Shared fixtures. Nothing here reaches beyond 127.0.0.1."""

import os

import pytest

# Set before anything imports alibabacloud_credentials (it reads the environment at import).
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"] = "true"
os.environ["ALIBABA_CLOUD_CREDENTIALS_FILE"] = "/nonexistent/ossdirect-test-credentials.ini"
for _name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
    os.environ.pop(_name, None)

from support import RsaSigner, StaticServer  # noqa: E402

CHROMIUM = os.environ.get("OSSDIRECT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright. A missing browser fails the run, never skips it."""
    import shutil

    from playwright.sync_api import sync_playwright

    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium`")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def rsa_signer():
    return RsaSigner()


@pytest.fixture
def key_server(rsa_signer):
    server = StaticServer({"/_emulator/callback_pub_key.pem": rsa_signer.public_pem()})
    yield server
    server.close()


class EmulatedBucket:
    """A real OSS emulator on loopback with one bucket, and oss2 (the official SDK) to put objects."""

    AK, SK, TOKEN = "STS.CallbackTestRole", "callback-test-secret", "callback-test-token"

    def __init__(self, data_dir, bucket, account=None):
        import types

        import oss2

        from emulator import EmulatorConfig, serve

        self.bucket = bucket
        if account:
            self.AK, self.SK, self.TOKEN = account
        self.server = serve(EmulatorConfig(data_dir=str(data_dir), buckets=[bucket], region="cn-hangzhou",
                                           accounts={self.AK: (self.SK, self.TOKEN)}))
        self.url = self.server.url
        self.bucket_url = f"{self.url}/{bucket}"
        self.sdk = oss2.Bucket(oss2.StsAuth(self.AK, self.SK, self.TOKEN), self.url, bucket)
        # what FC's python3.10 runtime hands the function: its role's STS credentials
        self.context = types.SimpleNamespace(credentials=types.SimpleNamespace(
            access_key_id=self.AK, access_key_secret=self.SK, security_token=self.TOKEN))

    def put(self, key, data=b"hello", upload_id=None, content_type="image/png", filename=None):
        headers = {"Content-Type": content_type}
        if upload_id:
            headers["x-oss-meta-upload-id"] = upload_id
        if filename:
            from urllib.parse import quote

            headers["x-oss-meta-filename"] = quote(filename, safe="")
        return self.sdk.put_object(key, data, headers=headers)

    def close(self):
        self.server.shutdown()


@pytest.fixture
def photo_bucket(tmp_path):
    bucket = EmulatedBucket(tmp_path / "oss", "photo-bucket")
    yield bucket
    bucket.close()
