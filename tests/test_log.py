"""ossdirect.log: the package logger imports logging only when a line is really written, and then every
line reaches logging's handlers as before."""

import json
import logging
import subprocess
import sys

from fixtures import settings

from ossdirect.log import INFO, WARNING, LazyLogger, log


BASE = settings(BUCKET="bench-bucket", REGION="cn-hangzhou", CALLBACK_URL="https://cb.example/oss-callback")


def run(code, env):
    return subprocess.run([sys.executable, "-c", code], env=dict(env, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true"),
                          capture_output=True, text=True, check=True)


REQUEST = ("import sys, json; from ossdirect.app.handlers import SignatureApp; import os; "
           "app = SignatureApp(dict(os.environ)); "
           "ev = json.dumps({'rawPath': '/', 'queryParameters': {'filename': 'a.jpg', 'size': '10', "
           "'content_type': 'image/jpeg'}, 'requestContext': {'http': {'method': 'GET'}}}).encode(); "
           "print(app(ev, None if False else __import__('types').SimpleNamespace(credentials=__import__('types')"
           ".SimpleNamespace(access_key_id='a', access_key_secret='b', security_token='c')))['statusCode']); "
           "print('logging' in sys.modules)")


def test_before_logging_is_configured_the_lines_are_logging_s_own_bytes():
    """The same warnings and errors, one run through this logger, one through logging itself."""
    lines = "w = ['plain', chr(123) + '\"fn\": \"x\", \"warning\": \"caf' + chr(233) + '\"' + chr(125), 'with %s arg']"
    ours = run(f"import sys; from ossdirect.log import log; {lines}; log.warning(w[0]); log.error(w[1]); "
               "log.warning(w[2], 'one'); log.info('dropped'); log.debug('dropped'); "
               "print('logging' in sys.modules)", dict(__import__('os').environ))
    theirs = run(f"import logging; log = logging.getLogger('ossdirect'); {lines}; log.warning(w[0]); log.error(w[1]); "
                 "log.warning(w[2], 'one'); log.info('dropped'); log.debug('dropped'); print(True)",
                 dict(__import__('os').environ))
    assert ours.stdout == "False\n" and theirs.stdout == "True\n"
    assert ours.stderr == theirs.stderr and "with one arg" in ours.stderr and "dropped" not in ours.stderr


def test_a_request_that_logs_nothing_never_imports_logging():
    import os

    env = dict(os.environ, **BASE, **settings(ALLOWED_ORIGINS="https://app.example", AUTH="none"))
    out = run(REQUEST, env).stdout.split()
    assert out[0] == "200"
    # AUTH=none warns at start-up (anyone can get forms): the line is written without importing logging
    assert out[1] == "False"


def test_a_quiet_configuration_answers_without_logging(tmp_path):
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    env = dict(os.environ, **BASE, **settings(ALLOWED_ORIGINS="https://app.example", AUTH="jwt", JWT_PUBLIC_KEY=pem,
                                      JWT_ISSUER="https://id.example/", JWT_AUDIENCE="app"))
    out = run(REQUEST, env).stdout.split()
    assert out == ["401", "False"]  # no token: a clear 401, and not one line written, so no logging import


def test_written_lines_reach_logging_handlers(caplog):
    caplog.set_level(logging.INFO, logger="ossdirect")
    assert log.isEnabledFor(INFO)
    log.warning(json.dumps({"w": 1}))
    log.info("an info line")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("ossdirect", logging.WARNING, '{"w": 1}'), ("ossdirect", logging.INFO, "an info line")]


def test_levels_follow_the_real_logger(caplog):
    caplog.set_level(logging.ERROR, logger="ossdirect")
    assert not log.isEnabledFor(WARNING) and log.isEnabledFor(logging.ERROR)
    assert LazyLogger("ossdirect.other").name == "ossdirect.other"


def test_before_logging_is_imported_info_is_off_and_warnings_on():
    code = ("import sys; from ossdirect.log import log, INFO, WARNING; "
            "print(log.isEnabledFor(INFO), log.isEnabledFor(WARNING), 'logging' in sys.modules); "
            "log.warning('written'); print('logging' in sys.modules)")
    import os

    r = run(code, dict(os.environ))
    assert r.stdout.split() == ["False", "True", "False", "False"]
    assert "written" in r.stderr  # logging's last-resort handler, as with any unconfigured logger
