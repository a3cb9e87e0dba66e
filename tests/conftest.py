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


@pytest.fixture(scope="session")
def rsa_signer():
    return RsaSigner()


@pytest.fixture
def key_server(rsa_signer):
    server = StaticServer({"/_emulator/callback_pub_key.pem": rsa_signer.public_pem()})
    yield server
    server.close()
