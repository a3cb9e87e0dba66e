"""The bucket-setup tool (oss2 SDK) against the emulator: CORS, site files, config.json, index; idempotent."""

import oss2
import requests

from emulator import EmulatorConfig, serve
from tools import bucket_setup

AK, SK, TOKEN = "STS.setupid", "setup-secret", "setup-token"


def test_setup_publishes_site_and_is_idempotent(tmp_path, monkeypatch):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    (web / "app.js").write_text("export const x = 1;")
    (web / "config.json").write_text('{"signatureUrl": "stale"}')  # never published as is
    # a private bucket: the site files are readable because they are published public-read
    config = EmulatorConfig(data_dir=str(tmp_path / "emu"), buckets=["site-bucket"], accounts={AK: (SK, TOKEN)},
                            bucket_acl="private")
    with serve(config) as emu:
        args = (emu.url, "site-bucket", (AK, SK, TOKEN), web, "https://sig.example.com/", ["https://up.example.com"])
        first = bucket_setup.setup_bucket(*args)
        assert sorted(first["uploaded"]) == ["app.js", "config.json", "index.html"] and first["unchanged"] == []
        second = bucket_setup.setup_bucket(*args)
        assert second["uploaded"] == [] and sorted(second["unchanged"]) == ["app.js", "config.json", "index.html"]

        base = f"{emu.url}/site-bucket"
        index = requests.get(base + "/", timeout=5)
        assert index.text.startswith("<!doctype html>") and index.headers["Content-Type"].startswith("text/html")
        assert requests.get(base + "/app.js", timeout=5).headers["Content-Type"].startswith("text/javascript")
        assert requests.get(base + "/config.json", timeout=5).json() == {"signatureUrl": "https://sig.example.com/"}
        # a site file published before (default ACL: private here) is made public-read on the next run
        sdk = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), emu.url, "site-bucket")
        sdk.put_object_acl("app.js", oss2.OBJECT_ACL_DEFAULT)
        assert requests.get(base + "/app.js", timeout=5).status_code == 403
        assert "app.js" in bucket_setup.setup_bucket(*args)["unchanged"]
        assert requests.get(base + "/app.js", timeout=5).status_code == 200
        sdk.put_object("uploads/x.txt", b"x")
        assert requests.get(base + "/uploads/x.txt", timeout=5).status_code == 403  # uploads stay private
        preflight = requests.options(base + "/", headers={"Origin": "https://up.example.com",
                                                          "Access-Control-Request-Method": "POST"}, timeout=5)
        assert preflight.status_code == 200
        assert "ETag" in preflight.headers["Access-Control-Expose-Headers"]
        assert "x-oss-request-id" in preflight.headers["Access-Control-Expose-Headers"]
        assert "x-oss-hash-crc64ecma" in preflight.headers["Access-Control-Expose-Headers"]  # the page's part check
        other = requests.options(base + "/", headers={"Origin": "https://elsewhere.example",
                                                      "Access-Control-Request-Method": "POST"}, timeout=5)
        assert other.status_code == 403

        # the command line reads credentials from the environment only
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
        monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
        assert bucket_setup.main(["--endpoint", emu.url, "--bucket", "site-bucket", "--signature-url",
                                  "https://sig2.example.com/", "--origin", "https://up.example.com",
                                  "--web-dir", str(web), "--private-files"]) == 0
        assert requests.get(base + "/config.json", timeout=5).json() == {"signatureUrl": "https://sig2.example.com/",
                                                                         "privateFiles": True}


def test_content_types():
    assert bucket_setup.content_type("a/b.js").startswith("text/javascript")
    assert bucket_setup.content_type("x.css").startswith("text/css")
    assert bucket_setup.content_type("x.unknownext") == "application/octet-stream"


def test_setup_allows_part_uploads_aborts_leftovers_and_publishes_sign_in(tmp_path, monkeypatch):
    import oss2

    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    config = EmulatorConfig(data_dir=str(tmp_path / "emu"), buckets=["site-bucket"], accounts={AK: (SK, TOKEN)})
    with serve(config) as emu:
        sdk = oss2.Bucket(oss2.StsAuth(AK, SK, TOKEN), emu.url, "site-bucket")
        keep = oss2.models.LifecycleRule("operators-own", "logs/", status=oss2.models.LifecycleRule.ENABLED,
                                         expiration=oss2.models.LifecycleExpiration(days=30))
        sdk.put_bucket_lifecycle(oss2.models.BucketLifecycle([keep]))
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SK)
        monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
        for _ in range(2):  # idempotent: our rule is replaced, not added twice
            assert bucket_setup.main(["--endpoint", emu.url, "--bucket", "site-bucket", "--signature-url",
                                      "https://sig.example.com/", "--origin", "https://up.example.com",
                                      "--web-dir", str(web), "--token-url", "/api/token",
                                      "--sign-in-url", "/login", "--prefix", "incoming/",
                                      "--abort-incomplete-days", "3"]) == 0
        base = f"{emu.url}/site-bucket"
        assert requests.get(base + "/config.json", timeout=5).json() == {
            "auth": {"tokenUrl": "/api/token", "signInUrl": "/login"}, "signatureUrl": "https://sig.example.com/"}
        preflight = requests.options(base + "/incoming/x?partNumber=1&uploadId=u", timeout=5, headers={
            "Origin": "https://up.example.com", "Access-Control-Request-Method": "PUT"})
        assert preflight.status_code == 200 and "ETag" in preflight.headers["Access-Control-Expose-Headers"]
        rules = {r.id: r for r in sdk.get_bucket_lifecycle().rules}
        assert set(rules) == {"operators-own", bucket_setup.LIFECYCLE_RULE_ID}
        ours = rules[bucket_setup.LIFECYCLE_RULE_ID]
        assert ours.prefix == "incoming/" and ours.abort_multipart_upload.days == 3
