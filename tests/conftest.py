"""Shared fixtures. Nothing here reaches beyond 127.0.0.1."""

import os

import pytest

# Set before anything imports alibabacloud_credentials (it reads the environment at import).
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"] = "true"
os.environ["ALIBABA_CLOUD_CREDENTIALS_FILE"] = "/nonexistent/ossdirect-test-credentials.ini"
for _name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
    os.environ.pop(_name, None)

from support import EmulatedBucket, RsaSigner, StaticServer  # noqa: E402

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


@pytest.fixture
def photo_bucket(tmp_path):
    bucket = EmulatedBucket(tmp_path / "oss", "photo-bucket")
    yield bucket
    bucket.close()
